package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// chatAPI is an OpenAI-style chat endpoint on loopback that, like the real
// one, puts a fresh id, a creation time and a fingerprint in every answer
// (the time counts answers, so two answers never share one).
func chatAPI() http.Handler {
	var calls atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Messages []struct{ Content string } `json:"messages"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		last := ""
		if n := len(req.Messages); n > 0 {
			last = req.Messages[n-1].Content
		}
		n := calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":"chatcmpl-%d","object":"chat.completion","created":%d,"system_fingerprint":"fp_%s","model":"gpt-4o-mini",`+
			`"choices":[{"index":0,"message":{"role":"assistant","content":"You said: %s"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":4,"total_tokens":13}}`,
			time.Now().UnixNano(), 1767225600+n, uuid()[:8], last)
	})
}

func uuid() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// chatTask is the agent's task: two chat turns whose requests carry a
// client timestamp per message, a request id and a nonce, as SDK-built
// requests do.
func chatTask(t *testing.T, c *http.Client, base string) {
	t.Helper()
	var msgs []map[string]string
	for _, say := range []string{"hello", "summarize the issues"} {
		msgs = append(msgs, map[string]string{"role": "user", "content": say, "timestamp": time.Now().Format(time.RFC3339Nano)})
		body, _ := json.Marshal(map[string]any{"model": "gpt-4o-mini", "messages": msgs, "metadata": map[string]string{"request_id": uuid()}})
		a := do(t, c, "POST", base+"/v1/chat/completions?nonce="+uuid(), string(body))
		var ans struct {
			Choices []struct{ Message map[string]string }
		}
		json.Unmarshal(a.body, &ans)
		msgs = append(msgs, map[string]string{"role": "assistant", "content": ans.Choices[0].Message["content"], "timestamp": time.Now().Format(time.RFC3339Nano)})
	}
}

// replayRequests sends the requests of cassette `from` (as recorded) to a
// proxy replaying cassette `against`, with extra serve flags, and returns
// how many were blocked.
func (e *env) replayRequests(t *testing.T, from, against string, flags ...string) int {
	t.Helper()
	show, errs, code := e.cli("cassettes", "show", from, "--json")
	if code != 0 {
		t.Fatal(errs)
	}
	var cas struct {
		Interactions []struct {
			Request struct {
				Method  string              `json:"method"`
				URL     string              `json:"url"`
				Headers map[string][]string `json:"headers"`
				Body    *struct {
					JSON json.RawMessage `json:"json"`
					Text *string         `json:"text"`
				} `json:"body"`
			} `json:"request"`
		} `json:"interactions"`
	}
	if err := json.Unmarshal([]byte(show), &cas); err != nil {
		t.Fatal(err)
	}
	p := e.serve(append([]string{"--mode", "replay", "--cassette", against}, flags...)...)
	c := e.client(p)
	blocked := 0
	for _, in := range cas.Interactions {
		var body io.Reader
		if b := in.Request.Body; b != nil && b.JSON != nil {
			body = bytes.NewReader(b.JSON)
		} else if b != nil && b.Text != nil {
			body = strings.NewReader(*b.Text)
		}
		req, _ := http.NewRequest(in.Request.Method, in.Request.URL, body)
		req.Header = in.Request.Headers
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", in.Request.Method, in.Request.URL, err)
		}
		if resp.Header.Get("X-Cassetteproxy-Blocked") != "" {
			blocked++
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	p.stop()
	return blocked
}

// TestRulesLearnChat records the same chat task twice through the proxy
// against an OpenAI-style upstream: the second recording's requests miss
// against the first; rules learn finds the timestamps (generalized over
// messages), the request id, the nonce and the answers' fresh ids and
// times; with the learned rules every request of the second replays
// against the first.
func TestRulesLearnChat(t *testing.T) {
	e := newEnv(t)
	up := newUpstream(t, true, chatAPI())
	for _, name := range []string{"chat-1", "chat-2"} {
		p := e.serve("--mode", "record", "--cassette", name, "--upstream-ca", up.caFile)
		chatTask(t, e.client(p), up.URL)
		p.stop()
	}
	if n := e.replayRequests(t, "chat-2", "chat-1"); n != 2 {
		t.Fatalf("without rules %d of 2 requests missed, want 2", n)
	}
	rules := filepath.Join(e.dir, "learned.yaml")
	out, errs, code := e.cli("rules", "learn", "--cassette", "chat-1", "--cassette", "chat-2", "--out", rules)
	if code != 0 || !strings.Contains(out, "paired 2 of 2 and 2 requests") {
		t.Fatalf("rules learn: exit %d\n%s\n%s", code, out, errs)
	}
	y, _ := os.ReadFile(rules)
	for _, want := range []string{`- "nonce" # e.g. "`, `- "$.messages[*].timestamp" # e.g. "`, `- "$.metadata.request_id" # e.g. "`,
		`- "$.id" # e.g. "chatcmpl-`, `- "$.created" # e.g. "`, `- "$.system_fingerprint"`} {
		if !strings.Contains(string(y), want) {
			t.Errorf("learned rules lack %s:\n%s", want, y)
		}
	}
	// Stable fields are not learned.
	for _, never := range []string{"$.model", "content", "usage"} {
		if strings.Contains(string(y), never) {
			t.Errorf("learned rules name %s, which did not vary:\n%s", never, y)
		}
	}
	if n := e.replayRequests(t, "chat-2", "chat-1", "--rules", rules); n != 0 {
		t.Fatalf("with the learned rules %d requests missed:\n%s", n, y)
	}
}

// TestRulesLearnCapturedMCP: the two MCP sessions captured on the wire
// (official SDK, server-everything; testdata/traffic), imported as HAR,
// pair completely; what varied between them (session ids, SSE event ids,
// dates) is never keyed, so nothing is learned and the second session's
// requests replay against the first with zero misses.
func TestRulesLearnCapturedMCP(t *testing.T) {
	e := newEnv(t)
	for i, name := range []string{"mcp-session-1", "mcp-session-2"} {
		har := captureToHAR(t, filepath.Join("..", "testdata", "traffic", name+".json"))
		if _, errs, code := e.cli("import", "--in", har, "--cassette", fmt.Sprintf("mcp-%d", i+1)); code != 0 {
			t.Fatalf("import %s: %s", name, errs)
		}
	}
	rules := filepath.Join(e.dir, "learned.yaml")
	out, errs, code := e.cli("rules", "learn", "--cassette", "mcp-1", "--cassette", "mcp-2", "--out", rules)
	if code != 0 || !strings.Contains(out, "paired 7 of 7 and 7 requests; 0 volatile fields") {
		t.Fatalf("rules learn: exit %d\n%s\n%s", code, out, errs)
	}
	if n := e.replayRequests(t, "mcp-2", "mcp-1", "--rules", rules); n != 0 {
		t.Fatalf("%d requests of the second session missed", n)
	}
}

// TestRulesLearnBadInput: two recordings of different tasks pair too few
// requests; a missing cassette and a missing second --cassette are one line.
func TestRulesLearnBadInput(t *testing.T) {
	e := newEnv(t)
	up := newUpstream(t, false, itemsHandler())
	p := e.serve("--mode", "record", "--cassette", "items")
	c := e.client(p)
	do(t, c, "GET", up.URL+"/items?a=1", "")
	do(t, c, "GET", up.URL+"/gzip", "")
	p.stop()
	chat := newUpstream(t, false, chatAPI())
	p = e.serve("--mode", "record", "--cassette", "chat")
	chatTask(t, e.client(p), chat.URL)
	p.stop()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--cassette", "items", "--cassette", "chat"}, "could pair only 0 of 2 and 2 requests"},
		{[]string{"--cassette", "items", "--cassette", "nope"}, `cassette "nope" not found`},
		{[]string{"--cassette", "items"}, "rules learn needs two cassettes"},
	} {
		_, errs, code := e.cli(append([]string{"rules", "learn"}, tc.args...)...)
		if code != 1 || !strings.Contains(errs, tc.want) || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
			t.Errorf("rules learn %v: exit %d %q, want %q", tc.args, code, errs, tc.want)
		}
	}
}

// captureToHAR turns a captured session (testdata/traffic format) into a
// HAR file, the import format browsers and proxies share.
func captureToHAR(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		CapturedAt string `json:"captured_at"`
		Exchanges  []struct {
			Request struct {
				Method, URL string
				Headers     [][2]string
				Body        string
			}
			Response struct {
				Status  int
				Headers [][2]string
				Body    string
			}
		}
	}
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	nv := func(hs [][2]string) []map[string]string {
		out := []map[string]string{}
		for _, h := range hs {
			out = append(out, map[string]string{"name": h[0], "value": h[1]})
		}
		return out
	}
	var entries []map[string]any
	for _, ex := range c.Exchanges {
		req := map[string]any{"method": ex.Request.Method, "url": ex.Request.URL, "httpVersion": "HTTP/1.1", "headers": nv(ex.Request.Headers),
			"cookies": []any{}, "queryString": []any{}, "headersSize": -1, "bodySize": len(ex.Request.Body)}
		if ex.Request.Body != "" {
			req["postData"] = map[string]string{"mimeType": "application/json", "text": ex.Request.Body}
		}
		ct := ""
		for _, h := range ex.Response.Headers {
			if strings.EqualFold(h[0], "content-type") {
				ct = h[1]
			}
		}
		entries = append(entries, map[string]any{"startedDateTime": c.CapturedAt, "time": 1, "request": req,
			"response": map[string]any{"status": ex.Response.Status, "statusText": "", "httpVersion": "HTTP/1.1", "headers": nv(ex.Response.Headers),
				"cookies": []any{}, "content": map[string]any{"size": len(ex.Response.Body), "mimeType": ct, "text": ex.Response.Body},
				"redirectURL": "", "headersSize": -1, "bodySize": len(ex.Response.Body)},
			"cache": map[string]any{}, "timings": map[string]any{"send": 0, "wait": 1, "receive": 0}})
	}
	b, _ := json.Marshal(map[string]any{"log": map[string]any{"version": "1.2", "creator": map[string]string{"name": "capture", "version": "1"}, "entries": entries}})
	out := filepath.Join(t.TempDir(), filepath.Base(path)+".har")
	if err := os.WriteFile(out, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}
