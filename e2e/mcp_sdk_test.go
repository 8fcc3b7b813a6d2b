package e2e

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// mcpNode is the folder with the real MCP peers (e2e/mcpnode): the official
// TypeScript SDK and server-everything, installed by `npm ci` (.ci/run).
func mcpNode(t *testing.T) string {
	t.Helper()
	dir, _ := filepath.Abs("mcpnode")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@modelcontextprotocol", "server-everything")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the MCP peers are not installed: run npm ci --prefix e2e/mcpnode (.ci/run does)")
		}
		t.Skip("MCP peers not installed (npm ci --prefix e2e/mcpnode); skipping")
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node not on PATH")
	}
	return dir
}

// startServerEverything runs the reference MCP server over Streamable HTTP
// on a free loopback port and waits until it accepts connections.
func startServerEverything(t *testing.T, dir string) (url string, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command("node", filepath.Join(dir, "node_modules/@modelcontextprotocol/server-everything/dist/index.js"), "streamableHttp")
	cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port))
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	stop = func() {
		cmd.Process.Kill()
		<-exited
	}
	t.Cleanup(stop)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			t.Fatalf("server-everything exited:\n%s", logs.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("server-everything not listening after 30s:\n%s", logs.String())
		}
	}
	return "http://" + addr + "/mcp", stop
}

// progressRun runs e2e/mcpnode/progress.mjs through the proxy and returns
// its one line of JSON: the progress the SDK's callback received and the
// tool's result.
func progressRun(t *testing.T, dir, proxyAddr, url string, extraCalls int) string {
	t.Helper()
	cmd := exec.Command("node", filepath.Join(dir, "progress.mjs"), url, strconv.Itoa(extraCalls))
	cmd.Env = append(os.Environ(), "HTTP_PROXY=http://"+proxyAddr, "http_proxy=http://"+proxyAddr, "NO_PROXY=", "no_proxy=")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("MCP client (%d extra calls): %v\n%s%s", extraCalls, err, out.String(), errb.String())
	}
	if strings.Contains(errb.String(), "unknown token") {
		t.Errorf("the SDK dropped progress notifications (%d extra calls):\n%s", extraCalls, errb.String())
	}
	return strings.TrimSpace(out.String())
}

// The official SDK's progress callback gets the same steps in replay as
// live, with the server stopped, whether the replay numbers its requests
// as the recording did or every id (and so every progress token) moved.
func TestMCPSDKProgressReplays(t *testing.T) {
	dir := mcpNode(t)
	e := newEnv(t)
	url, stopServer := startServerEverything(t, dir)

	rec := e.serve("--mode", "record", "--cassette", "mcp")
	live := progressRun(t, dir, rec.addr, url, 1)
	rec.stop()
	stopServer()
	var got struct {
		Progress []map[string]any `json:"progress"`
	}
	if err := json.Unmarshal([]byte(live), &got); err != nil || len(got.Progress) != 3 {
		t.Fatalf("live run: want 3 progress steps, got %s (%v)", live, err)
	}

	rep := e.serve("--mode", "replay", "--cassette", "mcp")
	if same := progressRun(t, dir, rep.addr, url, 1); same != live {
		t.Errorf("replay with the recorded ids:\n got %s\nwant %s", same, live)
	}
	// Two echo calls: the second repeats the first's recorded answer, and
	// the long-running call's id and progress token are one higher than
	// recorded.
	if shifted := progressRun(t, dir, rep.addr, url, 2); shifted != live {
		t.Errorf("replay with shifted ids:\n got %s\nwant %s", shifted, live)
	}

	// A miss on a tool the recorded tools/list marks readOnlyHint is an
	// unrecorded read; on a tool without the hint, a blocked mutation.
	for _, tc := range []struct{ tool, reason string }{
		{"echo", "unrecorded_request"},
		{"get-sum", "unrecorded_request"},
		{"toggle-simulated-logging", "mutation_blocked"},
		{"no-such-tool", "mutation_blocked"},
	} {
		body := `{"jsonrpc":"2.0","id":99,"method":"tools/call","params":{"name":"` + tc.tool + `","arguments":{"message":"never recorded","a":1,"b":2}}}`
		req, _ := http.NewRequest("POST", url, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		resp, err := e.client(rep).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("X-Cassetteproxy-Blocked"); got != tc.reason {
			t.Errorf("tools/call %s: blocked %q, want %q", tc.tool, got, tc.reason)
		}
	}
	// tools/list itself is a read.
	req, _ := http.NewRequest("POST", url, strings.NewReader(`{"jsonrpc":"2.0","id":7,"method":"tools/list","params":{"cursor":"nope"}}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.client(rep).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("X-Cassetteproxy-Blocked"); got != "unrecorded_request" {
		t.Errorf("tools/list miss: blocked %q, want unrecorded_request", got)
	}
}
