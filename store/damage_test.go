package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// damagedFixture builds a store with enough in it for multi-level trees:
// two cassettes (one with 400 interactions, a third of them with stored
// bodies), run records and a fixture history. It returns the file's bytes.
func damagedFixture(t testing.TB) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "src.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Secret("redact-hmac", 32); err != nil {
		t.Fatal(err)
	}
	rec := s.NewRecorder(RecorderOptions{})
	for i := range 400 {
		in := sample(0, i, fmt.Sprintf("GET https://example.com/i%d", i))
		if i%3 == 0 {
			in.Response.Body = bodyOf(i, 1500)
		}
		if err := rec.Record("big", in); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		if err := rec.Record("small", sample(1, i, fmt.Sprintf("k%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := s.PutRun(Run{RunID: fmt.Sprintf("run-%d", i), RunType: "production", Status: "passed", Command: []string{"true"}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.RecordFixtureReplay("fx", "empty_output", FixtureEvent{At: time.Now(), Status: "passed"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// layout reads the meta bbolt uses from a store's bytes and the bucket each
// reachable page belongs to.
func layout(t testing.TB, b []byte) (boltMeta, map[uint64]string) {
	t.Helper()
	r := bytes.NewReader(b)
	m, err := fileMeta(r, int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	w := newFileWalker(r, int64(len(b)), m)
	w.walk(walkVisitor{})
	if len(w.problems) > 0 {
		t.Fatalf("the fixture store has problems: %v", w.problems)
	}
	return m, w.seen
}

// pageUnder returns a leaf page of the bucket path that is not its root
// (so a damaged one is found only when that bucket is read past its start).
func pageUnder(t testing.TB, b []byte, seen map[uint64]string, m boltMeta, bucket string) uint64 {
	t.Helper()
	var ids []uint64
	for id, where := range seen {
		off := int64(id) * int64(m.pageSize)
		if where == bucket && ne.Uint16(b[off+8:]) == flagLeaf {
			ids = append(ids, id)
		}
	}
	if len(ids) < 2 {
		t.Fatalf("%d leaf pages under %s", len(ids), bucket)
	}
	slices.Sort(ids)
	return ids[len(ids)/2]
}

// damage is one way to break a store file.
type damage struct {
	name string
	// breakIt returns the damaged bytes of a copy of b.
	breakIt func(t testing.TB, b []byte) []byte
	// atOpen: Open must refuse it (else Open may succeed and the damage
	// surfaces when the damaged part is read).
	atOpen bool
}

func flipPageHeader(id uint64) func(testing.TB, []byte) []byte {
	return func(t testing.TB, b []byte) []byte {
		m, _ := layout(t, b)
		off := int64(id) * int64(m.pageSize)
		b[off] ^= 0x5a // the page's id no longer matches where it is
		b[off+8] ^= 0x33
		return b
	}
}

func damages() []damage {
	return []damage{
		{"truncated at 20000 bytes", func(_ testing.TB, b []byte) []byte { return b[:20000] }, true},
		{"truncated to half", func(_ testing.TB, b []byte) []byte { return b[:len(b)/2] }, true},
		{"truncated inside the first page", func(_ testing.TB, b []byte) []byte { return b[:3000] }, true},
		{"both meta pages flipped", func(t testing.TB, b []byte) []byte {
			m, _ := layout(t, b)
			b[pageHeaderSize+12] ^= 0x01 // the flags field: unused, but under the checksum
			b[int(m.pageSize)+pageHeaderSize+12] ^= 0x01
			return b
		}, true},
		{"root page flipped", func(t testing.TB, b []byte) []byte {
			m, _ := layout(t, b)
			return flipPageHeader(m.root)(t, b)
		}, true},
		{"freelist page flipped", func(t testing.TB, b []byte) []byte {
			m, _ := layout(t, b)
			return flipPageHeader(m.freelist)(t, b)
		}, true},
		{"cassettes bucket root flipped", func(t testing.TB, b []byte) []byte {
			_, seen := layout(t, b)
			for id, where := range seen {
				if where == "cassettes" {
					return flipPageHeader(id)(t, b)
				}
			}
			t.Fatal("the cassettes bucket has no page of its own")
			return nil
		}, true},
		{"an interactions page flipped", func(t testing.TB, b []byte) []byte {
			m, seen := layout(t, b)
			return flipPageHeader(pageUnder(t, b, seen, m, "cassettes/big/interactions"))(t, b)
		}, false},
		{"a bodies page zeroed", func(t testing.TB, b []byte) []byte {
			m, seen := layout(t, b)
			id := pageUnder(t, b, seen, m, "cassettes/big/bodies")
			clear(b[int64(id)*int64(m.pageSize) : int64(id+1)*int64(m.pageSize)])
			return b
		}, false},
	}
}

func writeDamaged(t *testing.T, b []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "damaged store.db") // a space: the commands in the message are quoted
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// assertDamagedError checks the one-line error the CLI prints.
func assertDamagedError(t *testing.T, err error, path string) {
	t.Helper()
	var d *DamagedError
	if !errors.As(err, &d) || !errors.Is(err, ErrDamaged) {
		t.Fatalf("error %v (%T) is not a DamagedError", err, err)
	}
	msg := d.Error()
	q := shellQuote(path)
	for _, want := range []string{"store " + path + " is damaged (", "cassetteproxy store check --db " + q, "cassetteproxy store compact --db " + q + " --out NEW"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("message is not one line: %q", msg)
	}
}

func TestOpenDamagedStore(t *testing.T) {
	clean := damagedFixture(t)
	for _, d := range damages() {
		for _, ro := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/readonly=%v", d.name, ro), func(t *testing.T) {
				b := d.breakIt(t, bytes.Clone(clean))
				path := writeDamaged(t, b)
				s, err := Open(path, Options{ReadOnly: ro})
				if d.atOpen {
					if err == nil {
						s.Close()
						t.Fatal("Open accepted the damaged store")
					}
					assertDamagedError(t, err, path)
				} else {
					if err != nil {
						t.Fatalf("Open: %v (the damage is deeper than the open path)", err)
					}
					// Reading the damaged part fails with the same error,
					// and the store refuses everything after it.
					_, err = s.Interactions("big")
					assertDamagedError(t, err, path)
					if _, err := s.ListRuns(); !errors.Is(err, ErrDamaged) {
						t.Errorf("after the damage was found, ListRuns: %v", err)
					}
					if !ro {
						if err := s.CreateCassette("new"); !errors.Is(err, ErrDamaged) {
							t.Errorf("after the damage was found, a write: %v", err)
						}
					}
					if err := s.Close(); !errors.Is(err, ErrDamaged) {
						t.Errorf("Close: %v", err)
					}
				}
				if got, _ := os.ReadFile(path); !bytes.Equal(got, b) {
					t.Fatal("the damaged file was changed")
				}
			})
		}
	}
}

func TestOpenOneMetaFlippedFallsBack(t *testing.T) {
	b := damagedFixture(t)
	m, _ := layout(t, b)
	// Flip the meta bbolt would use (the newer one): bbolt falls back to
	// the other, one transaction older, as it does after a torn meta write.
	off := 0
	if other, err := readMeta(bytes.NewReader(b), int64(m.pageSize)); err == nil && other.txid == m.txid {
		off = int(m.pageSize)
	}
	b[off+pageHeaderSize+20] ^= 0x01
	path := writeDamaged(t, b)
	s, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("one good meta page must be enough: %v", err)
	}
	defer s.Close()
	if _, err := s.ListCassettes(); err != nil {
		t.Fatal(err)
	}
}

func TestCheckFile(t *testing.T) {
	clean := damagedFixture(t)
	rep, err := CheckFile(writeDamaged(t, clean), time.Second)
	if err != nil || len(rep.Problems) > 0 {
		t.Fatalf("a sound store: %v %v", err, rep.Problems)
	}
	if rep.Cassettes != 2 || rep.Runs != 5 || rep.Fixtures != 1 {
		t.Errorf("counted %d cassettes, %d runs, %d fixtures", rep.Cassettes, rep.Runs, rep.Fixtures)
	}
	for _, d := range damages() {
		t.Run(d.name, func(t *testing.T) {
			b := d.breakIt(t, bytes.Clone(clean))
			path := writeDamaged(t, b)
			rep, err := CheckFile(path, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Problems) == 0 {
				t.Fatal("no problem found")
			}
			for _, p := range rep.Problems {
				if strings.Contains(p.String(), "\n") {
					t.Errorf("problem is not one line: %q", p)
				}
			}
			if got, _ := os.ReadFile(path); !bytes.Equal(got, b) {
				t.Fatal("check changed the file")
			}
		})
	}
}

// TestCheckFindsCountMismatch: a problem only the schema check sees (the
// tree is sound, a cassette's count is wrong).
func TestCheckFindsCountMismatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WriteCassette("c", []Interaction{sample(0, 0, "k")}, false); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketCassettes).Bucket([]byte("c")).Bucket(subMeta).Put(keyCount, be64(7))
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	rep, err := CheckFile(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0].String(), "count says 7 interactions, it holds 1") {
		t.Fatalf("problems %v", rep.Problems)
	}
}

func TestCompactFile(t *testing.T) {
	clean := damagedFixture(t)
	tests := []struct {
		name      string
		breakIt   func(testing.TB, []byte) []byte
		wantAll   bool // every interaction saved
		wantSaved int  // at least this many of big's 400
	}{
		{"sound", func(_ testing.TB, b []byte) []byte { return b }, true, 400},
		{"an interactions page flipped", damages()[7].breakIt, false, 1},
		{"a bodies page zeroed", damages()[8].breakIt, false, 1},
		{"truncated to half", damages()[1].breakIt, false, 0},
		{"both meta pages flipped", damages()[3].breakIt, true, 400}, // the data is intact under them
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.breakIt(t, bytes.Clone(clean))
			src := writeDamaged(t, b)
			dst := filepath.Join(t.TempDir(), "new.db")
			rep, err := CompactFile(src, dst, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := os.ReadFile(src); !bytes.Equal(got, b) {
				t.Fatal("compact changed the source")
			}
			if tc.wantAll != (len(rep.Lost) == 0) {
				t.Errorf("lost: %q", rep.Lost)
			}
			if len(rep.Saved) == 0 {
				t.Error("no saved lines")
			}
			chk, err := CheckFile(dst, time.Second)
			if err != nil || len(chk.Problems) > 0 {
				t.Fatalf("the compacted store is not sound: %v %v", err, chk.Problems)
			}
			s, err := Open(dst, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			ins, err := s.Interactions("big")
			if err != nil && !errors.Is(err, ErrNoCassette) {
				t.Fatalf("the saved cassette does not read back: %v", err)
			}
			if len(ins) < tc.wantSaved || (tc.wantAll && len(ins) != 400) {
				t.Fatalf("%d interactions saved, want at least %d", len(ins), tc.wantSaved)
			}
			if info, err := s.Cassette("big"); err == nil && info.Interactions != len(ins) {
				t.Errorf("count %d, holds %d", info.Interactions, len(ins))
			}
			// Every saved interaction is found through the rebuilt index,
			// and recording goes on after the highest seq saved.
			for _, in := range ins {
				got, err := s.InteractionsByKey("big", in.Key)
				if err != nil || len(got) != 1 || got[0].Seq != in.Seq {
					t.Fatalf("index lookup of %q: %v %v", in.Key, got, err)
				}
			}
			if len(ins) > 0 {
				rec := s.NewRecorder(RecorderOptions{})
				if err := rec.Record("big", sample(9, 9, "after")); err != nil {
					t.Fatal(err)
				}
				if err := rec.Close(); err != nil {
					t.Fatal(err)
				}
				after, _ := s.InteractionsByKey("big", "after")
				if len(after) != 1 || after[0].Seq <= ins[len(ins)-1].Seq {
					t.Fatalf("a new recording got seq %v after %d", after, ins[len(ins)-1].Seq)
				}
			}
		})
	}
}

func TestCompactRefusesExistingOut(t *testing.T) {
	src := writeDamaged(t, damagedFixture(t))
	dst := filepath.Join(t.TempDir(), "exists.db")
	if err := os.WriteFile(dst, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := CompactFile(src, dst, time.Second); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("got %v", err)
	}
	if got, _ := os.ReadFile(dst); string(got) != "keep me" {
		t.Fatal("--out was overwritten")
	}
}

// FuzzOpenDamaged opens truncated and bit-flipped copies of a real store
// and reads everything in them: no panic may escape, a refused file is left
// byte for byte as it was, and compaction of whatever it is yields a store
// that passes the check.
func FuzzOpenDamaged(f *testing.F) {
	clean := damagedFixture(f)
	m, _ := layout(f, clean)
	ps := uint32(m.pageSize)
	f.Add(uint32(20000), []byte{})
	f.Add(uint32(len(clean)/2), []byte{})
	f.Add(uint32(0), []byte{0, 0, 0, 20 + pageHeaderSize, 1})
	f.Add(uint32(0), append(le32(uint32(m.root)*ps), 0x5a))
	f.Add(uint32(0), append(le32(uint32(m.freelist)*ps+8), 0x10))
	f.Add(uint32(0), append(le32(uint32(m.root)*ps+pageHeaderSize+16), 0x80))
	f.Add(uint32(0), append(append(le32(2*ps+10), 0xff), append(le32(5*ps+20), 0x01)...))
	f.Fuzz(func(t *testing.T, cut uint32, flips []byte) {
		b := bytes.Clone(clean)
		if cut > 0 && int(cut) < len(b) {
			b = b[:cut]
		}
		for len(flips) >= 5 { // each flip: a 4-byte offset and a mask
			off := int(uint32(flips[0]) | uint32(flips[1])<<8 | uint32(flips[2])<<16 | uint32(flips[3])<<24)
			if len(b) > 0 {
				b[off%len(b)] ^= flips[4]
			}
			flips = flips[5:]
		}
		dir := t.TempDir()
		path := filepath.Join(dir, "f.db")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		for _, ro := range []bool{true, false} {
			s, err := Open(path, Options{ReadOnly: ro})
			if err != nil {
				if got, _ := os.ReadFile(path); !bytes.Equal(got, b) {
					t.Fatalf("a refused file was changed: %v", err)
				}
				continue
			}
			if infos, err := s.ListCassettes(); err == nil {
				for _, c := range infos {
					_, _ = s.Interactions(c.Name)
				}
			}
			_, _ = s.ListRuns()
			_, _ = s.FixtureHistories()
			_ = s.Check()
			_ = s.Close()
		}
		if _, err := CheckFile(path, time.Second); err != nil && !errors.Is(err, ErrNotStore) {
			t.Fatalf("check: %v", err)
		}
		dst := filepath.Join(dir, "new.db")
		if _, err := CompactFile(path, dst, time.Second); err == nil {
			rep, err := CheckFile(dst, time.Second)
			if err != nil || len(rep.Problems) > 0 {
				t.Fatalf("compacted store: %v %v", err, rep.Problems)
			}
		}
	})
}

func le32(v uint32) []byte { return []byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)} }
