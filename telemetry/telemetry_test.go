package telemetry

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cassetteproxy/cassetteproxy/internal/otlptest"
	"github.com/cassetteproxy/cassetteproxy/store"
)

// captured reads the first exchange of a capture in testdata/ (real SDK
// traffic) as an interaction.
func captured(t *testing.T, name string) store.Interaction {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Exchanges []struct {
			Request struct {
				Method, URL, Body string
				Headers           [][2]string
			}
			Response struct {
				Status int
				Body   string
			}
		}
	}
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	x := f.Exchanges[0]
	h := http.Header{}
	for _, kv := range x.Request.Headers {
		h.Add(kv[0], kv[1])
	}
	return store.Interaction{Request: store.Request{Method: x.Request.Method, URL: x.Request.URL, Header: h, Body: []byte(x.Request.Body)},
		Response: store.Response{Status: x.Response.Status, Body: []byte(x.Response.Body)}}
}

func exchange(method, u, req, resp string) store.Interaction {
	return store.Interaction{Request: store.Request{Method: method, URL: u, Body: []byte(req)}, Response: store.Response{Status: 200, Body: []byte(resp)}}
}

func TestGenAIOf(t *testing.T) {
	const anthropicSSE = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"claude-sonnet-4-5\",\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n" +
		"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n" +
		"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":15}}\n\n" +
		"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
	const openaiUsageSSE = "data: {\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[{\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}],\"usage\":null}\n\n" +
		"data: {\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n" +
		"data: {\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":7,\"total_tokens\":19}}\n\n" +
		"data: [DONE]\n\n"
	const responsesSSE = "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"model\":\"gpt-4.1\",\"usage\":null}}\n\n" +
		"event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"model\":\"gpt-4.1-2025-04-14\",\"usage\":{\"input_tokens\":40,\"output_tokens\":9}}}\n\n"
	cases := []struct {
		name string
		in   store.Interaction
		ok   bool
		want GenAI
	}{
		{"openai SDK, JSON answer (mock: no usage)", captured(t, "openai-nonstream.json"), true,
			GenAI{Provider: "openai", Operation: "chat", RequestModel: "gpt-4o-mini", ResponseModel: "gpt-4o-mini", InputTokens: -1, OutputTokens: -1, FinishReasons: []string{"stop"}}},
		{"openai SDK, SSE answer (mock: no usage)", captured(t, "openai-stream.json"), true,
			GenAI{Provider: "openai", Operation: "chat", RequestModel: "gpt-4o-mini", ResponseModel: "gpt-4o-mini", InputTokens: -1, OutputTokens: -1, FinishReasons: []string{"stop"}}},
		{"openai chat JSON with usage", exchange("POST", "https://api.openai.com/v1/chat/completions", `{"model":"gpt-4o","messages":[]}`,
			`{"id":"c1","object":"chat.completion","model":"gpt-4o-2024-08-06","choices":[{"finish_reason":"length"}],"usage":{"prompt_tokens":100,"completion_tokens":20}}`), true,
			GenAI{Provider: "openai", Operation: "chat", RequestModel: "gpt-4o", ResponseModel: "gpt-4o-2024-08-06", InputTokens: 100, OutputTokens: 20, FinishReasons: []string{"length"}}},
		{"openai chat SSE, usage in the final chunk", exchange("POST", "https://api.openai.com/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[],"stream":true,"stream_options":{"include_usage":true}}`, openaiUsageSSE), true,
			GenAI{Provider: "openai", Operation: "chat", RequestModel: "gpt-4o-mini", ResponseModel: "gpt-4o-mini-2024-07-18", InputTokens: 12, OutputTokens: 7, FinishReasons: []string{"stop"}}},
		{"openai responses SSE", exchange("POST", "https://api.openai.com/v1/responses", `{"model":"gpt-4.1","input":"hi","stream":true}`, responsesSSE), true,
			GenAI{Provider: "openai", Operation: "chat", RequestModel: "gpt-4.1", ResponseModel: "gpt-4.1-2025-04-14", InputTokens: 40, OutputTokens: 9}},
		{"anthropic JSON", exchange("POST", "https://api.anthropic.com/v1/messages", `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[]}`,
			`{"id":"msg_1","type":"message","model":"claude-sonnet-4-5-20250929","stop_reason":"end_turn","usage":{"input_tokens":9,"output_tokens":3}}`), true,
			GenAI{Provider: "anthropic", Operation: "chat", RequestModel: "claude-sonnet-4-5", ResponseModel: "claude-sonnet-4-5-20250929", InputTokens: 9, OutputTokens: 3, FinishReasons: []string{"end_turn"}}},
		{"anthropic SSE: input in message_start, output in message_delta", exchange("POST", "https://api.anthropic.com/v1/messages", `{"model":"claude-sonnet-4-5","stream":true,"messages":[]}`, anthropicSSE), true,
			GenAI{Provider: "anthropic", Operation: "chat", RequestModel: "claude-sonnet-4-5", ResponseModel: "claude-sonnet-4-5", InputTokens: 25, OutputTokens: 15, FinishReasons: []string{"end_turn"}}},
		{"embeddings", exchange("POST", "https://api.openai.com/v1/embeddings", `{"model":"text-embedding-3-small","input":"x"}`, `{"model":"text-embedding-3-small","usage":{"prompt_tokens":1}}`), true,
			GenAI{Provider: "openai", Operation: "embeddings", RequestModel: "text-embedding-3-small", ResponseModel: "text-embedding-3-small", InputTokens: 1, OutputTokens: -1}},
		{"a tool call is not an LLM call", exchange("GET", "https://tools.example.com/issues", "", `{"model":"x"}`), false, GenAI{}},
		{"JSON without messages", exchange("POST", "https://tools.example.com/x", `{"model":"m"}`, `{}`), false, GenAI{}},
		{"not JSON", exchange("POST", "https://api.openai.com/v1/chat/completions", `model=x`, `{}`), false, GenAI{}},
		{"answer not JSON: request attributes only", exchange("POST", "https://llm.internal/v1/chat/completions", `{"model":"m","messages":[]}`, "<html>"), true,
			GenAI{Provider: "openai", Operation: "chat", RequestModel: "m", InputTokens: -1, OutputTokens: -1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := GenAIOf(&tc.in)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if ok && !equalGenAI(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// equalGenAI compares every field; a nil FinishReasons is not an empty one.
// The unkeyed literal lists them all: a field added to GenAI stops it compiling.
func equalGenAI(a, b GenAI) bool {
	_ = GenAI{a.Provider, a.Operation, a.RequestModel, a.ResponseModel, a.InputTokens, a.OutputTokens, a.FinishReasons}
	return a.Provider == b.Provider && a.Operation == b.Operation && a.RequestModel == b.RequestModel &&
		a.ResponseModel == b.ResponseModel && a.InputTokens == b.InputTokens && a.OutputTokens == b.OutputTokens &&
		(a.FinishReasons == nil) == (b.FinishReasons == nil) && slices.Equal(a.FinishReasons, b.FinishReasons)
}

func TestParseEndpoint(t *testing.T) {
	cases := []struct{ in, want, err string }{
		{"http://127.0.0.1:4318", "http://127.0.0.1:4318/v1/traces", ""},
		{"http://collector:4318/", "http://collector:4318/v1/traces", ""},
		{"https://otel.example.com/otlp", "https://otel.example.com/otlp/v1/traces", ""},
		{"https://otel.example.com/v1/traces", "https://otel.example.com/v1/traces", ""},
		{"127.0.0.1:4318", "", "want an http:// or https:// URL"},
		{"grpc://x:4317", "", "want an http:// or https:// URL"},
		{"http://user:hunter2secret@x:4318", "http://user:hunter2secret@x:4318/v1/traces", ""},
		{"ftp://user:hunter2secret@x", "", "ftp://x"},
	}
	for _, tc := range cases {
		got, err := ParseEndpoint(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "hunter2") {
				t.Errorf("%s: err = %v, want one with %q and no password", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func sampleRun() Run {
	start := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	closed := start.Add(3 * time.Second)
	code := 3
	rec := store.Run{RunID: "20260601T120000.000Z-00000002", RunType: "replay", FixtureID: "empty_output", TaskID: "42", Attempt: 1,
		AgentName: "triage", StartedAt: start, ClosedAt: &closed, Status: "failed", FailureClass: "empty_output",
		FailureReason: "report.json is empty", Mode: "strict", Cassette: "empty_output", ExitCode: &code, Interactions: 3,
		Blocked: []store.RunRequest{{Method: "POST", URL: "https://tools.example.com/messages", Reason: "mutation_blocked"}},
		Calls: []store.RunCall{
			{At: start.Add(100 * time.Millisecond), Method: "POST", URL: "https://api.openai.com/v1/chat/completions", Decision: "replayed", Status: 200},
			{At: start.Add(time.Second), Method: "GET", URL: "https://tools.example.com/issues?token=[REDACTED:param]", Decision: "replayed", Status: 200},
			{At: start.Add(2 * time.Second), Method: "POST", URL: "https://tools.example.com/messages", Decision: "blocked", Reason: "mutation_blocked", Status: 403},
		}}
	llm := exchange("POST", "https://api.openai.com/v1/chat/completions", `{"model":"gpt-4o","messages":[]}`,
		`{"model":"gpt-4o-2024-08-06","usage":{"prompt_tokens":100,"completion_tokens":20}}`)
	llm.DurationMs = 400
	return Run{Record: rec, SourceRunID: "20260530T080000.000Z-00000001",
		Events:       []store.RunEvent{{Seq: 1, At: start.Add(1500 * time.Millisecond), Kind: "checkpoint", Name: "fetched", Data: json.RawMessage(`{"issues":3}`)}},
		Interactions: []store.Interaction{exchange("GET", "https://tools.example.com/issues?token=[REDACTED:param]", "", `[]`), llm}}
}

func TestExportOneTracePerRun(t *testing.T) {
	rcv, err := otlptest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer rcv.Close()
	var mu sync.Mutex
	var warns []string
	e, err := New(Config{Endpoint: rcv.URL, Headers: map[string]string{"Authorization": "Bearer collector-token"}, Version: "test",
		Warn: func(s string) { mu.Lock(); warns = append(warns, s); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	r := sampleRun()
	e.Emit(r)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.Close(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if e.Exported() != 4 || e.Dropped() != 0 || len(warns) != 0 {
		t.Fatalf("exported %d dropped %d warnings %q", e.Exported(), e.Dropped(), warns)
	}
	if h := rcv.Headers(); len(h) == 0 || h[0].Get("Authorization") != "Bearer collector-token" {
		t.Errorf("headers not sent: %v", h)
	}
	traces := rcv.Traces()
	id := TraceID(r.Record.RunID)
	spans := traces[hex.EncodeToString(id[:])]
	if len(traces) != 1 || len(spans) != 4 {
		t.Fatalf("want one trace of 4 spans under the run's trace id, got %d traces: %+v", len(traces), traces)
	}
	var root otlptest.Span
	for _, s := range spans {
		if s.ParentID == "" {
			root = s
		}
	}
	rid := RootSpanID(r.Record.RunID)
	if root.SpanID != hex.EncodeToString(rid[:]) || root.Name != "cassetteproxy replay" || root.Service != "cassetteproxy" {
		t.Fatalf("root: %+v", root)
	}
	for k, v := range map[string]string{"cassetteproxy.run_id": r.Record.RunID, "cassetteproxy.status": "failed",
		"cassetteproxy.failure_class": "empty_output", "cassetteproxy.fixture_id": "empty_output", "cassetteproxy.exit_code": "3",
		"cassetteproxy.source_run_id": r.SourceRunID, "cassetteproxy.blocked": "1"} {
		if root.Attrs[k] != v {
			t.Errorf("root %s = %q, want %q", k, root.Attrs[k], v)
		}
	}
	if root.StatusCode != "STATUS_CODE_ERROR" || !strings.HasPrefix(root.StatusMessage, "failed/empty_output") {
		t.Errorf("root status %s %q", root.StatusCode, root.StatusMessage)
	}
	src := TraceID(r.SourceRunID)
	if len(root.Links) != 1 || root.Links[0].TraceID != hex.EncodeToString(src[:]) {
		t.Errorf("link to the source run: %+v", root.Links)
	}
	if len(root.Events) != 1 || root.Events[0].Name != "checkpoint" || root.Events[0].Attrs["cassetteproxy.event.data"] != `{"issues":3}` {
		t.Errorf("events: %+v", root.Events)
	}
	byURL := map[string]otlptest.Span{}
	for _, s := range spans {
		if s.ParentID != "" {
			if s.ParentID != root.SpanID || s.Kind != "SPAN_KIND_CLIENT" {
				t.Errorf("call span %s: parent %s kind %s", s.Name, s.ParentID, s.Kind)
			}
			byURL[s.Attrs["url.full"]] = s
		}
	}
	llm := byURL["https://api.openai.com/v1/chat/completions"]
	for k, v := range map[string]string{"http.request.method": "POST", "http.response.status_code": "200", "cassetteproxy.decision": "replayed",
		"gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": "100", "gen_ai.usage.output_tokens": "20", "gen_ai.provider.name": "openai", "server.address": "api.openai.com"} {
		if llm.Attrs[k] != v {
			t.Errorf("LLM span %s = %q, want %q", k, llm.Attrs[k], v)
		}
	}
	if llm.Name != "chat gpt-4o" || llm.EndUnixNano-llm.StartUnixNano != uint64(400*time.Millisecond) {
		t.Errorf("LLM span %q lasts %d ns", llm.Name, llm.EndUnixNano-llm.StartUnixNano)
	}
	blocked := byURL["https://tools.example.com/messages"]
	if blocked.StatusCode != "STATUS_CODE_ERROR" || blocked.Attrs["cassetteproxy.reason"] != "mutation_blocked" || blocked.Attrs["gen_ai.request.model"] != "" {
		t.Errorf("blocked span: %+v", blocked)
	}
	if tool := byURL["https://tools.example.com/issues?token=[REDACTED:param]"]; tool.Name != "GET tools.example.com:443" || tool.Attrs["server.port"] != "443" {
		t.Errorf("tool span: %+v", tool)
	}
}

func TestCollectorDownDropsAndCounts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	var mu sync.Mutex
	var warns []string
	e, err := New(Config{Endpoint: "http://user:s3cretpass@" + addr + "?k=querysecret", MaxRetry: -1,
		Warn: func(s string) { mu.Lock(); warns = append(warns, s); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	e.Emit(sampleRun())
	e.Emit(sampleRun())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = e.Close(ctx)
	if err == nil || !strings.Contains(err.Error(), "8 of 8 spans not delivered") {
		t.Fatalf("Close: %v", err)
	}
	if e.Dropped() != 8 || e.Exported() != 0 {
		t.Errorf("dropped %d exported %d", e.Dropped(), e.Exported())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(warns) == 0 || !strings.Contains(warns[0], "telemetry: dropped") {
		t.Fatalf("no warning: %q", warns)
	}
	for _, w := range append(warns, err.Error()) {
		if strings.Contains(w, "s3cretpass") || strings.Contains(w, "querysecret") {
			t.Errorf("a warning shows the endpoint's secret: %s", w)
		}
	}
}
