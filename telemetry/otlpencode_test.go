package telemetry

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	common "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

func traceIDOf(b byte) trace.TraceID {
	var id trace.TraceID
	for i := range id {
		id[i] = b + byte(i)
	}
	return id
}

func spanIDOf(b byte) trace.SpanID {
	var id trace.SpanID
	for i := range id {
		id[i] = b + byte(i)
	}
	return id
}

// everyType is one attribute of each value type the SDK has, with zero
// values and values whose encoding is longer than one length byte allows.
func everyType() []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.Bool("bool.true", true),
		attribute.Bool("bool.false", false),
		attribute.Int64("int.zero", 0),
		attribute.Int64("int.negative", -42),
		attribute.Int64("int.max", math.MaxInt64),
		attribute.Int("int", 7),
		attribute.Float64("double", 1.5),
		attribute.Float64("double.zero", 0),
		attribute.Float64("double.negative.zero", math.Copysign(0, -1)),
		attribute.Float64("double.inf", math.Inf(-1)),
		attribute.String("string", "héllo"),
		attribute.String("string.empty", ""),
		attribute.String("string.300", strings.Repeat("x", 300)),
		attribute.String("string.20000", strings.Repeat("y", 20000)),
		attribute.ByteSlice("bytes", []byte{0, 1, 0xff}),
		attribute.ByteSlice("bytes.empty", nil),
		attribute.BoolSlice("bools", []bool{true, false, true}),
		attribute.Int64Slice("ints", []int64{0, -1, math.MinInt64}),
		attribute.Float64Slice("doubles", []float64{0, 2.25, -1e300}),
		attribute.StringSlice("strings", []string{"a", "", strings.Repeat("z", 200)}),
		attribute.StringSlice("strings.empty", nil),
		attribute.Slice("mixed", attribute.StringValue("s"), attribute.Int64Value(1),
			attribute.SliceValue(attribute.BoolValue(false)), attribute.MapValue(attribute.String("in", "map"))),
		attribute.Map("map", attribute.String("k", "v"), attribute.Int64("n", 3),
			attribute.Map("nested", attribute.Float64("f", 0.5))),
		{Key: "empty"},
		{Key: "", Value: attribute.StringValue("no key")},
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	t0 := time.Date(2026, 6, 1, 12, 0, 0, 123456789, time.UTC)
	ts, err := trace.ParseTraceState("vendor=abc,other=1")
	if err != nil {
		t.Fatal(err)
	}
	service := resource.NewSchemaless(attribute.String("service.name", "svc"), attribute.String("service.version", "1.2"))
	withSchema := resource.NewWithAttributes("https://opentelemetry.io/schemas/1.26.0", attribute.String("service.name", "other"))
	scope := instrumentation.Scope{Name: "lib", Version: "v1", SchemaURL: "https://example.com/scope-schema",
		Attributes: attribute.NewSet(attribute.String("scope.attr", "x"), attribute.Int64("scope.n", 2))}
	otherScope := instrumentation.Scope{Name: "other-lib"}
	sc := func(tid, sid byte, flags trace.TraceFlags, state trace.TraceState, remote bool) trace.SpanContext {
		return trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceIDOf(tid), SpanID: spanIDOf(sid),
			TraceFlags: flags, TraceState: state, Remote: remote})
	}
	stub := func(name string, sid byte, res *resource.Resource, is instrumentation.Scope) tracetest.SpanStub {
		return tracetest.SpanStub{Name: name, SpanContext: sc(1, sid, trace.FlagsSampled, trace.TraceState{}, false),
			StartTime: t0, EndTime: t0.Add(time.Second), Resource: res, InstrumentationScope: is}
	}

	full := tracetest.SpanStub{
		Name:        "full span",
		SpanContext: sc(1, 10, trace.FlagsSampled|trace.FlagsRandom, ts, false),
		Parent:      sc(1, 20, trace.FlagsSampled, trace.TraceState{}, true),
		SpanKind:    trace.SpanKindClient,
		StartTime:   t0,
		EndTime:     t0.Add(1500 * time.Millisecond),
		Attributes:  everyType(),
		Events: []sdktrace.Event{
			{Name: "first", Time: t0.Add(time.Millisecond), Attributes: []attribute.KeyValue{attribute.String("e", "1")}, DroppedAttributeCount: 2},
			{Name: "", Time: t0.Add(2 * time.Millisecond)},
			{Name: "all types", Time: t0.Add(3 * time.Millisecond), Attributes: everyType()},
		},
		Links: []sdktrace.Link{
			{SpanContext: sc(9, 30, trace.FlagsSampled, ts, true), Attributes: []attribute.KeyValue{attribute.String("link", "remote")}, DroppedAttributeCount: 1},
			{SpanContext: sc(8, 40, 0, trace.TraceState{}, false)},
		},
		Status:               sdktrace.Status{Code: codes.Error, Description: "it broke"},
		DroppedAttributes:    3,
		DroppedEvents:        4,
		DroppedLinks:         5,
		Resource:             withSchema,
		InstrumentationScope: scope,
	}

	var kinds, statuses tracetest.SpanStubs
	for i, k := range []trace.SpanKind{trace.SpanKindUnspecified, trace.SpanKindInternal, trace.SpanKindServer,
		trace.SpanKindClient, trace.SpanKindProducer, trace.SpanKindConsumer, trace.SpanKind(99)} {
		s := stub("kind "+k.String(), byte(40+i), service, scope)
		s.SpanKind = k
		kinds = append(kinds, s)
	}
	for i, st := range []sdktrace.Status{{Code: codes.Unset}, {Code: codes.Ok}, {Code: codes.Error, Description: "bad"},
		{Code: codes.Unset, Description: "ignored by nobody"}, {Code: codes.Code(99)}} {
		s := stub("status "+strconv.Itoa(i), byte(60+i), service, scope)
		s.Status = st
		statuses = append(statuses, s)
	}

	// Spans the SDK itself recorded: a root and a child with an event, a
	// link and a status.
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithResource(service))
	tracer := tp.Tracer("recorded", trace.WithInstrumentationVersion("0.1"))
	ctx, root := tracer.Start(context.Background(), "root", trace.WithTimestamp(t0), trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.Int("n", 1)))
	_, child := tracer.Start(ctx, "child", trace.WithTimestamp(t0.Add(time.Millisecond)),
		trace.WithLinks(trace.Link{SpanContext: sc(5, 6, trace.FlagsSampled, trace.TraceState{}, true), Attributes: []attribute.KeyValue{attribute.Bool("l", true)}}))
	child.AddEvent("ev", trace.WithTimestamp(t0.Add(2*time.Millisecond)), trace.WithAttributes(attribute.StringSlice("s", []string{"a", "b"})))
	child.SetStatus(codes.Ok, "")
	child.End(trace.WithTimestamp(t0.Add(3 * time.Millisecond)))
	root.End(trace.WithTimestamp(t0.Add(4 * time.Millisecond)))

	cases := []struct {
		name  string
		spans []sdktrace.ReadOnlySpan
		shape [][]int // spans per ScopeSpans, per ResourceSpans
	}{
		{"every field and attribute type", tracetest.SpanStubs{full}.Snapshots(), [][]int{{1}}},
		{"zero values", tracetest.SpanStubs{{Name: "", SpanContext: sc(1, 2, 0, trace.TraceState{}, false),
			Resource: resource.Empty()}}.Snapshots(), [][]int{{1}}},
		{"no resource", tracetest.SpanStubs{stub("bare", 3, nil, otherScope)}.Snapshots(), [][]int{{1}}},
		{"span kinds", kinds.Snapshots(), [][]int{{len(kinds)}}},
		{"status codes", statuses.Snapshots(), [][]int{{len(statuses)}}},
		{"grouped by resource and scope", tracetest.SpanStubs{
			stub("a", 1, service, scope), stub("b", 2, withSchema, scope), stub("c", 3, service, otherScope),
			stub("d", 4, service, scope), stub("e", 5, withSchema, scope), stub("f", 6, service, instrumentation.Scope{}),
			stub("g", 7, resource.NewSchemaless(attribute.String("service.name", "svc"), attribute.String("service.version", "1.2")), otherScope),
			stub("h", 8, service, instrumentation.Scope{Name: scope.Name, Version: "v2"}),
		}.Snapshots(), [][]int{{2, 2, 1, 1}, {2}}},
		{"nil spans skipped", append([]sdktrace.ReadOnlySpan{nil}, append(tracetest.SpanStubs{stub("x", 1, service, scope)}.Snapshots(), nil)...), [][]int{{1}}},
		{"recorded by the SDK", rec.Ended(), [][]int{{2}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := appendTraceRequest(nil, tc.spans)
			var req coltrace.ExportTraceServiceRequest
			if err := proto.Unmarshal(body, &req); err != nil {
				t.Fatal(err)
			}
			// Every field was read as a known field of the right type, in
			// the order the generated code writes.
			if again, err := (proto.MarshalOptions{Deterministic: true}).Marshal(&req); err != nil || !bytes.Equal(again, body) {
				t.Errorf("proto.Marshal of the decoded request differs from the encoding (%v)", err)
			}
			var shape [][]int
			var got []placed
			for _, rs := range req.GetResourceSpans() {
				var scopes []int
				for _, ss := range rs.GetScopeSpans() {
					scopes = append(scopes, len(ss.GetSpans()))
					for _, s := range ss.GetSpans() {
						got = append(got, placed{rs, ss, s})
					}
				}
				shape = append(shape, scopes)
			}
			if !slices.EqualFunc(shape, tc.shape, slices.Equal[[]int]) {
				t.Fatalf("spans per scope per resource: %v, want %v", shape, tc.shape)
			}
			want := grouped(tc.spans)
			if len(got) != len(want) {
				t.Fatalf("%d spans decoded, want %d", len(got), len(want))
			}
			for i, w := range want {
				checkSpan(t, got[i], w)
			}
		})
	}
}

// placed is a decoded span with the resource and scope it came under.
type placed struct {
	rs   *tracepb.ResourceSpans
	ss   *tracepb.ScopeSpans
	span *tracepb.Span
}

// grouped is spans without the nil ones, in the order the request lists
// them: by resource, then by scope, each as first seen.
func grouped(spans []sdktrace.ReadOnlySpan) []sdktrace.ReadOnlySpan {
	type key struct {
		r attribute.Distinct
		s instrumentation.Scope
	}
	var resources []attribute.Distinct
	var scopes []key
	var out []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s == nil {
			continue
		}
		k := key{s.Resource().Equivalent(), s.InstrumentationScope()}
		if !slices.Contains(resources, k.r) {
			resources = append(resources, k.r)
		}
		if !slices.Contains(scopes, k) {
			scopes = append(scopes, k)
		}
		out = append(out, s)
	}
	slices.SortStableFunc(out, func(a, b sdktrace.ReadOnlySpan) int {
		ka := key{a.Resource().Equivalent(), a.InstrumentationScope()}
		kb := key{b.Resource().Equivalent(), b.InstrumentationScope()}
		if d := slices.Index(resources, ka.r) - slices.Index(resources, kb.r); d != 0 {
			return d
		}
		return slices.Index(scopes, ka) - slices.Index(scopes, kb)
	})
	return out
}

var wantKind = map[trace.SpanKind]tracepb.Span_SpanKind{
	trace.SpanKindUnspecified: tracepb.Span_SPAN_KIND_UNSPECIFIED,
	trace.SpanKindInternal:    tracepb.Span_SPAN_KIND_INTERNAL,
	trace.SpanKindServer:      tracepb.Span_SPAN_KIND_SERVER,
	trace.SpanKindClient:      tracepb.Span_SPAN_KIND_CLIENT,
	trace.SpanKindProducer:    tracepb.Span_SPAN_KIND_PRODUCER,
	trace.SpanKindConsumer:    tracepb.Span_SPAN_KIND_CONSUMER,
}

var wantStatus = map[codes.Code]tracepb.Status_StatusCode{
	codes.Unset: tracepb.Status_STATUS_CODE_UNSET,
	codes.Ok:    tracepb.Status_STATUS_CODE_OK,
	codes.Error: tracepb.Status_STATUS_CODE_ERROR,
}

func wantFlags(tf trace.TraceFlags, remote bool) uint32 {
	f := uint32(tf) | uint32(tracepb.SpanFlags_SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK)
	if remote {
		f |= uint32(tracepb.SpanFlags_SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK)
	}
	return f
}

func checkSpan(t *testing.T, got placed, want sdktrace.ReadOnlySpan) {
	t.Helper()
	name := want.Name()
	// Resource and scope.
	if res := want.Resource(); res == nil {
		if got.rs.Resource != nil {
			t.Errorf("%s: resource %v, want none", name, got.rs.Resource)
		}
	} else {
		if got.rs.Resource == nil {
			t.Fatalf("%s: no resource", name)
		}
		eqStrings(t, name+": resource attributes", renderKVs(got.rs.Resource.GetAttributes()), renderAttrs(res.Attributes()))
	}
	eq(t, name+": resource schema_url", got.rs.GetSchemaUrl(), want.Resource().SchemaURL())
	is := want.InstrumentationScope()
	if is == (instrumentation.Scope{}) {
		if got.ss.Scope != nil {
			t.Errorf("%s: scope %v, want none", name, got.ss.Scope)
		}
	} else {
		eq(t, name+": scope name", got.ss.GetScope().GetName(), is.Name)
		eq(t, name+": scope version", got.ss.GetScope().GetVersion(), is.Version)
		eqStrings(t, name+": scope attributes", renderKVs(got.ss.GetScope().GetAttributes()), renderAttrs(is.Attributes.ToSlice()))
	}
	eq(t, name+": scope schema_url", got.ss.GetSchemaUrl(), is.SchemaURL)

	// The span.
	s, sc, parent := got.span, want.SpanContext(), want.Parent()
	tid, sid, psid := sc.TraceID(), sc.SpanID(), parent.SpanID()
	eq(t, name+": trace_id", hex.EncodeToString(s.GetTraceId()), hex.EncodeToString(tid[:]))
	eq(t, name+": span_id", hex.EncodeToString(s.GetSpanId()), hex.EncodeToString(sid[:]))
	wantParent := ""
	if psid.IsValid() {
		wantParent = hex.EncodeToString(psid[:])
	}
	eq(t, name+": parent_span_id", hex.EncodeToString(s.GetParentSpanId()), wantParent)
	eq(t, name+": trace_state", s.GetTraceState(), sc.TraceState().String())
	eq(t, name+": flags", s.GetFlags(), wantFlags(sc.TraceFlags(), parent.IsRemote()))
	eq(t, name+": name", s.GetName(), want.Name())
	eq(t, name+": kind", s.GetKind(), wantKind[want.SpanKind()]) // unknown kinds: UNSPECIFIED
	eq(t, name+": start", s.GetStartTimeUnixNano(), nanos(want.StartTime()))
	eq(t, name+": end", s.GetEndTimeUnixNano(), nanos(want.EndTime()))
	eqStrings(t, name+": attributes", renderKVs(s.GetAttributes()), renderAttrs(want.Attributes()))
	eq(t, name+": dropped attributes", s.GetDroppedAttributesCount(), uint32(want.DroppedAttributes()))
	eq(t, name+": dropped events", s.GetDroppedEventsCount(), uint32(want.DroppedEvents()))
	eq(t, name+": dropped links", s.GetDroppedLinksCount(), uint32(want.DroppedLinks()))
	if s.Status == nil {
		t.Errorf("%s: no status", name)
	}
	eq(t, name+": status code", s.GetStatus().GetCode(), wantStatus[want.Status().Code]) // unknown codes: UNSET
	eq(t, name+": status message", s.GetStatus().GetMessage(), want.Status().Description)

	events := want.Events()
	if len(s.GetEvents()) != len(events) {
		t.Fatalf("%s: %d events, want %d", name, len(s.GetEvents()), len(events))
	}
	for i, e := range events {
		g := s.GetEvents()[i]
		eq(t, name+": event name", g.GetName(), e.Name)
		eq(t, name+": event time", g.GetTimeUnixNano(), nanos(e.Time))
		eqStrings(t, name+": event attributes", renderKVs(g.GetAttributes()), renderAttrs(e.Attributes))
		eq(t, name+": event dropped attributes", g.GetDroppedAttributesCount(), uint32(e.DroppedAttributeCount))
	}
	links := want.Links()
	if len(s.GetLinks()) != len(links) {
		t.Fatalf("%s: %d links, want %d", name, len(s.GetLinks()), len(links))
	}
	for i, l := range links {
		g := s.GetLinks()[i]
		ltid, lsid := l.SpanContext.TraceID(), l.SpanContext.SpanID()
		eq(t, name+": link trace_id", hex.EncodeToString(g.GetTraceId()), hex.EncodeToString(ltid[:]))
		eq(t, name+": link span_id", hex.EncodeToString(g.GetSpanId()), hex.EncodeToString(lsid[:]))
		eq(t, name+": link trace_state", g.GetTraceState(), l.SpanContext.TraceState().String())
		eq(t, name+": link flags", g.GetFlags(), wantFlags(l.SpanContext.TraceFlags(), l.SpanContext.IsRemote()))
		eqStrings(t, name+": link attributes", renderKVs(g.GetAttributes()), renderAttrs(l.Attributes))
		eq(t, name+": link dropped attributes", g.GetDroppedAttributesCount(), uint32(l.DroppedAttributeCount))
	}
}

// nanos is t as OTLP has it: nanoseconds since the epoch, 0 before.
func nanos(t time.Time) uint64 {
	if n := t.UnixNano(); n > 0 {
		return uint64(n)
	}
	return 0
}

func eq[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s: got %v, want %v", what, got, want)
	}
}

func eqStrings(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got %.500q\nwant %.500q", what, got, want)
	}
}

// renderKVs and renderAttrs write decoded and SDK attributes the same way,
// value types included: bool:, int:, double:, string:, bytes:, array[...],
// kvlist{...}, empty.
func renderKVs(kvs []*common.KeyValue) []string {
	var out []string
	for _, kv := range kvs {
		out = append(out, kv.GetKey()+"="+renderAny(kv.GetValue()))
	}
	return out
}

func renderAny(v *common.AnyValue) string {
	switch x := v.GetValue().(type) {
	case nil:
		return "empty"
	case *common.AnyValue_BoolValue:
		return "bool:" + strconv.FormatBool(x.BoolValue)
	case *common.AnyValue_IntValue:
		return "int:" + strconv.FormatInt(x.IntValue, 10)
	case *common.AnyValue_DoubleValue:
		return "double:" + strconv.FormatFloat(x.DoubleValue, 'g', -1, 64)
	case *common.AnyValue_StringValue:
		return "string:" + strconv.Quote(x.StringValue)
	case *common.AnyValue_BytesValue:
		return "bytes:" + hex.EncodeToString(x.BytesValue)
	case *common.AnyValue_ArrayValue:
		var parts []string
		for _, e := range x.ArrayValue.GetValues() {
			parts = append(parts, renderAny(e))
		}
		return "array[" + strings.Join(parts, " ") + "]"
	case *common.AnyValue_KvlistValue:
		return "kvlist{" + strings.Join(renderKVs(x.KvlistValue.GetValues()), " ") + "}"
	}
	return "unexpected"
}

func renderAttrs(kvs []attribute.KeyValue) []string {
	var out []string
	for _, kv := range kvs {
		out = append(out, string(kv.Key)+"="+renderValue(kv.Value))
	}
	return out
}

func renderValue(v attribute.Value) string {
	array := func(n int, one func(int) string) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = one(i)
		}
		return "array[" + strings.Join(parts, " ") + "]"
	}
	switch v.Type() {
	case attribute.EMPTY:
		return "empty"
	case attribute.BOOL:
		return "bool:" + strconv.FormatBool(v.AsBool())
	case attribute.INT64:
		return "int:" + strconv.FormatInt(v.AsInt64(), 10)
	case attribute.FLOAT64:
		return "double:" + strconv.FormatFloat(v.AsFloat64(), 'g', -1, 64)
	case attribute.STRING:
		return "string:" + strconv.Quote(v.AsString())
	case attribute.BYTESLICE:
		return "bytes:" + hex.EncodeToString(v.AsByteSlice())
	case attribute.BOOLSLICE:
		s := v.AsBoolSlice()
		return array(len(s), func(i int) string { return renderValue(attribute.BoolValue(s[i])) })
	case attribute.INT64SLICE:
		s := v.AsInt64Slice()
		return array(len(s), func(i int) string { return renderValue(attribute.Int64Value(s[i])) })
	case attribute.FLOAT64SLICE:
		s := v.AsFloat64Slice()
		return array(len(s), func(i int) string { return renderValue(attribute.Float64Value(s[i])) })
	case attribute.STRINGSLICE:
		s := v.AsStringSlice()
		return array(len(s), func(i int) string { return renderValue(attribute.StringValue(s[i])) })
	case attribute.SLICE:
		s := v.AsSlice()
		return array(len(s), func(i int) string { return renderValue(s[i]) })
	case attribute.MAP:
		return "kvlist{" + strings.Join(renderAttrs(v.AsMap()), " ") + "}"
	}
	return "string:" + strconv.Quote("INVALID")
}

func TestEncodeEmpty(t *testing.T) {
	for _, spans := range [][]sdktrace.ReadOnlySpan{nil, {}, {nil, nil}} {
		if b := appendTraceRequest(nil, spans); len(b) != 0 {
			t.Errorf("%d spans: encoded %x, want nothing", len(spans), b)
		}
	}
	var posts atomic.Int32
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		posts.Add(1)
		if ct := r.Header.Get("Content-Type"); ct != "application/x-protobuf" {
			t.Errorf("Content-Type %q", ct)
		}
		body, _ = io.ReadAll(r.Body)
	}))
	defer srv.Close()
	c := &otlpHTTP{url: srv.URL + tracesPath, headers: map[string]string{}, timeout: 5 * time.Second, client: srv.Client()}
	if err := c.ExportSpans(context.Background(), nil); err != nil || posts.Load() != 0 {
		t.Fatalf("no spans: %v, %d requests", err, posts.Load())
	}
	one := tracetest.SpanStubs{{Name: "one", SpanContext: trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceIDOf(1), SpanID: spanIDOf(2)})}}
	if err := c.ExportSpans(context.Background(), one.Snapshots()); err != nil || posts.Load() != 1 {
		t.Fatalf("one span: %v, %d requests", err, posts.Load())
	}
	var req coltrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &req); err != nil || req.GetResourceSpans()[0].GetScopeSpans()[0].GetSpans()[0].GetName() != "one" {
		t.Errorf("posted %x: %v", body, err)
	}
	if err := c.Shutdown(context.Background()); err != nil {
		t.Error(err)
	}
}
