package store

import (
	"errors"
	"testing"
	"time"
)

func TestFixtureHistoryUnprovenToProven(t *testing.T) {
	s := openTest(t)
	if _, err := s.FixtureHistory("f1"); !errors.Is(err, ErrNoFixture) {
		t.Fatalf("unknown fixture: %v, want ErrNoFixture", err)
	}
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	steps := []struct {
		ev     FixtureEvent
		proven bool
		passes int
		fails  int
	}{
		{FixtureEvent{At: t0, RunID: "r1", Status: "passed", CodeVersion: "v1"}, false, 1, 0},
		{FixtureEvent{At: t0.Add(time.Minute), RunID: "r2", Status: "skipped"}, false, 1, 0},
		{FixtureEvent{At: t0.Add(2 * time.Minute), RunID: "r3", Status: "failed", FailureClass: "empty_output", CodeVersion: "broken"}, false, 1, 1},
		{FixtureEvent{At: t0.Add(3 * time.Minute), RunID: "r4", Status: "failed", FailureClass: "empty_output", CodeVersion: "broken"}, false, 1, 2},
		{FixtureEvent{At: t0.Add(4 * time.Minute), RunID: "r5", Status: "passed", CodeVersion: "fixed"}, true, 2, 2},
		{FixtureEvent{At: t0.Add(5 * time.Minute), RunID: "r6", Status: "failed", CodeVersion: "again"}, true, 2, 3},
	}
	for i, st := range steps {
		h, err := s.RecordFixtureReplay("f1", "empty_output", st.ev)
		if err != nil {
			t.Fatal(err)
		}
		if h.Proven() != st.proven || h.Passes != st.passes || h.Failures != st.fails || h.Replays != i+1 {
			t.Fatalf("step %d: proven=%v passes=%d failures=%d replays=%d", i, h.Proven(), h.Passes, h.Failures, h.Replays)
		}
	}
	h, err := s.FixtureHistory("f1")
	if err != nil {
		t.Fatal(err)
	}
	if h.FirstFailure.RunID != "r3" || h.ProofFailure.RunID != "r3" || h.ProofPass.RunID != "r5" || h.ProofPass.CodeVersion != "fixed" ||
		h.Last.RunID != "r6" || h.LastVerdict.RunID != "r6" || !h.ProvenFor("empty_output") || h.ProvenFor("timeout") {
		t.Fatalf("history: %+v", h)
	}
	all, err := s.FixtureHistories()
	if err != nil || len(all) != 1 || all["f1"].Replays != 6 {
		t.Fatalf("FixtureHistories: %v %+v", err, all)
	}
	if _, err := s.RecordFixtureReplay("", "", FixtureEvent{Status: "passed"}); err == nil {
		t.Fatal("empty id accepted")
	}
}

// TestFixtureProofOnlyByProtectedClass: a fixture is proven only by a
// failure with the class it protects followed by a pass; other failures
// are history.
func TestFixtureProofOnlyByProtectedClass(t *testing.T) {
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	type step struct {
		protects, status, class string
	}
	cases := []struct {
		name        string
		steps       []step
		proven      bool
		proofFail   int // index of the step that is ProofFailure, -1: none
		firstFail   int // index of FirstFailure, -1: none
		wantProtect string
	}{
		{"protected class then pass", []step{{"empty_output", "failed", "empty_output"}, {"empty_output", "passed", ""}}, true, 0, 0, "empty_output"},
		{"missing command then pass", []step{{"empty_output", "failed", "nonzero_exit"}, {"empty_output", "passed", ""}}, false, -1, 0, "empty_output"},
		{"timeout then pass", []step{{"empty_output", "failed", "timeout"}, {"empty_output", "passed", ""}}, false, -1, 0, "empty_output"},
		{"other failure first, then the class, then pass", []step{{"empty_output", "failed", "nonzero_exit"}, {"empty_output", "failed", "empty_output"}, {"empty_output", "passed", ""}}, true, 1, 0, "empty_output"},
		{"blocked with the class counts", []step{{"mutation_blocked", "blocked", "mutation_blocked"}, {"mutation_blocked", "passed", ""}}, true, 0, 0, "mutation_blocked"},
		{"pass before the failure proves nothing", []step{{"empty_output", "passed", ""}, {"empty_output", "failed", "empty_output"}}, false, 1, 1, "empty_output"},
		{"no protected class: never proven", []step{{"", "failed", "empty_output"}, {"", "passed", ""}}, false, -1, 0, ""},
		{"skipped and inconclusive are no failure", []step{{"empty_output", "skipped", "empty_output"}, {"empty_output", "inconclusive", "empty_output"}, {"empty_output", "passed", ""}}, false, -1, -1, "empty_output"},
		{"a new protected class starts over", []step{{"empty_output", "failed", "empty_output"}, {"schema_mismatch", "passed", ""}}, false, -1, 0, "schema_mismatch"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := openTest(t)
			var h FixtureHistory
			var err error
			for i, st := range c.steps {
				ev := FixtureEvent{At: t0.Add(time.Duration(i) * time.Minute), RunID: string(rune('a' + i)), Status: st.status, FailureClass: st.class}
				if h, err = s.RecordFixtureReplay("f", st.protects, ev); err != nil {
					t.Fatal(err)
				}
			}
			if h.Proven() != c.proven || h.Protects != c.wantProtect {
				t.Fatalf("proven %v protects %q, want %v %q: %+v", h.Proven(), h.Protects, c.proven, c.wantProtect, h)
			}
			runAt := func(e *FixtureEvent) int {
				if e == nil {
					return -1
				}
				return int(e.RunID[0] - 'a')
			}
			if runAt(h.ProofFailure) != c.proofFail || runAt(h.FirstFailure) != c.firstFail {
				t.Fatalf("proof failure at %d, first failure at %d; want %d, %d", runAt(h.ProofFailure), runAt(h.FirstFailure), c.proofFail, c.firstFail)
			}
		})
	}
}
