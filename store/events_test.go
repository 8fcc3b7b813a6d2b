package store

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestRunEvents: events are committed one by one, read back in order by
// GetRun, never clobbered by rewriting the record, never written twice
// under one number, and kept apart per run.
func TestRunEvents(t *testing.T) {
	s := openTest(t)
	t0 := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	if err := s.PutRun(Run{RunID: "r1", StartedAt: t0, Status: RunStatusRunning}); err != nil {
		t.Fatal(err)
	}
	for i, kind := range []string{"checkpoint", "artifact", "claim"} {
		ev := RunEvent{Seq: i + 1, At: t0.Add(time.Duration(i) * time.Second), Kind: kind, Name: kind, Data: json.RawMessage(`{"n":1}`)}
		if err := s.AppendRunEvent("r1", ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AppendRunEvent("r2", RunEvent{Seq: 1, Kind: "note", Name: "other run"}); err != nil {
		t.Fatal(err)
	}
	// The runner rewrites the record while the child works, with whatever
	// it holds: the events stay.
	if err := s.PutRun(Run{RunID: "r1", StartedAt: t0, Status: "passed", Events: []RunEvent{{Seq: 9, Kind: "bogus"}}}); err != nil {
		t.Fatal(err)
	}
	err := s.AppendRunEvent("r1", RunEvent{Seq: 2, Kind: "note", Name: "again"})
	if err == nil || !strings.Contains(err.Error(), "already has event 2") {
		t.Fatalf("a second event 2: %v", err)
	}
	r, err := s.GetRun("r1")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range r.Events {
		got = append(got, e.Kind)
	}
	if strings.Join(got, ",") != "checkpoint,artifact,claim" || string(r.Events[0].Data) != `{"n":1}` {
		t.Fatalf("events %+v", r.Events)
	}
	list, err := s.ListRuns()
	if err != nil || len(list) != 1 || list[0].Events != nil {
		t.Fatalf("ListRuns: %+v %v", list, err)
	}
	if evs, err := s.RunEvents("none"); err != nil || evs != nil {
		t.Fatalf("events of an unknown run: %v %v", evs, err)
	}
	if err := s.AppendRunEvent("", RunEvent{Seq: 1}); err == nil {
		t.Fatal("an event without a run id was stored")
	}
	if err := s.AppendRunEvent("r1", RunEvent{Seq: 0}); err == nil {
		t.Fatal("an event numbered 0 was stored")
	}
}

// TestTimeline: events and requests merge by time; ties keep each list's order.
func TestTimeline(t *testing.T) {
	t0 := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	r := Run{
		Calls: []RunCall{{At: t0.Add(1 * time.Second), Method: "GET", URL: "u1"}, {At: t0.Add(3 * time.Second), Method: "POST", URL: "u2"}},
		Events: []RunEvent{{Seq: 1, At: t0, Kind: "checkpoint"}, {Seq: 2, At: t0.Add(2 * time.Second), Kind: "artifact"},
			{Seq: 3, At: t0.Add(3 * time.Second), Kind: "claim"}},
	}
	var got []string
	for _, e := range r.Timeline() {
		if e.Event != nil {
			got = append(got, e.Event.Kind)
		} else {
			got = append(got, e.Request.Method)
		}
	}
	if strings.Join(got, ",") != "checkpoint,GET,artifact,POST,claim" {
		t.Fatalf("timeline %v", got)
	}
}
