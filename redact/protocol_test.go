package redact

import (
	"net/http"
	"strings"
	"testing"

	"github.com/cassetteproxy/cassetteproxy/store"
)

// Protocol fields are never secrets: scrubbing them breaks the protocol
// (a JSON-RPC id or an MCP progress token the client no longer knows, a
// cursor that pages nowhere, a token count that is no count). Credentials
// with look-alike names still go. Values are as the protocols send them.
func TestProtocolNamesKeptSecretNamesScrubbed(t *testing.T) {
	r, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	const secret = `"v4lue-9f8e7d6c5b4a3f2e1d"`
	cases := []struct {
		name, value string
		kept        bool
	}{
		{"id", `"req-7f3a9c2e41b8d6f0"`, true},
		{"method", `"tools/call"`, true},
		{"progressToken", `"7f3a9c2e-41b8-4d6f-9e2a-0c5b8d7e6f1a"`, true},
		{"progressToken", `104`, true},
		{"cursor", `"eyJwYWdlIjoyLCJzaXplIjo1MH0="`, true},
		{"nextCursor", `"eyJwYWdlIjozLCJzaXplIjo1MH0="`, true},
		{"max_tokens", `4096`, true},
		{"max_completion_tokens", `1024`, true},
		{"prompt_tokens", `1234`, true},
		{"completion_tokens", `56`, true},
		{"total_tokens", `1290`, true},
		{"input_tokens", `1234`, true},
		{"output_tokens", `56`, true},
		{"tokenizer", `"cl100k_base"`, true},
		{"access_token", secret, false},
		{"refresh_token", secret, false},
		{"id_token", secret, false},
		{"api_key", secret, false},
		{"apiKey", secret, false},
		{"password", secret, false},
		{"client_secret", secret, false},
		{"token", secret, false},
		{"auth_token", secret, false},
		{"private_key", secret, false},
	}
	for _, tc := range cases {
		field := `"` + tc.name + `":` + tc.value
		body := `{"jsonrpc":"2.0","params":{"_meta":{` + field + `}},"usage":{` + field + `}}`
		req := store.Request{Method: "POST", URL: "https://mcp.test/mcp", Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(body)}
		r.Request(&req)
		resp := store.Response{Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(body)}
		r.Response(&resp)
		for where, got := range map[string]string{"request": string(req.Body), "response": string(resp.Body)} {
			if kept := strings.Count(got, field) == 2; kept != tc.kept {
				t.Errorf("%s %s: kept=%v, want %v: %s", where, field, kept, tc.kept, got)
			}
		}
	}
}
