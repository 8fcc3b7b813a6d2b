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
		h, err := s.RecordFixtureReplay("f1", st.ev)
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
	if h.FirstFailure.RunID != "r3" || h.FirstPassAfterFailure.RunID != "r5" || h.FirstPassAfterFailure.CodeVersion != "fixed" ||
		h.Last.RunID != "r6" || h.LastVerdict.RunID != "r6" {
		t.Fatalf("history: %+v", h)
	}
	all, err := s.FixtureHistories()
	if err != nil || len(all) != 1 || all["f1"].Replays != 6 {
		t.Fatalf("FixtureHistories: %v %+v", err, all)
	}
	if _, err := s.RecordFixtureReplay("", FixtureEvent{Status: "passed"}); err == nil {
		t.Fatal("empty id accepted")
	}
}
