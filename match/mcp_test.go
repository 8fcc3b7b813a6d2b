package match

import (
	"encoding/json"
	"slices"
	"testing"
)

func TestKeyLeavesOutProgressToken(t *testing.T) {
	r := DefaultRules()
	key := func(body string) string {
		return r.Key(rq("POST", "https://mcp.example.com/mcp", ctJSON, body))
	}
	base := key(`{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"op","arguments":{"steps":3},"_meta":{"progressToken":4}}}`)
	same := []string{
		`{"jsonrpc":"2.0","id":104,"method":"tools/call","params":{"name":"op","arguments":{"steps":3},"_meta":{"progressToken":104}}}`,
		`{"jsonrpc":"2.0","id":"x","method":"tools/call","params":{"name":"op","arguments":{"steps":3},"_meta":{"progressToken":"tok-x"}}}`,
		`{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"op","arguments":{"steps":3}}}`, // no token, no _meta
	}
	for _, b := range same {
		if key(b) != base {
			t.Errorf("key differs for %s", b)
		}
	}
	differ := []string{
		`{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"op","arguments":{"steps":4},"_meta":{"progressToken":4}}}`,
		// Other _meta members still count.
		`{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"op","arguments":{"steps":3},"_meta":{"progressToken":4,"trace":"a"}}}`,
	}
	for _, b := range differ {
		if key(b) == base {
			t.Errorf("key equal for %s", b)
		}
	}
	// Not JSON-RPC: a progressToken is an ordinary field.
	plain := `{"params":{"_meta":{"progressToken":1}}}`
	if key(plain) == key(`{"params":{"_meta":{"progressToken":2}}}`) {
		t.Error("a non-JSON-RPC body lost its progressToken from the key")
	}
}

func TestProgressToken(t *testing.T) {
	cases := []struct{ body, tok string }{
		{`{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"_meta":{"progressToken":4}}}`, `4`},
		{`{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"_meta":{"progressToken" : "a b"}}}`, `"a b"`},
		{`{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{}}`, ``},
		{`{"id":4,"params":{"_meta":{"progressToken":4}}}`, ``}, // not JSON-RPC
		{`{"jsonrpc":"2.0","params":"progressToken"}`, ``},
		{`garbage progressToken`, ``},
	}
	for _, tc := range cases {
		tok, ok := ProgressToken([]byte(tc.body))
		if string(tok) != tc.tok || ok != (tc.tok != "") {
			t.Errorf("ProgressToken(%s) = %s, %v; want %s", tc.body, tok, ok, tc.tok)
		}
	}
}

func TestRewriteProgressTokenInSSE(t *testing.T) {
	stream := "event: message\nid: e1\ndata: {\"method\":\"notifications/progress\",\"params\":{\"progress\":1,\"total\":3,\"progressToken\":4},\"jsonrpc\":\"2.0\"}\n\n" +
		"data: {\"method\":\"notifications/message\",\"params\":{\"progressToken\":4},\"jsonrpc\":\"2.0\"}\r\n\r\n" +
		": comment progressToken 4\n\n" +
		"data: {\"result\":{\"content\":[]},\"jsonrpc\":\"2.0\",\"id\":4}\n\n"
	want := "event: message\nid: e1\ndata: {\"method\":\"notifications/progress\",\"params\":{\"progress\":1,\"total\":3,\"progressToken\":104},\"jsonrpc\":\"2.0\"}\n\n" +
		"data: {\"method\":\"notifications/message\",\"params\":{\"progressToken\":4},\"jsonrpc\":\"2.0\"}\r\n\r\n" +
		": comment progressToken 4\n\n" +
		"data: {\"result\":{\"content\":[]},\"jsonrpc\":\"2.0\",\"id\":4}\n\n"
	if got := string(RewriteProgressTokenInSSE([]byte(stream), json.RawMessage(`104`))); got != want {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
	// The same token, an invalid token, a stream without progress: unchanged, not copied.
	for _, tok := range []string{`4`, `1x`} {
		in := []byte(stream)
		if got := RewriteProgressTokenInSSE(in, json.RawMessage(tok)); &got[0] != &in[0] && tok == "4" {
			t.Errorf("token %s: a stream needing no change was copied", tok)
		} else if string(got) != stream && tok == "1x" {
			t.Errorf("token %s: stream changed", tok)
		}
	}
}

func TestJSONRPCCallReadOnly(t *testing.T) {
	tools := map[string]bool{"echo": true}
	cases := []struct {
		body     string
		ok, read bool
	}{
		{`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, true, true},
		{`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}`, true, true},
		{`{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"x"}}`, true, true},
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{}}}`, true, true},
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete-repo"}}`, true, false},
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}`, true, false},
		{`{"jsonrpc":"2.0","method":"notifications/initialized"}`, true, false},
		{`{"jsonrpc":"2.0","id":1,"method":"sampling/createMessage"}`, true, false},
		{`{"method":"tools/list"}`, false, false},
		{`[{"jsonrpc":"2.0","id":1,"method":"tools/list"}]`, false, false},
		{`nope`, false, false},
	}
	for _, tc := range cases {
		call, ok := ParseJSONRPCCall([]byte(tc.body))
		if ok != tc.ok || call.ReadOnly(tools) != tc.read {
			t.Errorf("%s: ok %v read-only %v; want %v %v", tc.body, ok, call.ReadOnly(tools), tc.ok, tc.read)
		}
	}
}

func TestReadOnlyTools(t *testing.T) {
	list := `{"result":{"tools":[{"name":"echo","annotations":{"readOnlyHint":true}},{"name":"toggle","annotations":{"readOnlyHint":false}},{"name":"plain"}]},"jsonrpc":"2.0","id":2}`
	if got := ReadOnlyTools([]byte(list)); !slices.Equal(got, []string{"echo"}) {
		t.Errorf("JSON body: %v", got)
	}
	sse := "event: message\ndata: \n\nevent: message\ndata: " + list + "\n\n"
	if got := ReadOnlyTools([]byte(sse)); !slices.Equal(got, []string{"echo"}) {
		t.Errorf("SSE body: %v", got)
	}
	if got := ReadOnlyTools([]byte(`{"result":{}}`)); got != nil {
		t.Errorf("no tools: %v", got)
	}
}
