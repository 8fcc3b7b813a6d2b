// Package e2e drives the built cassetteproxy binary through its CLI, the
// way the README tells a user to, against real loopback upstreams.
package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

var binary string // the cassetteproxy binary built by TestMain

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cassetteproxy-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "cassetteproxy")
	build := exec.Command("go", "build", "-o", binary, "../cmd/cassetteproxy")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build cassetteproxy:", err)
		os.Exit(1)
	}
	code := m.Run()
	pg.Stop()
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is one user's world: a store, a home folder, a scratch folder.
type env struct {
	t    *testing.T
	dir  string
	db   string
	home string
	bin  string // the binary to run; "" is the one TestMain built
	// readyWithin bounds how long serve waits for the ready file (0: 20 s).
	readyWithin time.Duration
}

func (e *env) binary() string {
	if e.bin != "" {
		return e.bin
	}
	return binary
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	return &env{t: t, dir: dir, db: filepath.Join(dir, "cassettes.db"), home: filepath.Join(dir, "home")}
}

// cli runs one short command and returns stdout, stderr and the exit code.
func (e *env) cli(args ...string) (string, string, int) {
	e.t.Helper()
	return e.cliIn("", nil, args...)
}

// cliIn is cli run in the folder dir ("": the test's), with extra
// environment variables.
func (e *env) cliIn(dir string, extraEnv []string, args ...string) (string, string, int) {
	e.t.Helper()
	cmd := exec.Command(e.binary(), args...)
	cmd.Dir = dir
	return e.runCmd(cmd, extraEnv, args)
}

// runCmd runs cmd in this user's world (its store and home, plus
// extraEnv) and returns stdout, stderr and the exit code.
func (e *env) runCmd(cmd *exec.Cmd, extraEnv, args []string) (string, string, int) {
	e.t.Helper()
	cmd.Env = append(append(os.Environ(), "CASSETTEPROXY_DB="+e.db, "CASSETTEPROXY_HOME="+e.home), extraEnv...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("run %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// proxyProc is a running `cassetteproxy serve`.
type proxyProc struct {
	t       *testing.T
	cmd     *exec.Cmd
	addr    string
	stderr  *syncBuffer
	exited  chan struct{} // closed when the process has exited
	waitErr error
}

// serve starts `cassetteproxy serve` on a free port and waits for its ready
// file, the readiness signal the README documents.
func (e *env) serve(args ...string) *proxyProc {
	e.t.Helper()
	p, err := e.trySERVE(args...)
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

func (e *env) trySERVE(args ...string) (*proxyProc, error) {
	ready := filepath.Join(e.t.TempDir(), "ready")
	full := append([]string{"serve", "--listen", "127.0.0.1:0", "--ready-file", ready}, args...)
	cmd := exec.Command(e.binary(), full...)
	cmd.Env = append(os.Environ(), "CASSETTEPROXY_DB="+e.db, "CASSETTEPROXY_HOME="+e.home)
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proxyProc{t: e.t, cmd: cmd, stderr: stderr, exited: make(chan struct{})}
	go func() { p.waitErr = cmd.Wait(); close(p.exited) }()
	within := e.readyWithin
	if within <= 0 {
		within = 20 * time.Second
	}
	deadline := time.After(within)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if b, err := os.ReadFile(ready); err == nil && len(b) > 0 {
			p.addr = strings.TrimSpace(string(b))
			e.t.Cleanup(func() { p.kill() })
			return p, nil
		}
		select {
		case <-p.exited:
			return nil, fmt.Errorf("serve %v exited before ready: %v\n%s", args, p.waitErr, stderr.String())
		case <-deadline:
			cmd.Process.Kill()
			return nil, fmt.Errorf("serve %v: not ready after %v\n%s", args, within, stderr.String())
		case <-tick.C:
		}
	}
}

// stop sends SIGINT, as Ctrl-C would, and waits for a clean exit.
func (p *proxyProc) stop() {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.exited:
		if p.waitErr != nil {
			p.t.Fatalf("proxy exited with %v after SIGINT\n%s", p.waitErr, p.stderr.String())
		}
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		p.t.Fatalf("proxy did not stop within 20s of SIGINT\n%s", p.stderr.String())
	}
}

// kill is kill -9, and waits for the process to be gone.
func (p *proxyProc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// caPool holds the proxy's CA, as a client that trusts it needs.
func (e *env) caPool() *x509.CertPool {
	e.t.Helper()
	caPEM, err := os.ReadFile(filepath.Join(e.home, "ca.pem"))
	if err != nil {
		e.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	return pool
}

// client is a Go client that trusts the proxy's CA and uses the proxy for
// every request, like an agent with HTTPS_PROXY set.
func (e *env) client(p *proxyProc) *http.Client {
	e.t.Helper()
	pool := e.caPool()
	proxyURL, _ := url.Parse("http://" + p.addr)
	return &http.Client{
		Transport: &http.Transport{
			Proxy:               http.ProxyURL(proxyURL),
			TLSClientConfig:     &tls.Config{RootCAs: pool},
			DisableCompression:  true,
			MaxIdleConnsPerHost: 64,
		},
		Timeout: 30 * time.Second,
	}
}

// upstream is a real loopback server that counts the connections it accepts.
type upstream struct {
	*httptest.Server
	conns  atomic.Int64
	caFile string // PEM of its certificate, for --upstream-ca
}

func newUpstream(t *testing.T, tlsOn bool, h http.Handler) *upstream {
	t.Helper()
	u := &upstream{}
	u.Server = httptest.NewUnstartedServer(h)
	u.Server.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			u.conns.Add(1)
		}
	}
	if tlsOn {
		u.StartTLS()
		u.caFile = filepath.Join(t.TempDir(), "upstream-ca.pem")
		pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: u.Certificate().Raw})
		if err := os.WriteFile(u.caFile, pemBytes, 0o644); err != nil {
			t.Fatal(err)
		}
	} else {
		u.Start()
	}
	t.Cleanup(u.Close)
	return u
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}
