package store

import (
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A long recording must not grow bbolt's freelist bookkeeping without
// bound (freelist.go), and forgetting it must leave a sound store: every
// interaction readable, bbolt's own check clean (closeAndCheck), while
// readers come and go (bbolt uses the bookkeeping to reuse pages between
// open read transactions), and after the store is reopened and recorded
// into again.
func TestFreelistAllocsStayBounded(t *testing.T) {
	defer func(was int) { maxAllocs = was }(maxAllocs)
	maxAllocs = 512 // this recording reuses ~4000 pages: trimmed several times
	path := filepath.Join(t.TempDir(), "cassettes.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := freelistAllocs(s.db); !ok {
		t.Fatal("bbolt's freelist.allocs not found: its layout changed (store/freelist.go)")
	}
	body := make([]byte, 900) // inline in the value: every record fills its own share of a page
	record := func(s *Store, from, n int) {
		rec := s.NewRecorder(RecorderOptions{MaxBatch: 64})
		defer rec.Close()
		for i := from; i < from+n; i++ {
			for j := range body {
				body[j] = byte('a' + (i+j)%26)
			}
			in := Interaction{Key: fmt.Sprintf("GET /k/%d", i%5), RecordedAt: time.Unix(int64(i), 0),
				Request:  Request{Method: "GET", URL: fmt.Sprintf("https://tool.test/k/%d", i)},
				Response: Response{Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: append([]byte(nil), body...)}}
			if err := rec.Record("long", in); err != nil {
				t.Fatal(err)
			}
		}
		if err := rec.Flush(); err != nil {
			t.Fatal(err)
		}
	}

	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // read transactions open and close throughout
		defer wg.Done()
		for !stop.Load() {
			if _, err := s.Cassette("long"); err != nil && !errors.Is(err, ErrNoCassette) {
				t.Error(err)
				return
			}
		}
	}()
	const n = 60000
	record(s, 0, n)
	stop.Store(true)
	wg.Wait()
	allocs, _ := freelistAllocs(s.db)
	if got := allocs.Len(); got >= 2*maxAllocs {
		t.Fatalf("freelist.allocs holds %d entries after %d records, want fewer than %d", got, n, 2*maxAllocs)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeAndCheck(t, s2) })
	record(s2, n, 5000)
	ins, err := s2.Interactions("long")
	if err != nil || len(ins) != n+5000 {
		t.Fatalf("%d interactions, %v", len(ins), err)
	}
	for i, in := range ins {
		if want := fmt.Sprintf("https://tool.test/k/%d", i); in.Request.URL != want || len(in.Response.Body) != len(body) {
			t.Fatalf("interaction %d: %s, %d bytes", i, in.Request.URL, len(in.Response.Body))
		}
	}
}
