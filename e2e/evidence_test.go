package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// evidenceRecord is what the evidence tests read of `runs show --json`.
type evidenceRecord struct {
	RunID         string   `json:"run_id"`
	RunType       string   `json:"run_type"`
	Status        string   `json:"status"`
	FailureClass  string   `json:"failure_class"`
	FailureReason string   `json:"failure_reason"`
	ToolAllowlist []string `json:"tool_allowlist"`
	StateRefs     []string `json:"state_refs"`
	ArtifactRefs  []string `json:"artifact_refs"`
	Interactions  int      `json:"interactions"`
	Events        []struct {
		Seq  int             `json:"seq"`
		At   string          `json:"at"`
		Kind string          `json:"kind"`
		Name string          `json:"name"`
		Path string          `json:"path"`
		Ref  string          `json:"ref"`
		Data json.RawMessage `json:"data"`
	} `json:"events"`
	Timeline []struct {
		Event *struct {
			Seq  int    `json:"seq"`
			Kind string `json:"kind"`
			Name string `json:"name"`
		} `json:"event"`
		Request *struct {
			Method   string `json:"method"`
			URL      string `json:"url"`
			Decision string `json:"decision"`
			Reason   string `json:"reason"`
			Status   int    `json:"status"`
		} `json:"request"`
	} `json:"timeline"`
}

// showRun reads one run with `runs show ID --json`; "" is the newest.
func (e *env) showRun(id string) evidenceRecord {
	e.t.Helper()
	if id == "" {
		rs := e.runs()
		if len(rs) == 0 {
			e.t.Fatal("no run recorded")
		}
		id = rs[len(rs)-1].RunID
	}
	out, errOut, code := e.cli("runs", "show", id, "--json")
	if code != 0 {
		e.t.Fatalf("runs show: %d %s", code, errOut)
	}
	var r evidenceRecord
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		e.t.Fatalf("runs show --json: %v\n%s", err, out)
	}
	return r
}

// eventNames lists the run's events as "seq:kind:name".
func (r evidenceRecord) eventNames() string {
	var out []string
	for _, ev := range r.Events {
		out = append(out, fmt.Sprintf("%d:%s:%s", ev.Seq, ev.Kind, ev.Name))
	}
	return strings.Join(out, " ")
}

// timeline is the run's timeline as "kind" and "METHOD URL" steps.
func (r evidenceRecord) timeline() string {
	var out []string
	for _, s := range r.Timeline {
		if s.Event != nil {
			out = append(out, s.Event.Kind+":"+s.Event.Name)
		} else {
			out = append(out, s.Request.Method+" "+s.Request.URL)
		}
	}
	return strings.Join(out, " | ")
}

// needPython skips (or, in CI, fails) without python3 and requests.
func needPython(t *testing.T) {
	t.Helper()
	if err := exec.Command("python3", "-c", "import requests").Run(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("python3 with requests is not installed (.ci/run installs python3-requests): %v", err)
		}
		t.Skip("python3 with requests not installed")
	}
}

func needNode(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node not on PATH")
	}
}

// withBinaryOnPath is the environment entry that puts cassetteproxy on PATH.
func withBinaryOnPath() string {
	return "PATH=" + filepath.Dir(binary) + string(os.PathListSeparator) + os.Getenv("PATH")
}

// cassetteHasNoEvents fails when the cassette holds anything sent to the
// events API, or more interactions than want.
func (e *env) cassetteHolds(name string, want int) {
	e.t.Helper()
	out, errOut, code := e.cli("cassettes", "show", name, "--json")
	if code != 0 {
		e.t.Fatalf("cassettes show %s: %s", name, errOut)
	}
	if strings.Contains(out, "_cassetteproxy") {
		e.t.Fatalf("an event reached the cassette:\n%s", out)
	}
	var c struct {
		Interactions []json.RawMessage `json:"interactions"`
	}
	if err := json.Unmarshal([]byte(out), &c); err != nil || len(c.Interactions) != want {
		e.t.Fatalf("cassette %s holds %d interactions, want %d (%v)", name, len(c.Interactions), want, err)
	}
}

// TestEventsFromPythonAndNode: real agents post events while they call a
// real HTTPS tool through the proxy. Python requests posts in origin form
// (no proxy) and in absolute form (through HTTP_PROXY); Node posts with its
// built-in fetch, through HTTP_PROXY in absolute form, and through a
// CONNECT tunnel (undici). The run record holds every event in order, in a
// timeline with the tool call between them; the cassette holds only the
// tool call.
func TestEventsFromPythonAndNode(t *testing.T) {
	needPython(t)
	nodeDir := mcpNode(t)
	up := newUpstream(t, true, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `[{"id": 1}, {"id": 2}]`)
	}))
	e := newEnv(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "agent.py"), []byte(`
import os, requests
url = os.environ["CASSETTEPROXY_URL"] + "/_cassetteproxy/v1/events"

def post(session, event):
    r = session.post(url, json=event, timeout=10)
    assert r.status_code == 202, (r.status_code, r.text)
    return r.json()["seq"]

direct = requests.Session()
direct.trust_env = False  # no proxy: origin form, straight to the proxy
proxied = requests.Session()  # HTTP_PROXY: absolute form, to the proxy
assert requests.utils.get_environ_proxies(url).get("http") == os.environ["HTTP_PROXY"], "requests would not use the proxy"
post(direct, {"kind": "checkpoint", "name": "py-origin"})
issues = proxied.get(os.environ["TOOL_URL"], timeout=10).json()
post(proxied, {"kind": "checkpoint", "name": "py-absolute", "data": {"issues": len(issues), "api_key": "sk-live-0123456789abcdefghijklmnop",
                                                                    "echo": "got " + os.environ["AGENT_SERVICE_TOKEN"]}})
`), 0o644)
	os.WriteFile(filepath.Join(dir, "agent.sh"), []byte(`set -e
python3 agent.py
echo '{"issues": 2}' > report.json
node "$NODE_AGENT"
`), 0o644)
	const token = "tok-9f8e7d6c5b4a39281706"
	out, errOut, code := e.runIn(dir, []string{"TOOL_URL=" + up.URL + "/issues", "NODE_AGENT=" + filepath.Join(nodeDir, "events.mjs"), "AGENT_SERVICE_TOKEN=" + token},
		"--mode", "record", "--cassette", "agents", "--upstream-ca", up.caFile, "--", "sh", "agent.sh")
	if code != 0 {
		t.Fatalf("run exited %d\n%s%s", code, out, errOut)
	}
	if strings.TrimSpace(out) != "[3,4,5]" {
		t.Errorf("node agent printed %q, want its sequence numbers [3,4,5]", out)
	}
	r := e.showRun("")
	if r.Status != "passed" {
		t.Fatalf("run %s/%s: %s", r.Status, r.FailureClass, r.FailureReason)
	}
	if got, want := r.eventNames(), "1:checkpoint:py-origin 2:checkpoint:py-absolute 3:note:node-origin 4:artifact:node-absolute 5:claim:node-tunnel"; got != want {
		t.Fatalf("events %q, want %q", got, want)
	}
	if got, want := r.timeline(), "checkpoint:py-origin | GET "+up.URL+"/issues | checkpoint:py-absolute | note:node-origin | artifact:node-absolute | claim:node-tunnel"; got != want {
		t.Errorf("timeline %q, want %q", got, want)
	}
	var data map[string]any
	if err := json.Unmarshal(r.Events[1].Data, &data); err != nil || data["issues"] != 2.0 || !strings.HasPrefix(fmt.Sprint(data["api_key"]), "[REDACTED") {
		t.Errorf("event data kept as %s: want the count, and the key redacted", data)
	}
	if raw, err := os.ReadFile(e.db); err != nil || bytes.Contains(raw, []byte(token)) || bytes.Contains(raw, []byte("0123456789abcdefghijklmnop")) {
		t.Errorf("a secret the agent reported reached the store (%v)", err)
	}
	if r.Interactions != 1 {
		t.Errorf("the run saw %d tool requests, want 1: events are not tool requests", r.Interactions)
	}
	e.cassetteHolds("agents", 1)
	text, _, _ := e.cli("runs", "show", r.RunID)
	_, tl, _ := strings.Cut(text, "\ntimeline:\n")
	lines := strings.Split(strings.TrimRight(tl, "\n"), "\n")
	if len(lines) != 6 || !strings.Contains(lines[0], "#1 checkpoint py-origin") ||
		!strings.Contains(lines[1], "GET "+up.URL+"/issues") || !strings.Contains(lines[1], "recorded") || !strings.HasSuffix(lines[1], "200") ||
		!strings.Contains(lines[5], "#5 claim node-tunnel") || !strings.HasSuffix(lines[5], "done") {
		t.Errorf("runs show timeline:\n%s", tl)
	}
	if n := strings.Count(errOut, "msg=request "); n != 1 || strings.Count(errOut, "msg=event ") != 5 {
		t.Errorf("the log has %d request lines, want 1, and a line per event:\n%s", n, errOut)
	}
	if n := up.conns.Load(); n != 1 {
		t.Errorf("upstream saw %d connections, want 1", n)
	}
}

// readmeSnippets returns the python, js and sh code blocks of the README
// section "The agent's own evidence", as a user would copy them.
func readmeSnippets(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	in, lang := false, ""
	var block strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "### "):
			in = line == "### The agent's own evidence"
		case !in:
		case lang == "" && strings.HasPrefix(line, "```") && len(line) > 3:
			lang = strings.TrimPrefix(line, "```")
			block.Reset()
		case lang != "" && line == "```":
			if _, seen := out[lang]; !seen {
				out[lang] = block.String()
			}
			lang = ""
		case lang != "":
			block.WriteString(line + "\n")
		}
	}
	for _, l := range []string{"python", "js", "sh"} {
		if out[l] == "" {
			t.Fatalf("README section \"The agent's own evidence\" has no %s snippet", l)
		}
	}
	return out
}

// TestREADMEEventSnippets runs the README's Python, Node and shell snippets
// for the events API, as written, inside one run: each event lands in the
// record, in order, the claim is backed by the artifact, and emit outside
// a run says so in one line.
func TestREADMEEventSnippets(t *testing.T) {
	needPython(t)
	needNode(t)
	snip := readmeSnippets(t)
	e := newEnv(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "snippet.py"), []byte(snip["python"]), 0o644)
	os.WriteFile(filepath.Join(dir, "snippet.mjs"), []byte(snip["js"]), 0o644)
	os.WriteFile(filepath.Join(dir, "snippet.sh"), []byte("set -e\n"+snip["sh"]), 0o644)
	os.WriteFile(filepath.Join(dir, "agent.sh"), []byte(`set -e
echo '{"issues": 3}' > report.json
python3 snippet.py
node snippet.mjs
sh snippet.sh
`), 0o644)
	out, errOut, code := e.runIn(dir, []string{withBinaryOnPath()}, "--mode", "record", "--cassette", "snippets", "--", "sh", "agent.sh")
	if code != 0 {
		t.Fatalf("run exited %d\n%s%s", code, out, errOut)
	}
	r := e.showRun("")
	if r.Status != "passed" {
		t.Fatalf("run %s/%s: %s", r.Status, r.FailureClass, r.FailureReason)
	}
	if got, want := r.eventNames(), "1:checkpoint:fetched 2:artifact: 3:checkpoint:fetched 4:claim: 5:state_ref:"; got != want {
		t.Fatalf("events %q, want %q", got, want)
	}
	if len(r.StateRefs) != 1 || r.StateRefs[0] != "row:42" {
		t.Errorf("state_refs %v", r.StateRefs)
	}
	if len(r.ArtifactRefs) != 1 || r.ArtifactRefs[0] != filepath.Join(dir, "report.json") {
		t.Errorf("artifact_refs %v", r.ArtifactRefs)
	}
	e.cassetteHolds("snippets", 0)

	// The same snippets, with nothing to back the claim: the run fails.
	os.WriteFile(filepath.Join(dir, "agent.sh"), []byte("set -e\nrm -f report.json\nsh snippet.sh\n"), 0o644)
	_, _, code = e.runIn(dir, []string{withBinaryOnPath()}, "--mode", "record", "--cassette", "snippets", "--", "sh", "agent.sh")
	if r := e.showRun(""); code != 3 || r.Status != "failed" || r.FailureClass != "missing_artifact_ref" || !strings.Contains(r.FailureReason, "claim #2") {
		t.Fatalf("claim without its artifact: exit %d, %s/%s: %s", code, r.Status, r.FailureClass, r.FailureReason)
	}

	// Outside a run.
	cmd := exec.Command(binary, "emit", "checkpoint", "fetched")
	cmd.Env = withoutEnv(os.Environ(), "CASSETTEPROXY_URL", "CASSETTEPROXY_RUN_ID")
	b, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || strings.Count(string(b), "\n") != 1 || !strings.Contains(string(b), "not inside a run") {
		t.Fatalf("emit outside a run: %v %q", err, b)
	}
}

func withoutEnv(env []string, names ...string) []string {
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, n := range names {
			drop = drop || k == n
		}
		if !drop {
			out = append(out, kv)
		}
	}
	return out
}

// TestEvidenceVerdicts: each failure class the agent's evidence and the
// run's side effects and allowed hosts produce, failing and passing, in
// record mode, through the CLI.
func TestEvidenceVerdicts(t *testing.T) {
	var sends, other atomic.Int64
	up := newUpstream(t, false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/messages" {
			sends.Add(1)
		} else {
			other.Add(1)
		}
		io.WriteString(w, `{"id": "m1"}`)
	}))
	send := "curl -sf -X POST -d '{\"text\": \"hi\"}' " + up.URL + "/v1/messages > /dev/null"
	sideEffect := "POST " + up.URL + "/v1/messages*"
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	os.WriteFile(rules, []byte("allow_hosts: [\"*.allowed.test\"]\n"), 0o644)
	tests := []struct {
		name      string
		script    string
		flags     []string
		exit      int
		status    string
		class     string
		reasonHas string
		sends     int64
		other     int64
	}{
		{name: "claim backed by its artifact", script: "echo '{}' > r.json; cassetteproxy emit artifact --path r.json; cassetteproxy emit claim", status: "passed"},
		{name: "claim without artifact", script: "cassetteproxy emit checkpoint working; cassetteproxy emit claim", exit: 3, status: "failed", class: "missing_artifact_ref", reasonHas: "claim #2 (done)"},
		{name: "claim naming an unknown ref", script: "cassetteproxy emit artifact --ref row:1; cassetteproxy emit claim --artifact-ref row:2", exit: 3, status: "failed", class: "missing_artifact_ref", reasonHas: "names artifact row:2"},
		{name: "artifact missing", script: "cassetteproxy emit artifact --path out/report.json", exit: 3, status: "failed", class: "missing_artifact_ref", reasonHas: "artifact event #1"},
		{name: "artifact empty", script: ": > e.json; cassetteproxy emit artifact --path e.json", exit: 3, status: "failed", class: "empty_output", reasonHas: "artifact event #1 names e.json, an empty file"},
		{name: "side effect made once", script: send, flags: []string{"--side-effect", sideEffect}, status: "passed", sends: 1},
		{name: "side effect missing", script: "true", flags: []string{"--side-effect", sideEffect}, exit: 3, status: "failed", class: "side_effect_unconfirmed", reasonHas: "--side-effect wants POST"},
		{name: "side effect duplicated", script: send + "; " + send, flags: []string{"--side-effect", sideEffect}, exit: 3, status: "failed", class: "side_effect_duplicated", reasonHas: "at most 1", sends: 2},
		{name: "claimed side effect made", script: send + "; cassetteproxy emit artifact --ref m1; cassetteproxy emit claim --side-effect '" + sideEffect + "'", status: "passed", sends: 1},
		{name: "claimed side effect never made", script: "cassetteproxy emit artifact --ref m1; cassetteproxy emit claim --side-effect '" + sideEffect + "'", exit: 3, status: "failed", class: "side_effect_unconfirmed", reasonHas: "claim #2 (done) says POST"},
		{name: "host allowed", script: send, flags: []string{"--allow-host", "127.0.0.1", "--allow-host", "*.allowed.test"}, status: "passed", sends: 1},
		{name: "host not allowed, record mode", script: "curl -s " + up.URL + "/other > /dev/null", flags: []string{"--allow-host", "*.allowed.test"}, exit: 3, status: "failed", class: "host_not_allowed", reasonHas: "GET " + up.URL + "/other"},
		{name: "events are never blocked by the allow-list", flags: []string{"--allow-host", "*.allowed.test"}, status: "passed",
			script: `[ "$(curl -s -o /dev/null -w '%{http_code}' -d '{"kind":"note","name":"through the proxy"}' "$CASSETTEPROXY_URL/_cassetteproxy/v1/events")" = 202 ] || exit 9`},
		{name: "host not allowed by the rules file", script: "curl -s " + up.URL + "/other > /dev/null", flags: []string{"--rules", rules}, exit: 3, status: "failed", class: "host_not_allowed"},
		{name: "bad events leave the run whole", script: `
post() { curl -s -o /dev/null -w '%{http_code} ' -d "$1" "$CASSETTEPROXY_URL/_cassetteproxy/v1/events"; }
codes=$(post '{bad'; post '{"kind":"teleport"}'; post '{"kind":"note","name":"x","run_id":"other"}'; head -c 100000 /dev/zero | tr '\0' x | curl -s -o /dev/null -w '%{http_code} ' --data-binary @- "$CASSETTEPROXY_URL/_cassetteproxy/v1/events")
[ "$codes" = "400 400 400 400 " ] || { echo "codes: $codes"; exit 9; }
cassetteproxy emit bogus 2> err.txt && exit 8
grep -q 'unknown event kind' err.txt || exit 7
cassetteproxy emit note fine`, status: "passed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sends.Store(0)
			other.Store(0)
			e := newEnv(t)
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "agent.sh"), []byte(tt.script), 0o644)
			args := append(append([]string{"--mode", "record", "--cassette", "ev"}, tt.flags...), "--", "sh", "agent.sh")
			out, errOut, code := e.runIn(dir, []string{withBinaryOnPath()}, args...)
			r := e.showRun("")
			if code != tt.exit || r.Status != tt.status || r.FailureClass != tt.class || !strings.Contains(r.FailureReason, tt.reasonHas) {
				t.Fatalf("exit %d, %s/%s %q; want exit %d, %s/%s with %q\n%s%s", code, r.Status, r.FailureClass, r.FailureReason,
					tt.exit, tt.status, tt.class, tt.reasonHas, out, errOut)
			}
			if sends.Load() != tt.sends || other.Load() != tt.other {
				t.Errorf("upstream saw %d sends and %d other requests, want %d and %d", sends.Load(), other.Load(), tt.sends, tt.other)
			}
			if tt.class == "host_not_allowed" && (len(r.ToolAllowlist) != 1 || r.ToolAllowlist[0] != "*.allowed.test") {
				t.Errorf("tool_allowlist %v", r.ToolAllowlist)
			}
			if tt.name == "bad events leave the run whole" && r.eventNames() != "1:note:fine" {
				t.Errorf("events %q: refused events were kept", r.eventNames())
			}
		})
	}
}

// TestEvidenceBadFlags: a bad side effect, allowed host or rules entry is
// refused before anything runs, in one line.
func TestEvidenceBadFlags(t *testing.T) {
	e := newEnv(t)
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	os.WriteFile(rules, []byte("allow_hosts:\n  - ok.test\n  - https://bad.test\n"), 0o644)
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"run", "--side-effect", "POST", "--", "true"}, []string{"--side-effect", "METHOD URLGLOB"}},
		{[]string{"run", "--side-effect", "POST api.example.com/x", "--", "true"}, []string{"--side-effect", "must start with http://"}},
		{[]string{"run", "--side-effect", "P@ST https://x/", "--", "true"}, []string{"not an HTTP method"}},
		{[]string{"run", "--allow-host", "https://api.example.com", "--", "true"}, []string{"--allow-host", "not a URL"}},
		{[]string{"serve", "--listen", "127.0.0.1:0", "--allow-host", "a.test/v1"}, []string{"--allow-host", "no path"}},
		{[]string{"run", "--rules", rules, "--", "true"}, []string{rules + ":3:", "not a URL"}},
		{[]string{"emit", "note", "x", "--data", "{nope"}, []string{"--data is not JSON"}},
	}
	for _, tt := range tests {
		cmd := exec.Command(binary, tt.args...)
		cmd.Env = append(os.Environ(), "CASSETTEPROXY_DB="+e.db, "CASSETTEPROXY_HOME="+e.home,
			"CASSETTEPROXY_URL=http://127.0.0.1:1", "CASSETTEPROXY_RUN_ID=r")
		b, err := cmd.CombinedOutput()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 1 || strings.Count(string(b), "\n") != 1 {
			t.Errorf("%v: %v, want exit 1 with one line: %q", tt.args, err, b)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(string(b), w) {
				t.Errorf("%v: %q does not say %q", tt.args, b, w)
			}
		}
	}
	if _, err := os.Stat(e.db); err == nil {
		if rs := e.runs(); len(rs) != 0 {
			t.Errorf("bad flags opened %d runs", len(rs))
		}
	}
}

// TestEvidenceExportAndReplay: a production run's side effect, allowed
// hosts and timeline go into its fixture (expected.json side_effects,
// input.json tool_allowlist, notes.json trace); replaying it, the agent's
// events land in the replay's run record; a retried send fails the
// replay side_effect_duplicated, and a host outside the list
// host_not_allowed.
func TestEvidenceExportAndReplay(t *testing.T) {
	up := newUpstream(t, false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"id": "m1"}`)
	}))
	e := newEnv(t)
	dir := t.TempDir()
	agent := filepath.Join(dir, "agent.sh")
	os.WriteFile(agent, []byte(`set -e
cassetteproxy emit checkpoint start
for i in $(seq "${SENDS:-1}"); do curl -sf -X POST -d '{"text": "hi"}' "$TOOL/v1/messages" > /dev/null; done
echo done > "$OUT"
cassetteproxy emit artifact --path "$OUT"
cassetteproxy emit claim --side-effect "POST $TOOL/v1/messages"
`), 0o644)
	_, errOut, code := e.runIn(dir, []string{withBinaryOnPath()},
		"--mode", "record", "--cassette", "send", "--side-effect", "POST "+up.URL+"/v1/messages",
		"--allow-host", "127.0.0.1", "--env", "TOOL="+up.URL, "--env", "OUT=out.txt", "--", "sh", agent)
	if code != 0 {
		t.Fatalf("record: %d %s", code, errOut)
	}
	fx := filepath.Join(t.TempDir(), "send")
	if _, errOut, code := e.cli("export", "--cassette", "send", "--out", fx); code != 0 {
		t.Fatalf("export: %s", errOut)
	}
	var expected struct {
		SideEffects []struct {
			Method, URL, Status string
			Min, Max            *int
		} `json:"side_effects"`
		Artifacts []struct{ Path string } `json:"artifacts"`
	}
	var input struct {
		ToolAllowlist []string `json:"tool_allowlist"`
	}
	var notes struct {
		Trace []map[string]json.RawMessage `json:"trace"`
	}
	for name, v := range map[string]any{"expected.json": &expected, "input.json": &input, "notes.json": &notes} {
		b, err := os.ReadFile(filepath.Join(fx, name))
		if err != nil || json.Unmarshal(b, v) != nil {
			t.Fatalf("%s: %v\n%s", name, err, b)
		}
	}
	if len(expected.SideEffects) != 1 || expected.SideEffects[0].Method != "POST" || *expected.SideEffects[0].Max != 1 {
		t.Errorf("expected.json side_effects %+v", expected.SideEffects)
	}
	if len(expected.Artifacts) != 0 {
		t.Errorf("the agent's artifact event became a contract artifact: %+v", expected.Artifacts)
	}
	if len(input.ToolAllowlist) != 1 || input.ToolAllowlist[0] != "127.0.0.1" {
		t.Errorf("input.json tool_allowlist %v", input.ToolAllowlist)
	}
	var steps []string
	for _, s := range notes.Trace {
		for k := range s {
			steps = append(steps, k)
		}
	}
	if strings.Join(steps, ",") != "event,request,event,event" {
		t.Errorf("notes.json trace steps %v", steps)
	}

	replay := func(mode string, extra ...string) (verdict, evidenceRecord) {
		t.Helper()
		cmd := exec.Command(binary, append([]string{"replay", fx, "--mode", mode}, extra...)...)
		cmd.Env = append(os.Environ(), "CASSETTEPROXY_DB="+e.db, "CASSETTEPROXY_HOME="+e.home, withBinaryOnPath())
		b, _ := cmd.Output()
		v := parseVerdict(t, string(b))
		return v, e.showRun(v.RunID)
	}
	v, r := replay("replay")
	if v.Status != "passed" {
		t.Fatalf("replay: %+v", v)
	}
	if r.RunType != "replay" || r.eventNames() != "1:checkpoint:start 2:artifact: 3:claim:" {
		t.Errorf("replay run %s events %q", r.RunType, r.eventNames())
	}

	// The agent, broken: it retries the send (replay mode serves the
	// recorded answer again).
	v, _ = replay("replay", "--", "sh", "-c", "SENDS=2 sh "+agent)
	if v.Status != "failed" || v.FailureClass != "side_effect_duplicated" {
		t.Errorf("retried send: %+v", v)
	}

	// The allow-list travels with the fixture: with the tool's host off
	// it, the replay fails host_not_allowed.
	in, _ := os.ReadFile(filepath.Join(fx, "input.json"))
	os.WriteFile(filepath.Join(fx, "input.json"), []byte(strings.Replace(string(in), `"127.0.0.1"`, `"tools.example.test"`, 1)), 0o644)
	v, r = replay("replay")
	if v.Status != "failed" || v.FailureClass != "host_not_allowed" {
		t.Errorf("tool host off the allow-list: %+v", v)
	}
	if len(r.ToolAllowlist) != 1 || r.ToolAllowlist[0] != "tools.example.test" {
		t.Errorf("replay tool_allowlist %v", r.ToolAllowlist)
	}
	v, _ = replay("replay", "--allow-host", "127.0.0.1")
	if v.Status != "passed" {
		t.Errorf("replay --allow-host 127.0.0.1: %+v", v)
	}
}
