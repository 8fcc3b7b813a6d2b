package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The example fixtures were recorded on 2025-06-01: with
// --max-recording-age 30d they are expired whenever the tests run.
const oldRecording = "2025-06-01T12:00:00Z"

// ageExamples makes every recording of the copied examples ex as old as
// oldRecording.
func ageExamples(t *testing.T, ex string) {
	t.Helper()
	at := regexp.MustCompile(`"recorded_at": "[^"]*"`)
	cassettes, _ := filepath.Glob(filepath.Join(ex, "fixtures", "*", "tool_cassettes.json"))
	if len(cassettes) == 0 {
		t.Fatal("no example fixtures")
	}
	for _, p := range cassettes {
		b, _ := os.ReadFile(p)
		if err := os.WriteFile(p, at.ReplaceAll(b, []byte(`"recorded_at": "`+oldRecording+`"`)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestExpiryServeRunLs: an imported cassette recorded long ago is served
// with a warning by default and blocked with reason expired under
// --expired block, in serve and in run; a fresh recording beside it is
// served as usual; `cassettes ls` shows each cassette's oldest recording.
func TestExpiryServeRunLs(t *testing.T) {
	e := newEnv(t)
	ex := copyExamples(t)
	ageExamples(t, ex)
	if _, errs, code := e.cli("import", "--in", filepath.Join(ex, "fixtures", "missing_artifact_ref"), "--cassette", "old"); code != 0 {
		t.Fatalf("import: %s", errs)
	}
	up := newUpstream(t, false, itemsHandler())
	rec := e.serve("--mode", "record", "--cassette", "fresh")
	do(t, e.client(rec), "GET", up.URL+"/items", "")
	rec.stop()

	ls, errs, code := e.cli("cassettes", "ls")
	if code != 0 || !strings.Contains(ls, "OLDEST RECORDING") {
		t.Fatalf("cassettes ls: %d %s %s", code, ls, errs)
	}
	for _, line := range strings.Split(ls, "\n") {
		if strings.HasPrefix(line, "old ") && !strings.HasSuffix(strings.TrimSpace(line), oldRecording) {
			t.Fatalf("ls does not show old's oldest recording %s: %q", oldRecording, line)
		}
	}
	lsJSON, _, _ := e.cli("cassettes", "ls", "--json")
	var infos []struct {
		Name   string `json:"name"`
		Oldest string `json:"oldest_recording_at"`
	}
	if err := json.Unmarshal([]byte(lsJSON), &infos); err != nil || len(infos) != 2 || infos[1].Name != "old" || infos[1].Oldest != oldRecording || infos[0].Oldest == "" {
		t.Fatalf("ls --json: %v %s", err, lsJSON)
	}

	issues := readCassettes(t, filepath.Join(ex, "fixtures", "missing_artifact_ref")).Interactions[0].Request.URL
	// warn (the default): served, marked, and a WARN line in the log.
	p := e.serve("--mode", "replay", "--cassette", "old", "--max-recording-age", "30d")
	a := do(t, e.client(p), "GET", issues, "")
	if a.status != 200 || !strings.Contains(string(a.body), "Login page times out") || a.header.Get("X-Cassetteproxy-Expired") != oldRecording {
		t.Fatalf("warn: %d %v %s", a.status, a.header, a.body)
	}
	p.stop()
	if !strings.Contains(p.stderr.String(), "level=WARN") || !strings.Contains(p.stderr.String(), "reason=expired") {
		t.Fatalf("warn: no warning logged:\n%s", p.stderr.String())
	}
	// block: 403 expired.
	p = e.serve("--mode", "replay", "--cassette", "old", "--max-recording-age", "30d", "--expired", "block")
	a = do(t, e.client(p), "GET", issues, "")
	if a.status != 403 || a.header.Get("X-Cassetteproxy-Blocked") != "expired" || !strings.Contains(string(a.body), "--max-recording-age 720h0m0s") {
		t.Fatalf("block: %d %v %s", a.status, a.header, a.body)
	}
	p.stop()
	// A recording younger than the limit is served as recorded.
	p = e.serve("--mode", "replay", "--cassette", "fresh", "--max-recording-age", "30d", "--expired", "block")
	if a := do(t, e.client(p), "GET", up.URL+"/items", ""); a.status != 200 || a.header.Get("X-Cassetteproxy-Expired") != "" {
		t.Fatalf("fresh: %d %v", a.status, a.header)
	}
	p.stop()

	// run: the verdict is failed / expired, exit 3, though curl exited 0.
	out, errs, code := e.cli("run", "--mode", "replay", "--cassette", "old", "--max-recording-age", "30d", "--expired", "block",
		"--", "curl", "-sS", "-o", "/dev/null", issues)
	if code != 3 || !strings.Contains(out+errs, "expired") {
		t.Fatalf("run --expired block: exit %d\n%s\n%s", code, out, errs)
	}
	runs, _, _ := e.cli("runs", "ls", "--json")
	if !strings.Contains(runs, `"failure_class": "expired"`) {
		t.Fatalf("run record: %s", runs)
	}
	// Bad values: one line naming the flag and the fix.
	for _, args := range [][]string{{"--max-recording-age", "soon"}, {"--max-recording-age", "30d", "--expired", "maybe"}} {
		_, errs, code := e.cli(append([]string{"serve", "--mode", "replay", "--cassette", "old", "--listen", "127.0.0.1:0"}, args...)...)
		if code != 1 || strings.Count(strings.TrimSpace(errs), "\n") != 0 || !strings.Contains(errs, args[len(args)-2]) {
			t.Fatalf("serve %v: exit %d %q", args, code, errs)
		}
	}
}

// TestExpiryReplayMonitor: replay warns by default and fails with class
// expired under --expired block; monitor counts fixtures_expired in
// monitor.json and metrics.prom, and --expired block fails the gate.
func TestExpiryReplayMonitor(t *testing.T) {
	e := newEnv(t)
	ex := copyExamples(t)
	ageExamples(t, ex)
	fx := filepath.Join(ex, "fixtures", "missing_artifact_ref")
	out, errs, code := e.cli("replay", fx, "--max-recording-age", "30d")
	if v := parseVerdict(t, out); code != 0 || v.Status != "passed" || !strings.Contains(out, `"expired": true`) || !strings.Contains(errs, "reason=expired") {
		t.Fatalf("replay warn: exit %d\n%s\n%s", code, out, errs)
	}
	// The agent's curl gets the 403 and the agent exits 2: replay exits
	// with the child's code, the verdict names the cause.
	out, errs, code = e.cli("replay", fx, "--max-recording-age", "30d", "--expired", "block")
	if v := parseVerdict(t, out); code != 2 || v.Status != "failed" || v.FailureClass != "expired" {
		t.Fatalf("replay block: exit %d\n%s\n%s", code, out, errs)
	}
	out, errs, code = e.cli("replay", fx)
	if code != 0 || strings.Contains(out, `"expired": true`) || strings.Contains(errs, "reason=expired") {
		t.Fatalf("replay without a limit: exit %d\n%s\n%s", code, out, errs)
	}

	root := filepath.Join(ex, "fixtures")
	type report struct {
		Expired int    `json:"fixtures_expired"`
		Gate    string `json:"gate"`
	}
	monitor := func(args ...string) (report, string) {
		t.Helper()
		dir := filepath.Join(t.TempDir(), "m")
		e.cli(append([]string{"monitor", root, "--out", dir}, args...)...)
		var rep report
		data, err := os.ReadFile(filepath.Join(dir, "monitor.json"))
		if err != nil || json.Unmarshal(data, &rep) != nil {
			t.Fatalf("monitor %v: %v %s", args, err, data)
		}
		prom, _ := os.ReadFile(filepath.Join(dir, "metrics.prom"))
		promtoolCheck(t, filepath.Join(dir, "metrics.prom"))
		return rep, string(prom)
	}
	if rep, prom := monitor(); rep.Expired != 0 || rep.Gate != "pass" || !strings.Contains(prom, `cassetteproxy_monitor_fixtures{state="expired"} 0`) {
		t.Fatalf("no limit: %+v\n%s", rep, prom)
	}
	if rep, prom := monitor("--max-recording-age", "30d"); rep.Expired != 5 || rep.Gate != "pass" || !strings.Contains(prom, `cassetteproxy_monitor_fixtures{state="expired"} 5`) {
		t.Fatalf("warn: %+v\n%s", rep, prom)
	}
	if rep, _ := monitor("--max-recording-age", "30d", "--expired", "block"); rep.Expired != 5 || rep.Gate != "fail" {
		t.Fatalf("block: %+v", rep)
	}
}
