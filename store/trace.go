package store

import (
	"sort"
	"time"
)

// TraceEntry is one step of a run's timeline: an event the agent reported,
// or a request the proxy answered. Exactly one is set.
type TraceEntry struct {
	Event   *RunEvent `json:"event,omitempty"`
	Request *RunCall  `json:"request,omitempty"`
}

// At is when the step happened.
func (e TraceEntry) At() time.Time {
	if e.Event != nil {
		return e.Event.At
	}
	if e.Request != nil {
		return e.Request.At
	}
	return time.Time{}
}

// Timeline merges the run's events and requests into one list ordered by
// time; each keeps its own order where times tie.
func (r *Run) Timeline() []TraceEntry {
	out := make([]TraceEntry, 0, len(r.Events)+len(r.Calls))
	for i := range r.Calls {
		out = append(out, TraceEntry{Request: &r.Calls[i]})
	}
	for i := range r.Events {
		out = append(out, TraceEntry{Event: &r.Events[i]})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At().Before(out[j].At()) })
	return out
}
