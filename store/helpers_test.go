package store

import (
	"bytes"
	"fmt"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// openTest opens a fresh store in a temporary folder; at cleanup it closes the
// store and runs bbolt's consistency check on the file.
func openTest(t testing.TB) *Store {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cassettes.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeAndCheck(t, s) })
	return s
}

// closeAndCheck closes s, reopens its file read-only and runs tx.Check.
func closeAndCheck(t testing.TB, s *Store) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	ro, err := Open(s.Path(), Options{ReadOnly: true})
	if err != nil {
		t.Errorf("reopen for check: %v", err)
		return
	}
	defer ro.Close()
	if err := ro.Check(); err != nil {
		t.Errorf("tx.Check: %v", err)
	}
}

// fullInteraction sets every field, with a binary request body, a streamed
// response with events and a marker.
func fullInteraction() Interaction {
	bin := make([]byte, 512)
	for i := range bin {
		bin[i] = byte(i)
	}
	return Interaction{
		Seq:        0,
		Key:        "POST https://api.example.com/v1/chat?x=1 body:sha256=abc",
		RecordedAt: time.Date(2025, 3, 4, 5, 6, 7, 890123456, time.UTC),
		DurationMs: 1234,
		RunID:      "run-42",
		Request: Request{
			Method: "POST",
			URL:    "https://api.example.com/v1/chat?x=1",
			Header: http.Header{
				"Content-Type": {"application/octet-stream"},
				"X-Multi":      {"a", "b", ""},
				"X-Empty":      {},
				"X-Nil":        nil,
				"X-Bin":        {"\xff\xfe\x00zero"},
			},
			Body:            bin,
			ContentEncoding: "gzip",
		},
		Response: Response{
			Status:          207,
			Header:          http.Header{"Content-Type": {"text/event-stream"}},
			Body:            []byte("data: one\n\ndata: two\n\n"),
			ContentEncoding: "br",
			Streamed:        true,
			Events: []Event{
				{OffsetMs: 0, Data: []byte("data: one\n\n")},
				{OffsetMs: 17, Data: []byte("data: two\n\n")},
				{OffsetMs: -1, Data: []byte{}},
				{OffsetMs: 99, Data: nil},
			},
			Incomplete:    true,
			ContentLength: 1 << 33,
			Upgrade:       true,
			NotRecorded:   &BodyMarker{Size: 1 << 40, SHA256: "e3b0c442", Reason: "body_not_recorded"},
		},
	}
}

// sample is a small interaction identified by writer and index.
func sample(writer, i int, key string) Interaction {
	return Interaction{
		Key:        key,
		RecordedAt: time.Unix(1700000000+int64(i), 0).UTC(),
		DurationMs: int64(i),
		Request: Request{
			Method: "GET",
			URL:    fmt.Sprintf("https://example.com/w%d/i%d", writer, i),
			Header: http.Header{"Accept": {"application/json"}},
		},
		Response: Response{
			Status: 200,
			Header: http.Header{"Content-Type": {"application/json"}},
			Body:   fmt.Appendf(nil, `{"writer":%d,"i":%d}`, writer, i),
		},
	}
}

// The equal helpers below compare every field of the store's types, nil
// and empty apart (the codecs must give back exactly what they were given:
// TestCodecNilEmptyAreDistinct), and time.Time with ==. Each one lists its
// type's fields in an unkeyed literal first, so a field added to the type
// stops this file compiling until it is compared too. Other packages' tests use
// internal/testeq, which holds the same comparisons: add a new field there
// too.

// equalBytes is bytes.Equal that tells nil and empty apart.
func equalBytes(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }

// equalSlice is slices.Equal that tells nil and empty apart.
func equalSlice[T comparable](a, b []T) bool { return (a == nil) == (b == nil) && slices.Equal(a, b) }

// equalPtr: both nil, or both set to equal values.
func equalPtr[T comparable](a, b *T) bool { return a == b || a != nil && b != nil && *a == *b }

// equalHeader tells a nil header from an empty one, and a nil value from an
// empty one.
func equalHeader(a, b http.Header) bool {
	return (a == nil) == (b == nil) && maps.EqualFunc(a, b, equalSlice[string])
}

func equalInteraction(a, b Interaction) bool {
	_ = Interaction{a.Seq, a.Key, a.RecordedAt, a.DurationMs, a.RunID, a.Request, a.Response}
	return a.Seq == b.Seq && a.Key == b.Key && a.RecordedAt == b.RecordedAt && a.DurationMs == b.DurationMs &&
		a.RunID == b.RunID && equalRequest(a.Request, b.Request) && equalResponse(a.Response, b.Response)
}

func equalInteractions(a, b []Interaction) bool {
	return (a == nil) == (b == nil) && slices.EqualFunc(a, b, equalInteraction)
}

func equalRequest(a, b Request) bool {
	_ = Request{a.Method, a.URL, a.Header, a.Body, a.ContentEncoding, a.NotRecorded}
	return a.Method == b.Method && a.URL == b.URL && equalHeader(a.Header, b.Header) && equalBytes(a.Body, b.Body) &&
		a.ContentEncoding == b.ContentEncoding && equalMarker(a.NotRecorded, b.NotRecorded)
}

func equalResponse(a, b Response) bool {
	_ = Response{a.Status, a.Header, a.Body, a.ContentEncoding, a.Streamed, a.Events, a.Incomplete, a.ContentLength, a.Upgrade, a.NotRecorded}
	return a.Status == b.Status && equalHeader(a.Header, b.Header) && equalBytes(a.Body, b.Body) &&
		a.ContentEncoding == b.ContentEncoding && a.Streamed == b.Streamed && equalEvents(a.Events, b.Events) &&
		a.Incomplete == b.Incomplete && a.ContentLength == b.ContentLength && a.Upgrade == b.Upgrade &&
		equalMarker(a.NotRecorded, b.NotRecorded)
}

func equalEvent(a, b Event) bool {
	_ = Event{a.OffsetMs, a.Data, a.Dir, a.Binary}
	return a.OffsetMs == b.OffsetMs && equalBytes(a.Data, b.Data) && a.Dir == b.Dir && a.Binary == b.Binary
}

func equalEvents(a, b []Event) bool {
	return (a == nil) == (b == nil) && slices.EqualFunc(a, b, equalEvent)
}

func equalMarker(a, b *BodyMarker) bool {
	if a == nil || b == nil {
		return a == b
	}
	_ = BodyMarker{a.Size, a.SHA256, a.Reason, a.Policy, a.Fields, a.Match}
	return a.Size == b.Size && a.SHA256 == b.SHA256 && a.Reason == b.Reason && a.Policy == b.Policy &&
		equalBytes(a.Fields, b.Fields) && a.Match == b.Match
}

func equalRun(a, b Run) bool {
	_ = Run{a.RunID, a.RunType, a.Host, a.FixtureID, a.TaskID, a.Attempt, a.AgentName, a.StartedAt, a.CodeVersion,
		a.Model, a.PromptVersion, a.ToolAllowlist, a.TimeoutSeconds, a.InputSHA256, a.InputFile, a.StateRefs,
		a.ArtifactRefs, a.Status, a.FailureClass, a.FailureReason, a.ClosedAt,
		a.Cassette, a.Mode, a.Command, a.Env, a.Dir, a.PID, a.ExitCode, a.Signal, a.Reasons, a.Isolated,
		a.Interactions, a.Misses, a.Blocked, a.Errors, a.RecordingsLost, a.ReplayedIncomplete, a.Hosts, a.Models,
		a.Calls, a.CallsOmitted, a.SideEffects, a.Events, a.UpdatedAt}
	return a.RunID == b.RunID && a.RunType == b.RunType && a.Host == b.Host && a.FixtureID == b.FixtureID &&
		a.TaskID == b.TaskID && a.Attempt == b.Attempt && a.AgentName == b.AgentName && a.StartedAt == b.StartedAt &&
		a.CodeVersion == b.CodeVersion && a.Model == b.Model && a.PromptVersion == b.PromptVersion &&
		equalSlice(a.ToolAllowlist, b.ToolAllowlist) && a.TimeoutSeconds == b.TimeoutSeconds &&
		a.InputSHA256 == b.InputSHA256 && a.InputFile == b.InputFile && equalSlice(a.StateRefs, b.StateRefs) &&
		equalSlice(a.ArtifactRefs, b.ArtifactRefs) && a.Status == b.Status && a.FailureClass == b.FailureClass &&
		a.FailureReason == b.FailureReason && equalPtr(a.ClosedAt, b.ClosedAt) &&
		a.Cassette == b.Cassette && a.Mode == b.Mode && equalSlice(a.Command, b.Command) &&
		(a.Env == nil) == (b.Env == nil) && maps.Equal(a.Env, b.Env) && a.Dir == b.Dir && a.PID == b.PID &&
		equalPtr(a.ExitCode, b.ExitCode) && a.Signal == b.Signal && equalSlice(a.Reasons, b.Reasons) &&
		a.Isolated == b.Isolated && a.Interactions == b.Interactions && equalSlice(a.Misses, b.Misses) &&
		equalSlice(a.Blocked, b.Blocked) && a.Errors == b.Errors && a.RecordingsLost == b.RecordingsLost &&
		a.ReplayedIncomplete == b.ReplayedIncomplete && equalSlice(a.Hosts, b.Hosts) && equalSlice(a.Models, b.Models) &&
		equalSlice(a.Calls, b.Calls) && a.CallsOmitted == b.CallsOmitted && equalSideEffects(a.SideEffects, b.SideEffects) &&
		(a.Events == nil) == (b.Events == nil) && slices.EqualFunc(a.Events, b.Events, equalRunEvent) &&
		a.UpdatedAt == b.UpdatedAt
}

func equalRunEvent(a, b RunEvent) bool {
	_ = RunEvent{a.Seq, a.At, a.Kind, a.Name, a.Data, a.Path, a.Ref, a.Status, a.ArtifactRefs, a.SideEffects}
	return a.Seq == b.Seq && a.At == b.At && a.Kind == b.Kind && a.Name == b.Name && equalBytes(a.Data, b.Data) &&
		a.Path == b.Path && a.Ref == b.Ref && a.Status == b.Status && equalSlice(a.ArtifactRefs, b.ArtifactRefs) &&
		equalSideEffects(a.SideEffects, b.SideEffects)
}

func equalSideEffect(a, b SideEffect) bool {
	_ = SideEffect{a.Method, a.URL, a.Status, a.Min, a.Max}
	return a.Method == b.Method && a.URL == b.URL && a.Status == b.Status && equalPtr(a.Min, b.Min) && equalPtr(a.Max, b.Max)
}

func equalSideEffects(a, b []SideEffect) bool {
	return (a == nil) == (b == nil) && slices.EqualFunc(a, b, equalSideEffect)
}

func mustEqual(t testing.TB, got, want Interaction) {
	t.Helper()
	if !equalInteraction(got, want) {
		t.Fatalf("interaction mismatch\n got: %#v\nwant: %#v", got, want)
	}
}
