package store

import (
	"errors"
	"fmt"
	"sync"
	"testing"
)

// replayCassette writes the interactions every Replay test reads: small
// inline answers, large answers stored apart (some shared), a stream whose
// events are the body, WebSocket messages, a cut-short answer and a marker.
func replayCassette(t *testing.T, s *Store) []Interaction {
	t.Helper()
	shared := bodyOf(1, 4000)
	var ins []Interaction
	ins = append(ins, fullInteraction())
	for i := range 40 {
		body := bodyOf(100+i, 2000)
		if i%4 == 0 {
			body = shared
		}
		ins = append(ins, withBody(fmt.Sprintf("https://h.test/item/%d", i), body))
	}
	ins = append(ins, withBody("https://h.test/small", []byte(`{"ok":true}`)))
	sse := bodyOf(7, 3000)
	st := withBody("https://h.test/sse", sse)
	st.Response.Streamed = true
	st.Response.Events = []Event{{OffsetMs: 0, Data: sse[:1000]}, {OffsetMs: 5, Data: sse[1000:]}}
	ins = append(ins, st)
	ws := withBody("https://h.test/ws", nil)
	ws.Response.Status, ws.Response.Upgrade = 101, true
	ws.Response.Events = []Event{{Dir: DirClient, Data: []byte(`{"q":1}`)}, {Dir: DirServer, OffsetMs: 3, Data: []byte(`{"a":1}`), Binary: true}}
	ins = append(ins, ws)
	cut := withBody("https://h.test/cut", bodyOf(9, 1500))
	cut.Response.Incomplete, cut.Response.ContentLength = true, 9000
	ins = append(ins, cut)
	marker := withBody("https://h.test/big", nil)
	marker.Response.NotRecorded = &BodyMarker{Size: 1 << 30, SHA256: "ab", Reason: "body_not_recorded"}
	ins = append(ins, marker)
	if err := s.WriteCassette("c", ins, true); err != nil {
		t.Fatal(err)
	}
	for i := range ins {
		ins[i].Seq = uint64(i + 1)
	}
	return ins
}

func TestReplayReadsWhatInteractionsReads(t *testing.T) {
	s := openTest(t)
	replayCassette(t, s)
	want, err := s.Interactions("c")
	if err != nil {
		t.Fatal(err)
	}
	for _, cacheBytes := range []int{0, 64 << 10, 1} { // default, small (evicting), none kept
		t.Run(fmt.Sprint(cacheBytes), func(t *testing.T) {
			r, err := s.Replay("c", ReplayOptions{CacheBytes: cacheBytes})
			if err != nil {
				t.Fatal(err)
			}
			for round := range 2 { // the second round is served from the cache where it kept them
				for i := range want {
					got, err := r.Interaction(want[i].Seq)
					if err != nil {
						t.Fatal(err)
					}
					if !equalInteraction(*got, want[i]) {
						t.Fatalf("round %d seq %d: got %+v\nwant %+v", round, want[i].Seq, *got, want[i])
					}
					req, err := r.Request(want[i].Seq)
					if err != nil {
						t.Fatal(err)
					}
					if !equalRequest(*req, want[i].Request) {
						t.Fatalf("seq %d request: got %+v want %+v", want[i].Seq, *req, want[i].Request)
					}
				}
			}
			var heads []Interaction
			err = r.EachHead(func(seq uint64, in *Interaction) error {
				if in.Seq != seq {
					t.Fatalf("EachHead seq %d vs %d", in.Seq, seq)
				}
				heads = append(heads, *in)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(heads) != len(want) {
				t.Fatalf("EachHead gave %d, want %d", len(heads), len(want))
			}
			for i, h := range heads {
				w := want[i]
				w.Response = Response{}
				if !equalInteraction(h, w) {
					t.Fatalf("head %d: got %+v want %+v", i, h, w)
				}
			}
		})
	}
}

func TestReplayErrors(t *testing.T) {
	s := openTest(t)
	replayCassette(t, s)
	if _, err := s.Replay("nope", ReplayOptions{}); !errors.Is(err, ErrNoCassette) {
		t.Fatalf("missing cassette: %v", err)
	}
	r, err := s.Replay("c", ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, call := range []struct {
		name string
		fn   func() error
	}{
		{"Interaction", func() error { _, err := r.Interaction(999); return err }},
		{"Request", func() error { _, err := r.Request(999); return err }},
	} {
		if err := call.fn(); !errors.Is(err, ErrNoInteraction) {
			t.Errorf("%s of an unknown seq: %v", call.name, err)
		}
	}
	stop := errors.New("stop")
	if err := r.EachHead(func(uint64, *Interaction) error { return stop }); err != stop {
		t.Errorf("EachHead returns fn's error as it is: %v", err)
	}
}

// TestReplayCacheBound: however many interactions are read, in whatever
// order, the cache never counts more than its bound, and a body shared by
// several cached answers is counted once.
func TestReplayCacheBound(t *testing.T) {
	s := openTest(t)
	ins := replayCassette(t, s)
	for _, bound := range []int{8 << 10, 20 << 10, 64 << 10} {
		t.Run(fmt.Sprint(bound), func(t *testing.T) {
			r, err := s.Replay("c", ReplayOptions{CacheBytes: bound})
			if err != nil {
				t.Fatal(err)
			}
			peak := 0
			for k := range 500 {
				seq := uint64(k*7%len(ins)) + 1
				if k%3 == 0 {
					seq = uint64(k%5) + 1 // a few hot ones
				}
				if _, err := r.Interaction(seq); err != nil {
					t.Fatal(err)
				}
				n, used, b := r.CacheUse()
				if b != bound || used > bound {
					t.Fatalf("after %d reads: %d interactions, %d bytes, bound %d", k+1, n, used, b)
				}
				peak = max(peak, used)
			}
			if peak == 0 {
				t.Fatal("the cache never kept anything")
			}
		})
	}
	// Bodies counted once: the answers sharing one 4 KB body.
	r, err := s.Replay("c", ReplayOptions{CacheBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	var sharing []uint64
	for _, in := range ins {
		if len(in.Response.Body) == len(ins[1].Response.Body) && string(in.Response.Body) == string(ins[1].Response.Body) {
			sharing = append(sharing, in.Seq)
		}
	}
	if len(sharing) < 5 {
		t.Fatalf("fixture: %d answers share a body", len(sharing))
	}
	first, _ := r.Interaction(sharing[0])
	_, one, _ := r.CacheUse()
	for _, seq := range sharing[1:] {
		in, err := r.Interaction(seq)
		if err != nil {
			t.Fatal(err)
		}
		if &in.Response.Body[0] != &first.Response.Body[0] {
			t.Fatalf("seq %d does not share the cached body", seq)
		}
	}
	_, all, _ := r.CacheUse()
	if grew := all - one; grew >= len(first.Response.Body)*(len(sharing)-1) {
		t.Fatalf("%d answers sharing a %d-byte body grew the cache by %d bytes", len(sharing), len(first.Response.Body), grew)
	}
}

// TestReplayWhileRecording reads a cassette while a Recorder adds to it
// and reopens the store: no read waits on a writer or fails.
func TestReplayWhileRecording(t *testing.T) {
	s := openTest(t)
	ins := replayCassette(t, s)
	r, err := s.Replay("c", ReplayOptions{CacheBytes: 8 << 10})
	if err != nil {
		t.Fatal(err)
	}
	rec := s.NewRecorder(RecorderOptions{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 2000 {
			if err := rec.Record("c", withBody(fmt.Sprintf("https://h.test/new/%d", i), bodyOf(1000+i, 1500))); err != nil {
				t.Error(err)
				return
			}
		}
	})
	for range 2 {
		wg.Go(func() {
			for k := range 3000 {
				seq := uint64(k%len(ins)) + 1
				in, err := r.Interaction(seq)
				if err != nil {
					t.Error(err)
					return
				}
				if in.Request.URL != ins[seq-1].Request.URL {
					t.Errorf("seq %d: %s", seq, in.Request.URL)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := r.EachHead(func(uint64, *Interaction) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != len(ins)+2000 {
		t.Fatalf("after recording: %d interactions, want %d", n, len(ins)+2000)
	}
}
