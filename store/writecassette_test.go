package store

import (
	"errors"
	"fmt"
	"testing"
)

// TestWriteCassette: replace puts ins in place of what was there, append
// after it; order and index hold either way; a bad name changes nothing.
func TestWriteCassette(t *testing.T) {
	s := openTest(t)
	batch := func(tag string, n int) []Interaction {
		out := make([]Interaction, n)
		for i := range out {
			out[i] = sample(0, i, fmt.Sprintf("%s-%d", tag, i%2))
		}
		return out
	}
	if err := s.WriteCassette("c", batch("a", 3), true); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteCassette("c", batch("b", 2), false); err != nil {
		t.Fatal(err)
	}
	got, err := s.Interactions("c")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for i, in := range got {
		if in.Seq != uint64(i+1) {
			t.Fatalf("seq %d at %d", in.Seq, i)
		}
		keys = append(keys, in.Key)
	}
	if fmt.Sprint(keys) != "[a-0 a-1 a-0 b-0 b-1]" {
		t.Fatalf("after replace then append: %v", keys)
	}
	if seqs, _ := s.Seqs("c", "a-0"); fmt.Sprint(seqs) != "[1 3]" {
		t.Fatalf("index for a-0: %v", seqs)
	}
	if err := s.WriteCassette("c", batch("z", 1), true); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Interactions("c"); len(got) != 1 || got[0].Seq != 1 || got[0].Key != "z-0" {
		t.Fatalf("replace did not start the cassette fresh: %+v", got)
	}
	if err := s.WriteCassette("", batch("x", 1), true); err == nil || errors.Is(err, ErrNoCassette) {
		t.Fatalf("empty name: %v", err)
	}
	if info, _ := s.Cassette("c"); info.Interactions != 1 {
		t.Fatalf("count after a refused write: %d", info.Interactions)
	}
}
