package match

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/cassetteproxy/cassetteproxy/store"
)

func learnIn(method, url, body, respCT, resp string, hdr ...string) store.Interaction {
	in := store.Interaction{Request: store.Request{Method: method, URL: url, Header: http.Header{}},
		Response: store.Response{Status: 200, Header: http.Header{"Content-Type": {respCT}}, Body: []byte(resp)}}
	if body != "" {
		in.Request.Body = []byte(body)
		in.Request.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		in.Request.Header.Set(hdr[i], hdr[i+1])
	}
	return in
}

func names(vs []Volatile) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Name)
	}
	return out
}

func TestLearn(t *testing.T) {
	const chat = "https://api.llm.test/v1/chat/completions"
	cases := []struct {
		name         string
		a, b         []store.Interaction
		wantQuery    []string
		wantHeaders  []string
		wantBody     []string
		wantResponse []string
		structural   int
	}{
		{name: "timestamps in every message generalize to [*]",
			a: []store.Interaction{learnIn("POST", chat, `{"model":"m","messages":[{"role":"user","ts":"2026-01-01T00:00:01Z","content":"hi"},{"role":"user","ts":"2026-01-01T00:00:02Z","content":"yo"}],"metadata":{"request_id":"6f1c"}}`,
				"application/json", `{"id":"chatcmpl-1700000001","created":1700000001,"choices":[{"message":{"content":"hello"}}]}`)},
			b: []store.Interaction{learnIn("POST", chat, `{"model":"m","messages":[{"role":"user","ts":"2026-02-01T00:00:01Z","content":"hi"},{"role":"user","ts":"2026-02-01T00:00:09Z","content":"yo"}],"metadata":{"request_id":"9a2e"}}`,
				"application/json", `{"id":"chatcmpl-1700000099","created":1700000099,"choices":[{"message":{"content":"hello"}}]}`)},
			wantBody: []string{"$.messages[*].ts", "$.metadata.request_id"}, wantResponse: []string{"$.created", "$.id"}},
		{name: "an index whose siblings agree stays concrete",
			a:        []store.Interaction{learnIn("POST", chat, `{"items":[{"v":"same"},{"v":"a1"}]}`, "text/plain", "ok")},
			b:        []store.Interaction{learnIn("POST", chat, `{"items":[{"v":"same"},{"v":"b2"}]}`, "text/plain", "ok")},
			wantBody: []string{"$.items[1].v"}},
		{name: "query nonce and a header; never-keyed headers and JSON-RPC ids left alone",
			a: []store.Interaction{learnIn("POST", "http://tools.test:8080/rpc?nonce=1&page=2", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
				"text/event-stream", "id: 1\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"at\":\"10:00\"}}\n\n",
				"X-Client-Nonce", "aaa", "Date", "Mon", "Mcp-Session-Id", "s1")},
			b: []store.Interaction{learnIn("POST", "http://tools.test:8080/rpc?nonce=7&page=2", `{"jsonrpc":"2.0","id":5,"method":"tools/list"}`,
				"text/event-stream", "id: 2\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":5,\"result\":{\"at\":\"11:00\"}}\n\n",
				"X-Client-Nonce", "bbb", "Date", "Tue", "Mcp-Session-Id", "s2")},
			wantQuery: []string{"nonce"}, wantHeaders: []string{"X-Client-Nonce"}, wantResponse: []string{"$.id", "$.result.at"}},
		{name: "a key only one side has is structural, not volatile",
			a:          []store.Interaction{learnIn("POST", chat, `{"a":1}`, "text/plain", "")},
			b:          []store.Interaction{learnIn("POST", chat, `{"a":1,"b":2}`, "text/plain", "")},
			structural: 1},
		{name: "pairs by order within method, host and path",
			a: []store.Interaction{learnIn("GET", "https://h.test/x?t=1", "", "text/plain", ""), learnIn("GET", "https://h.test/y?t=1", "", "text/plain", ""),
				learnIn("GET", "https://h.test/x?t=2", "", "text/plain", "")},
			b: []store.Interaction{learnIn("GET", "https://h.test/y?t=1", "", "text/plain", ""), learnIn("GET", "https://h.test/x?t=3", "", "text/plain", ""),
				learnIn("GET", "https://h.test/x?t=4", "", "text/plain", "")},
			wantQuery: []string{"t"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l, err := Learn(c.a, c.b)
			if err != nil {
				t.Fatal(err)
			}
			var q, h, body, resp []string
			for _, r := range l.Rules {
				q, h = append(q, names(r.Query)...), append(h, names(r.Headers)...)
				body, resp = append(body, names(r.BodyPaths)...), append(resp, names(r.ResponsePaths)...)
			}
			for _, chk := range []struct {
				what      string
				got, want []string
			}{{"query", q, c.wantQuery}, {"headers", h, c.wantHeaders}, {"body", body, c.wantBody}, {"response", resp, c.wantResponse}} {
				if !slices.Equal(chk.got, chk.want) {
					t.Errorf("%s: %q, want %q", chk.what, chk.got, chk.want)
				}
			}
			if l.Structural != c.structural || l.Paired != len(c.a) {
				t.Errorf("paired %d structural %d", l.Paired, l.Structural)
			}
			checkLearnedRulesMatch(t, l, c.a, c.b)
		})
	}
}

// checkLearnedRulesMatch: the learned rules file parses, and under it
// every paired request of b has the key of its partner in a.
func checkLearnedRulesMatch(t *testing.T, l *Learned, a, b []store.Interaction) {
	t.Helper()
	y, err := l.YAML("learned")
	if err != nil {
		t.Fatal(err)
	}
	rules, err := ParseRules(y)
	if err != nil {
		t.Fatalf("learned rules do not parse: %v\n%s", err, y)
	}
	ix := NewIndex(rules, a)
	for i := range b {
		if _, st, _ := ix.Next(&b[i].Request); st != Found && st != Exhausted {
			if l.Structural == 0 {
				t.Errorf("b[%d] %s misses under the learned rules:\n%s", i, b[i].Request.URL, y)
			}
		}
	}
}

// TestLearnCapturedMCPSessions: two captured sessions of the official
// SDK against server-everything pair completely; only what varies
// (session ids and SSE event ids, neither of which is JSON or keyed) is
// left alone, so nothing is learned and every request of the second
// matches the first.
func TestLearnCapturedMCPSessions(t *testing.T) {
	a, b := loadCapture(t, "mcp-session-1.json"), loadCapture(t, "mcp-session-2.json")
	l, err := Learn(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if l.Paired != 7 || l.Structural != 0 || len(l.Rules) != 0 {
		t.Fatalf("paired %d, structural %d, rules %+v", l.Paired, l.Structural, l.Rules)
	}
	checkLearnedRulesMatch(t, l, a, b)
}

func TestLearnTooFewPairs(t *testing.T) {
	a := []store.Interaction{learnIn("GET", "https://h.test/a", "", "text/plain", ""), learnIn("GET", "https://h.test/b", "", "text/plain", ""),
		learnIn("GET", "https://h.test/c", "", "text/plain", "")}
	b := []store.Interaction{learnIn("GET", "https://h.test/a", "", "text/plain", ""), learnIn("POST", "https://h.test/a", "", "text/plain", ""),
		learnIn("GET", "https://other.test/b", "", "text/plain", "")}
	_, err := Learn(a, b)
	var tf *ErrTooFewPairs
	if !errors.As(err, &tf) || tf.Paired != 1 || !strings.Contains(err.Error(), "could pair only 1 of 3 and 3 requests") {
		t.Fatalf("err = %v", err)
	}
	if _, err := Learn(nil, nil); !errors.As(err, &tf) {
		t.Fatalf("empty recordings: %v", err)
	}
}

func TestLearnedYAML(t *testing.T) {
	l := &Learned{Rules: []LearnedRule{{Host: "api.test:8443", Path: "/v1/x",
		Query:         []Volatile{{Name: "ts", A: "1", B: "2"}},
		BodyPaths:     []Volatile{{Name: "$.messages[*].timestamp", A: `say "hi"`, B: "b"}},
		ResponsePaths: []Volatile{{Name: "$.id", A: "x", B: "y"}}}}}
	y, err := l.YAML("Learned from a and b.")
	if err != nil {
		t.Fatal(err)
	}
	want := `# Learned from a and b.

rules:
  - host: "api.test:8443"
    path: "/v1/x"
    ignore_query:
      - "ts" # e.g. "1" vs "2"
    ignore_body_paths:
      - "$.messages[*].timestamp" # e.g. "say \"hi\"" vs "b"
    ignore_response_paths:
      - "$.id" # e.g. "x" vs "y"
`
	if string(y) != want {
		t.Fatalf("got:\n%s\nwant:\n%s", y, want)
	}
	rules, err := ParseRules(y)
	if err != nil {
		t.Fatal(err)
	}
	if got := rules.IgnoredResponsePaths("https://api.test:8443/v1/x?q=1"); len(got) != 1 || got[0].String() != "$.id" {
		t.Fatalf("IgnoredResponsePaths: %v", got)
	}
	if got := rules.IgnoredResponsePaths("https://api.test/v1/x"); len(got) != 0 {
		t.Fatalf("another port: %v", got)
	}
	empty, _ := (&Learned{}).YAML("nothing")
	if _, err := ParseRules(empty); err != nil || !strings.Contains(string(empty), "rules: []") {
		t.Fatalf("empty: %v %s", err, empty)
	}
}

func TestResponseDocumentAndStrip(t *testing.T) {
	cases := []struct {
		ct, body string
		paths    []string
		want     string // "" = no document
	}{
		{"application/json", `{"b":1,"a":{"id":"x","k":2}}`, []string{"$.a.id"}, `{"a":{"k":2},"b":1}`},
		{"text/event-stream", "id: u1\ndata: \n\nevent: message\nid: u2\ndata: {\"jsonrpc\":\"2.0\",\"result\":{}}\n\n", nil, `{"jsonrpc":"2.0","result":{}}`},
		{"text/event-stream", "data: {\"n\":1}\n\ndata: {\"n\":2}\n\ndata: [DONE]\n\n", []string{"$[*].n"}, `[{},{}]`},
		{"text/plain", "hello", nil, ""},
		{"application/json", `[1,2,3]`, []string{"$[1]"}, `[1,null,3]`},
	}
	for i, c := range cases {
		doc, ok := ResponseDocument(c.ct, []byte(c.body))
		if !ok {
			if c.want != "" {
				t.Errorf("%d: no document", i)
			}
			continue
		}
		var ps []JSONPath
		for _, p := range c.paths {
			jp, err := ParseJSONPath(p)
			if err != nil {
				t.Fatal(err)
			}
			ps = append(ps, jp)
		}
		got, err := StripJSONPaths(doc, ps)
		if err != nil || string(got) != c.want {
			t.Errorf("%d: %s %v, want %s", i, got, err, c.want)
		}
	}
}
