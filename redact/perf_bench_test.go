package redact

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand"
	"net/http"
	"strings"
	"testing"

	"github.com/cassetteproxy/cassetteproxy/store"
)

// Benchmarks for the shapes the proxy redacts on every recording: small and
// large chat-completion answers (Response, with fingerprints), a typical
// SDK request (Request: URL, headers, small JSON body) and log URLs
// (String). BenchmarkRedactLLMJSON50KB in fuzz_bench_test.go is the large
// request.

// chatAnswer is a chat-completion answer of about size bytes, shaped like
// the load harness's (bench/cmd/loadtest): one long prose content string.
func chatAnswer(size int) []byte {
	rng := rand.New(rand.NewSource(7))
	words := strings.Fields(`the model returned a tool call with arguments for search and the agent read
results from the index then summarized each document into a short answer citing sources where the query
matched titles and abstracts of papers about retrieval augmented generation latency budgets caching and
evaluation of large language models on benchmarks with careful analysis of errors failures retries timeouts`)
	head := `{"id":"chatcmpl-9xYzBench0001","object":"chat.completion","created":1718000000,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"`
	tail := fmt.Sprintf(`"},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":812,"completion_tokens":%d,"total_tokens":%d},"system_fingerprint":"fp_bench"}`, size/4, size/4+812)
	n := size - len(head) - len(tail)
	var sb strings.Builder
	for sb.Len() < n {
		if sb.Len() > 0 {
			if rng.Intn(12) == 0 {
				sb.WriteString(". ")
			} else {
				sb.WriteByte(' ')
			}
		}
		sb.WriteString(words[rng.Intn(len(words))])
	}
	return []byte(head + sb.String()[:n] + tail)
}

func benchResponse(b *testing.B, body []byte) {
	r := mustNew(b, Config{Secret: []byte("k")})
	if !json.Valid(body) {
		b.Fatal("bench body is not JSON")
	}
	hdr := http.Header{
		"Content-Type":   {"application/json"},
		"Date":           {"Fri, 27 Nov 2026 02:00:03 GMT"},
		"Server":         {"nginx/1.22.1"},
		"Etag":           {`W/"ce-8a5b1f7c"`},
		"Openai-Version": {"2020-10-01"},
		"X-Request-Id":   {"req_8a5b1f7c2e3d4a5b6c7d8e9f00112233"},
	}
	resp := store.Response{Status: 200}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp.Header = hdr
		resp.Body = body
		r.Response(&resp)
	}
	b.StopTimer()
	if !bytes.Equal(resp.Body, body) {
		b.Fatal("clean body changed")
	}
}

// BenchmarkRedactResponse1KB: a clean 1 KB chat answer with typical headers.
func BenchmarkRedactResponse1KB(b *testing.B) { benchResponse(b, chatAnswer(1<<10)) }

// BenchmarkRedactResponse50KB: a clean 50 KB chat answer (the load harness's).
func BenchmarkRedactResponse50KB(b *testing.B) { benchResponse(b, chatAnswer(50<<10)) }

// BenchmarkRedactLLMJSON1KB: the 50 KB benchmark's request shape at 1 KB
// (one tool, a few messages; defaults).
func BenchmarkRedactLLMJSON1KB(b *testing.B) {
	r := mustNew(b, Config{Secret: []byte("k")})
	body := smallChatRequest()
	req := store.Request{Method: "POST", URL: "https://api.openai.com/v1/chat/completions",
		Header: map[string][]string{"Content-Type": {"application/json"}}}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req.Body = body
		r.Request(&req)
	}
}

// smallChatRequest is a ~1 KB chat request: a tool definition, a system
// prompt, a user turn, a tool call with JSON arguments and its result.
func smallChatRequest() []byte {
	return []byte(`{"model":"gpt-4o-mini","temperature":0.2,"max_tokens":512,"stream":false,` +
		`"tools":[{"type":"function","function":{"name":"search","description":"Search the index for documents matching a query.",` +
		`"parameters":{"type":"object","properties":{"query":{"type":"string","description":"What to look for"},"limit":{"type":"integer","minimum":1}},"required":["query"]}}}],` +
		`"messages":[{"role":"system","content":"You are a careful research assistant. Cite your sources and keep answers short."},` +
		`{"role":"user","content":"Find recent papers about retrieval augmented generation latency and summarize the main findings.\n\nThanks!"},` +
		`{"role":"assistant","content":null,"tool_calls":[{"id":"call_Ab12Cd34","type":"function","function":{"name":"search","arguments":"{\"query\":\"RAG latency 2024\",\"limit\":5}"}}]},` +
		`{"role":"tool","tool_call_id":"call_Ab12Cd34","content":"{\"results\":[{\"title\":\"Caching for RAG\",\"url\":\"https://example.com/papers/123?ref=search\",\"score\":0.93}],\"total\":1}"}],` +
		`"user":"user-1234"}`)
}

// BenchmarkRedactRequestSmall: an OpenAI SDK request as the proxy keys it:
// URL, the SDK's headers with a bearer key, a small JSON body.
func BenchmarkRedactRequestSmall(b *testing.B) {
	r := mustNew(b, Config{Secret: []byte("k")})
	body := []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello to the proxy, in one short sentence please."}],"stream":true}`)
	hdr := http.Header{
		"Accept":                      {"application/json"},
		"User-Agent":                  {"OpenAI/JS 6.49.0"},
		"X-Stainless-Retry-Count":     {"0"},
		"X-Stainless-Lang":            {"js"},
		"X-Stainless-Package-Version": {"6.49.0"},
		"X-Stainless-Os":              {"Linux"},
		"X-Stainless-Arch":            {"x64"},
		"X-Stainless-Runtime":         {"node"},
		"X-Stainless-Runtime-Version": {"v20.20.2"},
		"Authorization":               {"Bearer sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"},
		"Content-Type":                {"application/json"},
		"Accept-Language":             {"*"},
		"Sec-Fetch-Mode":              {"cors"},
		"Accept-Encoding":             {"gzip, deflate"},
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req := store.Request{Method: "POST", URL: "https://api.openai.com/v1/chat/completions", Header: hdr.Clone(), Body: body}
		r.Request(&req)
	}
}

// BenchmarkRedactStringURL: log-line URLs through String (the proxy scrubs
// every request URL once): clean ones, a query, and one with a secret.
func BenchmarkRedactStringURL(b *testing.B) {
	r := mustNew(b, Config{Secret: []byte("k")})
	urls := []string{
		"https://api.openai.com/v1/chat/completions",
		"http://127.0.0.1:38100/mcp",
		"https://api.github.com/repos/cassetteproxy/cassetteproxy/pulls?state=open&per_page=100&page=2",
		"https://maps.example.com/geo?q=Paris%2C+France&key=AIzaSyD-1234567890abcdefghijklmnopqrstu",
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, u := range urls {
			r.String(u)
		}
	}
}

// BenchmarkRedactHeadersHeavy: Response on a typical upstream header set and
// an empty body (a 204, a HEAD, a redirect).
func BenchmarkRedactResponseHeaders(b *testing.B) {
	r := mustNew(b, Config{Secret: []byte("k")})
	hdr := http.Header{
		"Content-Type":                   {"application/json; charset=utf-8"},
		"Date":                           {"Fri, 27 Nov 2026 02:00:03 GMT"},
		"Server":                         {"cloudflare"},
		"Cf-Ray":                         {"8a5b1f7c2e3d4a5b-CDG"},
		"Openai-Organization":            {"user-abc123"},
		"Openai-Processing-Ms":           {"412"},
		"X-Ratelimit-Limit-Requests":     {"10000"},
		"X-Ratelimit-Remaining-Tokens":   {"149984"},
		"X-Request-Id":                   {"req_8a5b1f7c2e3d4a5b6c7d8e9f00112233"},
		"Strict-Transport-Security":      {"max-age=31536000; includeSubDomains; preload"},
		"Location":                       {"https://example.com/next?page=2&cursor=abc"},
		"Access-Control-Expose-Headers":  {"X-Request-ID"},
		"Alt-Svc":                        {`h3=":443"; ma=86400`},
		"Set-Cookie":                     {"__cf_bm=abc.def-1718000000-1.0.1.1; path=/; HttpOnly"},
		"Anthropic-Ratelimit-Tokens-Lim": {"400000"},
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp := store.Response{Status: 200, Header: hdr.Clone()}
		r.Response(&resp)
	}
}

// BenchmarkRedactStreamed50KB: a streamed chat answer as the proxy records
// it: ~50 KB of SSE chunks, one event per chunk, scrubbed as one body and
// cut back into the events.
func BenchmarkRedactStreamed50KB(b *testing.B) {
	r := mustNew(b, Config{Secret: []byte("k")})
	var events []store.Event
	var body []byte
	words := strings.Fields("the model returned a tool call with arguments for search and the agent read results from the index")
	for i := 0; len(body) < 50<<10; i++ {
		ev := fmt.Appendf(nil, "data: {\"id\":\"chatcmpl-9xYzBench0001\",\"object\":\"chat.completion.chunk\",\"created\":1718000000,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":%q},\"finish_reason\":null}]}\n\n", " "+words[i%len(words)])
		events = append(events, store.Event{OffsetMs: int64(i), Data: ev})
		body = append(body, ev...)
	}
	body = append(body, "data: [DONE]\n\n"...)
	events = append(events, store.Event{Data: []byte("data: [DONE]\n\n")})
	hdr := http.Header{"Content-Type": {"text/event-stream"}}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp := store.Response{Status: 200, Header: hdr, Body: body, Streamed: true, Events: events}
		r.Response(&resp)
	}
}
