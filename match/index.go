package match

import (
	"bytes"
	"net"
	"runtime"
	"strings"
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
// is normalized or hashed, or while an interaction is read.
//
// An index holds, per interaction, only what lookups and the closest-miss
// ranking need (its Seq, its key's chain, its host and path, its method
// and scheme, and a sketch of its content: ~150 bytes); the
// interactions themselves are either the caller's slice (NewIndex) or read
// from a Cassette when a lookup returns them (Load).
type Index struct {
	rules *Rules
	src   Cassette // nil: every interaction is in mem or added

	mu      sync.Mutex
	entries []entry              // recorded order; append-only; only next changes (under mu), when Add chains a key
	mem     []*store.Interaction // NewIndex: the interaction of each entry
	added   map[int32]*store.Interaction
	byKey   map[[32]byte]int32 // → buckets
	buckets []bucket
	groups  []group            // one per host and path
	members [][]int32          // per group: its entries
	byGroup map[string]int32   // host + " " + path → groups
	byHost  map[string][]int32 // host → entries
	strs    []string           // methods and schemes, interned
	strID   map[string]uint16
	tools   []int32 // entries whose request is a JSON-RPC tools/list

	hostPorts map[string]struct{} // "name:port", port filled in from the scheme
	hostnames map[string]struct{}
}

// Cassette is where an index built by Load reads interactions:
// store.Replay.
type Cassette interface {
	// EachHead calls fn with every interaction in recorded order, the
	// request decoded and the response left out.
	EachHead(fn func(seq uint64, in *store.Interaction) error) error
	// Interaction returns one interaction whole; it is shared: read only.
	Interaction(seq uint64) (*store.Interaction, error)
	// Request returns one interaction's request.
	Request(seq uint64) (*store.Request, error)
	// Len is about how many interactions EachHead will give (for sizing).
	Len() int
}

type entry struct {
	seq            uint64
	next           int32 // the next entry with the same key, or -1
	group          int32
	method, scheme uint16
	sk             packedSketch
}

// bucket is one key's chain of entries (entry.next), in recorded order.
type bucket struct {
	cur  int32 // the next entry to serve; -1 once every one was served
	last int32
}

type group struct {
	host, path string
}

func newIndex(rules *Rules, n int) *Index {
	if rules == nil {
		rules = DefaultRules()
	}
	return &Index{
		rules:     rules,
		entries:   make([]entry, 0, n),
		byKey:     make(map[[32]byte]int32, n),
		buckets:   make([]bucket, 0, n),
		byGroup:   make(map[string]int32),
		byHost:    make(map[string][]int32),
		strID:     make(map[string]uint16),
		hostPorts: make(map[string]struct{}),
		hostnames: make(map[string]struct{}),
	}
}

// NewIndex indexes ins in slice order, which is taken as recorded order
// (the store returns interactions by Seq). Keys are computed from each
// Request with rules (nil means DefaultRules); the stored Key field is not
// used, so changed rules apply to old cassettes. The index keeps pointers
// into ins: do not modify it afterwards. Next returns those pointers.
func NewIndex(rules *Rules, ins []store.Interaction) *Index {
	ix := newIndex(rules, len(ins))
	ix.mem = make([]*store.Interaction, len(ins))
	for i := range ins {
		ix.mem[i] = &ins[i]
	}
	ix.addAll(ix.mem)
	return ix
}

// Load indexes every interaction of c (as NewIndex does) and keeps only
// the index: Next and Closest read the interactions they need from c.
func Load(rules *Rules, c Cassette) (*Index, error) {
	// Sized up front: growing the tables as they fill would hold the old
	// and the new ones at once, a large part of the start-up's peak.
	ix := newIndex(rules, max(0, min(c.Len(), 1<<26)))
	ix.src = c
	// Reading (one goroutine) and keying (spread over the cores) overlap:
	// one batch is keyed while the next is read. One consumer keeps the
	// recorded order.
	// Batches are small: the requests read and not yet keyed are most of
	// what the start-up holds besides the index.
	const chunk = 1024
	batches := make(chan []*store.Interaction, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for b := range batches {
			ix.addAll(b)
		}
	}()
	batch := make([]*store.Interaction, 0, chunk)
	err := c.EachHead(func(_ uint64, in *store.Interaction) error {
		batch = append(batch, in)
		if len(batch) == chunk {
			batches <- batch
			batch = make([]*store.Interaction, 0, chunk)
		}
		return nil
	})
	if err == nil && len(batch) > 0 {
		batches <- batch
	}
	close(batches)
	<-done
	if err != nil {
		return nil, err
	}
	return ix, nil
}

// addAll normalizes ins (spread over the cores when there are many) and
// files them after every entry.
func (ix *Index) addAll(ins []*store.Interaction) {
	keys := make([][32]byte, len(ins))
	sums := make([]summary, len(ins))
	work := func(lo, hi int) {
		for i := lo; i < hi; i++ {
			keys[i], sums[i] = ix.rules.normalize(&ins[i].Request).digestAndSummary(true)
		}
	}
	if workers := min(runtime.GOMAXPROCS(0), len(ins)/256); workers > 1 {
		var wg sync.WaitGroup
		per := (len(ins) + workers - 1) / workers
		for lo := 0; lo < len(ins); lo += per {
			wg.Go(func() { work(lo, min(lo+per, len(ins))) })
		}
		wg.Wait()
	} else {
		work(0, len(ins))
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for i, in := range ins {
		ix.insertLocked(in.Seq, &keys[i], &sums[i], isToolsList(&in.Request))
	}
}

// isToolsList reports whether a request is a JSON-RPC tools/list call.
func isToolsList(req *store.Request) bool {
	if !bytes.Contains(req.Body, []byte("tools/list")) {
		return false
	}
	call, ok := ParseJSONRPCCall(req.Body)
	return ok && call.Method == "tools/list"
}

// intern returns the id of a method or scheme.
func (ix *Index) internLocked(s string) uint16 {
	if id, ok := ix.strID[s]; ok {
		return id
	}
	id := uint16(len(ix.strs))
	if len(ix.strs) >= 1<<16-1 { // a cassette of 65k distinct methods: share the last id
		return id - 1
	}
	s = strings.Clone(s)
	ix.strs = append(ix.strs, s)
	ix.strID[s] = id
	return id
}

// insertLocked files a new entry under its key and returns its bucket.
func (ix *Index) insertLocked(seq uint64, key *[32]byte, s *summary, tools bool) *bucket {
	i := int32(len(ix.entries))
	gk := s.host + " " + s.path
	g, ok := ix.byGroup[gk]
	if !ok {
		g = int32(len(ix.groups))
		ix.groups = append(ix.groups, group{host: strings.Clone(s.host), path: strings.Clone(s.path)})
		ix.members = append(ix.members, nil)
		ix.byGroup[strings.Clone(gk)] = g
	}
	ix.members[g] = append(ix.members[g], i)
	ix.entries = append(ix.entries, entry{
		seq: seq, next: -1, group: g,
		method: ix.internLocked(s.method), scheme: ix.internLocked(s.scheme),
		sk: s.content.packed(),
	})
	host := ix.groups[g].host
	ix.byHost[host] = append(ix.byHost[host], i)
	if tools {
		ix.tools = append(ix.tools, i)
	}
	if _, ok := ix.hostnames[s.hostname]; !ok {
		ix.hostnames[strings.Clone(s.hostname)] = struct{}{}
	}
	if s.port != "" {
		hp := net.JoinHostPort(s.hostname, s.port)
		if _, ok := ix.hostPorts[hp]; !ok {
			ix.hostPorts[hp] = struct{}{}
		}
	}
	b, ok := ix.byKey[*key]
	if !ok {
		b = int32(len(ix.buckets))
		ix.buckets = append(ix.buckets, bucket{cur: i, last: i})
		ix.byKey[*key] = b
		return &ix.buckets[b]
	}
	bk := &ix.buckets[b]
	ix.entries[bk.last].next = i
	bk.last = i
	if bk.cur < 0 {
		bk.cur = i
	}
	return bk
}

// Next returns the nth recorded interaction for the nth identical request
// (identical = same key). Past the last one it returns the last one again
// with Exhausted; with no recorded interaction for the key, nil and
// NotFound. An error is a recorded interaction that could not be read
// from the store (Load); an index built by NewIndex never fails.
func (ix *Index) Next(req *store.Request) (*store.Interaction, Status, error) {
	if ix == nil {
		return nil, NotFound, nil
	}
	key := ix.rules.digest(req)
	ix.mu.Lock()
	b, ok := ix.byKey[key]
	if !ok {
		ix.mu.Unlock()
		return nil, NotFound, nil
	}
	bk := &ix.buckets[b]
	i, status := bk.cur, Found
	if i >= 0 {
		bk.cur = ix.entries[i].next
	} else {
		i, status = bk.last, Exhausted
	}
	in, seq := ix.memLocked(i), ix.entries[i].seq
	ix.mu.Unlock()
	if in != nil {
		return in, status, nil
	}
	in, err := ix.src.Interaction(seq)
	if err != nil {
		return nil, status, err
	}
	return in, status, nil
}

// memLocked is entry i's interaction when it is held in memory, else nil.
func (ix *Index) memLocked(i int32) *store.Interaction {
	if int(i) < len(ix.mem) {
		return ix.mem[i]
	}
	return ix.added[i]
}

// request returns entry i's request and Seq.
func (ix *Index) request(i int32) (*store.Request, uint64, error) {
	ix.mu.Lock()
	in, seq := ix.memLocked(i), ix.entries[i].seq
	ix.mu.Unlock()
	if in != nil {
		return &in.Request, in.Seq, nil
	}
	req, err := ix.src.Request(seq)
	return req, seq, err
}

// Add appends a newly recorded interaction (live mode), after every other;
// it is held in memory. It counts as already served, since it answered
// the request that produced it: when every earlier interaction with its
// key had been served, the next identical request gets it with Exhausted,
// as a replay from scratch of the grown cassette would serve it to that
// earlier request.
func (ix *Index) Add(in store.Interaction) {
	p := &in
	key, s := ix.rules.normalize(&p.Request).digestAndSummary(true)
	ix.mu.Lock()
	defer ix.mu.Unlock()
	bk := ix.insertLocked(p.Seq, &key, &s, isToolsList(&p.Request))
	i := int32(len(ix.entries) - 1)
	if ix.added == nil {
		ix.added = map[int32]*store.Interaction{}
	}
	ix.added[i] = p
	if bk.cur == i { // every earlier one was served (or there was none)
		bk.cur = -1
	}
}

// ToolLists returns the recorded interactions whose request is a JSON-RPC
// tools/list call, in recorded order, read whole.
func (ix *Index) ToolLists() ([]*store.Interaction, error) {
	ix.mu.Lock()
	idx := ix.tools
	ix.mu.Unlock()
	out := make([]*store.Interaction, 0, len(idx))
	for _, i := range idx {
		ix.mu.Lock()
		in, seq := ix.memLocked(i), ix.entries[i].seq
		ix.mu.Unlock()
		if in == nil {
			var err error
			if in, err = ix.src.Interaction(seq); err != nil {
				return nil, err
			}
		}
		out = append(out, in)
	}
	return out, nil
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
