package store

import (
	"fmt"
	"sync"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
)

// Replay reads a cassette from the file as it is asked, for a replaying
// proxy: the proxy keeps its match index in memory and nothing else, and
// fetches each interaction by Seq when a request matches it. Every read is
// its own short read transaction whose result is copied out of bbolt's
// memory map before the transaction ends (decoding decompresses into fresh
// memory), so no transaction is held while an answer is written to a slow
// client: a Recorder writing the same store (live mode, or record mode with
// hosts replayed) never waits for a reader, and the store's reopen, which
// waits for every transaction, waits for no client.
//
// Recently served interactions are kept decoded in a cache of at most
// ReplayOptions.CacheBytes; answers that share a body (stored once per
// cassette) share it in the cache too. What the reads bring into the
// process's RSS through the memory map is given back by reopening the
// store's file every replayRelease bytes of them.
type Replay struct {
	s     *Store
	name  string
	count int // interactions when opened
	cache *replayCache

	// mapped estimates the bytes of the memory map read since the last
	// reopen (each lookup maps up to 64 KiB around it: see bodyCache).
	mapped atomic.Int64
}

// ReplayOptions tune a Replay.
type ReplayOptions struct {
	// CacheBytes bounds the decoded interactions kept for the next request
	// that matches them (bodies counted once however many share them).
	// Default DefaultReplayCache; an interaction larger than a quarter of
	// it is never kept.
	CacheBytes int
}

// DefaultReplayCache is ReplayOptions.CacheBytes' default.
const DefaultReplayCache = 4 << 20

// replayRelease: a Replay reopens the store's file (Store.reopen) once its
// reads have mapped about this many bytes, so that a replay that touches
// every part of a large cassette keeps at most this much of it resident.
const replayRelease = 8 << 20

// cachedOverhead is what a cached interaction costs besides its decoded
// bytes: the structs, header maps and the cache's own bookkeeping.
const cachedOverhead = 512

// Replay opens the named cassette for reading on demand (wrapped
// ErrNoCassette when it does not exist).
func (s *Store) Replay(name string, o ReplayOptions) (*Replay, error) {
	if o.CacheBytes <= 0 {
		o.CacheBytes = DefaultReplayCache
	}
	var count int
	err := s.view(func(tx *bolt.Tx) error {
		c := cassetteBucket(tx, name)
		if c == nil {
			return &notFoundError{name}
		}
		count = info(name, c).Interactions
		return nil
	})
	if err != nil {
		return nil, s.wrap(err)
	}
	return &Replay{s: s, name: name, count: count, cache: newReplayCache(o.CacheBytes)}, nil
}

// Cassette is the name of the cassette read.
func (r *Replay) Cassette() string { return r.name }

// Len is how many interactions the cassette held when it was opened (its
// count as the store keeps it: a hint for sizing, EachHead is the truth).
func (r *Replay) Len() int { return r.count }

// EachHead calls fn with every interaction of the cassette in Seq order,
// its request and the fields before it decoded (Key, RecordedAt,
// DurationMs, RunID, Request) and its Response left empty: what an index
// needs, without a body lookup. The walk reads in transactions of about
// streamRelease bytes and reopens the store's file between them, so what
// it read is not left resident. in is fn's to keep. An error from fn stops
// the walk and is returned as it is.
func (r *Replay) EachHead(fn func(seq uint64, in *Interaction) error) error {
	return r.s.eachValue(r.name, func(*bolt.Bucket) (func(uint64, []byte) error, func() int) {
		return func(seq uint64, v []byte) error {
			in, err := decodeHead(v)
			if err != nil {
				return r.s.wrap(fmt.Errorf("cassette %q interaction %d: %w", r.name, seq, err))
			}
			in.Seq = seq
			return fn(seq, &in)
		}, nil
	})
}

// Interaction returns the interaction with seq, whole, from the cache or
// the file. It is shared with every other caller: read it, never write it.
func (r *Replay) Interaction(seq uint64) (*Interaction, error) {
	if in := r.cache.get(seq); in != nil {
		return in, nil
	}
	var (
		in       Interaction
		size     int
		bodyHash *[32]byte
		body     []byte
	)
	err := r.read(seq, func(c *bolt.Bucket, raw []byte) error {
		bodies := c.Bucket(subBodies)
		var err error
		in, err = decodeValue(raw, func(ref []byte) ([]byte, error) {
			h := [32]byte(ref)
			bodyHash = &h
			if b := r.cache.body(&h); b != nil {
				body = b
				return b, nil
			}
			var packed []byte
			if bodies != nil {
				packed = bodies.Get(ref)
			}
			if packed == nil {
				return nil, fmt.Errorf("body %x is missing from the cassette", ref[:8])
			}
			r.mapped.Add(int64(len(packed) + 64<<10))
			b, err := unpackValue(packed)
			if err != nil {
				return nil, fmt.Errorf("body %x: %w", ref[:8], err)
			}
			body = b
			return b, nil
		})
		size = len(raw) * 4 // the decoded value's fields, roughly (zstd packs headers about 4:1)
		return err
	})
	if err != nil {
		return nil, err
	}
	in.Seq = seq
	return r.cache.put(seq, &in, size+cachedOverhead, bodyHash, body), nil
}

// Request returns the request of the interaction with seq (for the
// closest-miss diff), without its response.
func (r *Replay) Request(seq uint64) (*Request, error) {
	if in := r.cache.get(seq); in != nil {
		return &in.Request, nil
	}
	var in Interaction
	err := r.read(seq, func(_ *bolt.Bucket, raw []byte) error {
		var err error
		in, err = decodeHead(raw)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &in.Request, nil
}

// read runs fn on the stored value of seq in one read transaction, then
// gives back what the reads mapped once there is enough of it.
func (r *Replay) read(seq uint64, fn func(c *bolt.Bucket, raw []byte) error) error {
	err := r.s.view(func(tx *bolt.Tx) error {
		c, raw, err := storedValue(tx, r.name, seq)
		if err != nil {
			return err
		}
		r.mapped.Add(int64(len(raw) + 64<<10))
		if err := fn(c, raw); err != nil {
			return fmt.Errorf("cassette %q interaction %d: %w", r.name, seq, err)
		}
		return nil
	})
	if m := r.mapped.Load(); m >= replayRelease && r.mapped.CompareAndSwap(m, 0) {
		_ = r.s.reopen() // a reopen that failed shows in the next read
	}
	return r.s.wrap(err)
}

// CacheUse reports what the cache holds: interactions, and bytes as it
// counts them (never more than its bound).
func (r *Replay) CacheUse() (entries, bytes, bound int) {
	c := r.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.items), c.size, c.max
}

// replayCache keeps decoded interactions by Seq under a bound on their
// bytes, evicting with the clock algorithm (a hit sets a bit; the hand
// clears set bits and evicts the first clear one). Bodies stored apart are
// kept once, with the count of cached interactions that use them.
type replayCache struct {
	mu     sync.Mutex
	max    int
	size   int
	items  map[uint64]*cachedInteraction
	ring   []uint64
	hand   int
	bodies map[[32]byte]*cachedBody
}

type cachedInteraction struct {
	in   *Interaction
	size int
	body *[32]byte // the shared body it holds a count on, or nil
	used bool
}

type cachedBody struct {
	b    []byte
	refs int
}

func newReplayCache(max int) *replayCache {
	return &replayCache{max: max, items: map[uint64]*cachedInteraction{}, bodies: map[[32]byte]*cachedBody{}}
}

func (c *replayCache) get(seq uint64) *Interaction {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.items[seq]; e != nil {
		e.used = true
		return e.in
	}
	return nil
}

// body returns a cached body by hash, or nil.
func (c *replayCache) body(h *[32]byte) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if b := c.bodies[*h]; b != nil {
		return b.b
	}
	return nil
}

// put caches in (size bytes besides a shared body) and returns what the
// cache holds for seq: in, or what another reader put first. An
// interaction over a quarter of the bound is returned without being kept.
func (c *replayCache) put(seq uint64, in *Interaction, size int, bodyHash *[32]byte, body []byte) *Interaction {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.items[seq]; e != nil {
		return e.in
	}
	need := size
	shared := bodyHash != nil && c.bodies[*bodyHash] != nil
	if bodyHash != nil && !shared {
		need += len(body)
	}
	if need > c.max/4 {
		return in
	}
	for c.size+need > c.max && len(c.ring) > 0 {
		c.evictOne()
		if bodyHash != nil && shared && c.bodies[*bodyHash] == nil { // its body went with what was evicted
			shared = false
			need += len(body)
		}
	}
	e := &cachedInteraction{in: in, size: size, body: bodyHash}
	if bodyHash != nil {
		if b := c.bodies[*bodyHash]; b != nil {
			b.refs++
			// The interaction was decoded with the cached body or with
			// bytes equal to it: serve the cached one.
			in.Response.Body = b.b
			rebaseEvents(&in.Response, body)
		} else {
			c.bodies[*bodyHash] = &cachedBody{b: body, refs: 1}
			c.size += len(body)
		}
	}
	c.items[seq] = e
	c.ring = append(c.ring, seq)
	c.size += size
	return in
}

// evictOne advances the hand to the first interaction not used since the
// hand last passed it and drops it.
func (c *replayCache) evictOne() {
	for {
		if c.hand >= len(c.ring) {
			c.hand = 0
		}
		seq := c.ring[c.hand]
		e := c.items[seq]
		if e.used {
			e.used = false
			c.hand++
			continue
		}
		delete(c.items, seq)
		last := len(c.ring) - 1
		c.ring[c.hand] = c.ring[last]
		c.ring = c.ring[:last]
		c.size -= e.size
		if e.body != nil {
			if b := c.bodies[*e.body]; b != nil {
				if b.refs--; b.refs == 0 {
					delete(c.bodies, *e.body)
					c.size -= len(b.b)
				}
			}
		}
		return
	}
}

// rebaseEvents points a streamed answer's events, which are pieces of the
// body they were decoded with (was), into the response's current body.
func rebaseEvents(p *Response, was []byte) {
	if len(p.Events) == 0 || len(was) == 0 || len(p.Body) != len(was) {
		return
	}
	off := 0
	for i := range p.Events {
		d := p.Events[i].Data
		n := len(d)
		if n == 0 || off+n > len(was) || &d[0] != &was[off] {
			return // not pieces of the body (stored on their own): leave them
		}
		p.Events[i].Data = p.Body[off : off+n : off+n]
		off += n
	}
}
