package e2e

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The test binary doubles as a child that reports its environment: with
// CASSETTEPROXY_E2E_PRINTENV=FILE it writes os.Environ() to FILE as a JSON
// array and exits.
func init() {
	out := os.Getenv("CASSETTEPROXY_E2E_PRINTENV")
	if out == "" {
		return
	}
	data, _ := json.Marshal(os.Environ())
	if err := os.WriteFile(out, data, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	os.Exit(0)
}

// writeFile writes a file, creating its folder.
func writeFile(t *testing.T, path, body string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
}

// snapshotDir reads every file under dir, by relative path.
func snapshotDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type proofRun struct {
	RunID        string `json:"run_id"`
	At           string `json:"at"`
	CodeVersion  string `json:"code_version"`
	Status       string `json:"status"`
	FailureClass string `json:"failure_class"`
}

type fixtureNotes struct {
	FailureClass string `json:"failure_class"`
	Proof        *struct {
		Failing proofRun `json:"failing"`
		Passing proofRun `json:"passing"`
	} `json:"proof"`
}

func readNotes(t *testing.T, fx string) fixtureNotes {
	t.Helper()
	var n fixtureNotes
	data, err := os.ReadFile(filepath.Join(fx, "notes.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &n); err != nil {
		t.Fatalf("notes.json: %v\n%s", err, data)
	}
	return n
}

// TestExportedFixtureCatchesBugThenProves is the loop from a project
// folder, with no file edited by hand: a run of the agent with its bug is
// recorded and exported; from another folder the fixture replays as
// exported and fails with the class it protects; the agent is fixed in the
// project; the replay passes and writes the proof into notes.json; a
// monitor with a fresh, empty store reports the fixture proven and
// rewrites nothing.
func TestExportedFixtureCatchesBugThenProves(t *testing.T) {
	e := newEnv(t)
	up := newUpstream(t, true, itemsHandler())
	root := t.TempDir()
	proj, other := filepath.Join(root, "proj"), filepath.Join(root, "other")
	os.MkdirAll(other, 0o755)
	const key = "sk-proj-Q7wXf3kLmN9pR2sT5vY8zA1bC4dE6gH0jK"
	writeFile(t, filepath.Join(proj, "task.json"), `{"project": "demo", "api_key": "`+key+`"}`+"\n", 0o644)
	writeFile(t, filepath.Join(proj, "state", "cursor.txt"), "cursor=41\n", 0o644)
	agent := func(bug bool) string {
		report := `printf '{"task": %s, "cursor": "%s", "items": %s}\n' "$task" "$cursor" "$items" > report.json`
		if bug {
			report = `: > report.json   # the bug: an empty report`
		}
		return "#!/bin/sh\nset -eu\n" +
			`task=$(cat "$1")` + "\n" +
			`cursor=$(cat state/cursor.txt)` + "\n" +
			`items=$(curl -sS --fail "` + up.URL + `/items?a=1")` + "\n" +
			report + "\n"
	}
	writeFile(t, filepath.Join(proj, "agent.sh"), agent(true), 0o755)

	// 1. The production run, recorded: the bug shows as empty_output.
	_, errs, code := e.runIn(proj, nil, "--mode", "record", "--cassette", "x", "--upstream-ca", up.caFile,
		"--artifact", "report.json", "--input", "task.json", "--state", "state/cursor.txt", "--", "./agent.sh", "task.json")
	if code != 3 {
		t.Fatalf("recorded run: exit %d, want 3\n%s", code, errs)
	}
	wantRun(t, e.lastRun(), "failed", "empty_output")

	// 2. Export from the project folder.
	if out, errs, code := e.cliIn(proj, nil, "export", "--cassette", "x", "--out", "fixtures/x", "--failure-class", "empty_output"); code != 0 {
		t.Fatalf("export: %d %s %s", code, out, errs)
	}
	fx := filepath.Join(proj, "fixtures", "x")
	var in struct {
		Command []string `json:"command"`
		Workdir string   `json:"workdir"`
	}
	data, _ := os.ReadFile(filepath.Join(fx, "input.json"))
	if err := json.Unmarshal(data, &in); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(in.Command, []string{"${FIXTURE_DIR}/../../agent.sh", "task.json"}) || in.Workdir != "workdir" {
		t.Fatalf("input.json: %s", data)
	}
	task, _ := os.ReadFile(filepath.Join(fx, "workdir", "task.json"))
	cursor, _ := os.ReadFile(filepath.Join(fx, "workdir", "state", "cursor.txt"))
	if !strings.Contains(string(task), `"project": "demo"`) || strings.Contains(string(task), key) || string(cursor) != "cursor=41\n" {
		t.Fatalf("workdir: task.json %q, state/cursor.txt %q", task, cursor)
	}
	up.Close() // replay never needs the tool again

	// 3. From another folder, the fixture as exported: it catches the bug.
	rel := filepath.Join("..", "proj", "fixtures", "x")
	out, errs, code := e.cliIn(other, nil, "replay", rel, "--code-version", "buggy")
	v := parseVerdict(t, out)
	if code != 3 || v.Status != "failed" || v.FailureClass != "empty_output" || v.Proven {
		t.Fatalf("replay of the buggy agent: exit %d %+v\n%s", code, v, errs)
	}
	failing := v.RunID
	if n := readNotes(t, fx); n.Proof != nil {
		t.Fatalf("proof written after a failure only: %+v", n.Proof)
	}

	// 4. Fix the agent in the project; the same fixture now passes and is proven.
	writeFile(t, filepath.Join(proj, "agent.sh"), agent(false), 0o755)
	out, errs, code = e.cliIn(other, nil, "replay", rel, "--code-version", "fixed")
	v = parseVerdict(t, out)
	if code != 0 || v.Status != "passed" || !v.Proven {
		t.Fatalf("replay of the fixed agent: exit %d %s\n%s", code, out, errs)
	}
	if !strings.Contains(errs, "fixture x is proven") {
		t.Errorf("replay did not say the proof was written: %s", errs)
	}
	n := readNotes(t, fx)
	if n.Proof == nil || n.Proof.Failing.RunID != failing || n.Proof.Failing.FailureClass != "empty_output" || n.Proof.Failing.CodeVersion != "buggy" ||
		n.Proof.Failing.Status != "failed" || n.Proof.Passing.RunID != v.RunID || n.Proof.Passing.Status != "passed" || n.Proof.Passing.CodeVersion != "fixed" {
		t.Fatalf("notes.json proof: %+v", n.Proof)
	}

	// 5. A fresh machine: an empty store; the proof travels with the fixture.
	before := snapshotDir(t, filepath.Join(proj, "fixtures"))
	report := filepath.Join(other, "report")
	stdout, errs, code := e.cliIn(other, nil, "--db", "fresh.db", "monitor", filepath.Join("..", "proj", "fixtures"), "--out", "report")
	if code != 0 {
		t.Fatalf("monitor: %d %s %s", code, stdout, errs)
	}
	var rep struct {
		Passing  int `json:"fixtures_passing"`
		Unproven int `json:"fixtures_unproven"`
		Results  []struct {
			Proven bool `json:"proven"`
		} `json:"results"`
	}
	data, _ = os.ReadFile(filepath.Join(report, "monitor.json"))
	if err := json.Unmarshal(data, &rep); err != nil || rep.Passing != 1 || rep.Unproven != 0 || len(rep.Results) != 1 || !rep.Results[0].Proven {
		t.Fatalf("monitor.json: %v %s", err, data)
	}
	if _, err := os.Stat(filepath.Join(other, "fresh.db")); err != nil {
		t.Fatalf("monitor did not use the fresh store: %v", err)
	}
	if after := snapshotDir(t, filepath.Join(proj, "fixtures")); !maps.Equal(before, after) {
		t.Fatal("monitor rewrote fixture files")
	}
}

// TestReplayEnvironmentIsClean: a replayed command sees none of the
// caller's variables beyond the documented list and those it names.
func TestReplayEnvironmentIsClean(t *testing.T) {
	e := newEnv(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	fx := filepath.Join(e.dir, "fx")
	envOut := filepath.Join(e.dir, "env.json")
	in, _ := json.Marshal(map[string]any{"fixture_id": "env", "command": []string{self},
		"env": map[string]string{"CASSETTEPROXY_E2E_PRINTENV": envOut}, "pass_env": []string{"NAMED_IN_FIXTURE"}})
	writeFile(t, filepath.Join(fx, "input.json"), string(in), 0o644)
	writeFile(t, filepath.Join(fx, "expected.json"), `{"status": "passed"}`, 0o644)
	writeFile(t, filepath.Join(fx, "tool_cassettes.json"), `{"format": "cassetteproxy/tool_cassettes/1", "interactions": []}`, 0o644)
	caller := []string{"OPENAI_API_KEY=sk-caller-secret", "AWS_SECRET_ACCESS_KEY=caller", "CALLER_ONLY=1",
		"NAMED_BY_FLAG=flag", "NAMED_IN_FIXTURE=file", "LANG=C.UTF-8", "HOME=" + e.dir, "TMPDIR=" + e.dir}
	out, errs, code := e.cliIn("", caller, "replay", fx, "--pass-env", "NAMED_BY_FLAG")
	if code != 0 {
		t.Fatalf("replay: %d %s %s", code, out, errs)
	}
	var environ []string
	data, _ := os.ReadFile(envOut)
	if err := json.Unmarshal(data, &environ); err != nil {
		t.Fatalf("env.json: %v %s", err, data)
	}
	documented := map[string]bool{"PATH": true, "HOME": true, "TMPDIR": true, "LANG": true,
		"HTTP_PROXY": true, "HTTPS_PROXY": true, "http_proxy": true, "https_proxy": true, "NO_PROXY": true, "no_proxy": true,
		"SSL_CERT_FILE": true, "REQUESTS_CA_BUNDLE": true, "CURL_CA_BUNDLE": true, "GIT_SSL_CAINFO": true, "NODE_EXTRA_CA_CERTS": true,
		"NODE_USE_ENV_PROXY": true, "CASSETTEPROXY_RUN_ID": true, "CASSETTEPROXY_URL": true, "CASSETTEPROXY_FIXTURE_DIR": true,
		"CASSETTEPROXY_E2E_PRINTENV": true, "NAMED_BY_FLAG": true, "NAMED_IN_FIXTURE": true} // input.json env, --pass-env, pass_env
	got := map[string]string{}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		got[k] = v
		if !documented[k] && !strings.HasPrefix(k, "LC_") {
			t.Errorf("the replayed command got the caller's %s", k)
		}
	}
	for _, k := range []string{"NAMED_BY_FLAG", "NAMED_IN_FIXTURE", "CASSETTEPROXY_URL", "CASSETTEPROXY_RUN_ID", "CASSETTEPROXY_FIXTURE_DIR", "HOME", "TMPDIR", "PATH"} {
		if got[k] == "" {
			t.Errorf("the replayed command lacks %s", k)
		}
	}
	if got["HOME"] == e.dir || got["TMPDIR"] == e.dir || got["CASSETTEPROXY_URL"] != got["HTTPS_PROXY"] || got["LANG"] != "C.UTF-8" {
		t.Errorf("HOME %q TMPDIR %q (the caller's is %s), CASSETTEPROXY_URL %q, LANG %q", got["HOME"], got["TMPDIR"], e.dir, got["CASSETTEPROXY_URL"], got["LANG"])
	}
	// The CA key's folder and the store are never handed over, even when named.
	_, errs, code = e.cliIn("", caller, "replay", fx, "--pass-env", "CASSETTEPROXY_HOME")
	if code != 1 || !strings.Contains(errs, "--pass-env: CASSETTEPROXY_HOME is never handed to a replayed command") {
		t.Errorf("--pass-env CASSETTEPROXY_HOME: exit %d %s", code, errs)
	}
}

// TestMonitorExamplesRelativeHomeAndDB: relative --home and --db are
// resolved against the caller's folder before a child sees them (the CA
// bundle in SSL_CERT_FILE): every example fixture passes.
func TestMonitorExamplesRelativeHomeAndDB(t *testing.T) {
	e := newEnv(t)
	ex := copyExamples(t)
	dir := filepath.Dir(ex)
	stdout, errs, code := e.cliIn(dir, nil, "--home", "h", "--db", "c.db", "monitor", "examples/fixtures", "--out", "report")
	if code != 0 || !strings.Contains(stdout, "5 fixtures: 5 passing, 0 failing") {
		t.Fatalf("monitor: %d %s %s", code, stdout, errs)
	}
	for _, f := range []string{"h/ca.pem", "c.db"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s not where the relative flag said: %v", f, err)
		}
	}
}
