package telemetry

import (
	"encoding/hex"
	"net"
	"net/url"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/cassetteproxy/cassetteproxy/store"
)

// Build makes a run's spans: the root first (the run record's fields as
// attributes, the verdict as its status, the agent's events as span
// events, a link to the source run's trace), then one client span per
// tool call with HTTP semantic-convention attributes, and GenAI ones when
// the recorded exchange is an LLM call. Nothing is taken from a request or
// response but the redacted URL, the model names and the token counts.
func Build(r Run) []Span {
	rec := r.Record
	start := rec.StartedAt
	end := rec.UpdatedAt
	if rec.ClosedAt != nil {
		end = *rec.ClosedAt
	}
	if end.Before(start) {
		end = start
	}
	root := Span{Name: "cassetteproxy " + runTypeOr(rec.RunType), Kind: trace.SpanKindInternal, Start: start, End: end}
	root.Attrs = recordAttrs(rec)
	switch rec.Status {
	case "passed":
		root.Status = codes.Ok
	case store.RunStatusRunning, "":
		root.Status = codes.Unset
	default:
		root.Status = codes.Error
		root.StatusMsg = rec.Status
		if rec.FailureClass != "" {
			root.StatusMsg += "/" + rec.FailureClass
		}
		if rec.FailureReason != "" {
			root.StatusMsg += ": " + rec.FailureReason
		}
	}
	if r.SourceRunID != "" {
		src := trace.NewSpanContext(trace.SpanContextConfig{TraceID: TraceID(r.SourceRunID), SpanID: RootSpanID(r.SourceRunID),
			TraceFlags: trace.FlagsSampled, Remote: true})
		root.Links = append(root.Links, trace.Link{SpanContext: src, Attributes: []attribute.KeyValue{
			attribute.String("cassetteproxy.link", "source_run"), attribute.String("cassetteproxy.run_id", r.SourceRunID)}})
		root.Attrs = append(root.Attrs, attribute.String("cassetteproxy.source_run_id", r.SourceRunID),
			attribute.String("cassetteproxy.source_trace_id", hex.EncodeToString(func() []byte { t := TraceID(r.SourceRunID); return t[:] }())))
	}
	events := r.Events
	if events == nil {
		events = rec.Events
	}
	for _, ev := range events {
		root.Events = append(root.Events, eventOf(ev))
	}
	spans := []Span{root}

	used := make([]bool, len(r.Interactions))
	ours := false // the run recorded some: only those are its own
	for _, in := range r.Interactions {
		if in.RunID != "" && in.RunID == rec.RunID {
			ours = true
			break
		}
	}
	for _, c := range rec.Calls {
		var in *store.Interaction
		if c.Decision != "blocked" && c.Decision != "error" {
			for i := range r.Interactions {
				x := &r.Interactions[i]
				if !used[i] && x.Request.Method == c.Method && x.Request.URL == c.URL && (!ours || x.RunID == rec.RunID) {
					used[i], in = true, x
					break
				}
			}
		}
		spans = append(spans, callSpan(c, in, end))
	}
	return spans
}

func runTypeOr(t string) string {
	if t == "" {
		return "run"
	}
	return t
}

// recordAttrs are the run record's fields. The command line, its folder and
// the task's env are left out: what a trace needs is the verdict and the
// ids that find the record.
func recordAttrs(rec store.Run) []attribute.KeyValue {
	a := []attribute.KeyValue{
		attribute.String("cassetteproxy.run_id", rec.RunID),
		attribute.String("cassetteproxy.run_type", rec.RunType),
		attribute.String("cassetteproxy.status", rec.Status),
		attribute.Int("cassetteproxy.attempt", rec.Attempt),
		attribute.Bool("cassetteproxy.isolated", rec.Isolated),
		attribute.Int("cassetteproxy.interactions", rec.Interactions),
		attribute.Int("cassetteproxy.misses", len(rec.Misses)),
		attribute.Int("cassetteproxy.blocked", len(rec.Blocked)),
		attribute.Int("cassetteproxy.errors", rec.Errors),
		attribute.Int("cassetteproxy.recordings_lost", rec.RecordingsLost),
		attribute.Float64("cassetteproxy.timeout_seconds", rec.TimeoutSeconds),
	}
	str := func(k, v string) {
		if v != "" {
			a = append(a, attribute.String(k, v))
		}
	}
	list := func(k string, v []string) {
		if len(v) > 0 {
			a = append(a, attribute.StringSlice(k, v))
		}
	}
	str("cassetteproxy.fixture_id", rec.FixtureID)
	str("cassetteproxy.task_id", rec.TaskID)
	str("cassetteproxy.agent_name", rec.AgentName)
	str("cassetteproxy.code_version", rec.CodeVersion)
	str("cassetteproxy.model", rec.Model)
	str("cassetteproxy.prompt_version", rec.PromptVersion)
	str("cassetteproxy.input_sha256", rec.InputSHA256)
	str("cassetteproxy.failure_class", rec.FailureClass)
	str("cassetteproxy.failure_reason", rec.FailureReason)
	str("cassetteproxy.cassette", rec.Cassette)
	str("cassetteproxy.mode", rec.Mode)
	str("cassetteproxy.signal", rec.Signal)
	list("cassetteproxy.tool_allowlist", rec.ToolAllowlist)
	list("cassetteproxy.hosts", rec.Hosts)
	list("cassetteproxy.models_seen", rec.Models)
	if rec.ExitCode != nil {
		a = append(a, attribute.Int("cassetteproxy.exit_code", *rec.ExitCode))
	}
	if rec.CallsOmitted > 0 {
		a = append(a, attribute.Int("cassetteproxy.calls_omitted", rec.CallsOmitted))
	}
	if n := len(rec.Reasons); n > 0 {
		reasons := make([]string, 0, n)
		for _, x := range rec.Reasons {
			reasons = append(reasons, x.Status+"/"+x.Class+": "+x.Reason)
		}
		a = append(a, attribute.StringSlice("cassetteproxy.reasons", reasons))
	}
	return a
}

// eventOf is an agent event as a span event named by its kind.
func eventOf(ev store.RunEvent) SpanEvent {
	a := []attribute.KeyValue{attribute.Int("cassetteproxy.event.seq", ev.Seq)}
	str := func(k, v string) {
		if v != "" {
			a = append(a, attribute.String(k, v))
		}
	}
	str("cassetteproxy.event.name", ev.Name)
	str("cassetteproxy.event.path", ev.Path)
	str("cassetteproxy.event.ref", ev.Ref)
	str("cassetteproxy.event.status", ev.Status)
	if len(ev.ArtifactRefs) > 0 {
		a = append(a, attribute.StringSlice("cassetteproxy.event.artifact_refs", ev.ArtifactRefs))
	}
	if len(ev.Data) > 0 {
		d := string(ev.Data)
		if len(d) > maxEventData {
			d = d[:maxEventData] + "…"
		}
		a = append(a, attribute.String("cassetteproxy.event.data", d))
	}
	return SpanEvent{Name: ev.Kind, At: ev.At, Attrs: a}
}

// callSpan is one tool call: an HTTP client span, with GenAI attributes
// when its recorded exchange (in, may be nil) is an LLM call. Its end is
// the recorded exchange's duration after its start, capped by the run's.
func callSpan(c store.RunCall, in *store.Interaction, runEnd time.Time) Span {
	s := Span{Name: c.Method, Kind: trace.SpanKindClient, Start: c.At, End: c.At}
	s.Attrs = []attribute.KeyValue{
		attribute.String("http.request.method", c.Method),
		attribute.String("url.full", c.URL),
		attribute.String("cassetteproxy.decision", c.Decision),
	}
	if u, err := url.Parse(c.URL); err == nil && u.Host != "" {
		host, port := u.Hostname(), u.Port()
		if port == "" {
			port = map[string]string{"https": "443", "http": "80", "wss": "443", "ws": "80"}[u.Scheme]
		}
		s.Attrs = append(s.Attrs, attribute.String("server.address", host))
		if p, err := strconv.Atoi(port); err == nil {
			s.Attrs = append(s.Attrs, attribute.Int("server.port", p))
		}
		if u.Scheme != "" {
			s.Attrs = append(s.Attrs, attribute.String("url.scheme", u.Scheme))
		}
		s.Name = c.Method + " " + net.JoinHostPort(host, port)
	}
	if c.Status > 0 {
		s.Attrs = append(s.Attrs, attribute.Int("http.response.status_code", c.Status))
	}
	if c.Reason != "" {
		s.Attrs = append(s.Attrs, attribute.String("cassetteproxy.reason", c.Reason))
	}
	switch {
	case c.Decision == "blocked" || c.Decision == "error":
		s.Status, s.StatusMsg = codes.Error, c.Decision
		if c.Reason != "" {
			s.StatusMsg += ": " + c.Reason
		}
		s.Attrs = append(s.Attrs, attribute.String("error.type", orDefault(c.Reason, c.Decision)))
	case c.Status >= 400:
		s.Status = codes.Error
		s.Attrs = append(s.Attrs, attribute.String("error.type", strconv.Itoa(c.Status)))
	}
	if in != nil {
		if in.DurationMs > 0 {
			s.End = c.At.Add(time.Duration(in.DurationMs) * time.Millisecond)
		}
		if g, ok := GenAIOf(in); ok {
			s.Attrs = append(s.Attrs, g.Attrs()...)
			if g.Operation != "" && g.RequestModel != "" {
				s.Name = g.Operation + " " + g.RequestModel
			}
		}
	}
	if !runEnd.IsZero() && s.End.After(runEnd) && !c.At.After(runEnd) {
		s.End = runEnd
	}
	return s
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
