package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// toolAPI is a real loopback upstream serving a REST tool (GET and POST
// /items) and an MCP server (Streamable HTTP, SSE answers, sessions) whose
// answers the test changes between drift runs. It counts every request
// by method, path and JSON-RPC method.
type toolAPI struct {
	mu       sync.Mutex
	mode     string // "", "values", "shape", "schema", "tool-added", "status"
	counts   map[string]int
	sessions map[string]bool
}

func newToolAPI() *toolAPI { return &toolAPI{counts: map[string]int{}, sessions: map[string]bool{}} }

func (a *toolAPI) setMode(m string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.mode = m
	a.counts = map[string]int{}
}

func (a *toolAPI) seen() map[string]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return maps.Clone(a.counts)
}

func (a *toolAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var rpc struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
	}
	json.Unmarshal(body, &rpc)
	a.mu.Lock()
	mode := a.mode
	key := r.Method + " " + r.URL.Path
	if rpc.Method != "" {
		key += " " + rpc.Method
	}
	a.counts[key]++
	a.mu.Unlock()

	if mode == "status" {
		http.Error(w, `{"error":"maintenance"}`, http.StatusInternalServerError)
		return
	}
	switch {
	case r.URL.Path == "/items" && r.Method == http.MethodGet:
		count, extra := 2, ""
		if mode == "values" {
			count = 3
		}
		if mode == "shape" {
			extra = `,"next_page":null`
		}
		w.Header().Set("Content-Type", "application/json")
		// A credential in an answer: recorded scrubbed, and a live answer
		// must be scrubbed alike before it is compared or written.
		fmt.Fprintf(w, `{"count":%d,"served_at":"%s","owner":"ghp_0123456789abcdefghijklmnopqrstuvwxyzAB","items":[{"id":1,"title":"a"}]%s}`,
			count, time.Now().Format(time.RFC3339Nano), extra)
	case r.URL.Path == "/items":
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"created":true}`)
	case r.URL.Path == "/mcp":
		a.mcp(w, r, rpc.ID, rpc.Method, mode)
	default:
		http.NotFound(w, r)
	}
}

func (a *toolAPI) mcp(w http.ResponseWriter, r *http.Request, id json.RawMessage, method, mode string) {
	if id == nil { // a notification
		w.WriteHeader(http.StatusAccepted)
		return
	}
	var result string
	switch method {
	case "initialize":
		a.mu.Lock()
		sid := fmt.Sprintf("session-%d", len(a.sessions)+1)
		a.sessions[sid] = true
		a.mu.Unlock()
		w.Header().Set("Mcp-Session-Id", sid)
		result = `{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"tool-api","version":"1.0.0"}}`
	case "tools/list":
		a.mu.Lock()
		ok := a.sessions[r.Header.Get("Mcp-Session-Id")]
		a.mu.Unlock()
		if !ok {
			http.Error(w, `{"error":"session not found"}`, http.StatusNotFound)
			return
		}
		msgType := "string"
		if mode == "schema" {
			msgType = "number"
		}
		extra := ""
		if mode == "tool-added" {
			extra = `,{"name":"delete-all","inputSchema":{"type":"object"}}`
		}
		result = `{"tools":[{"name":"echo","description":"Echoes","inputSchema":{"type":"object","properties":{"message":{"type":"` + msgType + `"}}}}` + extra + `]}`
	case "tools/call":
		result = `{"content":[{"type":"text","text":"done"}]}`
	default:
		result = `{}`
	}
	w.Header().Set("Content-Type", "text/event-stream")
	fmt.Fprintf(w, "event: message\nid: %d\ndata: {\"jsonrpc\":\"2.0\",\"id\":%s,\"result\":%s}\n\n", time.Now().UnixNano(), id, result)
}

// TestDrift records a REST tool and an MCP server through the proxy, exports
// the fixture, then changes the upstream under it: drift reports none,
// values, shape (a key added, an MCP tool's input schema changed, a tool
// added), status and unreachable; exits 1 only on shape and status; ignores
// the volatile fields rules learn found; and never sends anything but GET,
// initialize and tools/list.
func TestDrift(t *testing.T) {
	e := newEnv(t)
	api := newToolAPI()
	up := newUpstream(t, true, api)
	record := func(cassette string) {
		p := e.serve("--mode", "record", "--cassette", cassette, "--upstream-ca", up.caFile)
		c := e.client(p)
		do(t, c, "GET", up.URL+"/items", "")
		do(t, c, "POST", up.URL+"/items", `{"title":"b"}`)
		init := do(t, c, "POST", up.URL+"/mcp", `{"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}},"jsonrpc":"2.0","id":0}`)
		sid := init.header.Get("Mcp-Session-Id")
		rpc := func(body string) {
			req, _ := http.NewRequest("POST", up.URL+"/mcp", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			req.Header.Set("Mcp-Session-Id", sid)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		rpc(`{"method":"notifications/initialized","jsonrpc":"2.0"}`)
		rpc(`{"method":"tools/list","jsonrpc":"2.0","id":1}`)
		rpc(`{"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"}},"jsonrpc":"2.0","id":2}`)
		p.stop()
	}
	record("tools-1")
	record("tools-2")
	fx := filepath.Join(e.dir, "fx")
	if _, errs, code := e.cli("export", "--cassette", "tools-1", "--out", fx); code != 0 {
		t.Fatal(errs)
	}

	type report struct {
		Requests map[string]int `json:"requests"`
		Skipped  int            `json:"skipped"`
		Fail     bool           `json:"fail"`
		Fixtures []struct {
			Drift    string `json:"drift"`
			Requests []struct {
				Method, URL string
				RPCMethod   string `json:"rpc_method"`
				Drift       string `json:"drift"`
				Changes     []struct{ Path, Change string }
			} `json:"requests"`
		} `json:"fixtures"`
	}
	drift := func(mode string, wantCode int) (report, string) {
		t.Helper()
		api.setMode(mode)
		out := filepath.Join(t.TempDir(), "drift")
		stdout, errs, code := e.cli("drift", fx, "--out", out, "--upstream-ca", up.caFile)
		if code != wantCode {
			t.Fatalf("drift (%s): exit %d, want %d\n%s\n%s", mode, code, wantCode, stdout, errs)
		}
		var rep report
		data, err := os.ReadFile(filepath.Join(out, "drift.json"))
		if err != nil || json.Unmarshal(data, &rep) != nil {
			t.Fatalf("drift.json: %v %s", err, data)
		}
		if strings.Contains(string(data)+stdout, "ghp_0123") {
			t.Fatalf("drift (%s) wrote a live answer's credential:\n%s", mode, data)
		}
		promtoolCheck(t, filepath.Join(out, "drift.prom"))
		// Whatever the upstream answers, drift sent only safe requests.
		for k := range api.seen() {
			switch k {
			case "GET /items", "POST /mcp initialize", "POST /mcp tools/list":
			default:
				t.Fatalf("drift (%s) sent %q: only GET and read-only JSON-RPC may be re-sent (upstream saw %v)", mode, k, api.seen())
			}
		}
		if got := api.seen(); mode != "down" && (got["GET /items"] != 1 || got["POST /mcp tools/list"] != 1) {
			t.Fatalf("drift (%s): upstream saw %v", mode, got)
		}
		return rep, stdout + errs
	}
	driftOf := func(rep report, what string) string {
		for _, r := range rep.Fixtures[0].Requests {
			if r.Method+" "+r.RPCMethod == what || (r.RPCMethod == "" && r.Method == what) {
				return r.Drift
			}
		}
		t.Fatalf("no request %s in %+v", what, rep)
		return ""
	}

	// Unchanged, but served_at is fresh on every answer: values, until the
	// rules learned from the two recordings say it is volatile.
	rep, _ := drift("", 0)
	if driftOf(rep, "GET") != "values" || driftOf(rep, "POST tools/list") != "none" || driftOf(rep, "POST initialize") != "none" || rep.Skipped != 3 {
		t.Fatalf("unchanged, no rules: %+v", rep)
	}
	if out, errs, code := e.cli("rules", "learn", "--cassette", "tools-1", "--cassette", "tools-2", "--out", filepath.Join(fx, "rules.yaml")); code != 0 ||
		!strings.Contains(out, "$.served_at") {
		t.Fatalf("rules learn: %d\n%s\n%s", code, out, errs)
	}
	rep, _ = drift("", 0)
	if rep.Fixtures[0].Drift != "none" || rep.Requests["none"] != 3 || rep.Fail {
		t.Fatalf("unchanged, learned rules: %+v", rep)
	}
	rep, _ = drift("values", 0)
	if driftOf(rep, "GET") != "values" || rep.Fixtures[0].Drift != "values" {
		t.Fatalf("values: %+v", rep)
	}
	rep, text := drift("shape", 1)
	if driftOf(rep, "GET") != "shape" || !strings.Contains(text, "+ $.next_page") {
		t.Fatalf("shape:\n%s", text)
	}
	rep, text = drift("schema", 1)
	if driftOf(rep, "POST tools/list") != "shape" || driftOf(rep, "GET") != "none" ||
		!strings.Contains(text, `~ $.result.tools[name=echo].inputSchema.properties.message.type (schema): "string" -> "number"`) {
		t.Fatalf("schema:\n%s", text)
	}
	rep, text = drift("tool-added", 1)
	if driftOf(rep, "POST tools/list") != "shape" || !strings.Contains(text, "+ $.result.tools[name=delete-all]") {
		t.Fatalf("tool added:\n%s", text)
	}
	rep, _ = drift("status", 1)
	if driftOf(rep, "GET") != "status" || rep.Fixtures[0].Drift != "status" {
		t.Fatalf("status: %+v", rep)
	}
	up.Close()
	rep, text = drift("down", 0)
	if rep.Requests["unreachable"] != 3 || rep.Requests["shape"] != 0 || rep.Fail || !strings.Contains(text, "got no answer") {
		t.Fatalf("down:\n%s\n%+v", text, rep)
	}

	// Bad input: a corrupt fixture is named, nothing is sent.
	bad := filepath.Join(e.dir, "bad")
	os.MkdirAll(bad, 0o755)
	os.WriteFile(filepath.Join(bad, "input.json"), []byte("{"), 0o644)
	if _, errs, code := e.cli("drift", fx, bad, "--out", t.TempDir()); code != 1 || !strings.Contains(errs, filepath.Join(bad, "input.json")) ||
		strings.Count(strings.TrimSpace(errs), "\n") != 0 {
		t.Fatalf("corrupt fixture: exit %d %q", code, errs)
	}
}
