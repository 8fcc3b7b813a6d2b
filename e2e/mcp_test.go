package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
)

func randomID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// mcpServer speaks MCP Streamable HTTP the way the captures in
// /work/shared/testdata/traffic show it: JSON-RPC over POST, each request
// answered with text/event-stream holding a priming event and the message,
// notifications with 202, a random Mcp-Session-Id issued on initialize and
// required on every later request, random SSE event ids.
func mcpServer() http.Handler {
	var mu sync.Mutex
	sessions := map[string]bool{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sid := r.Header.Get("Mcp-Session-Id")
		mu.Lock()
		known := sessions[sid]
		mu.Unlock()
		if r.Method == http.MethodDelete {
			mu.Lock()
			delete(sessions, sid)
			mu.Unlock()
			return
		}
		var msg struct {
			Method string          `json:"method"`
			ID     json.RawMessage `json:"id"`
			Params struct {
				Name      string         `json:"name"`
				Arguments map[string]any `json:"arguments"`
			} `json:"params"`
		}
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &msg); err != nil {
			http.Error(w, "bad json", http.StatusBadRequest)
			return
		}
		if msg.Method == "initialize" {
			sid = randomID()
			mu.Lock()
			sessions[sid] = true
			mu.Unlock()
		} else if !known {
			http.Error(w, `{"jsonrpc":"2.0","error":{"code":-32000,"message":"Bad Request: No valid session ID provided"},"id":null}`, http.StatusBadRequest)
			return
		}
		if msg.ID == nil { // a notification
			w.WriteHeader(http.StatusAccepted)
			return
		}
		var result any
		switch msg.Method {
		case "initialize":
			result = map[string]any{"protocolVersion": "2025-11-25", "capabilities": map[string]any{"tools": map[string]any{}},
				"serverInfo": map[string]any{"name": "go-mcp-test", "version": "1.0.0"}}
		case "tools/list":
			result = map[string]any{"tools": []any{map[string]any{"name": "echo", "inputSchema": map[string]any{"type": "object"}}}}
		case "tools/call":
			result = map[string]any{"content": []any{map[string]any{"type": "text", "text": fmt.Sprint("Echo: ", msg.Params.Arguments["message"])}}}
		default:
			result = map[string]any{}
		}
		res, _ := json.Marshal(result)
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache, no-transform")
		w.Header().Set("Mcp-Session-Id", sid)
		fmt.Fprintf(w, "id: %s\ndata: \n\n", randomID())
		fmt.Fprintf(w, "event: message\nid: %s\ndata: {\"result\":%s,\"jsonrpc\":\"2.0\",\"id\":%s}\n\n", randomID(), res, msg.ID)
	})
}

// mcpClient is a minimal Streamable HTTP client, numbering its requests
// with ids of its own.
type mcpClient struct {
	t       *testing.T
	c       *http.Client
	url     string
	session string
	nextID  func() string
}

// call posts one JSON-RPC message; for a request it returns the result and
// checks the answer carries the request's id.
func (m *mcpClient) call(method, params string) (result string, status int) {
	m.t.Helper()
	id := ""
	body := `{"method":"` + method + `"`
	if params != "" {
		body += `,"params":` + params
	}
	body += `,"jsonrpc":"2.0"`
	if !strings.HasPrefix(method, "notifications/") {
		id = m.nextID()
		body += `,"id":` + id
	}
	body += "}"
	req, _ := http.NewRequest("POST", m.url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if m.session != "" {
		req.Header.Set("Mcp-Session-Id", m.session)
		req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	}
	resp, err := m.c.Do(req)
	if err != nil {
		m.t.Fatalf("%s: %v", method, err)
	}
	defer resp.Body.Close()
	if s := resp.Header.Get("Mcp-Session-Id"); s != "" {
		m.session = s
	}
	if id == "" || resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		if id != "" {
			m.t.Fatalf("%s: status %d: %s", method, resp.StatusCode, b)
		}
		return "", resp.StatusCode
	}
	events, err := readAllEvents(bufio.NewReader(resp.Body), true)
	if err != nil {
		m.t.Fatalf("%s: reading the SSE answer: %v", method, err)
	}
	for _, ev := range events {
		if !strings.Contains(ev, "event: message\n") {
			continue
		}
		for _, line := range strings.Split(ev, "\n") {
			if data, ok := strings.CutPrefix(line, "data: "); ok {
				var msg struct {
					ID     json.RawMessage `json:"id"`
					Result json.RawMessage `json:"result"`
				}
				if err := json.Unmarshal([]byte(data), &msg); err != nil {
					m.t.Fatalf("%s: answer %q: %v", method, data, err)
				}
				if !bytes.Equal(msg.ID, []byte(id)) {
					m.t.Errorf("%s: answer id %s, the request's was %s", method, msg.ID, id)
				}
				return string(msg.Result), resp.StatusCode
			}
		}
	}
	m.t.Fatalf("%s: no message event in %q", method, events)
	return "", 0
}

// session runs initialize, notifications/initialized, tools/list and
// tools/call, and returns the results and the session id it was given.
func (m *mcpClient) session4() ([]string, string) {
	var results []string
	r, _ := m.call("initialize", `{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"e2e","version":"1"}}`)
	results = append(results, r)
	if _, status := m.call("notifications/initialized", ""); status != http.StatusAccepted {
		m.t.Errorf("notifications/initialized: status %d, want 202", status)
	}
	r, _ = m.call("tools/list", "")
	results = append(results, r)
	r, _ = m.call("tools/call", `{"name":"echo","arguments":{"message":"hello from the capture"}}`)
	results = append(results, r)
	return results, m.session
}

// TestMCPSessionRecordReplay records an MCP Streamable HTTP session against
// a live server, stops the server, and replays it with a client that
// numbers its JSON-RPC ids differently: every answer carries the live id,
// and the recorded Mcp-Session-Id is issued again and accepted back.
func TestMCPSessionRecordReplay(t *testing.T) {
	for _, tlsOn := range []bool{false, true} {
		t.Run(map[bool]string{false: "http", true: "https"}[tlsOn], func(t *testing.T) {
			e := newEnv(t)
			up := newUpstream(t, tlsOn, mcpServer())
			args := []string{"--mode", "record", "--cassette", "mcp"}
			if tlsOn {
				args = append(args, "--upstream-ca", up.caFile)
			}
			p := e.serve(args...)
			n := 0
			rec := &mcpClient{t: t, c: e.client(p), url: up.URL + "/mcp", nextID: func() string { n++; return fmt.Sprint(n - 1) }}
			recorded, recSession := rec.session4()
			if recSession == "" {
				t.Fatal("no Mcp-Session-Id issued while recording")
			}
			p.stop()
			up.Close()

			for _, mode := range []string{"replay", "strict"} {
				p = e.serve("--mode", mode, "--cassette", "mcp")
				k := 0
				live := &mcpClient{t: t, c: e.client(p), url: up.URL + "/mcp", nextID: func() string { k++; return fmt.Sprintf(`"live-%d"`, k) }}
				got, session := live.session4()
				if strings.Join(got, "\n") != strings.Join(recorded, "\n") {
					t.Errorf("%s: results\n%s\nwant\n%s", mode, strings.Join(got, "\n"), strings.Join(recorded, "\n"))
				}
				if session != recSession {
					t.Errorf("%s: session id %q, want the recorded %q", mode, session, recSession)
				}
				p.stop()
			}
			if up.conns.Load() == 0 {
				t.Fatal("the upstream was never reached while recording")
			}
		})
	}
}
