package telemetry

import (
	"math"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/encoding/protowire"
)

// This file writes an OTLP ExportTraceServiceRequest in the protobuf wire
// format, field by field, as the generated types of opentelemetry-proto
// would marshal it: proto3 scalars and strings are left out when zero, the
// members of AnyValue's oneof and embedded messages are written when set.

// Field numbers, by message (opentelemetry-proto collector/trace/v1,
// trace/v1, common/v1, resource/v1).
const (
	// ExportTraceServiceRequest
	reqResourceSpans = 1

	// ResourceSpans
	rsResource   = 1
	rsScopeSpans = 2
	rsSchemaURL  = 3

	// ScopeSpans
	ssScope     = 1
	ssSpans     = 2
	ssSchemaURL = 3

	// Span
	spanTraceID           = 1
	spanSpanID            = 2
	spanTraceState        = 3
	spanParentSpanID      = 4
	spanName              = 5
	spanKind              = 6  // enum SpanKind
	spanStartTime         = 7  // fixed64
	spanEndTime           = 8  // fixed64
	spanAttributes        = 9  // repeated KeyValue
	spanDroppedAttributes = 10 // uint32
	spanEvents            = 11 // repeated Span.Event
	spanDroppedEvents     = 12 // uint32
	spanLinks             = 13 // repeated Span.Link
	spanDroppedLinks      = 14 // uint32
	spanStatus            = 15 // Status
	spanFlags             = 16 // fixed32

	// Span.Event
	eventTime              = 1 // fixed64
	eventName              = 2
	eventAttributes        = 3
	eventDroppedAttributes = 4

	// Span.Link
	linkTraceID           = 1
	linkSpanID            = 2
	linkTraceState        = 3
	linkAttributes        = 4
	linkDroppedAttributes = 5
	linkFlags             = 6 // fixed32

	// Status
	statusMessage = 2
	statusCode    = 3 // enum StatusCode

	// KeyValue
	kvKey   = 1
	kvValue = 2 // AnyValue

	// AnyValue (a oneof)
	anyString = 1
	anyBool   = 2
	anyInt    = 3 // int64, varint
	anyDouble = 4 // fixed64
	anyArray  = 5 // ArrayValue
	anyKvlist = 6 // KeyValueList
	anyBytes  = 7

	// ArrayValue and KeyValueList
	listValues = 1

	// InstrumentationScope
	scopeName       = 1
	scopeVersion    = 2
	scopeAttributes = 3

	// Resource
	resourceAttributes = 1
)

// Values of the OTLP enums and flags.
const (
	otlpKindUnspecified = 0
	otlpKindInternal    = 1
	otlpKindServer      = 2
	otlpKindClient      = 3
	otlpKindProducer    = 4
	otlpKindConsumer    = 5

	otlpStatusUnset = 0
	otlpStatusOK    = 1
	otlpStatusError = 2

	flagHasIsRemote = 0x100 // SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK
	flagIsRemote    = 0x200 // SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK
)

// resourceGroup is the spans of one resource, by instrumentation scope.
type resourceGroup struct {
	key    attribute.Distinct
	res    *resource.Resource
	scopes []scopeGroup
}

type scopeGroup struct {
	scope instrumentation.Scope
	spans []sdktrace.ReadOnlySpan
}

// appendTraceRequest appends spans as an ExportTraceServiceRequest: one
// ResourceSpans per resource, in it one ScopeSpans per instrumentation
// scope, in the order they first appear. No spans (or only nil ones) add
// nothing.
func appendTraceRequest(b []byte, spans []sdktrace.ReadOnlySpan) []byte {
	var groups []resourceGroup
	for _, s := range spans {
		if s == nil {
			continue
		}
		res, scope := s.Resource(), s.InstrumentationScope()
		key := res.Equivalent()
		r := -1
		for i := range groups {
			if groups[i].key == key {
				r = i
				break
			}
		}
		if r < 0 {
			groups = append(groups, resourceGroup{key: key, res: res})
			r = len(groups) - 1
		}
		g := &groups[r]
		i := -1
		for j := range g.scopes {
			if g.scopes[j].scope == scope {
				i = j
				break
			}
		}
		if i < 0 {
			g.scopes = append(g.scopes, scopeGroup{scope: scope})
			i = len(g.scopes) - 1
		}
		g.scopes[i].spans = append(g.scopes[i].spans, s)
	}
	for _, g := range groups {
		b = appendMessage(b, reqResourceSpans, g, appendResourceSpans)
	}
	return b
}

func appendResourceSpans(b []byte, g resourceGroup) []byte {
	if g.res != nil {
		b = appendMessage(b, rsResource, g.res, appendResource)
	}
	for _, sg := range g.scopes {
		b = appendMessage(b, rsScopeSpans, sg, appendScopeSpans)
	}
	return appendString(b, rsSchemaURL, g.res.SchemaURL())
}

func appendResource(b []byte, r *resource.Resource) []byte {
	return appendAttributes(b, resourceAttributes, r.Attributes())
}

func appendScopeSpans(b []byte, sg scopeGroup) []byte {
	if sg.scope != (instrumentation.Scope{}) {
		b = appendMessage(b, ssScope, sg.scope, appendScope)
	}
	for _, s := range sg.spans {
		b = appendMessage(b, ssSpans, s, appendSpan)
	}
	return appendString(b, ssSchemaURL, sg.scope.SchemaURL)
}

func appendScope(b []byte, s instrumentation.Scope) []byte {
	b = appendString(b, scopeName, s.Name)
	b = appendString(b, scopeVersion, s.Version)
	return appendAttributes(b, scopeAttributes, s.Attributes.ToSlice())
}

func appendSpan(b []byte, s sdktrace.ReadOnlySpan) []byte {
	sc, parent := s.SpanContext(), s.Parent()
	tid, sid := sc.TraceID(), sc.SpanID()
	b = appendBytes(b, spanTraceID, tid[:])
	b = appendBytes(b, spanSpanID, sid[:])
	b = appendString(b, spanTraceState, sc.TraceState().String())
	if psid := parent.SpanID(); psid.IsValid() {
		b = appendBytes(b, spanParentSpanID, psid[:])
	}
	b = appendString(b, spanName, s.Name())
	b = appendVarint(b, spanKind, otlpKind(s.SpanKind()))
	b = appendFixed64(b, spanStartTime, unixNano(s.StartTime()))
	b = appendFixed64(b, spanEndTime, unixNano(s.EndTime()))
	b = appendAttributes(b, spanAttributes, s.Attributes())
	b = appendVarint(b, spanDroppedAttributes, count(s.DroppedAttributes()))
	for _, e := range s.Events() {
		b = appendMessage(b, spanEvents, e, appendEvent)
	}
	b = appendVarint(b, spanDroppedEvents, count(s.DroppedEvents()))
	for _, l := range s.Links() {
		b = appendMessage(b, spanLinks, l, appendLink)
	}
	b = appendVarint(b, spanDroppedLinks, count(s.DroppedLinks()))
	b = appendMessage(b, spanStatus, s.Status(), appendStatus)
	return appendFixed32(b, spanFlags, flags(sc.TraceFlags(), parent.IsRemote()))
}

func appendEvent(b []byte, e sdktrace.Event) []byte {
	b = appendFixed64(b, eventTime, unixNano(e.Time))
	b = appendString(b, eventName, e.Name)
	b = appendAttributes(b, eventAttributes, e.Attributes)
	return appendVarint(b, eventDroppedAttributes, count(e.DroppedAttributeCount))
}

func appendLink(b []byte, l sdktrace.Link) []byte {
	sc := l.SpanContext
	tid, sid := sc.TraceID(), sc.SpanID()
	b = appendBytes(b, linkTraceID, tid[:])
	b = appendBytes(b, linkSpanID, sid[:])
	b = appendString(b, linkTraceState, sc.TraceState().String())
	b = appendAttributes(b, linkAttributes, l.Attributes)
	b = appendVarint(b, linkDroppedAttributes, count(l.DroppedAttributeCount))
	return appendFixed32(b, linkFlags, flags(sc.TraceFlags(), sc.IsRemote()))
}

func appendStatus(b []byte, s sdktrace.Status) []byte {
	b = appendString(b, statusMessage, s.Description)
	code := uint64(otlpStatusUnset)
	switch s.Code {
	case codes.Ok:
		code = otlpStatusOK
	case codes.Error:
		code = otlpStatusError
	}
	return appendVarint(b, statusCode, code)
}

func otlpKind(k trace.SpanKind) uint64 {
	switch k {
	case trace.SpanKindInternal:
		return otlpKindInternal
	case trace.SpanKindServer:
		return otlpKindServer
	case trace.SpanKindClient:
		return otlpKindClient
	case trace.SpanKindProducer:
		return otlpKindProducer
	case trace.SpanKindConsumer:
		return otlpKindConsumer
	}
	return otlpKindUnspecified
}

// flags are a span's or a link's OTLP flags: the W3C trace flags in the
// low byte, and whether the parent (or linked) context is remote, which is
// always known here.
func flags(tf trace.TraceFlags, remote bool) uint32 {
	f := uint32(tf) | flagHasIsRemote
	if remote {
		f |= flagIsRemote
	}
	return f
}

// unixNano is t in nanoseconds since the epoch, 0 before it.
func unixNano(t time.Time) uint64 {
	return uint64(max(0, t.UnixNano()))
}

// count is a dropped count as a uint32.
func count(n int) uint64 {
	switch {
	case n <= 0:
		return 0
	case uint64(n) > math.MaxUint32:
		return math.MaxUint32
	}
	return uint64(n)
}

func appendAttributes(b []byte, num protowire.Number, kvs []attribute.KeyValue) []byte {
	for _, kv := range kvs {
		b = appendMessage(b, num, kv, appendKeyValue)
	}
	return b
}

func appendKeyValue(b []byte, kv attribute.KeyValue) []byte {
	b = appendString(b, kvKey, string(kv.Key))
	return appendMessage(b, kvValue, kv.Value, appendAnyValue)
}

// appendAnyValue writes an attribute value's fields of AnyValue: scalars
// as themselves, slices as an ArrayValue, maps as a KeyValueList, an empty
// value as nothing.
func appendAnyValue(b []byte, v attribute.Value) []byte {
	switch v.Type() {
	case attribute.EMPTY:
		return b
	case attribute.BOOL:
		return appendAnyBool(b, v.AsBool())
	case attribute.INT64:
		return appendAnyInt(b, v.AsInt64())
	case attribute.FLOAT64:
		return appendAnyDouble(b, v.AsFloat64())
	case attribute.STRING:
		return appendAnyString(b, v.AsString())
	case attribute.BYTESLICE:
		b = protowire.AppendTag(b, anyBytes, protowire.BytesType)
		return protowire.AppendBytes(b, v.AsByteSlice())
	case attribute.BOOLSLICE:
		return appendMessage(b, anyArray, v.AsBoolSlice(), appendList(appendAnyBool))
	case attribute.INT64SLICE:
		return appendMessage(b, anyArray, v.AsInt64Slice(), appendList(appendAnyInt))
	case attribute.FLOAT64SLICE:
		return appendMessage(b, anyArray, v.AsFloat64Slice(), appendList(appendAnyDouble))
	case attribute.STRINGSLICE:
		return appendMessage(b, anyArray, v.AsStringSlice(), appendList(appendAnyString))
	case attribute.SLICE:
		return appendMessage(b, anyArray, v.AsSlice(), appendList(appendAnyValue))
	case attribute.MAP:
		return appendMessage(b, anyKvlist, v.AsMap(), appendKeyValueList)
	}
	return appendAnyString(b, "INVALID")
}

// The members of AnyValue's oneof are written even when zero.

func appendAnyBool(b []byte, v bool) []byte {
	b = protowire.AppendTag(b, anyBool, protowire.VarintType)
	return protowire.AppendVarint(b, protowire.EncodeBool(v))
}

func appendAnyInt(b []byte, v int64) []byte {
	b = protowire.AppendTag(b, anyInt, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(v))
}

func appendAnyDouble(b []byte, v float64) []byte {
	b = protowire.AppendTag(b, anyDouble, protowire.Fixed64Type)
	return protowire.AppendFixed64(b, math.Float64bits(v))
}

func appendAnyString(b []byte, v string) []byte {
	b = protowire.AppendTag(b, anyString, protowire.BytesType)
	return protowire.AppendString(b, v)
}

// appendList returns the writer of an ArrayValue whose values each one
// writes.
func appendList[T any](one func([]byte, T) []byte) func([]byte, []T) []byte {
	return func(b []byte, vs []T) []byte {
		for _, v := range vs {
			b = appendMessage(b, listValues, v, one)
		}
		return b
	}
}

func appendKeyValueList(b []byte, kvs []attribute.KeyValue) []byte {
	return appendAttributes(b, listValues, kvs)
}

// appendMessage writes v as the embedded message field num, its fields
// written by fields. The length goes before the fields: one byte is kept
// for it, and the fields are moved along when it needs more.
func appendMessage[T any](b []byte, num protowire.Number, v T, fields func([]byte, T) []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	at := len(b)
	b = append(b, 0)
	b = fields(b, v)
	n := len(b) - at - 1
	if n < 0x80 {
		b[at] = byte(n)
		return b
	}
	size := protowire.SizeVarint(uint64(n))
	b = append(b, make([]byte, size-1)...)
	copy(b[at+size:], b[at+1:at+1+n])
	protowire.AppendVarint(b[:at], uint64(n))
	return b
}

// Fields with implicit presence: nothing is written for a zero value.

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendBytes(b []byte, num protowire.Number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func appendVarint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func appendFixed64(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.Fixed64Type)
	return protowire.AppendFixed64(b, v)
}

func appendFixed32(b []byte, num protowire.Number, v uint32) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.Fixed32Type)
	return protowire.AppendFixed32(b, v)
}
