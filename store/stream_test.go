package store

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// streamSample is interaction i of a cassette mixing small, large unique
// and large repeated bodies (the last two stored apart, once each).
func streamSample(tag string, i int) Interaction {
	in := sample(0, i, fmt.Sprintf("%s-%d", tag, i%3))
	switch i % 4 {
	case 1:
		in.Response.Body = bytes.Repeat(fmt.Appendf(nil, "%s unique %d ", tag, i), 200)
	case 2:
		in.Response.Body = bytes.Repeat([]byte("the same large body "), 100)
	}
	return in
}

// TestEachInteraction: the walk yields exactly what Interactions returns,
// in order, for cassettes of every size (bodies stored apart, repeated or
// not, past the body cache's bound); an error from the callback stops it
// and comes back as it is; a missing cassette is ErrNoCassette.
func TestEachInteraction(t *testing.T) {
	s := openTest(t)
	for _, n := range []int{0, 1, 7, 3000} {
		name := fmt.Sprintf("c%d", n)
		ins := make([]Interaction, n)
		for i := range ins {
			ins[i] = streamSample(name, i)
		}
		if err := s.WriteCassette(name, ins, true); err != nil {
			t.Fatal(err)
		}
		want, err := s.Interactions(name)
		if err != nil {
			t.Fatal(err)
		}
		var got []Interaction
		if err := s.EachInteraction(name, func(in Interaction) error { got = append(got, in.Clone()); return nil }); err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if len(got) != len(want) {
			t.Fatalf("n=%d: %d interactions, want %d", n, len(got), len(want))
		}
		for i := range want {
			if !equalInteraction(got[i], want[i].Clone()) {
				t.Fatalf("n=%d: interaction %d differs:\n%+v\n%+v", n, i, got[i], want[i])
			}
		}
	}
	stop := errors.New("enough")
	calls := 0
	err := s.EachInteraction("c7", func(Interaction) error { calls++; return stop })
	if err != stop || calls != 1 {
		t.Fatalf("the callback's error: %v after %d calls", err, calls)
	}
	if err := s.EachInteraction("nope", func(Interaction) error { return nil }); !errors.Is(err, ErrNoCassette) {
		t.Fatalf("missing cassette: %v", err)
	}
}

// TestCassetteWriter: a cassette written a batch at a time, in place of
// what was there or after it, is the cassette WriteCassette writes (the
// same interactions, Seqs, index and count); until Commit, and after an
// Abort or a writer left behind by a process that died, the cassette is
// as it was, and the next writer removes the dead one's staging copy.
func TestCassetteWriter(t *testing.T) {
	n := writerBatchCount + 5 // more than one batch
	batch := func(tag string, n int) []Interaction {
		out := make([]Interaction, n)
		for i := range out {
			out[i] = streamSample(tag, i)
		}
		return out
	}
	write := func(s *Store, name string, ins []Interaction, replace bool) *CassetteWriter {
		t.Helper()
		w, err := s.NewCassetteWriter(name, replace)
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range ins {
			if err := w.Add(in); err != nil {
				t.Fatal(err)
			}
		}
		return w
	}
	cases := []struct {
		name   string
		before []Interaction // what the cassette holds first (nil: no cassette)
		add    []Interaction
		append bool
	}{
		{"new cassette", nil, batch("a", n), false},
		{"replace", batch("old", 10), batch("a", n), false},
		{"append", batch("old", n), batch("a", 20), true},
		{"append to nothing", nil, batch("a", 3), true},
		{"empty replace", batch("old", 3), nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, ref := openTest(t), openTest(t)
			for _, st := range []*Store{s, ref} {
				if tc.before != nil {
					if err := st.WriteCassette("c", tc.before, true); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := ref.WriteCassette("c", tc.add, !tc.append); err != nil {
				t.Fatal(err)
			}
			before, _ := s.Interactions("c")
			infoBefore, _ := s.Cassette("c")
			w := write(s, "c", tc.add, !tc.append)
			if now, _ := s.Interactions("c"); !equalInteractions(now, before) {
				t.Fatal("the cassette changed before Commit")
			}
			added, err := w.Commit()
			if err != nil || added != len(tc.add) {
				t.Fatalf("commit: %d, %v", added, err)
			}
			got, _ := s.Interactions("c")
			want, _ := ref.Interactions("c")
			if len(got) != len(want) {
				t.Fatalf("%d interactions, want %d", len(got), len(want))
			}
			for i := range want {
				if !equalInteraction(got[i], want[i]) {
					t.Fatalf("interaction %d differs:\n%+v\n%+v", i, got[i], want[i])
				}
			}
			for _, key := range []string{"a-0", "a-2", "old-1"} {
				gs, _ := s.Seqs("c", key)
				ws, _ := ref.Seqs("c", key)
				if !equalSlice(gs, ws) {
					t.Fatalf("index of %s: %v, want %v", key, gs, ws)
				}
			}
			gi, _ := s.Cassette("c")
			wi, _ := ref.Cassette("c")
			if gi.Interactions != wi.Interactions {
				t.Fatalf("count %d, want %d", gi.Interactions, wi.Interactions)
			}
			if tc.before != nil && tc.append && !gi.CreatedAt.Equal(infoBefore.CreatedAt) {
				t.Fatalf("append lost created_at: %v, want %v", gi.CreatedAt, infoBefore.CreatedAt)
			}
		})
	}

	t.Run("abort and a dead writer leave the cassette as it was", func(t *testing.T) {
		s := openTest(t)
		if err := s.WriteCassette("c", batch("old", 5), true); err != nil {
			t.Fatal(err)
		}
		before, _ := s.Interactions("c")
		w := write(s, "c", batch("a", n), false)
		if err := w.Abort(); err != nil {
			t.Fatal(err)
		}
		dead := write(s, "c", batch("b", n), false)
		dead.finish() // as if its process had died: its staging copy stays in the file
		if now, _ := s.Interactions("c"); !equalInteractions(now, before) {
			t.Fatal("an aborted or dead writer changed the cassette")
		}
		if staged := stagingCopies(t, s); staged != 1 {
			t.Fatalf("%d staging copies, want the dead writer's 1", staged)
		}
		next := write(s, "c", batch("c", 2), true)
		if staged := stagingCopies(t, s); staged != 1 {
			t.Fatalf("%d staging copies with a new writer, want its own 1", staged)
		}
		if _, err := next.Commit(); err != nil {
			t.Fatal(err)
		}
		if staged := stagingCopies(t, s); staged != 0 {
			t.Fatalf("%d staging copies after commit", staged)
		}
		if got, _ := s.Interactions("c"); len(got) != 2 || got[0].Key != "c-0" {
			t.Fatalf("after the next writer: %d interactions", len(got))
		}
		if _, err := next.Commit(); !errors.Is(err, ErrClosed) {
			t.Fatalf("a second commit: %v", err)
		}
	})
}

func stagingCopies(t *testing.T, s *Store) int {
	t.Helper()
	n := 0
	err := s.view(func(tx *bolt.Tx) error {
		if root := tx.Bucket(bucketStaging); root != nil {
			return root.ForEachBucket(func([]byte) error { n++; return nil })
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
