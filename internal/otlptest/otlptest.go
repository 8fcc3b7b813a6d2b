// Package otlptest is an OTLP/HTTP trace receiver for tests: it listens on
// loopback, decodes every export with the official OTLP protobuf types and
// keeps the raw bytes too, so a test can both read the spans and scan what
// went over the wire.
package otlptest

import (
	"compress/gzip"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	common "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/protobuf/proto"
)

// Receiver is a running OTLP/HTTP trace receiver.
type Receiver struct {
	URL string // http://127.0.0.1:PORT (the base URL; exports go to /v1/traces)

	srv     *http.Server
	mu      sync.Mutex
	raw     [][]byte
	reqs    []*coltrace.ExportTraceServiceRequest
	headers []http.Header
}

// Start listens on a free loopback port.
func Start() (*Receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &Receiver{URL: "http://" + ln.Addr().String()}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", r.export)
	r.srv = &http.Server{Handler: mux}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

func (r *Receiver) export(w http.ResponseWriter, req *http.Request) {
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	data, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var msg coltrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(data, &msg); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.raw = append(r.raw, data)
	r.reqs = append(r.reqs, &msg)
	r.headers = append(r.headers, req.Header.Clone())
	r.mu.Unlock()
	out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// Close stops the receiver.
func (r *Receiver) Close() { _ = r.srv.Close() }

// Raw is every export's protobuf bytes, concatenated.
func (r *Receiver) Raw() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []byte
	for _, b := range r.raw {
		out = append(out, b...)
	}
	return out
}

// Headers are the HTTP headers of each export.
func (r *Receiver) Headers() []http.Header {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]http.Header(nil), r.headers...)
}

// Span is one received span, flattened for assertions.
type Span struct {
	TraceID, SpanID, ParentID  string // hex; ParentID "" for a root
	Name                       string
	Kind                       string
	Service                    string
	Attrs                      map[string]string
	Events                     []Event
	Links                      []Link
	StatusCode                 string // STATUS_CODE_OK, STATUS_CODE_ERROR, STATUS_CODE_UNSET
	StatusMessage              string
	StartUnixNano, EndUnixNano uint64
}

// Event is a span event.
type Event struct {
	Name  string
	Attrs map[string]string
}

// Link is a span link.
type Link struct {
	TraceID, SpanID string
	Attrs           map[string]string
}

// Spans is every span received so far.
func (r *Receiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Span
	for _, req := range r.reqs {
		for _, rs := range req.GetResourceSpans() {
			service := attrs(rs.GetResource().GetAttributes())["service.name"]
			for _, ss := range rs.GetScopeSpans() {
				for _, s := range ss.GetSpans() {
					sp := Span{TraceID: hex.EncodeToString(s.GetTraceId()), SpanID: hex.EncodeToString(s.GetSpanId()),
						Name: s.GetName(), Kind: s.GetKind().String(), Service: service, Attrs: attrs(s.GetAttributes()),
						StatusCode: s.GetStatus().GetCode().String(), StatusMessage: s.GetStatus().GetMessage(),
						StartUnixNano: s.GetStartTimeUnixNano(), EndUnixNano: s.GetEndTimeUnixNano()}
					if p := s.GetParentSpanId(); len(p) > 0 {
						sp.ParentID = hex.EncodeToString(p)
					}
					for _, e := range s.GetEvents() {
						sp.Events = append(sp.Events, Event{Name: e.GetName(), Attrs: attrs(e.GetAttributes())})
					}
					for _, l := range s.GetLinks() {
						sp.Links = append(sp.Links, Link{TraceID: hex.EncodeToString(l.GetTraceId()), SpanID: hex.EncodeToString(l.GetSpanId()), Attrs: attrs(l.GetAttributes())})
					}
					out = append(out, sp)
				}
			}
		}
	}
	return out
}

// Traces groups Spans by trace id.
func (r *Receiver) Traces() map[string][]Span {
	out := map[string][]Span{}
	for _, s := range r.Spans() {
		out[s.TraceID] = append(out[s.TraceID], s)
	}
	return out
}

func attrs(kvs []*common.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[kv.GetKey()] = value(kv.GetValue())
	}
	return m
}

// value renders an attribute value: strings as they are, numbers and
// booleans in Go syntax, arrays as [a b c].
func value(v *common.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *common.AnyValue_StringValue:
		return x.StringValue
	case *common.AnyValue_IntValue:
		return fmt.Sprint(x.IntValue)
	case *common.AnyValue_BoolValue:
		return fmt.Sprint(x.BoolValue)
	case *common.AnyValue_DoubleValue:
		return fmt.Sprint(x.DoubleValue)
	case *common.AnyValue_ArrayValue:
		var parts []string
		for _, e := range x.ArrayValue.GetValues() {
			parts = append(parts, value(e))
		}
		return "[" + strings.Join(parts, " ") + "]"
	case *common.AnyValue_KvlistValue:
		m := attrs(x.KvlistValue.GetValues())
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, k+"="+m[k])
		}
		return "{" + strings.Join(parts, " ") + "}"
	}
	return ""
}
