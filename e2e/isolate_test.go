package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Network isolation (--isolate), driven through the CLI with real clients
// that ignore the proxy variables: Node's built-in fetch (before Node 24)
// and Python raw sockets.

// isolatedFixture writes a fixture folder in replay mode whose cassette
// answers GET http://api.example.test/v1/tool with {"tool": "recorded"}.
func isolatedFixture(t testing.TB, dir, id string, command ...string) string {
	t.Helper()
	fx := filepath.Join(dir, id)
	if err := os.MkdirAll(fx, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd, _ := json.Marshal(command)
	files := map[string]string{
		"input.json":    fmt.Sprintf(`{"fixture_id": %q, "command": %s, "mode": "replay", "timeout_seconds": 60}`, id, cmd),
		"expected.json": `{"status": "passed"}`,
		"notes.json":    `{"description": "network isolation", "recorded_at": "2025-06-01T12:00:00Z"}`,
		"tool_cassettes.json": `{"format": "cassetteproxy/tool_cassettes/1", "cassette": "` + id + `", "interactions": [{
  "seq": 1, "recorded_at": "2025-06-01T12:00:00Z", "duration_ms": 1,
  "request": {"method": "GET", "url": "http://api.example.test/v1/tool", "headers": {}},
  "response": {"status": 200, "headers": {"Content-Type": ["application/json"]}, "body": {"json": {"tool": "recorded"}}}}]}`,
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(fx, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return fx
}

func needTools(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			t.Skipf("%s is not installed", n)
		}
	}
}

// nodeDirect: Node 20's built-in fetch straight to an upstream (it ignores
// HTTPS_PROXY and HTTP_PROXY), then a request through the proxy named in
// HTTP_PROXY. Writes {"direct": ..., "proxied": ...} to argv[2].
const nodeDirect = `
const fs = require('fs'), http = require('http');
const [report, upstream] = process.argv.slice(2);
const out = {};
(async () => {
  try { const r = await fetch(upstream + '/direct'); out.direct = 'reached ' + r.status; }
  catch (e) { out.direct = (e.cause && e.cause.code) || String(e); }
  const p = new URL(process.env.HTTP_PROXY);
  out.proxied = await new Promise((resolve) => {
    const req = http.get({host: p.hostname, port: p.port, path: 'http://api.example.test/v1/tool', headers: {host: 'api.example.test'}}, (res) => {
      let b = ''; res.on('data', (c) => b += c); res.on('end', () => resolve(res.statusCode + ' ' + b));
    });
    req.on('error', (e) => resolve('error ' + e.code));
  });
  fs.writeFileSync(report, JSON.stringify(out));
})();
`

// pythonDirect: the same with raw TCP sockets.
const pythonDirect = `
import errno, json, os, socket, sys
from urllib.parse import urlsplit
report, upstream = sys.argv[1], urlsplit(sys.argv[2])
out = {}
def get(host, port, target, hostheader):
    s = socket.create_connection((host, port), timeout=20)
    s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (target, hostheader)).encode())
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    head, _, body = data.decode().partition("\r\n\r\n")
    return head.split()[1] + " " + body
try:
    out["direct"] = "reached " + get(upstream.hostname, upstream.port, "/direct", "x").split()[0]
except OSError as e:
    out["direct"] = errno.errorcode.get(e.errno, str(e))
p = urlsplit(os.environ["HTTP_PROXY"])
out["proxied"] = get(p.hostname, p.port, "http://api.example.test/v1/tool", "api.example.test")
json.dump(out, open(report, "w"))
`

type isoVerdict struct {
	RunID    string `json:"run_id"`
	Status   string `json:"status"`
	Class    string `json:"failure_class"`
	Isolated bool   `json:"isolated"`
}

// TestReplayIsolationStopsClientsThatIgnoreTheProxy: without isolation a
// client that ignores the proxy reaches a local upstream (the counting
// upstream sees it); with --isolate on it reaches nothing, while the
// proxy still answers its proxied requests from the cassette.
func TestReplayIsolationStopsClientsThatIgnoreTheProxy(t *testing.T) {
	needTools(t, "node", "python3")
	up := newUpstream(t, false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("live upstream"))
	}))
	e := newEnv(t)
	scripts := t.TempDir()
	os.WriteFile(filepath.Join(scripts, "direct.js"), []byte(nodeDirect), 0o644)
	os.WriteFile(filepath.Join(scripts, "direct.py"), []byte(pythonDirect), 0o644)
	children := map[string][]string{
		"node":   {"node", filepath.Join(scripts, "direct.js")},
		"python": {"python3", filepath.Join(scripts, "direct.py")},
	}
	for name, argv := range children {
		t.Run(name, func(t *testing.T) {
			fx := isolatedFixture(t, t.TempDir(), "direct-"+name, argv...)
			for _, iso := range []string{"off", "on"} {
				report := filepath.Join(t.TempDir(), "report.json")
				before := up.conns.Load()
				args := append([]string{"replay", fx, "--isolate", iso, "--"}, append(argv, report, up.URL)...)
				out, errs, code := e.cli(args...)
				var v isoVerdict
				if err := json.Unmarshal([]byte(out), &v); err != nil || code != 0 || v.Status != "passed" {
					t.Fatalf("--isolate %s: exit %d %v\n%s\n%s", iso, code, err, out, errs)
				}
				var got struct{ Direct, Proxied string }
				b, err := os.ReadFile(report)
				if err != nil || json.Unmarshal(b, &got) != nil {
					t.Fatalf("--isolate %s: no report from the child: %v %s\n%s", iso, err, b, errs)
				}
				if !strings.HasPrefix(got.Proxied, "200 ") || !strings.Contains(got.Proxied, `"recorded"`) {
					t.Fatalf("--isolate %s: the proxy did not answer the proxied request: %q", iso, got.Proxied)
				}
				conns := up.conns.Load() - before
				rec := e.runRecord(v.RunID)
				switch iso {
				case "off":
					if conns != 1 || got.Direct != "reached 200" || v.Isolated || rec.Isolated {
						t.Fatalf("without isolation the child must reach the upstream: %d connections, direct %q, isolated %v/%v", conns, got.Direct, v.Isolated, rec.Isolated)
					}
				case "on":
					if conns != 0 || got.Direct != "ECONNREFUSED" || !v.Isolated || !rec.Isolated {
						t.Fatalf("isolated, the child must reach nothing but the proxy: %d connections, direct %q, isolated %v/%v", conns, got.Direct, v.Isolated, rec.Isolated)
					}
				}
			}
		})
	}
}

// TestIsolatedNameResolutionFails: inside, localhost resolves and a public
// name fails at once with a resolution error (no name server to wait
// for): the command gets the error and returns well within its timeout.
func TestIsolatedNameResolutionFails(t *testing.T) {
	needTools(t, "node", "python3")
	e := newEnv(t)
	scripts := t.TempDir()
	node := `
const dns = require('dns'), fs = require('fs');
const out = {};
dns.lookup('localhost', {family: 4}, (err, addr) => {
  out.localhost = err ? err.code : addr;
  dns.lookup('example.com', (err) => {
    out.lookup = err ? err.code : 'resolved';
    fetch('https://example.com/').then(() => { out.fetch = 'reached'; }, (e) => { out.fetch = (e.cause && e.cause.code) || String(e); })
      .finally(() => fs.writeFileSync(process.argv[2], JSON.stringify(out)));
  });
});`
	python := `
import json, socket, sys
out = {"localhost": socket.getaddrinfo("localhost", 80, socket.AF_INET)[0][4][0]}
try:
    socket.getaddrinfo("example.com", 443)
    out["lookup"] = "resolved"
except socket.gaierror as e:
    out["lookup"] = "gaierror"
json.dump(out, open(sys.argv[1], "w"))`
	os.WriteFile(filepath.Join(scripts, "dns.js"), []byte(node), 0o644)
	os.WriteFile(filepath.Join(scripts, "dns.py"), []byte(python), 0o644)
	children := map[string][]string{
		"node":   {"node", filepath.Join(scripts, "dns.js")},
		"python": {"python3", filepath.Join(scripts, "dns.py")},
	}
	resolutionErrors := map[string]bool{"ENOTFOUND": true, "EAI_AGAIN": true, "gaierror": true}
	for name, argv := range children {
		t.Run(name, func(t *testing.T) {
			fx := isolatedFixture(t, t.TempDir(), "dns-"+name, argv...)
			report := filepath.Join(t.TempDir(), "report.json")
			out, errs, code := e.cli(append([]string{"replay", fx, "--isolate", "on", "--"}, append(argv, report)...)...)
			var v isoVerdict
			if err := json.Unmarshal([]byte(out), &v); err != nil || code != 0 || v.Status != "passed" || !v.Isolated {
				t.Fatalf("exit %d %v\n%s\n%s", code, err, out, errs)
			}
			var got struct{ Localhost, Lookup, Fetch string }
			b, _ := os.ReadFile(report)
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("no report: %v %s", err, b)
			}
			if got.Localhost != "127.0.0.1" || !resolutionErrors[got.Lookup] || (name == "node" && !resolutionErrors[got.Fetch]) {
				t.Fatalf("inside: %+v, want localhost 127.0.0.1 and resolution errors for example.com", got)
			}
		})
	}
}

// TestIsolatedRunDaemonsDie: a daemon forked by the command (its own
// session, stdio detached) dies with the run, not after.
func TestIsolatedRunDaemonsDie(t *testing.T) {
	needTools(t, "setsid")
	e := newEnv(t)
	dir := t.TempDir()
	script := `setsid sh -c '` + hostPID + ` > d.tmp; mv d.tmp daemon.pid; exec sleep 300' </dev/null >/dev/null 2>&1 &
while [ ! -f daemon.pid ]; do sleep 0.01; done`
	if _, errs, code := e.runIn(dir, nil, "--mode", "record", "--cassette", "d", "--", "true"); code != 0 { // strict needs a cassette
		t.Fatalf("record: %d %s", code, errs)
	}
	if _, errs, code := e.runIn(dir, nil, "--mode", "strict", "--cassette", "d", "--isolate", "on", "--", "sh", "-c", script); code != 0 {
		t.Fatalf("run: %d %s", code, errs)
	}
	b, err := os.ReadFile(filepath.Join(dir, "daemon.pid"))
	var pid int
	if _, serr := fmt.Sscan(string(b), &pid); err != nil || serr != nil || pid <= 1 {
		t.Fatalf("daemon pid %q: %v", b, err)
	}
	if err := syscall.Kill(pid, 0); err != syscall.ESRCH {
		syscall.Kill(pid, syscall.SIGKILL)
		t.Fatalf("the daemon %d outlived the run (kill 0: %v)", pid, err)
	}
	if r := e.lastRun(); r.Status != "passed" || !r.Isolated {
		t.Fatalf("run record: %s isolated %v", r.Status, r.Isolated)
	}
}

// runRecord reads one run record, with the isolated field.
func (e *env) runRecord(id string) struct{ Isolated bool } {
	e.t.Helper()
	out, errs, code := e.cli("runs", "show", id, "--json")
	var r struct{ Isolated bool }
	if code != 0 || json.Unmarshal([]byte(out), &r) != nil || !strings.Contains(out, `"isolated":`) {
		e.t.Fatalf("runs show %s: %d %s %s", id, code, out, errs)
	}
	return r
}

// cliInUserNS runs setup (sh) and then cassetteproxy ARGS in a user
// namespace of their own where they are root: its limits on namespaces
// can be lowered without touching the machine's.
func (e *env) cliInUserNS(setup string, args ...string) (string, string, int) {
	e.t.Helper()
	if os.Geteuid() != 0 {
		e.t.Skip("lowering namespace limits in a user namespace of its own needs root here")
	}
	cmd := exec.Command("/bin/sh", append([]string{"-c", setup + `; exec "$0" "$@"`, binary}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 65536}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 65536}}}
	return e.runCmd(cmd, nil, args)
}

// noNetNamespaces makes creating a network namespace fail (ENOSPC), as on
// a kernel that allows none, for the process that runs it and its
// children only.
const noNetNamespaces = "echo 0 > /proc/sys/user/max_net_namespaces"

// TestIsolationImpossible: where no namespace can be made, --isolate on
// refuses with one line saying why and what to change; auto says so once,
// runs without, and the records and monitor.json say so.
func TestIsolationImpossible(t *testing.T) {
	e := newEnv(t)
	root := t.TempDir()
	fxA := isolatedFixture(t, root, "a", "true")
	isolatedFixture(t, root, "b", "true")

	for _, args := range [][]string{
		{"replay", fxA, "--isolate", "on"},
		{"run", "--mode", "strict", "--cassette", "x", "--isolate", "on", "--", "true"},
		{"monitor", root, "--out", filepath.Join(e.dir, "m0"), "--isolate", "on"},
	} {
		_, errs, code := e.cliInUserNS(noNetNamespaces, args...)
		oneLineError(t, errs, code, "--isolate on: network isolation is not possible here", "max_net_namespaces", "--isolate off")
	}
	if out, _, _ := e.cli("runs", "ls", "--json"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("a refused isolation must run nothing: %s", out)
	}

	out, errs, code := e.cliInUserNS(noNetNamespaces, "replay", fxA, "--isolate", "auto")
	var v isoVerdict
	if err := json.Unmarshal([]byte(out), &v); err != nil || code != 0 || v.Status != "passed" || v.Isolated || e.runRecord(v.RunID).Isolated {
		t.Fatalf("auto: exit %d %v %+v\n%s", code, err, v, errs)
	}
	if strings.Count(errs, "network isolation unavailable") != 1 {
		t.Fatalf("auto must say once that it runs without isolation:\n%s", errs)
	}

	report := filepath.Join(e.dir, "m1")
	out, errs, code = e.cliInUserNS(noNetNamespaces, "monitor", root, "--out", report, "-j", "2", "--isolate", "auto")
	if code != 0 || strings.Count(errs, "network isolation unavailable") != 1 || !strings.Contains(out, "2 not isolated") {
		t.Fatalf("monitor, auto: exit %d\n%s\n%s", code, out, errs)
	}
	var rep struct {
		NotIsolated int `json:"fixtures_not_isolated"`
		Passing     int `json:"fixtures_passing"`
	}
	b, _ := os.ReadFile(filepath.Join(report, "monitor.json"))
	if err := json.Unmarshal(b, &rep); err != nil || rep.NotIsolated != 2 || rep.Passing != 2 {
		t.Fatalf("monitor.json: %v %s", err, b)
	}
	metrics, _ := os.ReadFile(filepath.Join(report, "metrics.prom"))
	if !strings.Contains(string(metrics), `cassetteproxy_monitor_fixtures{state="not_isolated"} 2`) {
		t.Fatalf("metrics.prom:\n%s", metrics)
	}
}

// TestMonitorNamespaceFailsMidway: a fixture whose namespace cannot be
// made (here the first fixture's command lowers the limit to 0 for the
// rest of the run) is unknown, never green, even with a recent pass.
func TestMonitorNamespaceFailsMidway(t *testing.T) {
	e := newEnv(t)
	root := t.TempDir()
	// Only ever inside a user namespace of its own: refuse to touch the machine's limit.
	lower := `grep -Eq '^ *0 +0 +4294967295$' /proc/self/uid_map && exit 99; ` + noNetNamespaces
	isolatedFixture(t, root, "a-lowers-the-limit", "sh", "-c", lower)
	fxB := isolatedFixture(t, root, "b-after", "true")

	// b passes on its own first: a recent passing verdict.
	out, errs, code := e.cliInUserNS("true", "replay", fxB, "--isolate", "on")
	if code != 0 || !strings.Contains(out, `"isolated": true`) {
		t.Fatalf("replay b: %d\n%s\n%s", code, out, errs)
	}
	report := filepath.Join(e.dir, "report")
	out, errs, code = e.cliInUserNS("true", "monitor", root, "--out", report, "-j", "1", "--isolate", "auto")
	if code != 1 {
		t.Fatalf("monitor: exit %d, want 1 (the gate fails)\n%s\n%s", code, out, errs)
	}
	var rep struct {
		Passing     int `json:"fixtures_passing"`
		Stale       int `json:"fixtures_stale"`
		NotIsolated int `json:"fixtures_not_isolated"`
		Results     []struct {
			FixtureID   string `json:"fixture_id"`
			Status      string `json:"status"`
			Class       string `json:"failure_class"`
			Stale       bool   `json:"stale"`
			StaleReason string `json:"stale_reason"`
			Isolated    bool   `json:"isolated"`
		} `json:"results"`
	}
	b, _ := os.ReadFile(filepath.Join(report, "monitor.json"))
	if err := json.Unmarshal(b, &rep); err != nil || len(rep.Results) != 2 {
		t.Fatalf("monitor.json: %v %s", err, b)
	}
	a, bb := rep.Results[0], rep.Results[1]
	if a.FixtureID != "a-lowers-the-limit" || a.Status != "passed" || !a.Isolated {
		t.Fatalf("first fixture: %+v\n%s", a, errs)
	}
	if bb.Status != "inconclusive" || bb.Class != "isolation_failed" || !bb.Stale || !strings.Contains(bb.StaleReason, "max_net_namespaces") || bb.Isolated {
		t.Fatalf("the fixture without a namespace: %+v", bb)
	}
	if rep.Passing != 1 || rep.Stale != 1 || rep.NotIsolated != 0 {
		t.Fatalf("counts: passing %d stale %d not isolated %d", rep.Passing, rep.Stale, rep.NotIsolated)
	}
}

// TestIsolatedRunStdioAndExitCode: stdin, stdout and the exit code pass
// through the namespace as without it.
func TestIsolatedRunStdioAndExitCode(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	if _, errs, code := e.runIn(dir, nil, "--mode", "record", "--cassette", "io", "--", "true"); code != 0 {
		t.Fatalf("record: %d %s", code, errs)
	}
	for _, iso := range []string{"off", "on"} {
		cmd := exec.Command(binary, "run", "--mode", "strict", "--cassette", "io", "--isolate", iso, "--", "sh", "-c", `read x; echo "got $x"; echo "to stderr" >&2; exit 7`)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "CASSETTEPROXY_DB="+e.db, "CASSETTEPROXY_HOME="+e.home)
		cmd.Stdin = strings.NewReader("hello\n")
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 7 || out.String() != "got hello\n" || !strings.Contains(errb.String(), "to stderr") {
			t.Fatalf("--isolate %s: %v, stdout %q, stderr %q", iso, err, out.String(), errb.String())
		}
		r := e.lastRun()
		if r.ExitCode == nil || *r.ExitCode != 7 || r.Isolated != (iso == "on") {
			t.Fatalf("--isolate %s: record exit %v isolated %v", iso, r.ExitCode, r.Isolated)
		}
	}
}
