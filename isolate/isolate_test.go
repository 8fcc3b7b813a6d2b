package isolate

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// needIsolation skips where isolation is impossible, except as root
// (CI): there it must work.
func needIsolation(t *testing.T) {
	t.Helper()
	if err := Check(); err != nil {
		if os.Geteuid() == 0 {
			t.Fatalf("isolation must work as root: %v", err)
		}
		t.Skip(err)
	}
}

// proxyStandIn is an HTTP server on a free loopback port, standing in for
// the proxy: it answers every request with "proxy" and counts them.
type proxyStandIn struct {
	ln   net.Listener
	srv  *http.Server
	hits atomic.Int64
}

func newProxyStandIn(t *testing.T) *proxyStandIn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxyStandIn{ln: ln}
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.hits.Add(1)
		io.WriteString(w, "proxy")
	})}
	go p.srv.Serve(ln)
	t.Cleanup(func() { p.srv.Close() })
	return p
}

// countingListener counts the connections a loopback port accepts.
func countingListener(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String(), &n
}

// acceptedAll returns once a countingListener has counted every
// connection made to it before: it connects and waits for the listener to
// close the connection, which it does after counting it, and a listener
// accepts in the order connections were made.
func acceptedAll(t *testing.T, addr string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(time.Minute))
	if _, err := io.Copy(io.Discard, c); err != nil {
		t.Fatalf("the listener at %s never closed our connection: %v", addr, err)
	}
}

type ended struct {
	code int
	sig  syscall.Signal
	said bool // the namespace said how the command ended
	ws   syscall.WaitStatus
}

// started is a command running isolated, with the stand-in proxy served
// inside.
type started struct {
	ns  *Namespace
	cmd *exec.Cmd
}

func startIsolated(t *testing.T, p *proxyStandIn, dir string, group bool, argv ...string) (*started, error) {
	t.Helper()
	path, err := exec.LookPath(argv[0])
	if err != nil {
		path = argv[0]
	}
	cmd := &exec.Cmd{Path: path, Args: argv, Dir: dir, Env: os.Environ(), Stderr: os.Stderr,
		SysProcAttr: &syscall.SysProcAttr{Setpgid: group, Pdeathsig: syscall.SIGKILL}}
	ns, err := Wrap(cmd, p.ln.Addr().String())
	if err != nil {
		return nil, err
	}
	ln, err := ns.Start()
	if err != nil {
		return nil, err
	}
	go p.srv.Serve(ln)
	return &started{ns: ns, cmd: cmd}, nil
}

func (s *started) wait() ended {
	_ = s.cmd.Wait()
	var e ended
	e.ws = s.cmd.ProcessState.Sys().(syscall.WaitStatus)
	e.code, e.sig, e.said = s.ns.Exit()
	return e
}

func runIsolated(t *testing.T, p *proxyStandIn, argv ...string) ended {
	t.Helper()
	s, err := startIsolated(t, p, t.TempDir(), true, argv...)
	if err != nil {
		t.Fatal(err)
	}
	return s.wait()
}

func needTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s is not installed", name)
	}
}

// reachScript tries a loopback port other than the proxy's, the proxy,
// and an address off the machine, and prints what happened to each.
const reachScript = `
import errno, socket, sys
upstream, proxy = sys.argv[1], sys.argv[2]
def hostport(a):
    h, p = a.rsplit(":", 1)
    return (h, int(p))
def attempt(addr):
    try:
        s = socket.create_connection(addr, timeout=5)
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e))
    s.close()
    return "connected"
print("upstream", attempt(hostport(upstream)))
s = socket.create_connection(hostport(proxy), timeout=5)
s.sendall(b"GET http://api.example.test/ HTTP/1.1\r\nHost: api.example.test\r\nConnection: close\r\n\r\n")
print("proxy", s.makefile("rb").read().split(b"\r\n\r\n", 1)[1].decode())
print("offsite", attempt(("192.0.2.1", 80)))
`

func TestOnlyTheProxyAnswersInside(t *testing.T) {
	needIsolation(t)
	needTool(t, "python3")
	up, count := countingListener(t)
	p := newProxyStandIn(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	script := reachScript + "\nopen(" + fmt.Sprintf("%q", out) + ", 'w').write('done')\n"

	// Without isolation the upstream is reached: the count can tell.
	plain := exec.Command("python3", "-c", `import socket,sys; socket.create_connection((sys.argv[1].rsplit(":",1)[0], int(sys.argv[1].rsplit(":",1)[1]))).close()`, up)
	if b, err := plain.CombinedOutput(); err != nil {
		t.Fatalf("plain python: %v %s", err, b)
	}
	// The listener counts in its own goroutine, after python is gone:
	// read the count once a later connection of ours has been counted.
	acceptedAll(t, up)
	if count.Load() != 2 {
		t.Fatalf("the upstream counted %d connections without isolation, want 2 (python's and ours)", count.Load())
	}

	cmd := []string{"python3", "-c", script, up, p.ln.Addr().String()}
	s, err := startIsolated(t, p, dir, true, cmd...)
	if err != nil {
		t.Fatal(err)
	}
	e := s.wait()
	if !e.said || e.code != 0 {
		t.Fatalf("python exited %+v", e)
	}
	acceptedAll(t, up)
	if count.Load() != 3 {
		t.Fatalf("the upstream counted %d connections, want 3 (none from inside): the isolated child reached it", count.Load())
	}
	if p.hits.Load() != 1 {
		t.Fatalf("the proxy answered %d requests from inside, want 1", p.hits.Load())
	}
	if b, _ := os.ReadFile(out); string(b) != "done" {
		t.Fatal("the script did not finish")
	}
}

// TestReachFromInside checks what each address gives inside: refused on
// loopback ports other than the proxy's, unreachable off the machine.
func TestReachFromInside(t *testing.T) {
	needIsolation(t)
	needTool(t, "python3")
	up, count := countingListener(t)
	p := newProxyStandIn(t)
	dir := t.TempDir()
	outFile := filepath.Join(dir, "out.txt")
	s, err := startIsolated(t, p, dir, true, "sh", "-c", `python3 -c "$0" "$1" "$2" > out.txt`, reachScript, up, p.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if e := s.wait(); e.code != 0 {
		t.Fatalf("exit %+v", e)
	}
	b, _ := os.ReadFile(outFile)
	got := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		got[k] = v
	}
	want := map[string]string{"upstream": "ECONNREFUSED", "proxy": "proxy", "offsite": "ENETUNREACH"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q (output %q)", k, got[k], v, b)
		}
	}
	acceptedAll(t, up)
	if count.Load() != 1 {
		t.Fatalf("the upstream counted %d connections, want 1 (ours)", count.Load())
	}
}

func TestNamesResolveOnlyToLocalhost(t *testing.T) {
	needIsolation(t)
	needTool(t, "python3")
	p := newProxyStandIn(t)
	dir := t.TempDir()
	script := `
import socket
out = []
out.append("localhost " + socket.getaddrinfo("localhost", 80, socket.AF_INET)[0][4][0])
try:
    socket.getaddrinfo("example.com", 443)
    out.append("example.com resolved")
except socket.gaierror as e:
    out.append("example.com gaierror")
open("out.txt", "w").write("\n".join(out))
`
	s, err := startIsolated(t, p, dir, true, "python3", "-c", script)
	if err != nil {
		t.Fatal(err)
	}
	if e := s.wait(); e.code != 0 {
		t.Fatalf("exit %+v", e)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "out.txt"))
	if string(b) != "localhost 127.0.0.1\nexample.com gaierror" {
		t.Fatalf("resolution inside: %q", b)
	}
	// Failing fast is the namespace's doing, not this machine's network:
	// inside, names come from files only, and the one name server
	// configured is loopback, which refuses at once.
	s, err = startIsolated(t, p, dir, true, "sh", "-c", "grep -h -E '^(hosts|nameserver)' /etc/resolv.conf /etc/nsswitch.conf > conf.txt")
	if err != nil {
		t.Fatal(err)
	}
	s.wait()
	conf, _ := os.ReadFile(filepath.Join(dir, "conf.txt"))
	want := "nameserver 127.0.0.1\n"
	if _, err := os.Stat("/etc/nsswitch.conf"); err == nil {
		want += "hosts: files\n"
	}
	if string(conf) != want {
		t.Fatalf("resolver configuration inside:\n%s\nwant:\n%s", conf, want)
	}
	// The host's own files are untouched.
	if hosts, _ := os.ReadFile("/etc/hosts"); strings.Contains(string(hosts), "isolated network namespace") {
		t.Fatal("the namespace's /etc/hosts leaked to the host")
	}
}

func TestExitCodesAndSignals(t *testing.T) {
	needIsolation(t)
	p := newProxyStandIn(t)
	if e := runIsolated(t, p, "sh", "-c", "exit 7"); !e.said || e.code != 7 || e.sig != 0 || e.ws.ExitStatus() != 7 {
		t.Fatalf("exit 7: %+v", e)
	}
	if e := runIsolated(t, p, "sh", "-c", "kill -TERM $$"); !e.said || e.sig != syscall.SIGTERM || e.code != 128+15 {
		t.Fatalf("killed by TERM: %+v", e)
	}
}

// TestSignalPassedOn: without a process group of its own, a signal for
// the command goes through the namespace's first process.
func TestSignalPassedOn(t *testing.T) {
	needIsolation(t)
	p := newProxyStandIn(t)
	dir := t.TempDir()
	fifo := filepath.Join(dir, "ready")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := startIsolated(t, p, dir, false, "sh", "-c", `trap 'echo got > got; exit 5' TERM; echo > ready; while :; do sleep 0.05; done`)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(fifo) // returns once the trap is set
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(f)
	f.Close()
	if err := s.ns.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if e := s.wait(); e.code != 5 {
		t.Fatalf("exit %+v, want 5 from the trap", e)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "got")); string(b) != "got\n" {
		t.Fatal("the trap did not run")
	}
}

// TestDaemonsDieWithTheCommand: a process that left the command's process
// group and session is gone once the command has ended.
func TestDaemonsDieWithTheCommand(t *testing.T) {
	needIsolation(t)
	needTool(t, "setsid")
	p := newProxyStandIn(t)
	dir := t.TempDir()
	// /proc is the host's: /proc/self/stat's first field is the host pid.
	script := `setsid sh -c 'read pid rest < /proc/self/stat; echo $pid > d.tmp; mv d.tmp daemon.pid; exec sleep 300' </dev/null >/dev/null 2>&1 &
while [ ! -f daemon.pid ]; do sleep 0.01; done`
	s, err := startIsolated(t, p, dir, true, "sh", "-c", script)
	if err != nil {
		t.Fatal(err)
	}
	if e := s.wait(); e.code != 0 {
		t.Fatalf("exit %+v", e)
	}
	b, err := os.ReadFile(filepath.Join(dir, "daemon.pid"))
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	if _, err := fmt.Sscan(string(b), &pid); err != nil || pid <= 1 {
		t.Fatalf("daemon pid %q", b)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		syscall.Kill(pid, syscall.SIGKILL)
		t.Fatalf("the daemon %d outlived the command (kill 0: %v)", pid, err)
	}
}

func TestCommandThatCannotStart(t *testing.T) {
	needIsolation(t)
	p := newProxyStandIn(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "plain.txt"), []byte("x"), 0o644)
	for _, tc := range []struct {
		path string
		code int
	}{{filepath.Join(dir, "missing"), 127}, {filepath.Join(dir, "plain.txt"), 126}} {
		_, err := startIsolated(t, p, dir, true, tc.path)
		var ce *CommandError
		if !errors.As(err, &ce) || ce.Code != tc.code {
			t.Fatalf("%s: %v, want a CommandError with code %d", tc.path, err, tc.code)
		}
	}
}

// TestCapabilitiesAsWithoutIsolation: the command starts with the
// capabilities a plain child gets (as root: root's; as another user, in a
// user namespace: none, though the namespace's first process had two).
func TestCapabilitiesAsWithoutIsolation(t *testing.T) {
	needIsolation(t)
	p := newProxyStandIn(t)
	dir := t.TempDir()
	script := "grep -E '^Cap(Inh|Prm|Eff|Amb)' /proc/self/status"
	plain, err := exec.Command("sh", "-c", script).Output()
	if err != nil {
		t.Fatal(err)
	}
	s, err := startIsolated(t, p, dir, true, "sh", "-c", script+" > caps.txt")
	if err != nil {
		t.Fatal(err)
	}
	s.wait()
	inside, _ := os.ReadFile(filepath.Join(dir, "caps.txt"))
	if string(inside) != string(plain) {
		t.Fatalf("capabilities inside:\n%s\nwithout isolation:\n%s", inside, plain)
	}
}

// TestAsAnotherUser runs the tests above again as nobody: then the
// namespace is made in a user namespace of its own, without root.
func TestAsAnotherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("switching to nobody needs root; as this user the other tests take the user-namespace path already")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "isolate-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "tmp")
	bin := filepath.Join(dir, "isolate.test")
	data, err := os.ReadFile(exe)
	if err == nil {
		err = os.WriteFile(bin, data, 0o755)
	}
	if err == nil {
		err = os.Mkdir(tmp, 0o777)
	}
	if err == nil {
		err = os.Chmod(dir, 0o755)
	}
	if err == nil {
		err = os.Chown(tmp, 65534, 65534)
	}
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.v", "-test.count=1", "-test.run",
		"^(TestOnlyTheProxyAnswersInside|TestNamesResolveOnlyToLocalhost|TestExitCodesAndSignals|TestSignalPassedOn|TestDaemonsDieWithTheCommand|TestCommandThatCannotStart|TestCapabilitiesAsWithoutIsolation)$")
	cmd.Dir = tmp
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "TMPDIR=" + tmp, "HOME=" + tmp}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the tests as nobody: %v\n%s", err, out)
	}
	// Every test runs and passes; one may skip only for a tool nobody
	// cannot run (python3 outside the system folders).
	lines := strings.Split(string(out), "\n")
	passed, skipped := 0, 0
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, "--- PASS"):
			passed++
		case strings.HasPrefix(l, "--- SKIP"):
			skipped++
			if i+1 >= len(lines) || !strings.Contains(lines[i+1], "is not installed") {
				t.Fatalf("as nobody, a test skipped:\n%s", out)
			}
		}
	}
	if passed+skipped != 7 || !strings.Contains(string(out), "--- PASS: TestExitCodesAndSignals") {
		t.Fatalf("as nobody, every test must run and pass:\n%s", out)
	}
}
