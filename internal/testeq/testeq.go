// Package testeq owns the field-by-field comparisons tests make of the
// store's records and of HTTP headers, without reflection: nil and empty
// apart (a codec must give back exactly what it was given), time.Time with
// ==. Only tests import it, so it is not linked into the binary.
//
// The store's own tests keep their copy of the store comparisons
// (store/helpers_test.go: they cannot import this package, which imports
// store); that copy lists each type's fields so that a field added to the
// store stops it compiling. Add the field here too.
package testeq

import (
	"bytes"
	"maps"
	"net/http"
	"slices"

	"github.com/cassetteproxy/cassetteproxy/store"
)

// Bytes is bytes.Equal that tells nil and empty apart.
func Bytes(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }

// Slice is slices.Equal that tells nil and empty apart.
func Slice[T comparable](a, b []T) bool { return (a == nil) == (b == nil) && slices.Equal(a, b) }

// Ptr: both nil, or both set to equal values.
func Ptr[T comparable](a, b *T) bool { return a == b || a != nil && b != nil && *a == *b }

// Header compares two headers as wholes, telling a nil header from an
// empty one and a nil value from an empty one.
func Header(a, b http.Header) bool {
	return (a == nil) == (b == nil) && maps.EqualFunc(a, b, Slice[string])
}

// SameHeaderMap reports whether a and b are the same map: a key written
// into one shows in the other. The key is removed again.
func SameHeaderMap(a, b http.Header) bool {
	if a == nil || b == nil {
		return false
	}
	const probe = "X-Same-Map-Probe"
	a[probe] = nil
	_, ok := b[probe]
	delete(a, probe)
	return ok
}

// Interaction compares every field of two interactions.
func Interaction(a, b store.Interaction) bool {
	return a.Seq == b.Seq && a.Key == b.Key && a.RecordedAt == b.RecordedAt && a.DurationMs == b.DurationMs &&
		a.RunID == b.RunID && Request(a.Request, b.Request) && Response(a.Response, b.Response)
}

// Interactions compares two lists of interactions, element by element.
func Interactions(a, b []store.Interaction) bool {
	return (a == nil) == (b == nil) && slices.EqualFunc(a, b, Interaction)
}

// Request compares every field of two recorded requests.
func Request(a, b store.Request) bool {
	return a.Method == b.Method && a.URL == b.URL && Header(a.Header, b.Header) && Bytes(a.Body, b.Body) &&
		a.ContentEncoding == b.ContentEncoding && Marker(a.NotRecorded, b.NotRecorded)
}

// Response compares every field of two recorded responses.
func Response(a, b store.Response) bool {
	return a.Status == b.Status && Header(a.Header, b.Header) && Bytes(a.Body, b.Body) &&
		a.ContentEncoding == b.ContentEncoding && a.Streamed == b.Streamed && Events(a.Events, b.Events) &&
		a.Incomplete == b.Incomplete && a.ContentLength == b.ContentLength && a.Upgrade == b.Upgrade &&
		Marker(a.NotRecorded, b.NotRecorded)
}

// Events compares two lists of stream events.
func Events(a, b []store.Event) bool {
	return (a == nil) == (b == nil) && slices.EqualFunc(a, b, func(a, b store.Event) bool {
		return a.OffsetMs == b.OffsetMs && Bytes(a.Data, b.Data) && a.Dir == b.Dir && a.Binary == b.Binary
	})
}

// Marker compares two body-not-recorded markers (nil: the body is kept).
func Marker(a, b *store.BodyMarker) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Size == b.Size && a.SHA256 == b.SHA256 && a.Reason == b.Reason && a.Policy == b.Policy &&
		Bytes(a.Fields, b.Fields) && a.Match == b.Match
}

// Run compares every field of two run records.
func Run(a, b store.Run) bool {
	return a.RunID == b.RunID && a.RunType == b.RunType && a.Host == b.Host && a.FixtureID == b.FixtureID &&
		a.TaskID == b.TaskID && a.Attempt == b.Attempt && a.AgentName == b.AgentName && a.StartedAt == b.StartedAt &&
		a.CodeVersion == b.CodeVersion && a.Model == b.Model && a.PromptVersion == b.PromptVersion &&
		Slice(a.ToolAllowlist, b.ToolAllowlist) && a.TimeoutSeconds == b.TimeoutSeconds &&
		a.InputSHA256 == b.InputSHA256 && a.InputFile == b.InputFile && Slice(a.StateRefs, b.StateRefs) &&
		Slice(a.ArtifactRefs, b.ArtifactRefs) && a.Status == b.Status && a.FailureClass == b.FailureClass &&
		a.FailureReason == b.FailureReason && Ptr(a.ClosedAt, b.ClosedAt) &&
		a.Cassette == b.Cassette && a.Mode == b.Mode && Slice(a.Command, b.Command) &&
		(a.Env == nil) == (b.Env == nil) && maps.Equal(a.Env, b.Env) && a.Dir == b.Dir && a.PID == b.PID &&
		Ptr(a.ExitCode, b.ExitCode) && a.Signal == b.Signal && Slice(a.Reasons, b.Reasons) &&
		a.Isolated == b.Isolated && a.Interactions == b.Interactions && Slice(a.Misses, b.Misses) &&
		Slice(a.Blocked, b.Blocked) && a.Errors == b.Errors && a.RecordingsLost == b.RecordingsLost &&
		a.ReplayedIncomplete == b.ReplayedIncomplete && Slice(a.Hosts, b.Hosts) && Slice(a.Models, b.Models) &&
		Slice(a.Calls, b.Calls) && a.CallsOmitted == b.CallsOmitted && SideEffects(a.SideEffects, b.SideEffects) &&
		(a.Events == nil) == (b.Events == nil) && slices.EqualFunc(a.Events, b.Events, RunEvent) &&
		a.UpdatedAt == b.UpdatedAt
}

// RunEvent compares every field of two run events.
func RunEvent(a, b store.RunEvent) bool {
	return a.Seq == b.Seq && a.At == b.At && a.Kind == b.Kind && a.Name == b.Name && Bytes(a.Data, b.Data) &&
		a.Path == b.Path && a.Ref == b.Ref && a.Status == b.Status && Slice(a.ArtifactRefs, b.ArtifactRefs) &&
		SideEffects(a.SideEffects, b.SideEffects)
}

// SideEffects compares two lists of expected side effects.
func SideEffects(a, b []store.SideEffect) bool {
	return (a == nil) == (b == nil) && slices.EqualFunc(a, b, func(a, b store.SideEffect) bool {
		return a.Method == b.Method && a.URL == b.URL && a.Status == b.Status && Ptr(a.Min, b.Min) && Ptr(a.Max, b.Max)
	})
}
