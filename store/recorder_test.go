package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestRecordRoundTrip(t *testing.T) {
	s := openTest(t)
	rec := s.NewRecorder(RecorderOptions{})
	defer rec.Close()
	in := fullInteraction()
	in.Seq = 999 // ignored
	if err := rec.Record("c", in); err != nil {
		t.Fatal(err)
	}
	in.Request.Body[0] = 'X' // the caller may reuse its values after Record
	if err := rec.Flush(); err != nil {
		t.Fatal(err)
	}
	want := fullInteraction()
	want.Seq = 1
	ins, err := s.Interactions("c")
	if err != nil || len(ins) != 1 {
		t.Fatalf("%d interactions, %v", len(ins), err)
	}
	mustEqual(t, ins[0], want)
	one, err := s.Interaction("c", 1)
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, one, want)
	info, err := s.Cassette("c")
	if err != nil || info.Interactions != 1 || info.Name != "c" {
		t.Fatalf("%+v %v", info, err)
	}
}

func urlsOf(ins []Interaction) []string {
	out := make([]string, len(ins))
	for i, in := range ins {
		out[i] = in.Request.URL
	}
	return out
}

func TestRecordOrderAcrossBatches(t *testing.T) {
	tests := []struct {
		name     string
		opts     RecorderOptions
		n        int
		flushAt  int // Flush after this many records (0: never before the end)
		reopenAt int // close and reopen the store after this many (0: never)
	}{
		{"batches of 3", RecorderOptions{MaxBatch: 3, MaxDelay: time.Millisecond}, 20, 0, 0},
		{"batches of 1 with mid flush", RecorderOptions{MaxBatch: 1}, 10, 4, 0},
		{"tiny queue", RecorderOptions{MaxBatch: 2, Queue: 1}, 15, 0, 0},
		{"continues after reopen", RecorderOptions{MaxBatch: 4}, 12, 0, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.db")
			s, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			rec := s.NewRecorder(tc.opts)
			var want []string
			for i := range tc.n {
				if i > 0 && i == tc.reopenAt {
					if err := s.Close(); err != nil { // closes rec too
						t.Fatal(err)
					}
					if s, err = Open(path, Options{}); err != nil {
						t.Fatal(err)
					}
					rec = s.NewRecorder(tc.opts)
				}
				in := sample(0, i, fmt.Sprint("k", i%3))
				want = append(want, in.Request.URL)
				if err := rec.Record("c", in); err != nil {
					t.Fatal(err)
				}
				if i+1 == tc.flushAt {
					if err := rec.Flush(); err != nil {
						t.Fatal(err)
					}
					if got, _ := s.Interactions("c"); len(got) != tc.flushAt {
						t.Fatalf("after Flush: %d interactions, want %d", len(got), tc.flushAt)
					}
				}
			}
			if err := rec.Close(); err != nil {
				t.Fatal(err)
			}
			ins, err := s.Interactions("c")
			if err != nil {
				t.Fatal(err)
			}
			if got := urlsOf(ins); !slices.Equal(got, want) {
				t.Fatalf("order\n got %v\nwant %v", got, want)
			}
			for i, in := range ins {
				if in.Seq != uint64(i+1) {
					t.Fatalf("interaction %d has seq %d", i, in.Seq)
				}
			}
			if info, _ := s.Cassette("c"); info.Interactions != tc.n {
				t.Fatalf("count %d, want %d", info.Interactions, tc.n)
			}
			closeAndCheck(t, s)
		})
	}
}

func TestRecordConcurrentWriters(t *testing.T) {
	const writers, each = 32, 20
	s := openTest(t)
	rec := s.NewRecorder(RecorderOptions{MaxBatch: 64, Queue: 16})
	defer rec.Close()
	if err := rec.Record("other", sample(99, 0, "")); err != nil { // another cassette alongside
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if err := rec.Record("shared", sample(w, i, fmt.Sprint("key", w%4))); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := rec.Flush(); err != nil {
		t.Fatal(err)
	}
	ins, err := s.Interactions("shared")
	if err != nil {
		t.Fatal(err)
	}
	if len(ins) != writers*each {
		t.Fatalf("%d interactions, want %d", len(ins), writers*each)
	}
	seen := map[string]bool{}
	lastSeq := map[int]uint64{}
	for i, in := range ins {
		if in.Seq != uint64(i+1) {
			t.Fatalf("position %d has seq %d", i, in.Seq)
		}
		if seen[in.Request.URL] {
			t.Fatalf("duplicate %s", in.Request.URL)
		}
		seen[in.Request.URL] = true
		var w, n int
		if _, err := fmt.Sscanf(in.Request.URL, "https://example.com/w%d/i%d", &w, &n); err != nil {
			t.Fatal(err)
		}
		// Each writer records sequentially, so its seqs must increase.
		if in.Seq <= lastSeq[w] {
			t.Fatalf("writer %d out of order at seq %d", w, in.Seq)
		}
		lastSeq[w] = in.Seq
		got, err := s.Interaction("shared", in.Seq)
		if err != nil {
			t.Fatal(err)
		}
		mustEqual(t, got, in)
	}
	if info, _ := s.Cassette("shared"); info.Interactions != writers*each {
		t.Fatalf("meta count %d", info.Interactions)
	}
	if ins, _ := s.Interactions("other"); len(ins) != 1 || ins[0].Seq != 1 {
		t.Fatalf("other cassette: %+v", ins)
	}
}

func TestIndexByKey(t *testing.T) {
	s := openTest(t)
	rec := s.NewRecorder(RecorderOptions{MaxBatch: 2})
	defer rec.Close()
	long := strings.Repeat("k", 100<<10) // far over bbolt's 32 KiB key limit
	keys := []string{"A", "B", "A", long, "A", "", "B", long}
	for i, k := range keys {
		if err := rec.Record("c", sample(0, i, k)); err != nil {
			t.Fatal(err)
		}
		if err := rec.Record("d", sample(1, i, "A")); err != nil { // same keys, other cassette
			t.Fatal(err)
		}
	}
	if err := rec.Flush(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		key  string
		want []uint64
	}{
		{"A", []uint64{1, 3, 5}},
		{"B", []uint64{2, 7}},
		{long, []uint64{4, 8}},
		{"", []uint64{6}},
		{"missing", nil},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("key len %d", len(tc.key)), func(t *testing.T) {
			seqs, err := s.Seqs("c", tc.key)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(seqs, tc.want) {
				t.Fatalf("Seqs = %v, want %v", seqs, tc.want)
			}
			ins, err := s.InteractionsByKey("c", tc.key)
			if err != nil {
				t.Fatal(err)
			}
			var got []uint64
			for _, in := range ins {
				if in.Key != tc.key {
					t.Fatalf("seq %d has another key", in.Seq)
				}
				if in.Request.URL != fmt.Sprintf("https://example.com/w0/i%d", in.Seq-1) {
					t.Fatalf("seq %d is %s", in.Seq, in.Request.URL)
				}
				got = append(got, in.Seq)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("InteractionsByKey seqs = %v, want %v", got, tc.want)
			}
		})
	}
	if _, err := s.Seqs("nope", "A"); !errors.Is(err, ErrNoCassette) {
		t.Fatal(err)
	}
	if seqs, _ := s.Seqs("d", "A"); len(seqs) != len(keys) {
		t.Fatalf("cassette d: %v", seqs)
	}
}

func TestRecorderAfterClose(t *testing.T) {
	s := openTest(t)
	rec := s.NewRecorder(RecorderOptions{})
	if err := rec.Record("c", sample(0, 0, "")); err != nil {
		t.Fatal(err)
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	if err := rec.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := rec.Flush(); !errors.Is(err, ErrClosed) || !strings.Contains(err.Error(), s.Path()) {
		t.Fatalf("Flush after Close: %v", err)
	}
	if err := rec.Record("c", sample(0, 1, "")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Record after Close: %v", err)
	}
	if ins, _ := s.Interactions("c"); len(ins) != 1 {
		t.Fatalf("Close did not commit: %d", len(ins))
	}
}

func TestStoreCloseClosesRecorders(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r1 := s.NewRecorder(RecorderOptions{MaxDelay: time.Hour, MaxBatch: 1000})
	r2 := s.NewRecorder(RecorderOptions{MaxDelay: time.Hour, MaxBatch: 1000})
	for i := range 5 {
		r1.Record("one", sample(1, i, ""))
		r2.Record("two", sample(2, i, ""))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r1.Record("one", sample(1, 9, "")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Record on a recorder of a closed store: %v", err)
	}
	if err := s.NewRecorder(RecorderOptions{}).Record("x", sample(0, 0, "")); !errors.Is(err, ErrClosed) {
		t.Fatalf("NewRecorder on a closed store: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"one", "two"} {
		if ins, err := s.Interactions(c); err != nil || len(ins) != 5 {
			t.Fatalf("%s: %d, %v", c, len(ins), err)
		}
	}
	closeAndCheck(t, s)
}

func TestRecordBackPressure(t *testing.T) {
	s := openTest(t)
	rec := s.NewRecorder(RecorderOptions{MaxBatch: 1, Queue: 2})
	defer rec.Close()
	// Hold bbolt's writer lock so the recorder cannot commit.
	tx, err := s.db.Begin(true)
	if err != nil {
		t.Fatal(err)
	}
	var done atomic.Int32       // Record calls that have returned
	var released atomic.Bool    // set just before the writer lock is let go
	var earlyReturn atomic.Bool // the 4th Record returned while the lock was held
	// On a failure below, let the writer go before rec.Close (deferred
	// earlier, so run later) waits for it.
	defer func() {
		if !released.Load() {
			tx.Rollback()
		}
	}()
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		// 1 in the writer's hands, 2 queued; the 4th must wait.
		for i := range 4 {
			if err := rec.Record("c", sample(0, i, "")); err != nil {
				t.Error(err)
			}
			if i == 3 && !released.Load() {
				earlyReturn.Store(true)
			}
			done.Add(1)
		}
	}()

	// Wait, on a deadline, for the state a full queue must reach: the three
	// records that fit (one taken by the blocked writer, two in the queue)
	// have returned, the queue is full, and the 4th caller is parked on the
	// channel send inside Record.
	deadline := time.Now().Add(10 * time.Second)
	for done.Load() != 3 || len(rec.ch) != cap(rec.ch) || !parkedInRecord("TestRecordBackPressure") {
		if done.Load() == 4 || earlyReturn.Load() {
			t.Fatal("Record did not block on a full queue: the 4th returned while the writer was held")
		}
		if time.Now().After(deadline) {
			t.Fatalf("no blocked Record within 10s: %d returned, queue %d/%d", done.Load(), len(rec.ch), cap(rec.ch))
		}
		runtime.Gosched()
	}
	// The 4th is parked in Record and has not returned while the writer is held.
	if n := done.Load(); n != 3 {
		t.Fatalf("%d Record calls returned with the writer held, want 3", n)
	}

	// Let the writer go: the blocked Record returns.
	released.Store(true)
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-finished:
	case <-time.After(10 * time.Second):
		t.Fatalf("Record still blocked 10s after the writer was released (%d returned)", done.Load())
	}
	if earlyReturn.Load() {
		t.Fatal("the 4th Record returned before the writer was released")
	}
	if err := rec.Flush(); err != nil {
		t.Fatal(err)
	}
	if ins, _ := s.Interactions("c"); len(ins) != 4 {
		t.Fatalf("%d interactions", len(ins))
	}
}

// parkedInRecord reports whether a goroutine started by the named test is
// blocked on a channel send inside Recorder.Record.
func parkedInRecord(test string) bool {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "[chan send") && strings.Contains(g, "(*Recorder).Record(") && strings.Contains(g, test) {
			return true
		}
	}
	return false
}

func TestCommitErrorSurfaces(t *testing.T) {
	defer func(was time.Duration) { reopenEvery = was }(reopenEvery)
	reopenEvery = time.Hour // a reopen would open the file again under the recorder
	path := filepath.Join(t.TempDir(), "c.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var seen atomic.Int32
	rec := s.NewRecorder(RecorderOptions{OnError: func(error) { seen.Add(1) }})
	if err := rec.Record("c", sample(0, 0, "")); err != nil {
		t.Fatal(err)
	}
	if err := rec.Flush(); err != nil {
		t.Fatal(err)
	}
	s.db.Close() // pull the file away under the recorder
	if err := rec.Record("c", sample(0, 1, "")); err != nil {
		t.Fatal(err) // enqueueing still works
	}
	err = rec.Flush()
	if err == nil || !strings.Contains(err.Error(), "commit") || !strings.Contains(err.Error(), path) {
		t.Fatalf("Flush after a failed commit: %v", err)
	}
	if seen.Load() != 1 {
		t.Fatalf("OnError called %d times", seen.Load())
	}
	if n, last := rec.Lost(); n != 1 || last == nil || !strings.Contains(last.Error(), "commit of 1 records") {
		t.Fatalf("Lost() = %d, %v: want the one record whose commit failed", n, last)
	}
	if err := rec.Flush(); err != nil {
		t.Fatalf("error reported twice: %v", err)
	}
	_ = s.Close()
}
