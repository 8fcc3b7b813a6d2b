package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	binenc "encoding/binary"
)

// The test binary doubles as a child that GETs $CASSETTEPROXY_E2E_FETCH?i=1..N
// ($CASSETTEPROXY_E2E_FETCH_COUNT) through $HTTP_PROXY, like an agent
// calling a tool N times, and exits 0 once every answer was a 200.
func init() {
	target := os.Getenv("CASSETTEPROXY_E2E_FETCH")
	if target == "" {
		return
	}
	n, _ := strconv.Atoi(os.Getenv("CASSETTEPROXY_E2E_FETCH_COUNT"))
	proxyURL, err := url.Parse(os.Getenv("HTTP_PROXY"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}}
	for i := 1; i <= n; i++ {
		resp, err := c.Get(fmt.Sprintf("%s?i=%d", target, i))
		if err != nil {
			fmt.Fprintln(os.Stderr, "fetch:", err)
			os.Exit(2)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			fmt.Fprintln(os.Stderr, "fetch: status", resp.StatusCode)
			os.Exit(1)
		}
	}
	os.Exit(0)
}

// mountTmpfs mounts a tmpfs of size (e.g. "512k") on a fresh folder and
// unmounts it at cleanup (register what uses it after this, so it is
// closed first). Skips where it cannot: mounting needs root, as CI has.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("a disk-full test mounts a tmpfs, which needs root (CI runs as root)")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// serveMustFail runs `cassetteproxy serve ARGS --ready-file F` and returns
// its stderr and exit code once it exits; if it starts serving instead (its
// ready file appears), it is stopped and the test fails.
func serveMustFail(t *testing.T, e *env, args ...string) (string, int) {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready")
	cmd := exec.Command(binary, append(append([]string{"serve"}, args...), "--ready-file", ready)...)
	cmd.Env = append(os.Environ(), "CASSETTEPROXY_DB="+e.db, "CASSETTEPROXY_HOME="+e.home)
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-exited:
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return stderr.String(), ee.ExitCode()
			}
			return stderr.String(), 0
		case <-tick.C:
			if b, _ := os.ReadFile(ready); len(b) > 0 {
				_ = cmd.Process.Kill()
				<-exited
				t.Fatalf("serve %v started serving; it must refuse\n%s", args, stderr)
			}
		}
	}
}

// randomBodies answers every GET with 8 KiB of random bytes: nothing the
// store's compression can shrink.
func randomBodies() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := make([]byte, 8<<10)
		_, _ = rand.Read(b)
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(b)
	})
}

// TestDiskFullRunIsDegraded: a run recording into a store on a full disk
// answers its child (it succeeds), but the run's verdict is degraded /
// recording_lost with the count in the record, exit code 3, and the store
// stays readable.
func TestDiskFullRunIsDegraded(t *testing.T) {
	mnt := mountTmpfs(t, "512k")
	e := newEnv(t)
	e.db = filepath.Join(mnt, "cassettes.db")
	up := newUpstream(t, false, randomBodies())
	_, errOut, code := e.runIn(e.dir, []string{"CASSETTEPROXY_E2E_FETCH=" + up.URL + "/blob", "CASSETTEPROXY_E2E_FETCH_COUNT=120"},
		"--mode", "record", "--cassette", "full", "--", os.Args[0])
	if code != 3 {
		t.Fatalf("exit %d, want 3 (the child succeeded, the verdict is not passed)\n%s", code, errOut)
	}
	if !strings.Contains(errOut, "no space left on device") || !strings.Contains(errOut, "level=ERROR") {
		t.Errorf("the failed commits were not logged as errors:\n%s", errOut)
	}
	r := e.lastRun()
	wantRun(t, r, "degraded", "recording_lost")
	var full struct {
		RecordingsLost int `json:"recordings_lost"`
		Interactions   int `json:"interactions"`
	}
	out, _, _ := e.cli("runs", "show", r.RunID, "--json")
	if err := json.Unmarshal([]byte(out), &full); err != nil {
		t.Fatal(err)
	}
	kept := cassetteCount(t, e, "full")
	if full.Interactions != 120 || full.RecordingsLost == 0 || kept+full.RecordingsLost != 120 {
		t.Fatalf("interactions %d, recordings_lost %d, kept in the cassette %d: want 120 = lost + kept", full.Interactions, full.RecordingsLost, kept)
	}
	if !strings.Contains(r.FailureReason, strconv.Itoa(full.RecordingsLost)+" recordings answered but not committed") {
		t.Errorf("reason %q does not give the count", r.FailureReason)
	}
	if out, errOut, code := e.cli("store", "check"); code != 0 {
		t.Fatalf("the store is not sound after the failed commits: %s %s", out, errOut)
	}
}

// cassetteCount is the cassette's interaction count as `cassettes ls` shows it.
func cassetteCount(t *testing.T, e *env, name string) int {
	t.Helper()
	out, errOut, code := e.cli("cassettes", "ls", "--json")
	if code != 0 {
		t.Fatalf("cassettes ls: %s", errOut)
	}
	var infos []struct {
		Name         string `json:"name"`
		Interactions int    `json:"interactions"`
	}
	if err := json.Unmarshal([]byte(out), &infos); err != nil {
		t.Fatal(err)
	}
	for _, in := range infos {
		if in.Name == name {
			return in.Interactions
		}
	}
	t.Fatalf("no cassette %q in %s", name, out)
	return 0
}

type health struct {
	Status         string `json:"status"`
	Reason         string `json:"reason"`
	RecordingsLost int    `json:"recordings_lost"`
	Error          string `json:"error"`
}

func getHealth(t *testing.T, addr string) (int, health) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h health
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, h
}

// TestDiskFullServe: serve keeps answering while its disk is full, and
// says so: /healthz turns 503 with the reason, and serve exits 1 at
// shutdown with the count in one line.
func TestDiskFullServe(t *testing.T) {
	mnt := mountTmpfs(t, "512k")
	e := newEnv(t)
	e.db = filepath.Join(mnt, "cassettes.db")
	up := newUpstream(t, false, randomBodies())
	p := e.serve("--mode", "record", "--cassette", "full")
	if code, h := getHealth(t, p.addr); code != 200 || h.Status != "ok" {
		t.Fatalf("fresh proxy: %d %+v", code, h)
	}
	c := e.client(p)
	var code int
	var h health
	for i := 0; ; i++ {
		if got := do(t, c, "GET", fmt.Sprintf("%s/blob?i=%d", up.URL, i), ""); got.status != 200 {
			t.Fatalf("request %d answered %d: a client must still be answered", i, got.status)
		}
		// Every 20 requests, after the recorder had time to commit.
		if i%20 == 19 {
			if code, h = getHealth(t, p.addr); code != 200 {
				break
			}
		}
		if i > 2000 {
			t.Fatal("2000 recordings of 8 KiB and /healthz still ok on a 512 KiB disk")
		}
	}
	if code != http.StatusServiceUnavailable || h.Status != "degraded" || h.Reason != "recording_lost" || h.RecordingsLost == 0 || !strings.Contains(h.Error, "no space left on device") {
		t.Fatalf("/healthz answered %d %+v", code, h)
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	<-p.exited
	var ee *exec.ExitError
	if !errors.As(p.waitErr, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("serve exited with %v after recordings were lost, want exit 1", p.waitErr)
	}
	lines := strings.Split(strings.TrimRight(p.stderr.String(), "\n"), "\n")
	last := lines[len(lines)-1]
	m := regexp.MustCompile(`^cassetteproxy: (\d+) recordings were lost: answered but not committed to .*no space left on device.*cassette "full" is incomplete$`).FindStringSubmatch(last)
	if m == nil {
		t.Fatalf("last line of serve's output: %q", last)
	}
	if n, _ := strconv.Atoi(m[1]); n < h.RecordingsLost {
		t.Errorf("serve says %d lost, /healthz said %d before", n, h.RecordingsLost)
	}
	if out, errOut, code := e.cli("store", "check"); code != 0 {
		t.Fatalf("the store is not sound: %s %s", out, errOut)
	}
}

// storeWithEverything records a cassette with `run` (so the store holds a
// run record too) and exports it as a fixture, whose folder it returns.
func storeWithEverything(t *testing.T, e *env) (fixture string) {
	t.Helper()
	up := newUpstream(t, false, itemsHandler())
	if _, errOut, code := e.runIn(e.dir, []string{"CASSETTEPROXY_E2E_FETCH=" + up.URL + "/items", "CASSETTEPROXY_E2E_FETCH_COUNT=30"},
		"--mode", "record", "--cassette", "c", "--", os.Args[0]); code != 0 {
		t.Fatalf("run: %d %s", code, errOut)
	}
	fixture = filepath.Join(e.dir, "fixtures", "c")
	if _, errOut, code := e.cli("export", "--cassette", "c", "--out", fixture); code != 0 {
		t.Fatalf("export: %s", errOut)
	}
	return fixture
}

// boltLayout reads, from a store's bytes, its page size and the meta
// bbolt uses (the valid one with the highest txid): root page, freelist
// page. Layout as in lastTxID.
func boltLayout(t *testing.T, b []byte) (pageSize, root, freelist int) {
	t.Helper()
	pageSize = int(binenc.NativeEndian.Uint32(b[24:28]))
	var best uint64
	for _, off := range []int{0, pageSize} {
		m := b[off : off+80]
		if binenc.NativeEndian.Uint32(m[16:20]) != 0xED0CDAED {
			continue
		}
		if tx := binenc.NativeEndian.Uint64(m[64:72]); tx >= best {
			best = tx
			root = int(binenc.NativeEndian.Uint64(m[32:40]))
			freelist = int(binenc.NativeEndian.Uint64(m[48:56]))
		}
	}
	return pageSize, root, freelist
}

// TestDamagedStoreEveryCommand: a truncated or bit-flipped store makes
// every command that opens it print one line naming the file and the two
// commands that diagnose and salvage it, exit 1, and leave it unchanged.
func TestDamagedStoreEveryCommand(t *testing.T) {
	e := newEnv(t)
	fixture := storeWithEverything(t, e)
	good, err := os.ReadFile(e.db)
	if err != nil {
		t.Fatal(err)
	}
	runID := e.lastRun().RunID
	ps, root, freelist := boltLayout(t, good)
	flip := func(off int, mask byte) func([]byte) []byte {
		return func(b []byte) []byte { b[off] ^= mask; return b }
	}
	damages := []struct {
		name    string
		breakIt func([]byte) []byte
	}{
		{"truncated (head -c 20000)", func(b []byte) []byte { return b[:20000] }},
		{"both meta pages flipped", func(b []byte) []byte { return flip(ps+16+12, 0x04)(flip(16+12, 0x04)(b)) }},
		{"root page flipped", flip(root*ps+8, 0x40)},
		{"freelist page flipped", flip(freelist*ps, 0x01)},
	}
	commands := [][]string{
		{"serve", "--mode", "replay", "--cassette", "c", "--listen", "127.0.0.1:0"},
		{"serve", "--mode", "record", "--cassette", "c", "--listen", "127.0.0.1:0"},
		{"run", "--mode", "record", "--cassette", "c", "--", "true"},
		{"cassettes", "ls"},
		{"cassettes", "show", "c"},
		{"cassettes", "rm", "c"},
		{"runs", "ls"},
		{"runs", "show", runID},
		{"runs", "sweep"},
		{"export", "--cassette", "c", "--out", "EXPORT"},
		{"import", "--in", fixture, "--cassette", "again"},
		{"replay", fixture},
		{"monitor", filepath.Dir(fixture), "--out", "MONITOR"},
	}
	for _, d := range damages {
		t.Run(d.name, func(t *testing.T) {
			damaged := d.breakIt(bytes.Clone(good))
			if err := os.WriteFile(e.db, damaged, 0o600); err != nil {
				t.Fatal(err)
			}
			for _, args := range commands {
				args = append([]string(nil), args...)
				for i, a := range args {
					if a == "EXPORT" || a == "MONITOR" {
						args[i] = filepath.Join(t.TempDir(), strings.ToLower(a))
					}
				}
				var errOut string
				var code int
				if args[0] == "serve" {
					errOut, code = serveMustFail(t, e, args[1:]...)
				} else {
					_, errOut, code = e.cli(args...)
				}
				oneLineError(t, errOut, code, e.db+" is damaged", "cassetteproxy store check --db "+e.db, "cassetteproxy store compact --db "+e.db+" --out NEW")
				if got, _ := os.ReadFile(e.db); !bytes.Equal(got, damaged) {
					t.Fatalf("%v changed the damaged store", args)
				}
			}
			out, _, code := e.cli("store", "check")
			if code != 1 || !strings.HasPrefix(out, e.db+": ") {
				t.Errorf("store check: exit %d, output %q", code, out)
			}
			if got, _ := os.ReadFile(e.db); !bytes.Equal(got, damaged) {
				t.Fatal("store check changed the damaged store")
			}
		})
	}
	// What compact saves from a store whose metas fail their checksum is
	// everything, and the copy passes the check and serves.
	t.Run("compact salvages", func(t *testing.T) {
		damaged := damages[1].breakIt(bytes.Clone(good))
		os.WriteFile(e.db, damaged, 0o600)
		saved := filepath.Join(t.TempDir(), "saved.db")
		out, errOut, code := e.cli("store", "compact", "--out", saved)
		if code != 0 || !strings.Contains(out, "saved: cassette c: 30 interactions") {
			t.Fatalf("compact: %d\n%s%s", code, out, errOut)
		}
		if got, _ := os.ReadFile(e.db); !bytes.Equal(got, damaged) {
			t.Fatal("compact changed the source")
		}
		if out, errOut, code := e.cli("--db", saved, "store", "check"); code != 0 {
			t.Fatalf("the saved store: %s %s", out, errOut)
		}
		if out, _, code := e.cli("--db", saved, "cassettes", "show", "c"); code != 0 || !strings.Contains(out, "/items?i=30") {
			t.Fatalf("the saved cassette:\n%s", out)
		}
	})
}

// stalledBody sends a request head and part of its body, then waits for
// the answer's status line without sending the rest.
func stalledBody(t *testing.T, conn net.Conn, target string) string {
	t.Helper()
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"half\":", target, hostOf(target))
	// A bound on the wait, so a proxy that never answers fails the test
	// rather than hanging it; the answer is due after 300ms.
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	return strings.TrimSpace(line)
}

func hostOf(u string) string {
	p, _ := url.Parse(u)
	return p.Host
}

// TestBodyTimeout: a client that sends half a body and stalls gets 408
// once --body-timeout passes with no progress, over plain HTTP and inside
// an intercepted tunnel; nothing is forwarded or recorded.
func TestBodyTimeout(t *testing.T) {
	var hits atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1); io.Copy(io.Discard, r.Body) })
	plain := newUpstream(t, false, h)
	secure := newUpstream(t, true, h)
	e := newEnv(t)
	p := e.serve("--mode", "record", "--cassette", "bt", "--body-timeout", "300ms", "--upstream-ca", secure.caFile)

	t.Run("plain HTTP", func(t *testing.T) {
		conn, err := net.Dial("tcp", p.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if got := stalledBody(t, conn, plain.URL+"/upload"); got != "HTTP/1.1 408 Request Timeout" {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("inside a CONNECT tunnel", func(t *testing.T) {
		conn, err := net.Dial("tcp", p.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		host := hostOf(secure.URL)
		fmt.Fprintf(conn, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", host, host)
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("CONNECT: %v %v", resp, err)
		}
		pool := x509.NewCertPool()
		caPEM, _ := os.ReadFile(filepath.Join(e.home, "ca.pem"))
		pool.AppendCertsFromPEM(caPEM)
		tc := tls.Client(conn, &tls.Config{RootCAs: pool, ServerName: strings.Split(host, ":")[0]})
		if got := stalledBody(t, tc, secure.URL+"/upload"); got != "HTTP/1.1 408 Request Timeout" {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("on an HTTP/2 stream, its connection going on", func(t *testing.T) {
		c := e.protoClient(p, true)
		pr, pw := io.Pipe()
		defer pw.Close()
		req, _ := http.NewRequest("POST", secure.URL+"/upload", pr)
		req.ContentLength = 100
		go pw.Write([]byte(`{"half":`)) // then nothing more
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusRequestTimeout {
			t.Fatalf("got %s %d, want HTTP/2 408", resp.Proto, resp.StatusCode)
		}
		if got := do(t, c, "POST", secure.URL+"/whole-h2", `{"whole":true}`); got.status != 200 {
			t.Fatalf("the next stream: %d", got.status)
		}
	})
	// A body that arrives whole is untouched by the timeout.
	if got := do(t, e.client(p), "POST", plain.URL+"/whole", `{"whole":true}`); got.status != 200 {
		t.Fatalf("a whole body: %d", got.status)
	}
	p.stop()
	if n := hits.Load(); n != 2 {
		t.Fatalf("the upstream saw %d requests, want 2 (the whole ones): half a body was forwarded", n)
	}
	out, _, _ := e.cli("cassettes", "show", "bt")
	if strings.Contains(out, "/upload") || !strings.Contains(out, "/whole") {
		t.Fatalf("recorded:\n%s", out)
	}
}

// TestProxyAuth: beyond loopback the proxy refuses to start without
// --proxy-auth; with it, every request and CONNECT without the right
// credentials gets 407 and a Basic challenge, the right ones pass, the
// proxy's own /healthz stays open, and the password is in no log or store.
func TestProxyAuth(t *testing.T) {
	e := newEnv(t)
	errOut, code := serveMustFail(t, e, "--mode", "record", "--cassette", "a", "--listen", "0.0.0.0:0")
	oneLineError(t, errOut, code, "--listen 0.0.0.0:0", "--proxy-auth USER:PASS", "CASSETTEPROXY_PROXY_AUTH")

	const password = "pw-9f3c1e77d0"
	t.Setenv("CASSETTEPROXY_PROXY_AUTH", "agent:"+password) // the environment variable, as a deployment would set it
	up := newUpstream(t, false, itemsHandler())
	secure := newUpstream(t, true, itemsHandler())
	ready := filepath.Join(t.TempDir(), "ready")
	cmd := exec.Command(binary, "serve", "--mode", "record", "--cassette", "a", "--listen", "0.0.0.0:0", "--ready-file", ready, "--upstream-ca", secure.caFile)
	cmd.Env = append(os.Environ(), "CASSETTEPROXY_DB="+e.db, "CASSETTEPROXY_HOME="+e.home)
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proxyProc{t: t, cmd: cmd, stderr: stderr, exited: make(chan struct{})}
	go func() { p.waitErr = cmd.Wait(); close(p.exited) }()
	t.Cleanup(p.kill)
	for {
		if b, err := os.ReadFile(ready); err == nil && len(b) > 0 {
			_, port, _ := net.SplitHostPort(strings.TrimSpace(string(b)))
			p.addr = "127.0.0.1:" + port
			break
		}
		select {
		case <-p.exited:
			t.Fatalf("serve with --proxy-auth did not start: %v\n%s", p.waitErr, stderr)
		case <-time.After(10 * time.Millisecond):
		}
	}

	withCreds := func(user, pass string) *http.Client {
		c := e.client(p)
		u, _ := url.Parse("http://" + p.addr)
		if user != "" {
			u.User = url.UserPassword(user, pass)
		}
		c.Transport.(*http.Transport).Proxy = http.ProxyURL(u)
		return c
	}
	for _, tc := range []struct {
		name       string
		user, pass string
		want       int
	}{
		{"no credentials", "", "", 407},
		{"wrong password", "agent", "guess", 407},
		{"wrong user", "other", password, 407},
		{"right credentials", "agent", password, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := withCreds(tc.user, tc.pass)
			resp, err := c.Get(up.URL + "/items/1")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("plain HTTP: %d, want %d", resp.StatusCode, tc.want)
			}
			if tc.want == 407 && resp.Header.Get("Proxy-Authenticate") != `Basic realm="cassetteproxy"` {
				t.Errorf("Proxy-Authenticate %q", resp.Header.Get("Proxy-Authenticate"))
			}
			resp, err = c.Get(secure.URL + "/items/2")
			switch {
			case tc.want == 200 && (err != nil || resp.StatusCode != 200):
				t.Fatalf("HTTPS with the right credentials: %v %v", resp, err)
			case tc.want == 407 && (err == nil || !strings.Contains(err.Error(), "Proxy Authentication Required")):
				t.Fatalf("CONNECT without the right credentials: %v %v", resp, err)
			}
			if resp != nil {
				resp.Body.Close()
			}
		})
	}
	// Basic with a malformed value, or another scheme, is no credential.
	for _, value := range []string{"Basic !!!", "Bearer " + password, "Basic " + base64.StdEncoding.EncodeToString([]byte("agent:"+password+"x"))} {
		conn, err := net.Dial("tcp", p.addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "GET %s/items/3 HTTP/1.1\r\nHost: %s\r\nProxy-Authorization: %s\r\n\r\n", up.URL, hostOf(up.URL), value)
		line, _ := bufio.NewReader(conn).ReadString('\n')
		conn.Close()
		if !strings.Contains(line, "407") {
			t.Errorf("Proxy-Authorization %q: %q", value, line)
		}
	}
	if code, h := getHealth(t, p.addr); code != 200 || h.Status != "ok" {
		t.Fatalf("/healthz without credentials: %d %+v", code, h)
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	<-p.exited
	show, _, _ := e.cli("cassettes", "show", "a", "--json")
	if !strings.Contains(show, "/items/1") || !strings.Contains(show, "/items/2") {
		t.Fatalf("the authorized requests were not recorded:\n%s", show)
	}
	db, _ := os.ReadFile(e.db)
	encoded := base64.StdEncoding.EncodeToString([]byte("agent:" + password))
	for what, text := range map[string]string{"the log": stderr.String(), "the cassette": show, "the store file": string(db)} {
		if strings.Contains(text, password) || strings.Contains(text, encoded) {
			t.Errorf("the proxy password is in %s", what)
		}
	}
}

// TestProxyAuthOnLoopbackAndRun: --proxy-auth applies on loopback too, and
// `run` hands its child a proxy URL that carries the credentials.
func TestProxyAuthOnLoopbackAndRun(t *testing.T) {
	e := newEnv(t)
	up := newUpstream(t, false, itemsHandler())
	p := e.serve("--mode", "record", "--cassette", "l", "--proxy-auth", "u:p")
	resp, err := e.client(p).Get(up.URL + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 407 {
		t.Fatalf("loopback without credentials: %d", resp.StatusCode)
	}
	p.stop()
	_, errOut, code := e.runIn(e.dir, []string{"CASSETTEPROXY_E2E_FETCH=" + up.URL + "/items", "CASSETTEPROXY_E2E_FETCH_COUNT=2"},
		"--mode", "record", "--cassette", "l", "--proxy-auth", "u:p", "--", os.Args[0])
	if code != 0 {
		t.Fatalf("run with --proxy-auth: the child could not use the proxy: %d\n%s", code, errOut)
	}
	// The child's events reach the proxy, sent straight to CASSETTEPROXY_URL
	// (from this machine: no credentials needed) and through HTTP_PROXY
	// (which carries them).
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed")
	}
	script := `curl -sf --noproxy '*' -d '{"kind":"note","name":"direct"}' "$CASSETTEPROXY_URL/_cassetteproxy/v1/events" &&
curl -sf -d '{"kind":"note","name":"proxied"}' "$CASSETTEPROXY_URL/_cassetteproxy/v1/events"`
	if _, errOut, code := e.runIn(e.dir, nil, "--mode", "record", "--cassette", "l", "--proxy-auth", "u:p", "--", "sh", "-c", script); code != 0 {
		t.Fatalf("events under --proxy-auth: exit %d\n%s", code, errOut)
	}
	out, _, _ := e.cli("runs", "show", e.lastRun().RunID, "--json")
	if !strings.Contains(out, `"direct"`) || !strings.Contains(out, `"proxied"`) {
		t.Fatalf("the events are not in the run record:\n%s", out)
	}
}

// TestHomeWritableByOthersRefused: a --home others can write is refused
// with the chmod that fixes it; after running it, the proxy starts.
func TestHomeWritableByOthersRefused(t *testing.T) {
	e := newEnv(t)
	if _, errOut, code := e.cli("ca", "path"); code != 0 {
		t.Fatal(errOut)
	}
	for _, mode := range []os.FileMode{0o777, 0o720, 0o702} {
		if err := os.Chmod(e.home, mode); err != nil {
			t.Fatal(err)
		}
		errOut, code := serveMustFail(t, e, "--mode", "record", "--cassette", "x", "--listen", "127.0.0.1:0")
		oneLineError(t, errOut, code, e.home, fmt.Sprintf("mode %04o", mode), "chmod 700 "+e.home)
		_, errOut, code = e.cli("ca", "path")
		oneLineError(t, errOut, code, e.home, fmt.Sprintf("mode %04o", mode), "chmod 700 "+e.home)
	}
	fix := exec.Command("sh", "-c", "chmod 700 "+e.home)
	if out, err := fix.CombinedOutput(); err != nil {
		t.Fatalf("%s %v", out, err)
	}
	p := e.serve("--mode", "record", "--cassette", "x")
	p.stop()
}
