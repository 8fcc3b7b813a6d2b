package store

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mountTmpfs mounts a tmpfs of the given size (e.g. "1m") on a fresh
// folder and unmounts it at cleanup. It skips the test where it cannot
// (not root, no mount permission).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root (CI runs as root)")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// TestCommitFailsOnFullDisk records into a store on a tiny tmpfs until a
// commit fails with ENOSPC: the recorder counts what it lost, bbolt rolls
// the transaction back, and the store stays whole: what was committed
// before reads back, the consistency check passes, a small write (a run
// record) still fits in the pages bbolt frees, and the file reopens.
func TestCommitFailsOnFullDisk(t *testing.T) {
	dir := mountTmpfs(t, "1m")
	path := filepath.Join(dir, "cassettes.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var onError []error
	rec := s.NewRecorder(RecorderOptions{OnError: func(err error) { onError = append(onError, err) }})
	committed := 0
	var flushErr error
	for i := range 2000 {
		in := sample(0, i, fmt.Sprintf("GET https://example.com/%d", i))
		in.Response.Body = make([]byte, 8<<10) // random: zstd cannot shrink it
		_, _ = rand.Read(in.Response.Body)
		if err := rec.Record("c", in); err != nil {
			t.Fatal(err)
		}
		if flushErr = rec.Flush(); flushErr != nil {
			break
		}
		committed++
	}
	if flushErr == nil {
		t.Fatal("2000 recordings of 8 KiB fit on a 1 MiB tmpfs")
	}
	if !errors.Is(flushErr, syscall.ENOSPC) || !strings.Contains(flushErr.Error(), path) {
		t.Fatalf("commit error %v: want ENOSPC naming the store", flushErr)
	}
	lost, last := rec.Lost()
	if lost != 1 || !errors.Is(last, syscall.ENOSPC) || len(onError) != 1 {
		t.Fatalf("Lost() = %d, %v; OnError saw %d errors", lost, last, len(onError))
	}
	if err := rec.Close(); err != nil {
		t.Fatalf("Close reported the loss again: %v", err)
	}

	// bbolt rolled back: exactly what was committed is there.
	ins, err := s.Interactions("c")
	if err != nil {
		t.Fatalf("the store is unreadable after a failed commit: %v", err)
	}
	if len(ins) != committed {
		t.Fatalf("%d interactions read back, %d were committed", len(ins), committed)
	}
	if info, _ := s.Cassette("c"); info.Interactions != committed {
		t.Fatalf("count %d, want %d", info.Interactions, committed)
	}
	if err := s.PutRun(Run{RunID: "r1", Status: "degraded", Command: []string{"true"}}); err != nil {
		t.Logf("a run record does not fit either: %v", err) // a note, not a failure: it depends on what bbolt freed
	}
	if err := s.Check(); err != nil {
		t.Fatalf("check after the failed commit: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := CheckFile(path, 0)
	if err != nil || len(rep.Problems) > 0 {
		t.Fatalf("reopened: %v %v", err, rep.Problems)
	}
	s2, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if ins, err := s2.Interactions("c"); err != nil || len(ins) != committed {
		t.Fatalf("after reopen: %d interactions, %v", len(ins), err)
	}
}

// TestReserveClosesRunOnFullDisk: on a disk with no free byte left, a
// write of an open run record fails and leaves the reserve alone, and the
// write that closes it removes the reserve and succeeds.
func TestReserveClosesRunOnFullDisk(t *testing.T) {
	dir := mountTmpfs(t, "1m")
	path := filepath.Join(dir, "cassettes.db")
	s, err := Open(path, Options{Reserve: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if fi, err := os.Stat(reservePath(path)); err != nil || fi.Size() != reserveSize {
		t.Fatalf("reserve file: %v", err)
	}
	// Fill every byte the store did not take with a file of another writer.
	filler, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer filler.Close()
	for {
		if _, err := filler.Write(make([]byte, 4096)); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	run := Run{RunID: "r1", Status: RunStatusRunning, Command: []string{"true"}}
	for i := range 200 { // a few pages of record, more than a full disk has
		run.Reasons = append(run.Reasons, RunReason{Status: "degraded", Class: "recording_lost", Reason: fmt.Sprintf("reason %d %0200d", i, i)})
	}
	if err := s.PutRun(run); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("an open run record on a full disk: %v, want ENOSPC", err)
	}
	if _, err := os.Stat(reservePath(path)); err != nil {
		t.Fatalf("an open run record spent the reserve: %v", err)
	}
	closed := time.Now().UTC()
	run.Status, run.ClosedAt = "degraded", &closed
	if err := s.PutRun(run); err != nil {
		t.Fatalf("the closing write failed with the reserve to spend: %v", err)
	}
	if _, err := os.Stat(reservePath(path)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the reserve is still there after the closing write: %v", err)
	}
	got, err := s.GetRun("r1")
	if err != nil || got.Open() || got.Status != "degraded" {
		t.Fatalf("read back: %+v %v", got, err)
	}
	// A later open on a disk with room makes a new reserve.
	filler.Close()
	if err := os.Remove(filepath.Join(dir, "filler")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(path, Options{Reserve: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if fi, err := os.Stat(reservePath(path)); err != nil || fi.Size() != reserveSize {
		t.Fatalf("no reserve after reopening with room: %v", err)
	}
}
