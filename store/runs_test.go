package store

import (
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestRunRoundTrip(t *testing.T) {
	t0 := time.Date(2025, 6, 1, 12, 0, 0, 123456789, time.UTC)
	closed := t0.Add(90 * time.Second)
	code := 3
	tests := []struct {
		name string
		run  Run
	}{
		{"minimal open", Run{RunID: "a", RunType: "production", Attempt: 1, StartedAt: t0, Status: RunStatusRunning, Command: []string{"sh"}, UpdatedAt: t0}},
		{"full closed", Run{
			RunID: "b", RunType: "replay", FixtureID: "fx", TaskID: "t1", Attempt: 2, AgentName: "ag",
			StartedAt: t0, CodeVersion: "abc123", Model: "gpt-x", PromptVersion: "p3",
			ToolAllowlist: []string{"search"}, TimeoutSeconds: 1.5, InputSHA256: "00ff",
			StateRefs: []string{"s3://x"}, ArtifactRefs: []string{"/tmp/out.json"},
			Status: "failed", FailureClass: "unrecorded_request", FailureReason: "why", ClosedAt: &closed,
			Cassette: "c", Mode: "strict", Command: []string{"sh", "-c", "x y"}, Dir: "/w", PID: 42,
			ExitCode: &code, Signal: "terminated",
			Reasons:      []RunReason{{"failed", "unrecorded_request", "GET x"}, {"failed", "empty_output", "y"}},
			Interactions: 7, Misses: []RunRequest{{"GET", "https://h/x", "unrecorded_request"}},
			Blocked: []RunRequest{{"GET", "https://h/x", "unrecorded_request"}, {"POST", "https://h/y", "mutation_blocked"}},
			Errors:  1, Hosts: []string{"h"}, Models: []string{"gpt-x"}, UpdatedAt: closed,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openTest(t)
			if err := s.PutRun(tc.run); err != nil {
				t.Fatal(err)
			}
			got, err := s.GetRun(tc.run.RunID)
			if err != nil {
				t.Fatal(err)
			}
			if !equalRun(got, tc.run) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, tc.run)
			}
			if got.Open() != (tc.run.ClosedAt == nil) {
				t.Fatalf("Open() = %v", got.Open())
			}
		})
	}
}

func TestRunErrors(t *testing.T) {
	s := openTest(t)
	tests := []struct {
		name string
		op   func() error
		is   error
	}{
		{"get unknown", func() error { _, err := s.GetRun("nope"); return err }, ErrNoRun},
		{"update unknown", func() error { return s.UpdateRun("nope", func(*Run) error { return nil }) }, ErrNoRun},
		{"put without id", func() error { return s.PutRun(Run{}) }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.op()
			if err == nil {
				t.Fatal("want an error")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("error %v does not match %v", err, tc.is)
			}
		})
	}
}

func TestRunListAndUpdate(t *testing.T) {
	s := openTest(t)
	t0 := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	// ids out of time order: the list is by started_at.
	for i, id := range []string{"z", "a", "m"} {
		if err := s.PutRun(Run{RunID: id, StartedAt: t0.Add(time.Duration(i) * time.Minute), Status: RunStatusRunning}); err != nil {
			t.Fatal(err)
		}
	}
	runs, err := s.ListRuns()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range runs {
		ids = append(ids, r.RunID)
	}
	if !slices.Equal(ids, []string{"z", "a", "m"}) {
		t.Fatalf("order %v", ids)
	}

	boom := errors.New("boom")
	if err := s.UpdateRun("a", func(r *Run) error { r.Status = "failed"; return boom }); !errors.Is(err, boom) {
		t.Fatalf("update error: %v", err)
	}
	if r, _ := s.GetRun("a"); r.Status != RunStatusRunning {
		t.Fatalf("failed update was written: %s", r.Status)
	}
	if err := s.UpdateRun("a", func(r *Run) error { r.Status = "passed"; r.RunID = "other"; return nil }); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.GetRun("a"); r.Status != "passed" || r.RunID != "a" {
		t.Fatalf("after update: %+v", r)
	}
	if _, err := s.GetRun("other"); !errors.Is(err, ErrNoRun) {
		t.Fatalf("update must not move the record: %v", err)
	}
}

func TestRunsEmptyAndReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cassettes.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	runs, err := s.ListRuns()
	if err != nil || len(runs) != 0 || runs == nil {
		t.Fatalf("empty store: %v %v", runs, err)
	}
	s.Close()
	ro, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, err := ro.ListRuns(); err != nil {
		t.Fatal(err)
	}
	if err := ro.PutRun(Run{RunID: "x"}); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("read-only put: %v", err)
	}
	if err := ro.UpdateRun("x", func(*Run) error { return nil }); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("read-only update: %v", err)
	}
}
