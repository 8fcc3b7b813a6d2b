// Package telemetry owns the OpenTelemetry traces of runs: it turns a closed
// run record, the agent's events and the run's recorded interactions into
// one trace (the run a root span, each tool call a child span, each event a
// span event) and sends it over OTLP/HTTP in batches.
//
// Traces are built after the run from values the caller hands over (a
// store.Run, its events, the interactions), never from the request path:
// exporting never delays a request. A collector that is down or slow costs
// spans, never a run: each failed batch is counted (Dropped) and reported
// through Config.Warn, and Close waits at most its context.
//
// A run's trace id is derived from its run id (TraceID), so a replay's root
// span links to its fixture's source run without asking anyone.
//
// Nothing here reads flags or environment variables; cmd reads
// OTEL_EXPORTER_OTLP_ENDPOINT and OTEL_EXPORTER_OTLP_HEADERS and passes
// them in Config.
package telemetry

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/cassetteproxy/cassetteproxy/store"
)

// Defaults.
const (
	DefaultService     = "cassetteproxy"
	DefaultTimeout     = 5 * time.Second // one export attempt
	DefaultMaxRetry    = 5 * time.Second // retries of one batch, in all
	maxEventData       = 1024            // bytes of an event's data kept as an attribute
	tracesPath         = "/v1/traces"
	instrumentationLib = "github.com/cassetteproxy/cassetteproxy/telemetry"
)

// Config configures an Exporter.
type Config struct {
	// Endpoint is the collector's OTLP/HTTP URL: a base URL
	// (http://collector:4318, /v1/traces is added as for
	// OTEL_EXPORTER_OTLP_ENDPOINT) or the traces URL itself (ending in
	// /v1/traces). http:// sends in clear, https:// over TLS.
	Endpoint string
	// Headers are sent with every export (OTEL_EXPORTER_OTLP_HEADERS); they
	// are never logged.
	Headers map[string]string
	// Service is service.name (DefaultService when empty); Version is
	// service.version.
	Service, Version string
	// Timeout bounds one export attempt, MaxRetry the retries of one batch
	// (0: the defaults; a negative MaxRetry: no retry).
	Timeout, MaxRetry time.Duration
	// Warn receives one line per failed batch (spans dropped); nil: silent
	// but still counted.
	Warn func(string)
}

// Exporter sends run traces to a collector. Its methods are safe for
// concurrent use.
type Exporter struct {
	tp       *sdktrace.TracerProvider
	tracer   trace.Tracer
	endpoint string // safe to print: no user info, no query
	raw      string
	warn     func(string)

	emitted  atomic.Int64
	exported atomic.Int64
	failed   atomic.Int64
	warnMu   sync.Mutex
	lastWarn string
}

// ParseEndpoint checks an OTLP/HTTP endpoint and returns the traces URL it
// names.
func ParseEndpoint(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("OTLP endpoint %q: want an http:// or https:// URL such as http://127.0.0.1:4318", safeURL(raw))
	}
	if !strings.HasSuffix(u.Path, tracesPath) {
		u.Path = strings.TrimSuffix(u.Path, "/") + tracesPath
	}
	return u.String(), nil
}

// safeURL is a URL without user info, query or fragment, for messages.
func safeURL(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" {
		if !strings.ContainsAny(raw, "@?#") && len(raw) < 200 {
			return strings.TrimSpace(raw)
		}
		return "(unparsable URL)"
	}
	return u.Scheme + "://" + u.Host + u.Path
}

// New returns an Exporter sending to cfg.Endpoint. Nothing is sent until a
// run is emitted; a collector that is down is found out then.
func New(cfg Config) (*Exporter, error) {
	endpoint, err := ParseEndpoint(cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	maxRetry := cfg.MaxRetry
	switch {
	case maxRetry == 0:
		maxRetry = DefaultMaxRetry
	case maxRetry < 0:
		maxRetry = 0
	}
	headers := cfg.Headers
	if headers == nil {
		headers = map[string]string{}
	}
	client := &otlpHTTP{url: endpoint, headers: headers, timeout: timeout, maxRetry: maxRetry,
		client: &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}}
	service := cfg.Service
	if service == "" {
		service = DefaultService
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", service)}
	if cfg.Version != "" {
		attrs = append(attrs, attribute.String("service.version", cfg.Version))
	}
	e := &Exporter{endpoint: safeURL(endpoint), raw: endpoint, warn: cfg.Warn}
	e.tp = sdktrace.NewTracerProvider(
		sdktrace.WithResource(resource.NewSchemaless(attrs...)),
		sdktrace.WithSampler(sdktrace.AlwaysSample()),
		sdktrace.WithIDGenerator(idGenerator{}),
		sdktrace.WithBatcher(&counting{SpanExporter: client, e: e},
			sdktrace.WithMaxQueueSize(1<<16), sdktrace.WithMaxExportBatchSize(512)),
	)
	e.tracer = e.tp.Tracer(instrumentationLib)
	return e, nil
}

// Endpoint is the traces URL, without user info or query (safe to print).
func (e *Exporter) Endpoint() string { return e.endpoint }

// Dropped is the number of spans emitted that did not reach the collector
// (failed exports; after Close, also those still queued).
func (e *Exporter) Dropped() int64 { return e.failed.Load() }

// Exported is the number of spans the collector accepted.
func (e *Exporter) Exported() int64 { return e.exported.Load() }

// Close sends what is queued, within ctx, and stops the exporter. Spans it
// could not send are counted in Dropped; the error says how many.
func (e *Exporter) Close(ctx context.Context) error {
	err := e.tp.Shutdown(ctx)
	lost := e.emitted.Load() - e.exported.Load() - e.failed.Load()
	if lost > 0 { // still queued when ctx ended
		e.failed.Add(lost)
	}
	if d := e.failed.Load(); d > 0 {
		return fmt.Errorf("telemetry: %d of %d spans not delivered to %s", d, e.emitted.Load(), e.endpoint)
	}
	if err != nil {
		return fmt.Errorf("telemetry: %s", scrubErr(err, e.raw))
	}
	return nil
}

// counting wraps the OTLP exporter: it counts what was sent and what was
// not, and says so, instead of handing errors to the SDK's global handler.
type counting struct {
	sdktrace.SpanExporter
	e *Exporter
}

func (c *counting) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if err := c.SpanExporter.ExportSpans(ctx, spans); err != nil {
		c.e.failed.Add(int64(len(spans)))
		c.e.say(fmt.Sprintf("telemetry: dropped %d spans: collector %s: %s", len(spans), c.e.endpoint, scrubErr(err, c.e.raw)))
		return nil
	}
	c.e.exported.Add(int64(len(spans)))
	return nil
}

// say warns of a failed batch; while the collector keeps failing the same
// way, the next failures are only counted (Close reports the total).
func (e *Exporter) say(line string) {
	if e.warn == nil {
		return
	}
	e.warnMu.Lock()
	defer e.warnMu.Unlock()
	reason := line[strings.Index(line, ": collector ")+1:]
	if reason == e.lastWarn {
		return
	}
	e.lastWarn = reason
	e.warn(line)
}

// scrubErr is an error's text with the endpoint's user info and query
// removed.
func scrubErr(err error, endpoint string) string {
	s := err.Error()
	if endpoint != "" {
		s = strings.ReplaceAll(s, endpoint, safeURL(endpoint))
	}
	var ue *url.Error
	if errors.As(err, &ue) && ue.URL != "" {
		s = strings.ReplaceAll(s, ue.URL, safeURL(ue.URL))
	}
	return s
}

// TraceID is the trace id of a run: the first 16 bytes of the SHA-256 of
// its run id, so anyone holding a run id finds its trace.
func TraceID(runID string) trace.TraceID {
	sum := sha256.Sum256([]byte("cassetteproxy run " + runID))
	var id trace.TraceID
	copy(id[:], sum[:16])
	return id
}

// RootSpanID is the span id of a run's root span.
func RootSpanID(runID string) trace.SpanID {
	sum := sha256.Sum256([]byte("cassetteproxy run " + runID))
	var id trace.SpanID
	copy(id[:], sum[16:24])
	return id
}

type runKey struct{}

// idGenerator gives a run's root span its derived ids (the run id rides in
// the context) and every other span a random id.
type idGenerator struct{}

func (idGenerator) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	if id, ok := ctx.Value(runKey{}).(string); ok {
		return TraceID(id), RootSpanID(id)
	}
	var t trace.TraceID
	_, _ = rand.Read(t[:])
	return t, randomSpanID()
}

func (idGenerator) NewSpanID(context.Context, trace.TraceID) trace.SpanID { return randomSpanID() }

func randomSpanID() trace.SpanID {
	var s trace.SpanID
	for s == (trace.SpanID{}) {
		_, _ = rand.Read(s[:])
	}
	return s
}

// Run is what one run's trace is built from.
type Run struct {
	Record store.Run
	// Events are the agent's events; nil: Record.Events.
	Events []store.RunEvent
	// Interactions are the recorded answers the run's calls were served
	// from or recorded into, for the GenAI attributes of LLM calls; each
	// call takes the next unused one with its method and URL.
	Interactions []store.Interaction
	// SourceRunID is, for a replay, the run its fixture was recorded from:
	// the root span links to that run's trace.
	SourceRunID string
}

// Emit builds the run's trace and queues it for export. It never blocks on
// the collector.
func (e *Exporter) Emit(r Run) {
	spans := Build(r)
	e.emitted.Add(int64(len(spans)))
	ctx := context.WithValue(context.Background(), runKey{}, r.Record.RunID)
	var rootCtx context.Context
	for i, s := range spans {
		opts := []trace.SpanStartOption{trace.WithTimestamp(s.Start), trace.WithSpanKind(s.Kind),
			trace.WithAttributes(s.Attrs...), trace.WithLinks(s.Links...)}
		parent := ctx
		if i > 0 {
			parent = rootCtx
		}
		c, span := e.tracer.Start(parent, s.Name, opts...)
		if i == 0 {
			rootCtx = c
		}
		for _, ev := range s.Events {
			span.AddEvent(ev.Name, trace.WithTimestamp(ev.At), trace.WithAttributes(ev.Attrs...))
		}
		span.SetStatus(s.Status, s.StatusMsg)
		if i == 0 {
			defer span.End(trace.WithTimestamp(s.End)) // the root ends last
			continue
		}
		span.End(trace.WithTimestamp(s.End))
	}
}

// Span is one span of a run's trace, as Build makes it: the first is the
// root, the rest its children.
type Span struct {
	Name       string
	Kind       trace.SpanKind
	Start, End time.Time
	Attrs      []attribute.KeyValue
	Events     []SpanEvent
	Links      []trace.Link
	Status     codes.Code
	StatusMsg  string
}

// SpanEvent is an agent event on the root span.
type SpanEvent struct {
	Name  string
	At    time.Time
	Attrs []attribute.KeyValue
}
