package e2e

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeRules(t *testing.T, text string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(f, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestRulesIgnoreChangingTimestamp: a request body whose timestamp and
// request id change on every call misses without a rule (and the blocked
// answer names the differing fields) and matches with ignore_body_paths.
func TestRulesIgnoreChangingTimestamp(t *testing.T) {
	e := newEnv(t)
	up := newUpstream(t, false, itemsHandler())
	body := func(ts, id string) string {
		return `{"messages":[{"role":"user","content":"hi","timestamp":"` + ts + `"}],"metadata":{"request_id":"` + id + `"}}`
	}
	p := e.serve("--mode", "record", "--cassette", "ts")
	rec := do(t, e.client(p), "POST", up.URL+"/v1/chat", body("2026-01-01T00:00:00Z", "req-1"))
	p.stop()
	up.Close()

	later := body("2026-06-30T12:34:56Z", "req-2")
	p = e.serve("--mode", "replay", "--cassette", "ts")
	miss := do(t, e.client(p), "POST", up.URL+"/v1/chat", later)
	p.stop()
	if miss.status != 403 || !strings.Contains(string(miss.body), "timestamp") || !strings.Contains(string(miss.body), "request_id") {
		t.Fatalf("without rules: %d %s; want a miss naming timestamp and request_id", miss.status, miss.body)
	}

	rules := writeRules(t, `rules:
  - path: /v1/*
    ignore_body_paths:
      - $.metadata.request_id
      - $.messages[*].timestamp
`)
	p = e.serve("--mode", "replay", "--cassette", "ts", "--rules", rules)
	hit := do(t, e.client(p), "POST", up.URL+"/v1/chat", later)
	p.stop()
	if hit.status != 200 || string(hit.body) != string(rec.body) {
		t.Fatalf("with rules: %d %s; want the recorded answer %s", hit.status, hit.body, rec.body)
	}
}

// TestPerHostModes: --mode replay for everything (the "LLM" host), with a
// rules file putting one tool host in live mode and another in record mode.
// The replayed host never sees a connection; the live host answers unseen
// GETs but not mutations; the record host gets everything; both are added
// to the cassette.
func TestPerHostModes(t *testing.T) {
	e := newEnv(t)
	llm := newUpstream(t, false, itemsHandler())
	p := e.serve("--mode", "record", "--cassette", "mix")
	do(t, e.client(p), "POST", llm.URL+"/v1/chat", `{"q":"hello"}`)
	p.stop()
	llmConns := llm.conns.Load()

	liveTool := newUpstream(t, false, itemsHandler())
	recTool := newUpstream(t, false, itemsHandler())
	hostOf := func(u string) string { pu, _ := url.Parse(u); return pu.Host }
	rules := writeRules(t, `rules:
  - host: "`+hostOf(liveTool.URL)+`"
    mode: live
  - host: "`+hostOf(recTool.URL)+`"
    mode: record
`)
	p = e.serve("--mode", "replay", "--cassette", "mix", "--rules", rules)
	c := e.client(p)
	if a := do(t, c, "POST", llm.URL+"/v1/chat", `{"q":"hello"}`); a.status != 200 {
		t.Errorf("replayed host: %d %s", a.status, a.body)
	}
	if a := do(t, c, "GET", llm.URL+"/v1/models", ""); a.status != 403 || a.header.Get("X-Cassetteproxy-Blocked") != "unrecorded_request" {
		t.Errorf("replayed host, unrecorded GET: %d %s", a.status, a.body)
	}
	if a := do(t, c, "GET", liveTool.URL+"/search?q=x", ""); a.status != 200 || !strings.Contains(string(a.body), `"path":"/search"`) {
		t.Errorf("live host, GET: %d %s", a.status, a.body)
	}
	if a := do(t, c, "POST", liveTool.URL+"/write", `{"x":1}`); a.status != 403 || a.header.Get("X-Cassetteproxy-Blocked") != "mutation_blocked" {
		t.Errorf("live host, POST: %d %s", a.status, a.body)
	}
	if a := do(t, c, "POST", recTool.URL+"/write", `{"x":1}`); a.status != 200 {
		t.Errorf("record host, POST: %d %s", a.status, a.body)
	}
	p.stop()
	if n := llm.conns.Load(); n != llmConns {
		t.Errorf("the replayed host was contacted (%d connections)", n-llmConns)
	}
	out, _, _ := e.cli("cassettes", "show", "mix")
	for _, want := range []string{"/v1/chat", "/search?q=x", recTool.URL + "/write"} {
		if !strings.Contains(out, want) {
			t.Errorf("cassette lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, liveTool.URL+"/write") {
		t.Errorf("a blocked mutation was recorded:\n%s", out)
	}
}

// TestRulesFileWithBadJSONPath: the error names the file and the line.
func TestRulesFileWithBadJSONPath(t *testing.T) {
	e := newEnv(t)
	rules := writeRules(t, "rules:\n  - path: /v1/*\n    ignore_body_paths:\n      - $.messages[*.timestamp\n")
	_, stderr, code := e.cli("serve", "--listen", "127.0.0.1:0", "--mode", "replay", "--cassette", "x", "--rules", rules)
	if code != 1 || !strings.Contains(stderr, "rules.yaml:4:") || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
		t.Errorf("exit %d, stderr %q: want one line naming rules.yaml and line 4", code, stderr)
	}
}
