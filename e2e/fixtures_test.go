package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// copyExamples copies examples/ (agent and fixtures) into a scratch folder.
func copyExamples(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "examples")
	if out, err := exec.Command("cp", "-r", "../examples", dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	return dst
}

type verdict struct {
	FixtureID    string `json:"fixture_id"`
	RunID        string `json:"run_id"`
	Status       string `json:"status"`
	FailureClass string `json:"failure_class"`
	Proven       bool   `json:"proven"`
}

func parseVerdict(t *testing.T, out string) verdict {
	t.Helper()
	var v verdict
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("verdict is not JSON: %v\n%s", err, out)
	}
	return v
}

// TestFixtureExportImportReplayRoundTrip records a tool through the proxy,
// exports the cassette as a fixture, imports it back (byte-identical), and
// replays the fixture with a curl agent in strict mode.
func TestFixtureExportImportReplayRoundTrip(t *testing.T) {
	e := newEnv(t)
	up := newUpstream(t, true, itemsHandler())
	p := e.serve("--mode", "record", "--cassette", "rt", "--upstream-ca", up.caFile)
	c := e.client(p)
	do(t, c, "GET", up.URL+"/items?a=1", "")
	do(t, c, "POST", up.URL+"/items", `{"name":"x","n":1}`)
	do(t, c, "GET", up.URL+"/gzip", "")
	p.stop()

	fx := filepath.Join(e.dir, "fx")
	if out, errs, code := e.cli("export", "--cassette", "rt", "--out", fx); code != 0 {
		t.Fatalf("export: %d %s %s", code, out, errs)
	}
	before, _, _ := e.cli("cassettes", "show", "rt", "--json")
	if _, errs, code := e.cli("import", "--in", fx, "--cassette", "rt2"); code != 0 {
		t.Fatalf("import: %s", errs)
	}
	after, _, _ := e.cli("cassettes", "show", "rt2", "--json")
	if strings.Replace(before, `"cassette": "rt"`, `"cassette": "rt2"`, 1) != after {
		t.Fatalf("import is not byte-identical:\n%s\n---\n%s", before, after)
	}
	// Export again from the imported cassette: the same files.
	fx2 := filepath.Join(e.dir, "fx2")
	e.cli("export", "--cassette", "rt2", "--out", fx2)
	a, _ := os.ReadFile(filepath.Join(fx, "tool_cassettes.json"))
	b, _ := os.ReadFile(filepath.Join(fx2, "tool_cassettes.json"))
	if !bytes.Equal(a, bytes.Replace(b, []byte(`"cassette": "rt2"`), []byte(`"cassette": "rt"`), 1)) {
		t.Fatal("re-export differs")
	}

	// Replay: a curl agent makes the same three calls through the proxy.
	up.Close()
	script := `set -e
curl -sS --fail "$U/items?a=1" > a.json
curl -sS --fail -X POST -H 'Content-Type: application/json' -d '{"name":"x","n":1}' "$U/items" > b.json
curl -sS --fail "$U/gzip" > c.json`
	out, errs, code := e.cli("replay", fx, "--", "sh", "-c", strings.ReplaceAll(script, "$U", up.URL))
	v := parseVerdict(t, out)
	if code != 0 || v.Status != "passed" {
		t.Fatalf("replay: %d %s\n%s", code, out, errs)
	}
	// The runs record names the fixture.
	rs, _, _ := e.cli("runs", "show", v.RunID, "--json")
	if !strings.Contains(rs, `"run_type": "replay"`) || !strings.Contains(rs, `"fixture_id": "rt"`) {
		t.Fatalf("run record: %s", rs)
	}
	// The main store's cassettes were not touched by replay.
	ls, _, _ := e.cli("cassettes", "ls")
	if strings.Contains(ls, "fixture:") {
		t.Fatalf("replay wrote a cassette: %s", ls)
	}
}

func TestFixtureHARExportImport(t *testing.T) {
	e := newEnv(t)
	up := newUpstream(t, false, itemsHandler())
	p := e.serve("--mode", "record", "--cassette", "h")
	c := e.client(p)
	do(t, c, "GET", up.URL+"/items", "")
	do(t, c, "GET", up.URL+"/br", "")
	p.stop()
	harFile := filepath.Join(e.dir, "h.har")
	if _, errs, code := e.cli("export", "--cassette", "h", "--out", harFile, "--format", "har"); code != 0 {
		t.Fatal(errs)
	}
	var h struct {
		Log struct {
			Version string
			Entries []json.RawMessage
		}
	}
	data, _ := os.ReadFile(harFile)
	if err := json.Unmarshal(data, &h); err != nil || h.Log.Version != "1.2" || len(h.Log.Entries) != 2 {
		t.Fatalf("har: %v %s", err, data)
	}
	out, errs, code := e.cli("import", "--in", harFile, "--cassette", "h2")
	if code != 0 || !strings.Contains(out, "imported 2 interactions") {
		t.Fatalf("import har: %d %s %s", code, out, errs)
	}
	// A browser HAR with entries the store cannot hold: skipped, counted.
	bad := filepath.Join(e.dir, "browser.har")
	os.WriteFile(bad, []byte(`{"log": {"version": "1.2", "creator": {"name": "WebInspector", "version": "1"}, "entries": [
	  {"startedDateTime": "2025-06-01T12:00:00Z", "time": 1, "request": {"method": "GET", "url": "https://a.test/x", "headers": [{"name": "Cookie", "value": "session=abc"}]}, "response": {"status": 200, "content": {"size": 2, "text": "ok"}}},
	  {"startedDateTime": "2025-06-01T12:00:00Z", "time": 1, "request": {"method": "GET", "url": "data:text/plain,hi"}, "response": {"status": 200, "content": {"size": 2, "text": "hi"}}},
	  {"startedDateTime": "2025-06-01T12:00:00Z", "time": 1, "request": {"method": "GET", "url": "https://a.test/y"}, "response": {"status": 0, "content": {"size": 0}}}]}}`), 0o644)
	out, errs, code = e.cli("import", "--in", bad, "--cassette", "b")
	if code != 0 || !strings.Contains(out, "imported 1 interactions") || !strings.Contains(out, "skipped 2 entries") {
		t.Fatalf("browser har: %d %s %s", code, out, errs)
	}
	show, _, _ := e.cli("cassettes", "show", "b", "--json")
	if strings.Contains(show, "session=abc") {
		t.Fatalf("cookie kept: %s", show)
	}
}

// TestFixtureReplayUnprovenToProven: a fixture is proven only when a
// replay failed with the class it protects (notes.json failure_class) and
// a later one passed; other failures (a missing command, another class)
// are history. The proof is then written into notes.json.
func TestFixtureReplayUnprovenToProven(t *testing.T) {
	e := newEnv(t)
	ex := copyExamples(t)
	fx := filepath.Join(ex, "fixtures", "missing_artifact_ref")
	agent := filepath.Join(ex, "agent", "agent.sh")
	// The example carries its proof: start from notes.json without it.
	var notes map[string]any
	data, _ := os.ReadFile(filepath.Join(fx, "notes.json"))
	if err := json.Unmarshal(data, &notes); err != nil || notes["proof"] == nil || notes["failure_class"] != "missing_artifact_ref" {
		t.Fatalf("example notes.json: %v %s", err, data)
	}
	delete(notes, "proof")
	data, _ = json.Marshal(notes)
	os.WriteFile(filepath.Join(fx, "notes.json"), data, 0o644)

	steps := []struct {
		version, bug  string // bug "": the fixed agent; "missing": no such command
		status, class string
		proven        bool
	}{
		{"no-command", "missing", "failed", "nonzero_exit", false},
		{"fixed", "", "passed", "", false},
		{"other-bug", "empty_output", "failed", "empty_output", false},
		{"fixed", "", "passed", "", false},
		{"broken", "missing_artifact_ref", "failed", "missing_artifact_ref", false},
		{"fixed", "", "passed", "", true},
	}
	var failing string
	for i, st := range steps {
		args := []string{"replay", fx, "--code-version", st.version}
		switch st.bug {
		case "":
		case "missing":
			args = append(args, "--", "no-such-agent-command")
		default:
			args = append(args, "--", "sh", "-c", "AGENT_BUG="+st.bug+" sh "+agent)
		}
		out, errs, _ := e.cli(args...)
		v := parseVerdict(t, out)
		if v.Status != st.status || v.FailureClass != st.class || v.Proven != st.proven {
			t.Fatalf("step %d (%s): %s/%s proven %v, want %s/%s %v\n%s", i, st.version, v.Status, v.FailureClass, v.Proven, st.status, st.class, st.proven, errs)
		}
		if st.class == "missing_artifact_ref" {
			failing = v.RunID
		}
		n := readNotes(t, fx)
		if (n.Proof != nil) != st.proven {
			t.Fatalf("step %d: notes.json proof %+v", i, n.Proof)
		}
		if st.proven && (n.Proof.Failing.RunID != failing || n.Proof.Failing.CodeVersion != "broken" || n.Proof.Passing.RunID != v.RunID || n.Proof.Passing.CodeVersion != "fixed") {
			t.Fatalf("proof: %+v", n.Proof)
		}
	}
}

// exampleClasses are the failure classes examples/fixtures protect, one
// fixture each (folder name = class).
var exampleClasses = []string{"empty_output", "host_not_allowed", "missing_artifact_ref", "schema_mismatch", "side_effect_duplicated"}

type monitorReport struct {
	Total    int                `json:"fixtures_total"`
	Passing  int                `json:"fixtures_passing"`
	Failing  int                `json:"fixtures_failing"`
	Stale    int                `json:"fixtures_stale"`
	Unproven int                `json:"fixtures_unproven"`
	Gate     string             `json:"gate"`
	Window   map[string]float64 `json:"silent_failure_window_minutes"`
	Results  []struct {
		FixtureID    string `json:"fixture_id"`
		Status       string `json:"status"`
		FailureClass string `json:"failure_class"`
		Proven       bool   `json:"proven"`
	} `json:"results"`
}

func readMonitorReport(t *testing.T, out string) monitorReport {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(out, "monitor.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep monitorReport
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

// seedBugs makes every example fixture run the buggy agent: AGENT_BUG set
// to the class the fixture protects.
func seedBugs(t *testing.T, root string) {
	t.Helper()
	for _, class := range exampleClasses {
		editJSON(t, filepath.Join(root, class, "input.json"), func(m map[string]any) {
			env, _ := m["env"].(map[string]any)
			if env == nil {
				env = map[string]any{}
			}
			env["AGENT_BUG"] = class
			m["env"] = env
		})
	}
}

// TestMonitorExamples: the committed example fixtures describe the fixed
// agent and carry their proof: monitor is green with the fixed agent, red
// with the buggy one with each fixture's own class named; broken, disabled
// and corrupt fixtures fail the gate; --tier selects.
func TestMonitorExamples(t *testing.T) {
	e := newEnv(t)
	ex := copyExamples(t)
	root := filepath.Join(ex, "fixtures")
	out := filepath.Join(e.dir, "report")
	stdout, errs, code := e.cli("monitor", root, "--out", out, "-j", "2")
	rep := readMonitorReport(t, out)
	n := len(exampleClasses)
	if code != 0 || rep.Gate != "pass" || rep.Total != n || rep.Passing != n || rep.Failing != 0 || rep.Stale != 0 || rep.Unproven != 0 || len(rep.Results) != n {
		t.Fatalf("fixed agent: exit %d %+v\n%s\n%s", code, rep, stdout, errs)
	}
	for _, r := range rep.Results {
		if r.Status != "passed" || !r.Proven {
			t.Fatalf("fixed agent: %+v", r)
		}
	}
	for _, f := range []string{"metrics.prom", "junit.xml"} {
		if fi, err := os.Stat(filepath.Join(out, f)); err != nil || fi.Size() == 0 {
			t.Fatalf("%s: %v", f, err)
		}
	}
	if !strings.Contains(errs, fmt.Sprintf("[%d/%d]", n, n)) {
		t.Fatalf("no progress lines: %s", errs)
	}

	// The buggy agent: the gate fails and each fixture names its class.
	seedBugs(t, root)
	stdout, errs, code = e.cli("monitor", root, "--out", out, "-j", "2")
	rep = readMonitorReport(t, out)
	if code != 1 || rep.Gate != "fail" || rep.Failing != n || rep.Passing != 0 {
		t.Fatalf("buggy agent: exit %d %+v\n%s\n%s", code, rep, stdout, errs)
	}
	for _, r := range rep.Results {
		want := strings.ReplaceAll(strings.TrimPrefix(r.FixtureID, "example-"), "-", "_")
		if r.Status != "failed" || r.FailureClass != want {
			t.Fatalf("buggy agent: %s: %s/%s, want failed/%s", r.FixtureID, r.Status, r.FailureClass, want)
		}
		if _, ok := rep.Window[want]; !ok {
			t.Fatalf("no silent failure window for %s: %+v", want, rep.Window)
		}
	}
	promtoolCheck(t, filepath.Join(out, "metrics.prom"))

	// Fixed again, but one fixture disabled (stale: --max-age 1ms makes its
	// last verdict too old) and one corrupt (unreadable: stale).
	ex2 := copyExamples(t)
	root = filepath.Join(ex2, "fixtures")
	p := filepath.Join(root, "schema_mismatch", "notes.json")
	b, _ := os.ReadFile(p)
	if !bytes.Contains(b, []byte(`"tier": `)) {
		t.Fatalf("%s lacks a tier", p)
	}
	os.WriteFile(p, bytes.Replace(b, []byte(`"tier": `), []byte(`"disabled": "tool API under maintenance", "tier": `), 1), 0o644)
	os.WriteFile(filepath.Join(root, "empty_output", "expected.json"), []byte(`{"status": `), 0o644)
	stdout, errs, code = e.cli("monitor", root, "--out", out, "--max-age", "1ms")
	rep = readMonitorReport(t, out)
	if code != 1 || rep.Total != n || rep.Passing != n-2 || rep.Failing != 0 || rep.Stale != 2 {
		t.Fatalf("stale fixtures: exit %d %+v\n%s\n%s", code, rep, stdout, errs)
	}
	// --tier selects: the side-effect and allowed-hosts fixtures are critical.
	stdout, _, code = e.cli("monitor", root, "--out", out, "--tier", "critical")
	rep = readMonitorReport(t, out)
	if code != 0 || rep.Total != 2 || rep.Passing != 2 {
		t.Fatalf("tier critical: %d %+v %s", code, rep, stdout)
	}
}

// TestExamplesRecordScript: examples/record.sh regenerates every example
// fixture from recorded runs of the buggy agent and proves each; monitor
// then fails with the buggy agent and passes with the fixed one, every
// fixture proven.
func TestExamplesRecordScript(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("examples/record.sh runs its tool API with python3")
	}
	e := newEnv(t)
	ex := copyExamples(t)
	root := filepath.Join(ex, "fixtures")
	os.RemoveAll(root)
	cmd := exec.Command("sh", filepath.Join(ex, "record.sh"))
	cmd.Env = append(os.Environ(), "CASSETTEPROXY="+e.binary())
	outb, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("record.sh: %v\n%s", err, outb)
	}
	for _, class := range exampleClasses {
		if !strings.Contains(string(outb), "fixtures/"+class+": fails with the bug, passes with the fix: proven") {
			t.Fatalf("record.sh did not prove %s:\n%s", class, outb)
		}
		n := readNotes(t, filepath.Join(root, class))
		if n.FailureClass != class || n.Proof == nil {
			t.Fatalf("%s: notes.json %+v", class, n)
		}
	}
	// Again: it overwrites what it made.
	cmd = exec.Command("sh", filepath.Join(ex, "record.sh"))
	cmd.Env = append(os.Environ(), "CASSETTEPROXY="+e.binary())
	if outb, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("record.sh again: %v\n%s", err, outb)
	}

	out := filepath.Join(e.dir, "report")
	stdout, errs, code := e.cli("monitor", root, "--out", out)
	rep := readMonitorReport(t, out)
	if code != 0 || rep.Passing != len(exampleClasses) || rep.Unproven != 0 {
		t.Fatalf("fixed agent: exit %d %+v\n%s\n%s", code, rep, stdout, errs)
	}
	seedBugs(t, root)
	stdout, errs, code = e.cli("monitor", root, "--out", out)
	rep = readMonitorReport(t, out)
	got := map[string]bool{}
	for _, r := range rep.Results {
		got[r.FailureClass] = true
	}
	for _, class := range exampleClasses {
		if !got[class] {
			t.Fatalf("buggy agent: %s not named: exit %d %+v\n%s", class, code, rep, errs)
		}
	}
	if code != 1 || rep.Gate != "fail" || rep.Failing != len(exampleClasses) {
		t.Fatalf("buggy agent: exit %d %+v\n%s", code, rep, stdout)
	}
}

func TestReplayBadInput(t *testing.T) {
	e := newEnv(t)
	ex := copyExamples(t)
	fx := filepath.Join(ex, "fixtures", "missing_artifact_ref")
	cases := []struct {
		name string
		prep func() string
		code int
		want string
	}{
		{"missing folder", func() string { return filepath.Join(e.dir, "nope") }, 1, "no such file"},
		{"missing file", func() string { os.Remove(filepath.Join(fx, "expected.json")); return fx }, 1, "missing expected.json"},
		{"invalid json", func() string {
			os.WriteFile(filepath.Join(fx, "expected.json"), []byte("{\n  \"status\": ,\n}"), 0o644)
			return fx
		}, 1, "expected.json: invalid JSON at line 2"},
		{"schema violation", func() string {
			os.WriteFile(filepath.Join(fx, "expected.json"), []byte(`{"requests": {"max_misses": -1}}`), 0o644)
			return fx
		}, 1, "at $.requests.max_misses"},
		{"json_schema outside the fixture", func() string {
			os.WriteFile(filepath.Join(fx, "expected.json"), []byte(`{"artifacts": [{"path": "report.json", "json_schema": "/etc/passwd"}]}`), 0o644)
			return fx
		}, 1, `expected.json: $.artifacts[0].json_schema "/etc/passwd": a schema file must lie inside the fixture folder`},
		{"json_schema above the fixture", func() string {
			os.WriteFile(filepath.Join(fx, "expected.json"), []byte(`{"artifacts": [{"path": "report.json", "json_schema": "../../agent/agent.sh"}]}`), 0o644)
			return fx
		}, 1, `json_schema "../../agent/agent.sh": a schema file must lie inside the fixture folder`},
	}
	for _, tc := range cases {
		_, errs, code := e.cli("replay", tc.prep())
		if code != tc.code || !strings.Contains(errs, tc.want) || strings.Count(strings.TrimSpace(errs), "\n") > 0 {
			t.Errorf("%s: exit %d, stderr %q (want %q)", tc.name, code, errs, tc.want)
		}
	}
	// A command that does not exist: the replay fails with 127, recorded.
	fx2 := filepath.Join(ex, "fixtures", "side_effect_duplicated")
	out, _, code := e.cli("replay", fx2, "--", "no-such-agent-command")
	v := parseVerdict(t, out)
	if code != 3 && code != 127 || v.Status == "passed" || v.RunID == "" {
		t.Fatalf("command not found: %d %s", code, out)
	}
	_ = http.StatusOK
}

// TestMonitorAllowStale: stale fixtures fail the gate unless --allow-stale,
// and --allow-stale relaxes only the gate: monitor.json, metrics.prom and
// junit.xml still report them stale, never passing.
func TestMonitorAllowStale(t *testing.T) {
	e := newEnv(t)
	ex := copyExamples(t)
	root := filepath.Join(ex, "fixtures")
	// Keep three fixtures: one that passes, and two that will be stale.
	keep := map[string]bool{"empty_output": true, "host_not_allowed": true, "schema_mismatch": true}
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range entries {
		if !keep[d.Name()] {
			os.RemoveAll(filepath.Join(root, d.Name()))
		}
	}
	// example-host-not-allowed passes once (its last verdict is "passed"),
	// then is disabled: with --max-age 1ms that verdict is too old, and a
	// passed last verdict must not make it green.
	if out, errs, code := e.cli("replay", filepath.Join(root, "host_not_allowed")); code != 0 || parseVerdict(t, out).Status != "passed" {
		t.Fatalf("first replay: %d %s %s", code, out, errs)
	}
	disable := func(dir string) {
		p := filepath.Join(root, dir, "notes.json")
		b, _ := os.ReadFile(p)
		if !bytes.Contains(b, []byte(`"tier": `)) {
			t.Fatalf("%s lacks a tier", p)
		}
		os.WriteFile(p, bytes.Replace(b, []byte(`"tier": `), []byte(`"disabled": "tool API under maintenance", "tier": `), 1), 0o644)
	}
	disable("host_not_allowed")
	// example-schema-mismatch never reached a verdict at all.
	disable("schema_mismatch")

	type result struct {
		FixtureID string `json:"fixture_id"`
		Status    string `json:"status"`
		Stale     bool   `json:"stale"`
	}
	type report struct {
		Total   int      `json:"fixtures_total"`
		Passing int      `json:"fixtures_passing"`
		Failing int      `json:"fixtures_failing"`
		Stale   int      `json:"fixtures_stale"`
		Gate    string   `json:"gate"`
		Results []result `json:"results"`
	}
	staleIDs := map[string]bool{"example-host-not-allowed": true, "example-schema-mismatch": true}
	check := func(name, out, wantGate string) {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(out, "monitor.json"))
		if err != nil {
			t.Fatal(err)
		}
		var rep report
		if err := json.Unmarshal(data, &rep); err != nil {
			t.Fatal(err)
		}
		if rep.Total != 3 || rep.Passing != 1 || rep.Failing != 0 || rep.Stale != 2 || rep.Gate != wantGate || len(rep.Results) != 3 {
			t.Fatalf("%s: report %+v", name, rep)
		}
		for _, r := range rep.Results {
			if staleIDs[r.FixtureID] && (!r.Stale || r.Status == "passed") {
				t.Fatalf("%s: %s is not reported stale: %+v", name, r.FixtureID, r)
			}
			if !staleIDs[r.FixtureID] && (r.Stale || r.Status != "passed") {
				t.Fatalf("%s: %s: %+v", name, r.FixtureID, r)
			}
		}
		prom, _ := os.ReadFile(filepath.Join(out, "metrics.prom"))
		junit, _ := os.ReadFile(filepath.Join(out, "junit.xml"))
		for id := range staleIDs {
			if !bytes.Contains(prom, []byte(`cassetteproxy_fixture_stale{fixture="`+id+`"`)) ||
				bytes.Contains(prom, []byte(`cassetteproxy_fixture_passing{fixture="`+id+`"`)) {
				t.Fatalf("%s: metrics for %s:\n%s", name, id, prom)
			}
		}
		if n := bytes.Count(junit, []byte(`type="stale"`)); n != 2 {
			t.Fatalf("%s: %d stale errors in junit.xml:\n%s", name, n, junit)
		}
	}

	// Without the flag: the stale fixtures fail the gate.
	out1 := filepath.Join(e.dir, "report1")
	stdout, errs, code := e.cli("monitor", root, "--out", out1, "--max-age", "1ms")
	if code != 1 || !strings.Contains(errs, "2 stale") {
		t.Fatalf("monitor without --allow-stale: exit %d\n%s\n%s", code, stdout, errs)
	}
	check("without --allow-stale", out1, "fail")

	// With it, and everything else passing: exit 0, still two stale.
	out2 := filepath.Join(e.dir, "report2")
	stdout, errs, code = e.cli("monitor", root, "--out", out2, "--max-age", "1ms", "--allow-stale")
	if code != 0 {
		t.Fatalf("monitor --allow-stale: exit %d\n%s\n%s", code, stdout, errs)
	}
	check("with --allow-stale", out2, "pass")
	if !strings.Contains(stdout, "2 stale") {
		t.Fatalf("summary: %s", stdout)
	}
}

// countingHandler answers every request with its method, path and how many
// times that method and path were asked, and counts them.
type countingHandler struct {
	mu sync.Mutex
	n  map[string]int
}

func (h *countingHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	h.n[r.Method+" "+r.URL.Path]++
	n := h.n[r.Method+" "+r.URL.Path]
	h.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"method":%q,"path":%q,"body":%q,"call":%d}`, r.Method, r.URL.Path, body, n)
}

func (h *countingHandler) counts() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.n)
}

// TestReplayFixtureLiveMode: `replay FIXTURE_DIR --mode live` answers
// recorded requests from the fixture, forwards an unrecorded GET upstream,
// blocks an unrecorded POST, and leaves the main store's cassettes alone.
func TestReplayFixtureLiveMode(t *testing.T) {
	e := newEnv(t)
	h := &countingHandler{n: map[string]int{}}
	up := newUpstream(t, false, h)
	p := e.serve("--mode", "record", "--cassette", "lv")
	c := e.client(p)
	recGet := do(t, c, "GET", up.URL+"/items?a=1", "")
	recPost := do(t, c, "POST", up.URL+"/items", `{"n":1}`)
	p.stop()
	fx := filepath.Join(e.dir, "fx")
	if out, errs, code := e.cli("export", "--cassette", "lv", "--out", fx); code != 0 {
		t.Fatalf("export: %d %s %s", code, out, errs)
	}
	lsBefore, _, _ := e.cli("cassettes", "ls", "--json")
	showBefore, _, _ := e.cli("cassettes", "show", "lv", "--json")
	countsBefore := h.counts()
	if countsBefore["GET /items"] != 1 || countsBefore["POST /items"] != 1 || len(countsBefore) != 2 {
		t.Fatalf("recording: upstream counts %v", countsBefore)
	}

	// The agent: two recorded calls, an unrecorded GET, an unrecorded POST.
	// Its answers go to files outside the scratch work folder.
	res := t.TempDir()
	script := `set -u
cd "$R"
curl -sS -o get.body -w '%{http_code}' "$U/items?a=1" > get.code
curl -sS -o post.body -w '%{http_code}' -X POST -H 'Content-Type: application/json' -d '{"n":1}' "$U/items" > post.code
curl -sS -o fresh.body -w '%{http_code}' "$U/fresh?x=2" > fresh.code
curl -sS -o mut.body -D mut.head -w '%{http_code}' -X POST -H 'Content-Type: application/json' -d '{"n":2}' "$U/items" > mut.code
exit 0`
	script = strings.NewReplacer("$R", res, "$U", up.URL).Replace(script)
	out, errs, code := e.cli("replay", fx, "--mode", "live", "--", "sh", "-c", script)
	var v struct {
		verdict
		Mode string `json:"mode"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("replay: exit %d, verdict is not JSON: %v\n%s\n%s", code, err, out, errs)
	}
	if v.Mode != "live" || v.RunID == "" {
		t.Fatalf("replay: exit %d %+v\n%s", code, v, errs)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(res, name))
		if err != nil {
			t.Fatalf("agent output %s: %v (replay exit %d)\n%s\n%s", name, err, code, out, errs)
		}
		return string(b)
	}

	// Recorded requests: served from the fixture, byte for byte.
	if read("get.code") != "200" || read("get.body") != string(recGet.body) {
		t.Fatalf("recorded GET: %s %s, recorded %s", read("get.code"), read("get.body"), recGet.body)
	}
	if read("post.code") != "200" || read("post.body") != string(recPost.body) {
		t.Fatalf("recorded POST: %s %s, recorded %s", read("post.code"), read("post.body"), recPost.body)
	}
	// The unrecorded GET: forwarded, the upstream's own answer.
	if read("fresh.code") != "200" || read("fresh.body") != `{"method":"GET","path":"/fresh","body":"","call":1}` {
		t.Fatalf("unrecorded GET: %s %s", read("fresh.code"), read("fresh.body"))
	}
	// The unrecorded POST: blocked, never forwarded.
	if read("mut.code") != "403" || !strings.Contains(strings.ToLower(read("mut.head")), "x-cassetteproxy-blocked: mutation_blocked") ||
		!strings.Contains(read("mut.body"), `"mutation_blocked"`) {
		t.Fatalf("unrecorded POST: %s\n%s\n%s", read("mut.code"), read("mut.head"), read("mut.body"))
	}
	// Upstream saw exactly one request during the replay: the unrecorded GET.
	want := map[string]int{"GET /items": 1, "POST /items": 1, "GET /fresh": 1}
	if got := h.counts(); !maps.Equal(got, want) {
		t.Fatalf("upstream counts after replay: %v, want %v", got, want)
	}
	// The blocked mutation fails the fixture's contract: the agent exited
	// 0, the verdict is not passed (exit 3).
	if v.Status != "failed" || v.FailureClass != "mutation_blocked" || code != 3 {
		t.Fatalf("a blocked mutation passed the contract: exit %d %+v", code, v)
	}

	// The main store's cassettes: untouched.
	lsAfter, _, _ := e.cli("cassettes", "ls", "--json")
	showAfter, _, _ := e.cli("cassettes", "show", "lv", "--json")
	if lsAfter != lsBefore || showAfter != showBefore {
		t.Fatalf("live replay changed the main store's cassettes:\n%s\n---\n%s", lsBefore, lsAfter)
	}
	if strings.Contains(lsAfter, "fixture:") || strings.Contains(showAfter, "/fresh") {
		t.Fatalf("live replay wrote to the main store: %s", lsAfter)
	}
}

// promtoolCheck lints a metrics file with Prometheus's own promtool, which
// warns about names that break its conventions (a unit other than the base
// unit, a counter without _total): the file must pass with no warning.
func promtoolCheck(t *testing.T, path string) {
	t.Helper()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is not installed (.ci/run installs Debian's prometheus package)")
		}
		t.Log("promtool not installed: metrics.prom not linted")
		return
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = f
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("promtool check metrics %s: %v\n%s", path, err, out)
	}
}
