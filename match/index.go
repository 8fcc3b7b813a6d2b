package match

import (
	"net"
	"runtime"
	"sync"

	"github.com/cassetteproxy/cassetteproxy/store"
)

// Status of a lookup.
type Status int

const (
	NotFound  Status = iota // no recorded interaction has this key
	Found                   // the next unused recorded interaction for this key
	Exhausted               // every recorded one was used; the last one is returned
)

func (s Status) String() string {
	switch s {
	case NotFound:
		return "not_found"
	case Found:
		return "found"
	case Exhausted:
		return "exhausted"
	}
	return "unknown"
}

// Index answers lookups over one cassette in O(1) per lookup: a map from
// match key to the interactions with that key, in recorded order, and a
// cursor. It is safe for concurrent use; no lock is held while a request
// is normalized or hashed.
type Index struct {
	rules *Rules

	mu         sync.Mutex
	entries    []entry // recorded order; append-only, entries never change
	byKey      map[[32]byte]*bucket
	byHostPath map[string][]int // host + " " + path → entry indexes (for Closest)
	byHost     map[string][]int
	hostPorts  map[string]struct{} // "name:port", port filled in from the scheme
	hostnames  map[string]struct{}
}

type entry struct {
	in  *store.Interaction
	sum summary
}

type bucket struct {
	idx  []int // entry indexes, recorded order
	next int   // the next one to serve
}

// NewIndex indexes ins in slice order, which is taken as recorded order
// (the store returns interactions by Seq). Keys are computed from each
// Request with rules (nil means DefaultRules); the stored Key field is not
// used, so changed rules apply to old cassettes. The index keeps pointers
// into ins: do not modify it afterwards. Next returns those pointers.
func NewIndex(rules *Rules, ins []store.Interaction) *Index {
	if rules == nil {
		rules = DefaultRules()
	}
	ix := &Index{
		rules:      rules,
		entries:    make([]entry, len(ins)),
		byKey:      make(map[[32]byte]*bucket, len(ins)),
		byHostPath: make(map[string][]int),
		byHost:     make(map[string][]int),
		hostPorts:  make(map[string]struct{}),
		hostnames:  make(map[string]struct{}),
	}
	keys := make([][32]byte, len(ins))
	work := func(lo, hi int) {
		for i := lo; i < hi; i++ {
			d, s := rules.normalize(&ins[i].Request).digestAndSummary(true)
			keys[i] = d
			ix.entries[i] = entry{in: &ins[i], sum: s}
		}
	}
	// Large cassettes: spread the hashing over the cores.
	if workers := min(runtime.GOMAXPROCS(0), len(ins)/1024); workers > 1 {
		var wg sync.WaitGroup
		chunk := (len(ins) + workers - 1) / workers
		for lo := 0; lo < len(ins); lo += chunk {
			wg.Go(func() { work(lo, min(lo+chunk, len(ins))) })
		}
		wg.Wait()
	} else {
		work(0, len(ins))
	}
	for i := range ins {
		ix.insertLocked(i, keys[i])
	}
	return ix
}

// insertLocked files entry i (already in ix.entries) under its key.
func (ix *Index) insertLocked(i int, key [32]byte) *bucket {
	b := ix.byKey[key]
	if b == nil {
		b = &bucket{}
		ix.byKey[key] = b
	}
	b.idx = append(b.idx, i)
	s := &ix.entries[i].sum
	ix.byHostPath[s.host+" "+s.path] = append(ix.byHostPath[s.host+" "+s.path], i)
	ix.byHost[s.host] = append(ix.byHost[s.host], i)
	ix.hostnames[s.hostname] = struct{}{}
	if s.port != "" {
		ix.hostPorts[net.JoinHostPort(s.hostname, s.port)] = struct{}{}
	}
	return b
}

// Next returns the nth recorded interaction for the nth identical request
// (identical = same key). Past the last one it returns the last one again
// with Exhausted; with no recorded interaction for the key, nil and
// NotFound.
func (ix *Index) Next(req *store.Request) (*store.Interaction, Status) {
	if ix == nil {
		return nil, NotFound
	}
	key := ix.rules.digest(req)
	ix.mu.Lock()
	defer ix.mu.Unlock()
	b := ix.byKey[key]
	if b == nil {
		return nil, NotFound
	}
	if b.next < len(b.idx) {
		in := ix.entries[b.idx[b.next]].in
		b.next++
		return in, Found
	}
	return ix.entries[b.idx[len(b.idx)-1]].in, Exhausted
}

// Add appends a newly recorded interaction (live mode), after every other.
// It counts as already served, since it answered the request that produced
// it: when every earlier interaction with its key had been served, the
// next identical request gets it with Exhausted, as a replay from scratch
// of the grown cassette would serve it to that earlier request.
func (ix *Index) Add(in store.Interaction) {
	p := &in
	key, s := ix.rules.normalize(&p.Request).digestAndSummary(true)
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.entries = append(ix.entries, entry{in: p, sum: s})
	b := ix.insertLocked(len(ix.entries)-1, key)
	if b.next == len(b.idx)-1 {
		b.next = len(b.idx)
	}
}

// HasHost reports whether any interaction was recorded for hostport, given
// as in a CONNECT line ("api.example.com:443", "[::1]:8443"). Names are
// compared lower-case; a recorded https://h/ counts as h:443 and
// http://h/ as h:80. Without a port, any port matches.
func (ix *Index) HasHost(hostport string) bool {
	if ix == nil {
		return false
	}
	h, p := splitHostPort(hostport)
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if p == "" {
		_, ok := ix.hostnames[h]
		return ok
	}
	_, ok := ix.hostPorts[net.JoinHostPort(h, p)]
	return ok
}

// Len is the number of interactions.
func (ix *Index) Len() int {
	if ix == nil {
		return 0
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return len(ix.entries)
}

// Rules are the rules the index keys with.
func (ix *Index) Rules() *Rules { return ix.rules }
