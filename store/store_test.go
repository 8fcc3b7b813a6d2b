package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestOpenCreatesFileAndFolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "cassettes.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Path() != path {
		t.Errorf("Path() = %q", s.Path())
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		t.Errorf("store mode %v, want 0600", perm)
	}
	if err := s.CreateCassette("c"); err != nil {
		t.Fatal(err)
	}
	closeAndCheck(t, s)
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if ok, _ := s.HasCassette("c"); !ok {
		t.Fatal("cassette lost across reopen")
	}
}

func TestOpenEmptyFileIsNewStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, Options{ReadOnly: true}); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("read-only open of an empty file: %v", err)
	}
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateCassette("x"); err != nil {
		t.Fatal(err)
	}
	closeAndCheck(t, s)
}

func TestOpenReadOnlyMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.db")
	_, err := Open(path, Options{ReadOnly: true})
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "open store "+path) {
		t.Fatalf("got %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("read-only open created the file")
	}
}

func TestOpenNotAStoreLeavesFileUnchanged(t *testing.T) {
	page := make([]byte, 8192)
	for i := range page {
		page[i] = byte(i * 7)
	}
	tests := []struct {
		name    string
		content []byte
	}{
		{"text", []byte("hello, I am a text file\nnot a database\n")},
		{"json", []byte(`{"cassettes":[]}`)},
		{"one byte", []byte{0}},
		{"binary page", page},
		{"sqlite-ish", append([]byte("SQLite format 3\x00"), make([]byte, 4096)...)},
	}
	for _, tc := range tests {
		for _, ro := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/readonly=%v", tc.name, ro), func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "x.db")
				if err := os.WriteFile(path, tc.content, 0o644); err != nil {
					t.Fatal(err)
				}
				before, _ := os.Stat(path)
				s, err := Open(path, Options{ReadOnly: ro})
				if err == nil {
					s.Close()
					t.Fatal("opened a non-store")
				}
				if !errors.Is(err, ErrNotStore) {
					t.Errorf("error %v does not wrap ErrNotStore", err)
				}
				if want := "open store " + path + ": not a cassetteproxy store ("; !strings.HasPrefix(err.Error(), want) {
					t.Errorf("error %q, want prefix %q", err, want)
				}
				after, _ := os.Stat(path)
				got, _ := os.ReadFile(path)
				if !bytes.Equal(got, tc.content) || after.Size() != before.Size() || !after.ModTime().Equal(before.ModTime()) || after.Mode() != before.Mode() {
					t.Fatal("file changed")
				}
			})
		}
	}
}

func TestOpenForeignBboltFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "other.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("users"))
		if err != nil {
			return err
		}
		return b.Put([]byte("k"), []byte("v"))
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	before, _ := os.ReadFile(path)
	for _, ro := range []bool{false, true} {
		_, err := Open(path, Options{ReadOnly: ro})
		if !errors.Is(err, ErrNotStore) || !strings.Contains(err.Error(), path) {
			t.Fatalf("readonly=%v: %v", ro, err)
		}
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Fatal("foreign bbolt file changed")
	}
}

func TestCassetteLifecycle(t *testing.T) {
	s := openTest(t)
	rec := s.NewRecorder(RecorderOptions{})
	defer rec.Close()

	for _, n := range []string{"zeta", "alpha", "Mid", "beta"} {
		if err := s.CreateCassette(n); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateCassette(""); err == nil {
		t.Fatal("empty name accepted")
	}
	for i := range 3 {
		if err := rec.Record("alpha", sample(0, i, "k")); err != nil {
			t.Fatal(err)
		}
	}
	if err := rec.Flush(); err != nil {
		t.Fatal(err)
	}
	// CreateCassette on an existing cassette keeps it.
	if err := s.CreateCassette("alpha"); err != nil {
		t.Fatal(err)
	}

	list, err := s.ListCassettes()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range list {
		names = append(names, c.Name)
		if c.CreatedAt.IsZero() || c.UpdatedAt.Before(c.CreatedAt) {
			t.Errorf("%s: bad times %v %v", c.Name, c.CreatedAt, c.UpdatedAt)
		}
	}
	if want := []string{"Mid", "alpha", "beta", "zeta"}; !slices.Equal(names, want) {
		t.Fatalf("names %v, want %v", names, want)
	}
	if list[1].Interactions != 3 {
		t.Fatalf("alpha count %d", list[1].Interactions)
	}

	tests := []struct {
		name    string
		op      func() error
		has     map[string]bool
		alphaN  int
		wantErr error
	}{
		{"reset existing", func() error { return s.ResetCassette("alpha") }, map[string]bool{"alpha": true}, 0, nil},
		{"reset missing creates", func() error { return s.ResetCassette("new") }, map[string]bool{"new": true}, 0, nil},
		{"delete", func() error { return s.DeleteCassette("zeta") }, map[string]bool{"zeta": false}, 0, nil},
		{"delete missing", func() error { return s.DeleteCassette("zeta") }, map[string]bool{"zeta": false}, 0, ErrNoCassette},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.op()
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			}
			for n, want := range tc.has {
				if got, err := s.HasCassette(n); err != nil || got != want {
					t.Fatalf("HasCassette(%q) = %v, %v", n, got, err)
				}
			}
			ins, err := s.Interactions("alpha")
			if err != nil || len(ins) != tc.alphaN {
				t.Fatalf("alpha: %d interactions, %v", len(ins), err)
			}
		})
	}

	// Seq restarts at 1 after a reset.
	if err := rec.Record("alpha", sample(0, 9, "k")); err != nil {
		t.Fatal(err)
	}
	if err := rec.Flush(); err != nil {
		t.Fatal(err)
	}
	ins, _ := s.Interactions("alpha")
	if len(ins) != 1 || ins[0].Seq != 1 {
		t.Fatalf("after reset: %+v", ins)
	}

	_, err = s.Interactions("nope")
	if !errors.Is(err, ErrNoCassette) || !strings.Contains(err.Error(), `cassette "nope" not found`) || !strings.Contains(err.Error(), s.Path()) {
		t.Fatalf("missing cassette error: %v", err)
	}
	if _, err := s.Cassette("nope"); !errors.Is(err, ErrNoCassette) {
		t.Fatalf("Cassette(missing): %v", err)
	}
	if _, err := s.Interaction("alpha", 2); !errors.Is(err, ErrNoInteraction) {
		t.Fatalf("Interaction(missing seq): %v", err)
	}
}

func TestReadOnlyStore(t *testing.T) {
	s := openTest(t)
	rec := s.NewRecorder(RecorderOptions{})
	if err := rec.Record("c", fullInteraction()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Secret("hmac", 32); err != nil {
		t.Fatal(err)
	}
	path := s.Path()
	if err := s.Close(); err != nil { // also closes rec, committing the record
		t.Fatal(err)
	}

	ro1, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro1.Close()
	ro2, err := Open(path, Options{ReadOnly: true}) // shared lock: a second reader is fine
	if err != nil {
		t.Fatal(err)
	}
	defer ro2.Close()

	ins, err := ro2.Interactions("c")
	if err != nil || len(ins) != 1 {
		t.Fatalf("%d interactions, %v", len(ins), err)
	}
	want := fullInteraction()
	want.Seq = 1
	mustEqual(t, ins[0], want)
	if _, err := ro1.Secret("hmac", 32); err != nil {
		t.Fatal(err)
	}
	writes := map[string]error{
		"create": ro1.CreateCassette("d"),
		"reset":  ro1.ResetCassette("c"),
		"delete": ro1.DeleteCassette("c"),
		"record": ro1.NewRecorder(RecorderOptions{}).Record("c", sample(0, 0, "")),
	}
	_, writes["new secret"] = ro1.Secret("other", 32)
	for op, err := range writes {
		if !errors.Is(err, ErrReadOnly) {
			t.Errorf("%s on a read-only store: %v", op, err)
		}
	}
}

func TestSecretStableAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.Secret("redact-hmac", 32)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Secret("other", 16)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 32 || len(b) != 16 || bytes.Equal(a[:16], b) || bytes.Equal(a, make([]byte, 32)) {
		t.Fatalf("bad secrets %x %x", a, b)
	}
	orig := bytes.Clone(a)
	a[0] ^= 0xff // the caller's copy must not be the stored bytes
	if a, err = s.Secret("redact-hmac", 32); err != nil || !bytes.Equal(a, orig) {
		t.Fatalf("secret changed within a session: %x %v", a, err)
	}
	if _, err := s.Secret("redact-hmac", 64); err == nil {
		t.Fatal("size mismatch accepted")
	}
	if _, err := s.Secret("", 32); err == nil {
		t.Fatal("empty name accepted")
	}
	closeAndCheck(t, s)

	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a2, err := s.Secret("redact-hmac", 32)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, a2) {
		t.Fatalf("secret changed across reopen: %x vs %x", a, a2)
	}
}

const helperEnv = "CASSETTEPROXY_STORE_HELPER"

// TestHelperProcess is not a test: TestLockedStore re-runs the test binary
// with it to open a store from another process.
func TestHelperProcess(t *testing.T) {
	path := os.Getenv(helperEnv)
	if path == "" {
		t.Skip("helper process only")
	}
	for _, ro := range []bool{false, true} {
		s, err := Open(path, Options{ReadOnly: ro, LockTimeout: 300 * time.Millisecond})
		if err == nil {
			s.Close()
			fmt.Printf("readonly=%v: opened\n", ro)
			continue
		}
		fmt.Printf("readonly=%v: %v [locked=%v]\n", ro, err, errors.Is(err, ErrLocked))
	}
}

func TestLockedStore(t *testing.T) {
	s := openTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+s.Path())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	t.Logf("helper output:\n%s", out)
	for _, ro := range []bool{false, true} {
		want := fmt.Sprintf("readonly=%v: open store %s: locked by another process (pid %d) [locked=true]", ro, s.Path(), os.Getpid())
		if !strings.Contains(string(out), want) {
			t.Errorf("helper output lacks %q:\n%s", want, out)
		}
	}
}

func TestParseProcLocks(t *testing.T) {
	// dev 0xfe00 is major 0xfe, minor 0; 259:3 is 0x103:0x3.
	const data = `1: POSIX  ADVISORY  WRITE 111 fe:00:42 0 EOF
2: FLOCK  ADVISORY  WRITE 222 fe:00:9978082 0 EOF
2: -> FLOCK  ADVISORY  WRITE 333 fe:00:9978082 0 EOF
3: FLOCK  ADVISORY  READ 444 103:03:77 0 EOF
3: FLOCK  ADVISORY  READ 445 103:03:77 0 EOF
4: OFDLCK ADVISORY  READ -1 fe:00:55 0 EOF
5: FLOCK  ADVISORY  WRITE 666 00:2a:88 0 EOF
garbage line
`
	tests := []struct {
		name     string
		dev, ino uint64
		want     []int
	}{
		{"exact, waiter skipped", 0xfe00, 9978082, []int{222}},
		{"two readers", 259<<8 | 3, 77, []int{444, 445}},
		{"ofd lock has no pid", 0xfe00, 55, nil},
		{"inode only fallback", 0xfe00, 88, []int{666}},
		{"no match", 0xfe00, 1, nil},
		{"other device same inode", 0x0801, 42, []int{111}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := parseProcLocks([]byte(data), tc.dev, tc.ino)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}
