package match

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestJSONRPCID(t *testing.T) {
	cases := []struct {
		body string
		id   string
		ok   bool
	}{
		{`{"method":"tools/list","jsonrpc":"2.0","id":1}`, `1`, true},
		{`{"jsonrpc":"2.0","id" : "abc-1" ,"method":"x"}`, `"abc-1"`, true},
		{`{"jsonrpc":"2.0","id":null,"error":{}}`, `null`, true},
		{`{"jsonrpc":"2.0","id":1.50}`, `1.50`, true},
		{`{"method":"notifications/initialized","jsonrpc":"2.0"}`, ``, false},
		{`{"id":1}`, ``, false},
		{`{"jsonrpc":"1.0","id":1}`, ``, false},
		{`[{"jsonrpc":"2.0","id":1}]`, ``, false},
		{`not json`, ``, false},
		{``, ``, false},
		{" \r\n\t{\"jsonrpc\":\"2.0\",\"id\":7}\n", `7`, true}, // JSON whitespace before the object
		{" \t\n", ``, false},
		{"\ufeff{\"jsonrpc\":\"2.0\",\"id\":7}", ``, false}, // a BOM is not JSON whitespace
		{`"{\"jsonrpc\":\"2.0\",\"id\":1}"`, ``, false},     // a string, not an object
	}
	for _, tc := range cases {
		id, ok := JSONRPCID([]byte(tc.body))
		if ok != tc.ok || string(id) != tc.id {
			t.Errorf("JSONRPCID(%s) = %s, %v; want %s, %v", tc.body, id, ok, tc.id, tc.ok)
		}
	}
}

func TestWithJSONRPCID(t *testing.T) {
	cases := []struct {
		body, id, want string
	}{
		// Key order, spacing and everything else survive; only the id changes.
		{`{"result":{"b":1,"a":[1, 2]},"jsonrpc":"2.0","id":2}`, `7`, `{"result":{"b":1,"a":[1, 2]},"jsonrpc":"2.0","id":7}`},
		{"{ \"id\" :\t0 , \"jsonrpc\":\"2.0\", \"result\":{\"id\":0}}\n", `"req-9"`, "{ \"id\" :\t\"req-9\" , \"jsonrpc\":\"2.0\", \"result\":{\"id\":0}}\n"},
		{`{"jsonrpc":"2.0","id":"a-long-string-id","result":null}`, `3`, `{"jsonrpc":"2.0","id":3,"result":null}`},
		{`{"jsonrpc":"2.0","id":1,"result":"\u00e9 \/"}`, ` 5 `, `{"jsonrpc":"2.0","id":5,"result":"\u00e9 \/"}`},
		// Left alone: not JSON-RPC, no id, a batch, an invalid id.
		{`{"id":1,"result":1}`, `2`, `{"id":1,"result":1}`},
		{`{"jsonrpc":"2.0","method":"n"}`, `2`, `{"jsonrpc":"2.0","method":"n"}`},
		{`[{"jsonrpc":"2.0","id":1,"result":1}]`, `2`, `[{"jsonrpc":"2.0","id":1,"result":1}]`},
		{`{"jsonrpc":"2.0","id":1,"result":1}`, `2x`, `{"jsonrpc":"2.0","id":1,"result":1}`},
		{`garbage`, `2`, `garbage`},
	}
	for _, tc := range cases {
		got := WithJSONRPCID([]byte(tc.body), json.RawMessage(tc.id))
		if string(got) != tc.want {
			t.Errorf("WithJSONRPCID(%s, %s) =\n %s\nwant\n %s", tc.body, tc.id, got, tc.want)
		}
	}
}

func TestRewriteJSONRPCIDInSSE(t *testing.T) {
	// The recorded answer to tools/call echo, as captured (id 2).
	s := loadCapture(t, "mcp-session-1.json")
	body := s[4].Response.Body
	if !bytes.Contains(body, []byte(`"jsonrpc":"2.0","id":2}`)) {
		t.Fatalf("unexpected capture body %q", body)
	}
	got := RewriteJSONRPCIDInSSE(body, json.RawMessage(`41`))
	want := bytes.Replace(body, []byte(`"jsonrpc":"2.0","id":2}`), []byte(`"jsonrpc":"2.0","id":41}`), 1)
	if !bytes.Equal(got, want) {
		t.Fatalf("rewritten SSE body:\n%q\nwant\n%q", got, want)
	}
	// Nothing else changed: the SSE event ids and the priming event survive.
	if !bytes.HasPrefix(got, body[:bytes.Index(body, []byte("data: {"))]) {
		t.Fatal("prefix changed")
	}

	cases := []struct{ in, want string }{
		{"data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\r\n\r\n", "data: {\"jsonrpc\":\"2.0\",\"id\":\"x\",\"result\":{}}\r\n\r\n"},
		{"data:{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{}}\n\n", "data:{\"jsonrpc\":\"2.0\",\"id\":\"x\",\"error\":{}}\n\n"},
		{"data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}", "data: {\"jsonrpc\":\"2.0\",\"id\":\"x\",\"result\":{}}"},
		{"data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\rdata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":2}\r", "data: {\"jsonrpc\":\"2.0\",\"id\":\"x\",\"result\":{}}\rdata: {\"jsonrpc\":\"2.0\",\"id\":\"x\",\"result\":2}\r"},
		// Server-to-client requests and notifications keep their ids.
		{"event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"sampling/createMessage\"}\n\n", "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"sampling/createMessage\"}\n\n"},
		{"data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n", "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n"},
		// Not JSON-RPC (OpenAI chunks have an "id" too), comments, ids.
		{"id: 1\n: comment {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1}\ndata: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\"}\n\ndata: [DONE]\n\n", "id: 1\n: comment {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1}\ndata: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\"}\n\ndata: [DONE]\n\n"},
		{"", ""},
	}
	for _, tc := range cases {
		if got := RewriteJSONRPCIDInSSE([]byte(tc.in), json.RawMessage(`"x"`)); string(got) != tc.want {
			t.Errorf("RewriteJSONRPCIDInSSE(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	// An id with line breaks is compacted so the data line stays one line.
	got = RewriteJSONRPCIDInSSE([]byte("data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1}\n"), json.RawMessage("{\n\"a\": 1}"))
	if string(got) != "data: {\"jsonrpc\":\"2.0\",\"id\":{\"a\":1},\"result\":1}\n" {
		t.Errorf("multi-line id: %q", got)
	}
	// The OpenAI stream is left byte for byte alone.
	oa := loadCapture(t, "openai-stream.json")
	if b := oa[0].Response.Body; !bytes.Equal(RewriteJSONRPCIDInSSE(b, json.RawMessage(`3`)), b) {
		t.Error("OpenAI SSE body changed")
	}
}

// Every MCP response of a capture gets the new id and nothing else moves.
func TestRewriteMCPCaptureResponses(t *testing.T) {
	for _, in := range loadCapture(t, "mcp-session-2.json") {
		reqID, ok := JSONRPCID(in.Request.Body)
		if !ok {
			continue
		}
		body := in.Response.Body
		old := `"jsonrpc":"2.0","id":` + string(reqID) + `}`
		if !strings.Contains(string(body), old) {
			t.Fatalf("response to id %s does not carry it: %q", reqID, body)
		}
		got := RewriteJSONRPCIDInSSE(body, json.RawMessage(`"live-7"`))
		want := strings.Replace(string(body), old, `"jsonrpc":"2.0","id":"live-7"}`, 1)
		if string(got) != want {
			t.Errorf("id %s: got %q", reqID, got)
		}
	}
}

func FuzzWithJSONRPCID(f *testing.F) {
	f.Add([]byte(`{"result":{"b":1},"jsonrpc":"2.0","id":2}`), []byte(`7`))
	f.Add([]byte("data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\r\n\r\n"), []byte(`"x"`))
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"id":2,"error":null}`), []byte(`null`))
	f.Fuzz(func(t *testing.T, body, id []byte) {
		out := WithJSONRPCID(body, id)
		sse := RewriteJSONRPCIDInSSE(body, id)
		old, ok := JSONRPCID(body)
		if !ok {
			if !bytes.Equal(out, body) {
				t.Fatalf("not JSON-RPC but changed: %q -> %q", body, out)
			}
			return
		}
		// Putting the old id back restores the input byte for byte,
		// unless the body repeats "id" (then all are rewritten).
		back := WithJSONRPCID(out, old)
		if n, _ := parseJSON(body); countKey(&n, "id") == 1 && !bytes.Equal(back, body) {
			t.Fatalf("round trip: %q -> %q -> %q", body, out, back)
		}
		if _, err := parseJSON(out); err != nil {
			t.Fatalf("output %q is not JSON: %v", out, err)
		}
		_ = sse
	})
}

func countKey(n *jnode, key string) int {
	c := 0
	for _, m := range n.mem {
		if m.key == key {
			c++
		}
	}
	return c
}
