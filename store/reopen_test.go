package store

import (
	"bytes"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// recordLong records n interactions into the cassette "long" through one
// Recorder: 4 requests, one 1.1 KB body stored once (the load harness's
// record phase), each with its own URL.
func recordLong(t *testing.T, s *Store, from, n int) {
	t.Helper()
	rec := s.NewRecorder(RecorderOptions{})
	defer rec.Close()
	body := bytes.Repeat([]byte(`{"note":"the same answer"},`), 40)
	for i := from; i < from+n; i++ {
		in := Interaction{Key: fmt.Sprintf("GET /k/%d", i%4), RecordedAt: time.Unix(int64(i), 0),
			Request:  Request{Method: "GET", URL: fmt.Sprintf("https://tool.test/k/%d", i)},
			Response: Response{Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: body}}
		if err := rec.Record("long", in); err != nil {
			t.Fatal(err)
		}
	}
	if err := rec.Flush(); err != nil {
		t.Fatal(err)
	}
}

// A long recording reopens the store's file again and again (reopenEvery,
// here after every commit), so that what bbolt keeps for an open file (its
// freelist's page bookkeeping, the pages read through its memory map)
// starts afresh. The store must stay sound through it: readers come and go
// throughout, nothing the recorder read stays mapped, every interaction
// reads back in order, bbolt's check is clean (closeAndCheck), and the
// store records on after it is closed and opened again.
func TestLongRecordingAcrossReopens(t *testing.T) {
	defer func(was time.Duration) { reopenEvery = was }(reopenEvery)
	reopenEvery = 0
	path, _ := filepath.Abs(filepath.Join(t.TempDir(), "cassettes.db"))
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() { // read transactions open and close throughout
		for !stop.Load() {
			if _, err := s.Cassette("long"); err != nil && !errors.Is(err, ErrNoCassette) {
				t.Error(err)
				return
			}
		}
	})
	const n = 20_000
	recordLong(t, s, 0, n)
	stop.Store(true)
	wg.Wait()
	// Recorded without reopening, these 20k interactions leave ~2.2 MiB of
	// the file mapped resident (Linux, 64 KiB fault-around); each reopen
	// unmaps it. What is left: the meta pages bbolt's open reads.
	if kib := mappedKiB(path); kib > 512 {
		t.Errorf("after %d interactions %d KiB of the store are mapped resident, want at most 512", n, kib)
	} else {
		t.Logf("after %d interactions %d KiB of the store are mapped resident", n, kib)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeAndCheck(t, s) })
	recordLong(t, s, n, 5000)
	ins, err := s.Interactions("long")
	if err != nil || len(ins) != n+5000 {
		t.Fatalf("%d interactions, %v", len(ins), err)
	}
	for i, in := range ins {
		if want := fmt.Sprintf("https://tool.test/k/%d", i); in.Request.URL != want || in.Seq != uint64(i+1) {
			t.Fatalf("interaction %d: %s, seq %d", i, in.Request.URL, in.Seq)
		}
	}
}

// Loading a cassette reads all of it through bbolt's memory map; once it is
// decoded, none of those pages stays resident in the process (the store
// reopens its file), and the store reads on as before.
func TestLoadLeavesNoMappedPages(t *testing.T) {
	s := openTest(t)
	path, _ := filepath.Abs(s.Path())
	var ins []Interaction
	for i := range 3000 {
		in := sample(0, i, fmt.Sprint("GET /", i))
		in.Response.Body = bytes.Repeat(fmt.Appendf(nil, "%06d", i), 100) // 600 B, compressible, unique
		ins = append(ins, in)
	}
	if err := s.WriteCassette("c", ins, false); err != nil {
		t.Fatal(err)
	}
	// Read every value through the map, as a load does, and see it stay.
	if err := s.view(func(tx *bolt.Tx) error {
		return cassetteBucket(tx, "c").Bucket(subInteractions).ForEach(func(_, v []byte) error { _ = v[len(v)-1]; return nil })
	}); err != nil {
		t.Fatal(err)
	}
	read := mappedKiB(path)
	if read < 0 {
		t.Skip("no /proc/self/smaps")
	}
	if read < 256 {
		t.Fatalf("reading the cassette left only %d KiB of the map resident", read)
	}
	got, err := s.Interactions("c")
	if err != nil || len(got) != len(ins) || !bytes.Equal(got[2999].Response.Body, ins[2999].Response.Body) {
		t.Fatalf("load: %d interactions, %v", len(got), err)
	}
	if after := mappedKiB(path); after > 128 {
		t.Fatalf("resident map after the load: %d KiB (a plain read leaves %d KiB)", after, read)
	}
	if in, err := s.Interaction("c", 1500); err != nil || in.Request.URL != ins[1499].Request.URL {
		t.Fatalf("after the load: %+v, %v", in.Request, err)
	}
}

// While the store reopens its file, bbolt's own lock is let go for a moment;
// an Open in that moment (here from the same process, which bbolt's lock
// and holdFile's treat as another) must find the store locked.
func TestNoOpenDuringReopen(t *testing.T) {
	if !canReopen {
		t.Skip("the store never reopens here")
	}
	s := openTest(t)
	if err := s.WriteCassette("c", []Interaction{sample(0, 0, "GET /")}, false); err != nil {
		t.Fatal(err)
	}
	gaps := 0
	reopenGap = func() {
		gaps++
		for _, ro := range []bool{false, true} {
			o, err := Open(s.Path(), Options{ReadOnly: ro, LockTimeout: time.Nanosecond})
			switch {
			case err == nil:
				o.Close()
				t.Errorf("opened (read-only %v) while the store reopened", ro)
			case !errors.Is(err, ErrLocked):
				t.Errorf("read-only %v: %v", ro, err)
			}
		}
	}
	defer func() { reopenGap = nil }()
	if _, err := s.Interactions("c"); err != nil {
		t.Fatal(err)
	}
	if gaps != 1 {
		t.Fatalf("the load reopened the store %d times, want 1", gaps)
	}
}

// A store whose file was moved away while open goes on with the file it
// opened, and never reopens whatever now has its name.
func TestNoReopenOfAnotherFile(t *testing.T) {
	s := openTest(t)
	path := s.Path()
	if err := s.WriteCassette("c", []Interaction{sample(0, 0, "GET /")}, false); err != nil {
		t.Fatal(err)
	}
	moved := path + ".moved"
	if err := os.Rename(path, moved); err != nil {
		t.Fatal(err)
	}
	if ins, err := s.Interactions("c"); err != nil || len(ins) != 1 {
		t.Fatalf("load after the move: %d, %v", len(ins), err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a file appeared at the old path: %v", err)
	}
	if err := s.WriteCassette("d", []Interaction{sample(0, 1, "GET /d")}, false); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(moved, path); err != nil { // back, for the check at cleanup
		t.Fatal(err)
	}
}

// Every transaction goes through Store.view or Store.update, which hold
// dbMu: a use of s.db beside them could run while reopen swaps the handle.
func TestTransactionsOnlyThroughViewAndUpdate(t *testing.T) {
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, ".", func(fi fs.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, pkg := range pkgs {
		for _, f := range pkg.Files {
			for _, d := range f.Decls {
				fn, ok := d.(*ast.FuncDecl)
				if !ok || fn.Body == nil || fn.Name.Name == "view" || fn.Name.Name == "update" {
					continue
				}
				ast.Inspect(fn.Body, func(n ast.Node) bool {
					sel, ok := n.(*ast.SelectorExpr)
					if !ok {
						return true
					}
					if inner, ok := sel.X.(*ast.SelectorExpr); ok && inner.Sel.Name == "db" {
						switch sel.Sel.Name {
						case "View", "Update", "Batch", "Begin":
							t.Errorf("%s: %s uses db.%s directly; use Store.view or Store.update", fset.Position(sel.Pos()), fn.Name.Name, sel.Sel.Name)
						}
					}
					return true
				})
			}
		}
	}
}
