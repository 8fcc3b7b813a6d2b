package match

import (
	"bytes"
	"encoding/json"
)

// JSON-RPC ids count requests; they say nothing about what is asked, so keys
// leave them out (see Rules.Key). On replay the proxy answers with the
// recorded response, whose id is the recorded request's: these helpers put
// the live request's id in its place, touching no other byte.

// JSONRPCID returns the id of a JSON-RPC 2.0 message (an object with
// "jsonrpc":"2.0" and an "id"), as the bytes it was written with. Batches,
// notifications (no id) and anything that is not JSON-RPC give ok false.
func JSONRPCID(body []byte) (id json.RawMessage, ok bool) {
	if !startsObject(body) { // most bodies (none, a GET's) end here, unparsed
		return nil, false
	}
	n, err := parseJSON(body)
	if err != nil || !isJSONRPC(&n) {
		return nil, false
	}
	for i := len(n.mem) - 1; i >= 0; i-- { // the last one wins, as in JSON.parse
		if n.mem[i].key == "id" {
			v := n.mem[i].val
			return bytes.Clone(body[v.start:v.end]), true
		}
	}
	return nil, false
}

// startsObject reports whether the first byte after JSON whitespace is '{':
// a JSON-RPC message is an object, so nothing else needs parsing.
func startsObject(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		return c == '{'
	}
	return false
}

// WithJSONRPCID returns body with the value of its top-level "id" replaced
// by id, when body is a JSON-RPC 2.0 message that has one; every other byte
// (key order, whitespace, the rest of the message) is kept. Otherwise, or
// when id is not valid JSON, body is returned unchanged. Batches are left
// alone: their responses need not come in request order.
func WithJSONRPCID(body []byte, id json.RawMessage) []byte {
	out, _ := replaceJSONRPCID(body, id, false)
	return out
}

// RewriteJSONRPCIDInSSE rewrites the id of every JSON-RPC 2.0 *response*
// (an object with "result" or "error" and no "method") carried on a
// single-line "data:" field of an SSE stream. Server-to-client requests and
// notifications on the same stream keep their ids, and all other bytes
// (event ids, comments, line endings) are kept. Pass the whole body, or
// chunks that end on line boundaries.
func RewriteJSONRPCIDInSSE(data []byte, id json.RawMessage) []byte {
	id = sseSafeID(id)
	if id == nil {
		return data
	}
	return rewriteSSEData(data, func(v []byte) ([]byte, bool) { return replaceJSONRPCID(v, id, true) })
}

// rewriteSSEData applies edit to the value of every single-line "data:"
// field of an SSE stream that looks like a JSON object or array; an edit
// that reports a change replaces the value, and every other byte (event
// ids, comments, line endings) is kept. data comes back unchanged, not
// copied, when nothing changed.
func rewriteSSEData(data []byte, edit func(v []byte) ([]byte, bool)) []byte {
	if !bytes.Contains(data, []byte("data:")) {
		return data
	}
	var out []byte // nil until something changes
	done := 0      // data[:done] is in out
	for pos := 0; pos < len(data); {
		end := pos
		for end < len(data) && data[end] != '\n' && data[end] != '\r' {
			end++
		}
		line := data[pos:end]
		if bytes.HasPrefix(line, []byte("data:")) {
			vstart := 5
			if vstart < len(line) && line[vstart] == ' ' {
				vstart++
			}
			if v := line[vstart:]; len(v) > 0 && looksLikeJSONContainer(v) {
				if nv, changed := edit(v); changed {
					out = append(out, data[done:pos+vstart]...)
					out = append(out, nv...)
					done = end
				}
			}
		}
		// Skip the terminator: \r\n, \n or \r.
		pos = end
		if pos < len(data) && data[pos] == '\r' {
			pos++
		}
		if pos < len(data) && data[pos] == '\n' && (pos == end || data[pos-1] == '\r') {
			pos++
		}
	}
	if out == nil {
		return data
	}
	return append(out, data[done:]...)
}

// sseSafeID validates id and makes sure it holds no line break (an id
// written over several lines would end the data field); nil if invalid.
func sseSafeID(id json.RawMessage) json.RawMessage {
	id = bytes.TrimSpace(id)
	if _, err := parseJSON(id); err != nil {
		return nil
	}
	if bytes.ContainsAny(id, "\r\n") {
		c, err := CanonicalJSON(id)
		if err != nil {
			return nil
		}
		return c
	}
	return id
}

func replaceJSONRPCID(msg []byte, id json.RawMessage, responsesOnly bool) ([]byte, bool) {
	id = bytes.TrimSpace(id)
	if _, err := parseJSON(id); err != nil {
		return msg, false
	}
	n, err := parseJSON(msg)
	if err != nil || !isJSONRPC(&n) {
		return msg, false
	}
	if responsesOnly {
		hasMethod, hasOutcome := false, false
		for i := range n.mem {
			switch n.mem[i].key {
			case "method":
				hasMethod = true
			case "result", "error":
				hasOutcome = true
			}
		}
		if hasMethod || !hasOutcome {
			return msg, false
		}
	}
	var out []byte
	done := 0
	for i := range n.mem {
		if n.mem[i].key != "id" {
			continue
		}
		v := n.mem[i].val
		if out == nil {
			out = make([]byte, 0, len(msg)+len(id))
		}
		out = append(out, msg[done:v.start]...)
		out = append(out, id...)
		done = v.end
	}
	if out == nil {
		return msg, false
	}
	out = append(out, msg[done:]...)
	return out, true
}
