package match

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/cassetteproxy/cassetteproxy/store"
)

func ia(seq uint64, req *store.Request, status int) store.Interaction {
	return store.Interaction{Seq: seq, Key: "stale-key-ignored", Request: *req, Response: store.Response{Status: status}}
}

func TestIndexRepeatsInOrder(t *testing.T) {
	list := `{"method":"tools/list","jsonrpc":"2.0","id":%d}`
	ins := []store.Interaction{
		ia(1, rq("GET", "https://api.example.com/items?page=1", "", ""), 200),
		ia(2, rq("POST", "http://127.0.0.1:38100/mcp", ctJSON, fmt.Sprintf(list, 1)), 201),
		ia(3, rq("GET", "https://api.example.com/items?page=1", "", ""), 202),
		ia(4, rq("POST", "http://127.0.0.1:38100/mcp", ctJSON, fmt.Sprintf(list, 2)), 203),
		ia(5, rq("GET", "https://api.example.com/items?page=1", "", ""), 204),
	}
	ix := NewIndex(nil, ins)
	if ix.Len() != 5 {
		t.Fatalf("Len = %d", ix.Len())
	}
	get := rq("GET", "https://API.example.com:443/items?page=1", "", "")
	steps := []struct {
		req    *store.Request
		seq    uint64
		status Status
	}{
		{get, 1, Found},
		{rq("POST", "http://127.0.0.1:38100/mcp", ctJSON, fmt.Sprintf(list, 77)), 2, Found},
		{get, 3, Found},
		{get, 5, Found},
		{get, 5, Exhausted},
		{get, 5, Exhausted},
		{rq("POST", "http://127.0.0.1:38100/mcp", ctJSON, fmt.Sprintf(list, 78)), 4, Found},
		{rq("POST", "http://127.0.0.1:38100/mcp", ctJSON, fmt.Sprintf(list, 79)), 4, Exhausted},
		{rq("GET", "https://api.example.com/items?page=2", "", ""), 0, NotFound},
	}
	for i, s := range steps {
		in, st, _ := ix.Next(s.req)
		var seq uint64
		if in != nil {
			seq = in.Seq
		}
		if seq != s.seq || st != s.status {
			t.Fatalf("step %d: %s %s -> seq %d %v, want seq %d %v", i, s.req.Method, s.req.URL, seq, st, s.seq, s.status)
		}
	}
	// Pointers into the caller's slice.
	in, _, _ := ix.Next(get)
	if in != &ins[4] {
		t.Error("Next should return a pointer to the recorded interaction")
	}
}

func TestIndexUsesRulesNotStoredKey(t *testing.T) {
	ins := []store.Interaction{ia(1, rq("GET", "https://h/x?ts=1&q=a", "", ""), 200)}
	if _, st, _ := NewIndex(nil, ins).Next(rq("GET", "https://h/x?q=a&ts=2", "", "")); st != NotFound {
		t.Fatalf("default rules: status %v, want NotFound", st)
	}
	ix := NewIndex(mustRules(t, "rules: [{ignore_query: [ts]}]"), ins)
	if in, st, _ := ix.Next(rq("GET", "https://h/x?q=a&ts=2", "", "")); st != Found || in.Seq != 1 {
		t.Fatalf("with ignore_query: status %v, want Found", st)
	}
}

func TestIndexAdd(t *testing.T) {
	ix := NewIndex(nil, []store.Interaction{ia(1, rq("GET", "https://a.test/x", "", ""), 200)})
	// A new key: the live request that produced it was answered by it.
	newReq := rq("GET", "https://b.test/y", "", "")
	if _, st, _ := ix.Next(newReq); st != NotFound {
		t.Fatalf("before Add: %v", st)
	}
	ix.Add(ia(2, newReq, 201))
	if ix.Len() != 2 {
		t.Fatalf("Len = %d", ix.Len())
	}
	if !ix.HasHost("b.test:443") {
		t.Error("HasHost after Add")
	}
	if in, st, _ := ix.Next(newReq); st != Exhausted || in.Seq != 2 {
		t.Fatalf("after Add: %v %v, want seq 2 Exhausted", in, st)
	}
	// A key with an unserved interaction keeps serving in recorded order.
	old := rq("GET", "https://a.test/x", "", "")
	ix.Add(ia(3, old, 202))
	for i, want := range []struct {
		seq uint64
		st  Status
	}{{1, Found}, {3, Found}, {3, Exhausted}} {
		if in, st, _ := ix.Next(old); in.Seq != want.seq || st != want.st {
			t.Fatalf("lookup %d: seq %d %v, want %d %v", i, in.Seq, st, want.seq, want.st)
		}
	}
	// Exhausted key + Add: the new one counts as served too.
	ix.Add(ia(4, old, 203))
	if in, st, _ := ix.Next(old); in.Seq != 4 || st != Exhausted {
		t.Fatalf("after second Add: seq %d %v", in.Seq, st)
	}
	// Adding to an empty index works.
	empty := NewIndex(nil, nil)
	empty.Add(ia(1, old, 200))
	if in, st, _ := empty.Next(old); in == nil || st != Exhausted {
		t.Fatalf("empty index after Add: %v", st)
	}
}

func TestIndexHasHost(t *testing.T) {
	ix := NewIndex(nil, []store.Interaction{
		ia(1, rq("GET", "https://API.Example.com/x", "", ""), 200),
		ia(2, rq("GET", "http://plain.test/x", "", ""), 200),
		ia(3, rq("GET", "http://127.0.0.1:38100/mcp", "", ""), 200),
		ia(4, rq("GET", "https://[::1]:8443/x", "", ""), 200),
	})
	cases := []struct {
		hostport string
		want     bool
	}{
		{"api.example.com:443", true},
		{"API.EXAMPLE.COM:443", true},
		{"api.example.com", true},
		{"api.example.com:80", false},
		{"plain.test:80", true},
		{"plain.test:443", false},
		{"127.0.0.1:38100", true},
		{"127.0.0.1:38101", false},
		{"[::1]:8443", true},
		{"[::1]:443", false},
		{"other.test:443", false},
	}
	for _, tc := range cases {
		if got := ix.HasHost(tc.hostport); got != tc.want {
			t.Errorf("HasHost(%q) = %v, want %v", tc.hostport, got, tc.want)
		}
	}
}

// The second recording of the MCP session replays against the first.
func TestIndexReplaysMCPSession(t *testing.T) {
	ix := NewIndex(nil, loadCapture(t, "mcp-session-1.json"))
	for i, in := range loadCapture(t, "mcp-session-2.json") {
		got, st, _ := ix.Next(&in.Request)
		if st != Found || got.Seq != uint64(i+1) {
			t.Fatalf("exchange %d: %v seq %v", i, st, got)
		}
	}
	if !ix.HasHost("127.0.0.1:38100") {
		t.Error("HasHost(127.0.0.1:38100)")
	}
}

// Concurrent lookups of one key hand out each recorded interaction once.
func TestIndexConcurrent(t *testing.T) {
	const n = 200
	var ins []store.Interaction
	for i := range n {
		ins = append(ins, ia(uint64(i+1), rq("POST", "https://h/x", ctJSON, `{"a":1}`), 200))
	}
	ix := NewIndex(nil, ins)
	var (
		mu   sync.Mutex
		seen = map[uint64]int{}
		wg   sync.WaitGroup
	)
	for range 8 {
		wg.Go(func() {
			for range n / 8 {
				in, st, _ := ix.Next(rq("POST", "https://h/x", ctJSON, `{ "a" : 1 }`))
				if st != Found {
					t.Errorf("status %v", st)
					return
				}
				mu.Lock()
				seen[in.Seq]++
				mu.Unlock()
			}
			ix.Closest(rq("POST", "https://h/x", ctJSON, `{"a":2}`))
			ix.HasHost("h:443")
		})
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 20 {
			ix.Add(ia(uint64(n+i+1), rq("GET", fmt.Sprintf("https://h/y/%d", i), "", ""), 200))
		}
	}()
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("%d distinct interactions served, want %d", len(seen), n)
	}
	if _, st, _ := ix.Next(rq("POST", "https://h/x", ctJSON, `{"a":1}`)); st != Exhausted {
		t.Fatalf("status %v, want Exhausted", st)
	}
}

// Big cassettes are indexed in parallel; the result must not depend on it.
func TestNewIndexParallelBuild(t *testing.T) {
	const n = 5000
	ins := make([]store.Interaction, n)
	for i := range ins {
		ins[i] = ia(uint64(i+1), rq("GET", fmt.Sprintf("https://h/x?i=%d", i%1000), "", ""), 200)
	}
	ix := NewIndex(nil, ins)
	for round := range 5 {
		for i := range 1000 {
			in, st, _ := ix.Next(rq("GET", fmt.Sprintf("https://h/x?i=%d", i), "", ""))
			if st != Found || in.Seq != uint64(round*1000+i+1) {
				t.Fatalf("round %d i %d: %v %v", round, i, in, st)
			}
		}
	}
}

// sliceCassette is a Cassette over a slice, for Load; fail makes its reads
// fail. reads counts the interactions read whole.
type sliceCassette struct {
	ins   []store.Interaction
	fail  error
	reads int
}

func (c *sliceCassette) EachHead(fn func(uint64, *store.Interaction) error) error {
	for _, in := range c.ins {
		head := in
		head.Response = store.Response{}
		if err := fn(in.Seq, &head); err != nil {
			return err
		}
	}
	return nil
}

func (c *sliceCassette) find(seq uint64) (*store.Interaction, error) {
	if c.fail != nil {
		return nil, c.fail
	}
	for i := range c.ins {
		if c.ins[i].Seq == seq {
			return &c.ins[i], nil
		}
	}
	return nil, fmt.Errorf("no seq %d", seq)
}

func (c *sliceCassette) Len() int { return len(c.ins) }

func (c *sliceCassette) Interaction(seq uint64) (*store.Interaction, error) {
	c.reads++
	return c.find(seq)
}

func (c *sliceCassette) Request(seq uint64) (*store.Request, error) {
	in, err := c.find(seq)
	if err != nil {
		return nil, err
	}
	return &in.Request, nil
}

// TestLoadMatchesNewIndex: an index that reads its interactions on demand
// answers every lookup, repeat, exhaustion, Add and closest miss as one
// over the slice does; a read that fails is Next's and Closest's error.
func TestLoadMatchesNewIndex(t *testing.T) {
	list := `{"method":"tools/list","jsonrpc":"2.0","id":%d}`
	var ins []store.Interaction
	for i := range 30 {
		ins = append(ins, ia(uint64(i+1), rq("GET", fmt.Sprintf("https://api.example.com/items?page=%d", i%7), "", ""), 200+i))
	}
	ins = append(ins, ia(31, rq("POST", "http://127.0.0.1:38100/mcp", ctJSON, fmt.Sprintf(list, 1)), 200))
	mem := NewIndex(nil, ins)
	src := &sliceCassette{ins: ins}
	lazy, err := Load(nil, src)
	if err != nil {
		t.Fatal(err)
	}
	if lazy.Len() != mem.Len() {
		t.Fatalf("Len %d vs %d", lazy.Len(), mem.Len())
	}
	reqs := []*store.Request{rq("POST", "http://127.0.0.1:38100/mcp", ctJSON, fmt.Sprintf(list, 9))}
	for i := range 12 {
		reqs = append(reqs, rq("GET", fmt.Sprintf("https://api.example.com/items?page=%d", i%8), "", ""))
	}
	for round := range 3 {
		for k, req := range reqs {
			a, sa, ea := mem.Next(req)
			b, sb, eb := lazy.Next(req)
			if ea != nil || eb != nil || sa != sb || (a == nil) != (b == nil) || a != nil && a.Seq != b.Seq {
				t.Fatalf("round %d request %d: memory %v %v %v, loaded %v %v %v", round, k, a, sa, ea, b, sb, eb)
			}
			ca, _ := mem.Closest(req)
			cb, err := lazy.Closest(req)
			if err != nil || fmt.Sprint(ca) != fmt.Sprint(cb) {
				t.Fatalf("Closest: memory %v, loaded %v (%v)", ca, cb, err)
			}
		}
		added := ia(100+uint64(round), rq("GET", "https://api.example.com/items?page=3", "", ""), 299)
		mem.Add(added)
		lazy.Add(added)
	}
	if tl, err := lazy.ToolLists(); err != nil || len(tl) != 1 || tl[0].Seq != 31 {
		t.Fatalf("ToolLists: %v %v", tl, err)
	}
	if src.reads == 0 {
		t.Fatal("the loaded index never read from its cassette")
	}

	src.fail = errors.New("page 7 is damaged")
	if _, _, err := lazy.Next(rq("GET", "https://api.example.com/items?page=1", "", "")); !errors.Is(err, src.fail) {
		t.Errorf("Next with a failing read: %v", err)
	}
	if _, err := lazy.Closest(rq("GET", "https://api.example.com/items?page=99", "", "")); !errors.Is(err, src.fail) {
		t.Errorf("Closest with a failing read: %v", err)
	}
	// An added interaction is served from memory, whatever the file does.
	if in, _, err := lazy.Next(rq("GET", "https://api.example.com/items?page=3", "", "")); err != nil || in.Seq < 100 {
		t.Errorf("added interaction: %v %v", in, err)
	}
}
