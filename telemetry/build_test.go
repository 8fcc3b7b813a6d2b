package telemetry

import (
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"

	"github.com/cassetteproxy/cassetteproxy/store"
)

func attr(kvs []attribute.KeyValue, key string) (string, bool) {
	for _, kv := range kvs {
		if string(kv.Key) == key {
			return kv.Value.Emit(), true
		}
	}
	return "", false
}

func TestBuildRootStatus(t *testing.T) {
	start := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	closed := start.Add(time.Second)
	cases := []struct {
		status, class, reason string
		closed                *time.Time
		want                  codes.Code
		msg                   string
	}{
		{"passed", "", "", &closed, codes.Ok, ""},
		{"failed", "empty_output", "report.json is empty", &closed, codes.Error, "failed/empty_output: report.json is empty"},
		{"blocked", "unrecorded_request", "", &closed, codes.Error, "blocked/unrecorded_request"},
		{"degraded", "recording_lost", "disk full", &closed, codes.Error, "degraded/recording_lost: disk full"},
		{"running", "", "", nil, codes.Unset, ""},
	}
	for _, tc := range cases {
		rec := store.Run{RunID: "r1", RunType: "production", StartedAt: start, UpdatedAt: start.Add(500 * time.Millisecond),
			Status: tc.status, FailureClass: tc.class, FailureReason: tc.reason, ClosedAt: tc.closed}
		spans := Build(Run{Record: rec})
		root := spans[0]
		if len(spans) != 1 || root.Status != tc.want || root.StatusMsg != tc.msg || root.Name != "cassetteproxy production" {
			t.Errorf("%s: %d spans, status %v %q", tc.status, len(spans), root.Status, root.StatusMsg)
		}
		wantEnd := start.Add(500 * time.Millisecond) // an open run ends at its last update
		if tc.closed != nil {
			wantEnd = closed
		}
		if !root.End.Equal(wantEnd) {
			t.Errorf("%s: root ends %v, want %v", tc.status, root.End, wantEnd)
		}
		if _, ok := attr(root.Attrs, "cassetteproxy.failure_class"); ok != (tc.class != "") {
			t.Errorf("%s: failure_class attribute present = %v", tc.status, ok)
		}
	}
}

func TestBuildCalls(t *testing.T) {
	start := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	closed := start.Add(2 * time.Second)
	u := "http://127.0.0.1:9000/v1/chat/completions"
	llm := func(runID string, ms int64, model string) store.Interaction {
		in := exchange("POST", u, `{"model":"`+model+`","messages":[]}`, `{"usage":{"prompt_tokens":1,"completion_tokens":2}}`)
		in.RunID, in.DurationMs = runID, ms
		return in
	}
	rec := store.Run{RunID: "now", StartedAt: start, ClosedAt: &closed, Status: "passed", Calls: []store.RunCall{
		{At: start, Method: "POST", URL: u, Decision: "recorded", Status: 200},
		{At: start.Add(time.Second), Method: "POST", URL: u, Decision: "recorded", Status: 200},
		{At: start.Add(1500 * time.Millisecond), Method: "GET", URL: "https://tools.example.com/x", Decision: "error", Reason: "dial tcp: refused", Status: 502},
		{At: start.Add(1600 * time.Millisecond), Method: "GET", URL: "https://tools.example.com/y", Decision: "replayed", Status: 404},
	}}
	// Appended to an older recording: the run's own interactions are the
	// ones its calls were recorded into, in order.
	ins := []store.Interaction{llm("older", 50, "old-model"), llm("now", 300, "first"), llm("now", 5000, "second")}
	spans := Build(Run{Record: rec, Interactions: ins})
	if len(spans) != 5 {
		t.Fatalf("%d spans", len(spans))
	}
	cases := []struct {
		i      int
		name   string
		model  string
		dur    time.Duration
		status codes.Code
		errTyp string
	}{
		{1, "chat first", "first", 300 * time.Millisecond, codes.Unset, ""},
		{2, "chat second", "second", time.Second, codes.Unset, ""}, // capped at the run's end
		{3, "GET tools.example.com:443", "", 0, codes.Error, "dial tcp: refused"},
		{4, "GET tools.example.com:443", "", 0, codes.Error, "404"},
	}
	for _, tc := range cases {
		s := spans[tc.i]
		model, _ := attr(s.Attrs, "gen_ai.request.model")
		errTyp, _ := attr(s.Attrs, "error.type")
		if s.Name != tc.name || model != tc.model || s.End.Sub(s.Start) != tc.dur || s.Status != tc.status || errTyp != tc.errTyp {
			t.Errorf("span %d: %q model %q lasts %v status %v error.type %q", tc.i, s.Name, model, s.End.Sub(s.Start), s.Status, errTyp)
		}
	}
}
