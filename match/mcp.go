package match

import (
	"bytes"
	"encoding/json"
)

// MCP (Model Context Protocol) speaks JSON-RPC 2.0, every message a POST.
// What a request does is in its body: these helpers read the method, the
// tool a tools/call names, the progress token, and the read-only tools a
// recorded tools/list announces, so the proxy can tell a read from a write
// and hand a replayed stream the live request's progress token.

// readOnlyMethods are the MCP requests that read and never change a
// server's state: a miss on one of them is an unrecorded read, never a
// blocked mutation, and live mode may forward it like a GET.
var readOnlyMethods = map[string]bool{
	"initialize":               true,
	"ping":                     true,
	"tools/list":               true,
	"resources/list":           true,
	"resources/templates/list": true,
	"resources/read":           true,
	"prompts/list":             true,
	"prompts/get":              true,
	"completion/complete":      true,
}

// JSONRPCCall is what a JSON-RPC request asks: its method and, for an MCP
// tools/call, the tool's name.
type JSONRPCCall struct {
	Method string
	Tool   string
}

// ParseJSONRPCCall reads the method (and the tool of a tools/call) of a
// single JSON-RPC 2.0 request; ok is false for anything else (batches,
// responses, bodies that are not JSON-RPC).
func ParseJSONRPCCall(body []byte) (call JSONRPCCall, ok bool) {
	if !startsObject(body) {
		return call, false
	}
	n, err := parseJSON(body)
	if err != nil || !isJSONRPC(&n) {
		return call, false
	}
	m := member(&n, "method")
	if m == nil || m.kind != jString {
		return call, false
	}
	call.Method = m.s
	if call.Method == "tools/call" {
		if name := member(member(&n, "params"), "name"); name != nil && name.kind == jString {
			call.Tool = name.s
		}
	}
	return call, true
}

// ReadOnly reports whether the call only reads: an MCP method that never
// changes state, or a tools/call of a tool in readOnlyTools (the tools a
// recorded tools/list annotates readOnlyHint: true).
func (c JSONRPCCall) ReadOnly(readOnlyTools map[string]bool) bool {
	if c.Method == "tools/call" {
		return c.Tool != "" && readOnlyTools[c.Tool]
	}
	return readOnlyMethods[c.Method]
}

// ReadOnlyTools returns the names of the tools that a tools/list result
// annotates readOnlyHint: true. body is the response body: one JSON-RPC
// response, or an SSE stream carrying it on a data: line.
func ReadOnlyTools(body []byte) []string {
	var names []string
	add := func(msg []byte) {
		var resp struct {
			Result struct {
				Tools []struct {
					Name        string `json:"name"`
					Annotations struct {
						ReadOnlyHint bool `json:"readOnlyHint"`
					} `json:"annotations"`
				} `json:"tools"`
			} `json:"result"`
		}
		if json.Unmarshal(msg, &resp) != nil {
			return
		}
		for _, t := range resp.Result.Tools {
			if t.Annotations.ReadOnlyHint && t.Name != "" {
				names = append(names, t.Name)
			}
		}
	}
	if startsObject(body) {
		add(body)
		return names
	}
	rewriteSSEData(body, func(v []byte) ([]byte, bool) { add(v); return nil, false })
	return names
}

// ProgressToken returns params._meta.progressToken of a JSON-RPC request,
// as the bytes it was written with.
func ProgressToken(body []byte) (json.RawMessage, bool) {
	if !startsObject(body) || !bytes.Contains(body, []byte("progressToken")) {
		return nil, false
	}
	n, err := parseJSON(body)
	if err != nil || !isJSONRPC(&n) {
		return nil, false
	}
	tok := member(member(member(&n, "params"), "_meta"), "progressToken")
	if tok == nil {
		return nil, false
	}
	return bytes.Clone(body[tok.start:tok.end]), true
}

// RewriteProgressTokenInSSE gives every notifications/progress message on
// a data: line of an SSE stream the progress token token. A response
// stream answers one request, so every progress notification in it is
// about that request: replay hands them the live request's token, which
// the client knows, instead of the recorded one, which it does not.
func RewriteProgressTokenInSSE(data []byte, token json.RawMessage) []byte {
	token = sseSafeID(token)
	if token == nil || !bytes.Contains(data, []byte("notifications/progress")) {
		return data
	}
	return rewriteSSEData(data, func(v []byte) ([]byte, bool) {
		n, err := parseJSON(v)
		if err != nil || !isJSONRPC(&n) {
			return v, false
		}
		if m := member(&n, "method"); m == nil || m.kind != jString || m.s != "notifications/progress" {
			return v, false
		}
		tok := member(member(&n, "params"), "progressToken")
		if tok == nil || bytes.Equal(v[tok.start:tok.end], token) {
			return v, false
		}
		out := make([]byte, 0, len(v)+len(token))
		out = append(out, v[:tok.start]...)
		out = append(out, token...)
		return append(out, v[tok.end:]...), true
	})
}
