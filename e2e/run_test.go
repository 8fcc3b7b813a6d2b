package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as a Go client child: with
// CASSETTEPROXY_E2E_GET=URL it GETs URL through $HTTPS_PROXY (Go skips the
// proxy variables for loopback targets, so the proxy is set explicitly from
// them), trusting $SSL_CERT_FILE through the system pool as any Go program
// does, writes the body to $CASSETTEPROXY_E2E_OUT and exits.
func init() {
	target := os.Getenv("CASSETTEPROXY_E2E_GET")
	if target == "" {
		return
	}
	proxyURL, err := url.Parse(os.Getenv("HTTPS_PROXY"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}}
	resp, err := c.Get(target)
	if err != nil {
		fmt.Fprintln(os.Stderr, "go client:", err)
		os.Exit(2)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err := os.WriteFile(os.Getenv("CASSETTEPROXY_E2E_OUT"), body, 0o644); err != nil {
		os.Exit(2)
	}
	if resp.StatusCode != 200 {
		os.Exit(1)
	}
	os.Exit(0)
}

// runRecord is the subset of a run record the tests read.
type runRecord struct {
	RunID          string   `json:"run_id"`
	RunType        string   `json:"run_type"`
	TaskID         string   `json:"task_id"`
	AgentName      string   `json:"agent_name"`
	Model          string   `json:"model"`
	InputSHA256    string   `json:"input_sha256"`
	TimeoutSeconds float64  `json:"timeout_seconds"`
	ArtifactRefs   []string `json:"artifact_refs"`
	Status         string   `json:"status"`
	FailureClass   string   `json:"failure_class"`
	FailureReason  string   `json:"failure_reason"`
	ClosedAt       *string  `json:"closed_at"`
	Mode           string   `json:"mode"`
	Cassette       string   `json:"cassette"`
	Command        []string `json:"command"`
	ExitCode       *int     `json:"exit_code"`
	Interactions   int      `json:"interactions"`
	// ReplayedIncomplete: answers replayed from recordings cut short.
	ReplayedIncomplete int `json:"replayed_incomplete"`
	Misses             []struct {
		Method, URL, Reason string
	} `json:"misses"`
	Hosts   []string `json:"hosts"`
	Models  []string `json:"models_seen"`
	Reasons []struct {
		Class string `json:"failure_class"`
	} `json:"reasons"`
	Isolated bool `json:"isolated"`
}

// runs lists every run record.
func (e *env) runs() []runRecord {
	e.t.Helper()
	out, errOut, code := e.cli("runs", "ls", "--json")
	if code != 0 {
		e.t.Fatalf("runs ls: %d %s", code, errOut)
	}
	var rs []runRecord
	if err := json.Unmarshal([]byte(out), &rs); err != nil {
		e.t.Fatalf("runs ls --json: %v\n%s", err, out)
	}
	return rs
}

// lastRun is the newest run record, read with `runs show --json`.
func (e *env) lastRun() runRecord {
	e.t.Helper()
	rs := e.runs()
	if len(rs) == 0 {
		e.t.Fatal("no run recorded")
	}
	out, errOut, code := e.cli("runs", "show", rs[len(rs)-1].RunID, "--json")
	if code != 0 {
		e.t.Fatalf("runs show: %d %s", code, errOut)
	}
	var r runRecord
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		e.t.Fatal(err)
	}
	return r
}

// runIn runs `cassetteproxy run ARGS` in dir with extra environment.
func (e *env) runIn(dir string, extraEnv []string, args ...string) (string, string, int) {
	e.t.Helper()
	cmd := exec.Command(binary, append([]string{"run"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "CASSETTEPROXY_DB="+e.db, "CASSETTEPROXY_HOME="+e.home), extraEnv...)
	var out, errb syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("run %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

func wantRun(t *testing.T, r runRecord, status, class string) {
	t.Helper()
	if r.Status != status || r.FailureClass != class || r.ClosedAt == nil {
		t.Fatalf("run %s: status %q class %q closed %v, want %q %q closed; reason: %s", r.RunID, r.Status, r.FailureClass, r.ClosedAt != nil, status, class, r.FailureReason)
	}
}

func TestRunEnvReachesChild(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "task.json"), []byte(`{"task":1}`), 0o644)
	_, errOut, code := e.runIn(dir, []string{"CASSETTEPROXY_TASK_ID=task-7", "NO_PROXY=example.com", "HTTPS_PROXY=http://stale:1"},
		"--mode", "record", "--cassette", "envtest", "--agent-name", "agent-x", "--model", "gpt-test", "--input", "task.json", "--timeout", "30",
		"--", "sh", "-c", "env > env.txt")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "env.txt"))
	got := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			got[k] = v
		}
	}
	r := e.lastRun()
	proxyURL := got["HTTPS_PROXY"]
	if !strings.HasPrefix(proxyURL, "http://127.0.0.1:") || proxyURL == "http://stale:1" {
		t.Fatalf("HTTPS_PROXY=%q", proxyURL)
	}
	bundle := filepath.Join(e.home, "ca-bundle.pem")
	want := map[string]string{
		"HTTP_PROXY": proxyURL, "http_proxy": proxyURL, "https_proxy": proxyURL,
		"NO_PROXY": "", "no_proxy": "",
		"SSL_CERT_FILE": bundle, "REQUESTS_CA_BUNDLE": bundle, "CURL_CA_BUNDLE": bundle, "GIT_SSL_CAINFO": bundle,
		"NODE_EXTRA_CA_CERTS": filepath.Join(e.home, "ca.pem"), "NODE_USE_ENV_PROXY": "1",
		"CASSETTEPROXY_RUN_ID": r.RunID,
	}
	for k, v := range want {
		if gv, ok := got[k]; !ok || gv != v {
			t.Errorf("%s=%q in the child, want %q", k, gv, v)
		}
	}
	if pem, err := os.ReadFile(bundle); err != nil || strings.Count(string(pem), "BEGIN CERTIFICATE") < 2 {
		t.Errorf("the bundle must hold the system roots and the CA")
	}
	sum := sha256.Sum256([]byte(`{"task":1}`))
	wantRun(t, r, "passed", "")
	if r.TaskID != "task-7" || r.AgentName != "agent-x" || r.Model != "gpt-test" || r.RunType != "production" ||
		r.InputSHA256 != hex.EncodeToString(sum[:]) || r.TimeoutSeconds != 30 || r.Cassette != "envtest" || r.Mode != "record" {
		t.Fatalf("record fields: %+v", r)
	}
}

// TestRunRecordThenStrictReplay records a child's HTTPS requests and
// replays them in strict mode with the upstream untouched, with curl and
// with a Go client as the child.
func TestRunRecordThenStrictReplay(t *testing.T) {
	up := newUpstream(t, true, itemsHandler())
	target := up.URL + "/items/1"
	children := []struct {
		name string
		argv []string
		env  []string
	}{
		{"go", []string{os.Args[0]}, []string{"CASSETTEPROXY_E2E_GET=" + target, "CASSETTEPROXY_E2E_OUT=out.json"}},
		{"curl", []string{"curl", "-sS", "-f", "-o", "out.json", "-H", "Content-Type: application/json",
			"--data", `{"model":"claude-test","messages":[]}`, target}, nil},
	}
	for _, ch := range children {
		t.Run(ch.name, func(t *testing.T) {
			if ch.name == "curl" {
				if _, err := exec.LookPath("curl"); err != nil {
					t.Skip("curl is not installed")
				}
			}
			e := newEnv(t)
			before := up.conns.Load()
			for _, mode := range []string{"record", "strict"} {
				dir := t.TempDir()
				args := append([]string{"--mode", mode, "--cassette", "c", "--upstream-ca", up.caFile, "--artifact", "out.json", "--"}, ch.argv...)
				_, errOut, code := e.runIn(dir, ch.env, args...)
				if code != 0 {
					t.Fatalf("%s: exit %d\n%s", mode, code, errOut)
				}
				r := e.lastRun()
				wantRun(t, r, "passed", "")
				if r.Interactions != 1 || len(r.Hosts) != 1 || !strings.HasPrefix(r.Hosts[0], "127.0.0.1:") {
					t.Fatalf("%s: interactions %d hosts %v", mode, r.Interactions, r.Hosts)
				}
				if ch.name == "curl" && (len(r.Models) != 1 || r.Models[0] != "claude-test") {
					t.Fatalf("%s: models %v", mode, r.Models)
				}
				if len(r.ArtifactRefs) != 1 || r.ArtifactRefs[0] != filepath.Join(dir, "out.json") {
					t.Fatalf("artifact refs %v", r.ArtifactRefs)
				}
				if b, _ := os.ReadFile(filepath.Join(dir, "out.json")); !strings.Contains(string(b), `"path":"/items/1"`) {
					t.Fatalf("%s: child got %q", mode, b)
				}
				if mode == "record" {
					before = up.conns.Load()
				}
			}
			if up.conns.Load() != before {
				t.Fatal("strict replay contacted the upstream")
			}
		})
	}
}

func TestRunStrictUnrecordedExits3(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed")
	}
	up := newUpstream(t, true, itemsHandler())
	e := newEnv(t)
	dir := t.TempDir()
	if _, errOut, code := e.runIn(dir, nil, "--mode", "record", "--cassette", "c", "--upstream-ca", up.caFile, "--", "curl", "-sS", "-f", "-o", "/dev/null", up.URL+"/items/1"); code != 0 {
		t.Fatalf("record: %d %s", code, errOut)
	}
	// curl without -f exits 0 on the blocked answer: the verdict, not the exit code, fails the run.
	_, errOut, code := e.runIn(dir, nil, "--mode", "strict", "--cassette", "c", "--", "sh", "-c",
		fmt.Sprintf("curl -sS -o /dev/null %s/items/1 && curl -sS -o /dev/null %s/items/2", up.URL, up.URL))
	if code != 3 {
		t.Fatalf("exit %d, want 3\n%s", code, errOut)
	}
	if !strings.Contains(errOut, "unrecorded_request") {
		t.Fatalf("stderr does not name the class:\n%s", errOut)
	}
	r := e.lastRun()
	wantRun(t, r, "failed", "unrecorded_request")
	if len(r.Misses) != 1 || !strings.HasSuffix(r.Misses[0].URL, "/items/2") || r.Interactions != 2 || *r.ExitCode != 0 {
		t.Fatalf("misses %+v interactions %d", r.Misses, r.Interactions)
	}
}

func TestRunVerdictsFromChildren(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "outside.txt")
	tests := []struct {
		name   string
		args   []string
		code   int
		status string
		class  string
	}{
		{"exit code passes through", []string{"--", "sh", "-c", "exit 5"}, 5, "failed", "nonzero_exit"},
		{"missing artifact", []string{"--artifact", "report.json", "--", "sh", "-c", "exit 0"}, 3, "failed", "missing_artifact_ref"},
		{"empty artifact", []string{"--artifact", "report.json", "--", "sh", "-c", ": > report.json"}, 3, "failed", "empty_output"},
		{"artifact glob", []string{"--artifact", "out/*.md", "--", "sh", "-c", "mkdir out && echo x > out/a.md"}, 0, "passed", ""},
		{"artifact outside the folder", []string{"--artifact", outside, "--", "sh", "-c", "echo x > " + outside}, 0, "passed", ""},
		{"timeout", []string{"--timeout", "300ms", "--", "sh", "-c", "exec sleep 30"}, 128 + 15, "failed", "timeout"},
		// a SIGTERM before sh has set its trap ends it (143): the timeout
		// leaves a loaded machine time to start sh
		{"timeout, SIGTERM ignored", []string{"--timeout", "2s", "--kill-grace", "200ms", "--", "sh", "-c", "trap '' TERM; while :; do sleep 0.05; done"}, 128 + 9, "failed", "timeout"},
		{"command not found", []string{"--", "no-such-command-xyz", "arg"}, 127, "failed", "nonzero_exit"},
		{"not executable", []string{"--", "./plain.txt"}, 126, "failed", "nonzero_exit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "plain.txt"), []byte("x"), 0o644)
			_, errOut, code := e.runIn(dir, nil, append([]string{"--mode", "record", "--cassette", "v"}, tc.args...)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s", code, tc.code, errOut)
			}
			r := e.lastRun()
			wantRun(t, r, tc.status, tc.class)
			for _, a := range r.ArtifactRefs {
				if !filepath.IsAbs(a) {
					t.Fatalf("artifact ref %q is not absolute", a)
				}
			}
			if tc.status != "passed" {
				last := strings.TrimSpace(errOut[strings.LastIndex(strings.TrimRight(errOut, "\n"), "\n")+1:])
				if !strings.HasPrefix(last, "cassetteproxy: run "+r.RunID+" failed ("+tc.class+")") {
					t.Fatalf("last stderr line %q", last)
				}
			}
		})
	}
}

// startRun starts `cassetteproxy run` in the background and waits for the
// child to write ready (its pid, as the host sees it: see hostPID).
func (e *env) startRun(dir string, args ...string) (*exec.Cmd, chan error, int) {
	e.t.Helper()
	cmd := exec.Command(binary, append([]string{"run"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CASSETTEPROXY_DB="+e.db, "CASSETTEPROXY_HOME="+e.home)
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	e.t.Cleanup(func() { cmd.Process.Kill() })
	ready := filepath.Join(dir, "ready")
	deadline := time.After(20 * time.Second)
	for {
		if b, err := os.ReadFile(ready); err == nil && strings.HasSuffix(string(b), "\n") {
			var pid int
			fmt.Sscan(string(b), &pid)
			return cmd, exited, pid
		}
		select {
		case err := <-exited:
			e.t.Fatalf("run exited before the child was ready: %v\n%s", err, stderr.String())
		case <-deadline:
			e.t.Fatalf("child not ready\n%s", stderr.String())
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// hostPID prints the shell's pid as the host sees it. In a network
// namespace of its own (--isolate) the command has a PID namespace too, and
// $$ counts from 1 there; /proc is the host's.
const hostPID = "read pid rest < /proc/self/stat; echo $pid"

func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("child %d still running", pid)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRunSIGTERMClosesRecord(t *testing.T) {
	tests := []struct {
		name   string
		script string
		class  string
		code   int
	}{
		{"child killed", hostPID + " > ready; exec sleep 30", "nonzero_exit", 128 + 15},
		{"child exits 0 on TERM", "trap 'echo term > got; exit 0' TERM; " + hostPID + " > ready; while :; do sleep 0.05; done", "interrupted", 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			dir := t.TempDir()
			cmd, exited, pid := e.startRun(dir, "--mode", "record", "--cassette", "sig", "--", "sh", "-c", tc.script)
			cmd.Process.Signal(syscall.SIGTERM)
			err := <-exited
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != tc.code {
				t.Fatalf("cassetteproxy exit %v, want %d", err, tc.code)
			}
			waitGone(t, pid)
			r := e.lastRun()
			wantRun(t, r, "failed", tc.class)
			if tc.class == "interrupted" {
				if b, _ := os.ReadFile(filepath.Join(dir, "got")); string(b) != "term\n" {
					t.Fatal("the child did not get SIGTERM")
				}
			}
		})
	}
}

func TestRunKill9ThenSweepAbandoned(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	cmd, exited, pid := e.startRun(dir, "--mode", "record", "--cassette", "k", "--timeout", "1s", "--", "sh", "-c", hostPID+" > ready; exec sleep 30")
	cmd.Process.Kill()
	<-exited
	waitGone(t, pid) // the child dies with cassetteproxy (Pdeathsig)

	rs := e.runs()
	if len(rs) != 1 || rs[0].Status != "running" || rs[0].ClosedAt != nil {
		t.Fatalf("after kill -9: %+v", rs)
	}
	out, _, _ := e.cli("runs", "ls", "--status", "running")
	if !strings.Contains(out, rs[0].RunID) || !strings.Contains(out, "(open)") {
		t.Fatalf("runs ls --status running:\n%s", out)
	}
	// Not yet past timeout + grace: a long grace keeps it open.
	if out, errOut, code := e.cli("runs", "sweep", "--grace", "1h"); code != 0 || !strings.Contains(out, "swept 0") {
		t.Fatalf("sweep with grace: %d %s %s", code, out, errOut)
	}
	// Past its 1s timeout (plus no grace) it is closed.
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, errOut, code := e.cli("runs", "sweep", "--grace", "0s")
		if code != 0 {
			t.Fatalf("sweep: %d %s", code, errOut)
		}
		if strings.Contains(out, "swept 1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never swept: %s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	wantRun(t, e.lastRun(), "failed", "run_abandoned")
	if out, _, _ := e.cli("runs", "sweep", "--grace", "0s"); !strings.Contains(out, "swept 0") {
		t.Fatalf("second sweep closed again: %s", out)
	}
}

func TestRunsCommandsBadInput(t *testing.T) {
	e := newEnv(t)
	// no store yet
	_, errOut, code := e.cli("runs", "ls")
	oneLineError(t, errOut, code, e.db)
	if _, errOut, code = e.runIn(t.TempDir(), nil, "--mode", "record", "--"); code != 1 || !strings.Contains(errOut, "no command after --") {
		t.Fatalf("no command: %d %s", code, errOut)
	}
	oneLineError(t, errOut, code, "no command")
	dir := t.TempDir()
	if _, errOut, code = e.runIn(dir, nil, "--mode", "record", "--cassette", "b", "--", "true"); code != 0 {
		t.Fatalf("%d %s", code, errOut)
	}
	if _, errOut, code = e.runIn(dir, nil, "--mode", "record", "--cassette", "b", "--", "false"); code != 1 {
		t.Fatalf("%d %s", code, errOut)
	}
	tests := []struct {
		args  []string
		wants []string
	}{
		{[]string{"runs", "show", "nope"}, []string{`run "nope" not found`, "runs ls"}},
		{[]string{"runs", "show"}, []string{"ID"}},
		{[]string{"runs", "ls", "--since", "yesterday-ish"}, []string{"--since"}},
		{[]string{"runs", "sweep", "--grace", "soon"}, []string{"--grace"}},
		{[]string{"run", "--timeout", "-5s", "--", "true"}, []string{"--timeout", "negative"}},
		{[]string{"run", "--timeout", "abc", "--", "true"}, []string{"--timeout"}},
		{[]string{"run", "--input", "/no/such/input.json", "--", "true"}, []string{"/no/such/input.json"}},
		{[]string{"run", "--mode", "bogus", "--", "true"}, []string{"bogus"}},
	}
	for _, tc := range tests {
		_, errOut, code := e.cli(tc.args...)
		oneLineError(t, errOut, code, tc.wants...)
	}
	// filters
	out, _, _ := e.cli("runs", "ls", "--status", "failed", "--json")
	var rs []runRecord
	json.Unmarshal([]byte(out), &rs)
	if len(rs) != 1 || rs[0].Command[0] != "false" {
		t.Fatalf("--status failed: %s", out)
	}
	out, _, _ = e.cli("runs", "ls", "--since", "1h")
	if strings.Count(out, "\n") != 3 {
		t.Fatalf("--since 1h:\n%s", out)
	}
	out, _, _ = e.cli("runs", "ls", "--since", "2999-01-01", "--json")
	if strings.TrimSpace(out) != "[]" {
		t.Fatalf("--since future: %s", out)
	}
	out, _, _ = e.cli("runs", "show", rs[0].RunID)
	if !strings.Contains(out, "failure_class:") || !strings.Contains(out, "nonzero_exit") || !strings.Contains(out, "command:") {
		t.Fatalf("runs show:\n%s", out)
	}
}

// TestRunTaskEnvKeptScrubbed: --env reaches the child, is kept in the run
// record with secrets scrubbed, and travels into the exported input.json.
func TestRunTaskEnvKeptScrubbed(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	const key = "sk-envsecret1234567890abcdef"
	_, errOut, code := e.runIn(dir, nil, "--mode", "record", "--cassette", "taskenv",
		"--env", "REGION=eu-west-1", "--env", "OPENAI_API_KEY="+key, "--env", "GITHUB_TOKEN=plainvalue",
		"--", "sh", "-c", `printf '%s %s' "$REGION" "$OPENAI_API_KEY" > seen.txt`)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "seen.txt")); string(b) != "eu-west-1 "+key {
		t.Fatalf("child saw %q", b)
	}
	out, _, _ := e.cli("runs", "show", e.lastRun().RunID, "--json")
	var r struct{ Env map[string]string }
	json.Unmarshal([]byte(out), &r)
	if r.Env["REGION"] != "eu-west-1" || !strings.HasPrefix(r.Env["OPENAI_API_KEY"], "[REDACTED:") ||
		!strings.HasPrefix(r.Env["GITHUB_TOKEN"], "[REDACTED:") {
		t.Fatalf("run record env: %v", r.Env)
	}
	fixture := filepath.Join(t.TempDir(), "fx")
	if _, errOut, code := e.cli("export", "--cassette", "taskenv", "--out", fixture); code != 0 {
		t.Fatalf("export: %s", errOut)
	}
	input, _ := os.ReadFile(filepath.Join(fixture, "input.json"))
	if !strings.Contains(string(input), `"REGION": "eu-west-1"`) || strings.Contains(string(input), key) || strings.Contains(string(input), "plainvalue") {
		t.Fatalf("input.json env:\n%s", input)
	}
}
