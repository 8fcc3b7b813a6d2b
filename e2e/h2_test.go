package e2e

import (
	"bufio"
	"crypto/tls"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// h2Upstream is a TLS upstream that speaks HTTP/2 (and HTTP/1.1) and says
// which protocol each request came in on.
func h2Upstream(t *testing.T, h http.Handler) (*httptest.Server, string) {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caFile := filepath.Join(t.TempDir(), "upstream-ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	return srv, caFile
}

// protoClient is a client through the proxy that speaks HTTP/2 (h2 true)
// or HTTP/1.1 inside the tunnel.
func (e *env) protoClient(p *proxyProc, h2 bool) *http.Client {
	e.t.Helper()
	pool := e.caPool()
	proxyURL, _ := url.Parse("http://" + p.addr)
	tr := &http.Transport{
		Proxy:              http.ProxyURL(proxyURL),
		TLSClientConfig:    &tls.Config{RootCAs: pool},
		DisableCompression: true,
		ForceAttemptHTTP2:  h2,
	}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{} // HTTP/1.1 only
	}
	e.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// HTTP/2 clients are served HTTP/2 inside the tunnel in every mode, and an
// interaction is protocol-neutral: recorded over h2, replayed to HTTP/1.1,
// and the other way round.
func TestHTTP2ThroughTheTunnel(t *testing.T) {
	up, caFile := h2Upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"path":%q,"upstream_proto":%q,"got":%q}`, r.URL.Path, r.Proto, body)
	}))
	for _, recordH2 := range []bool{true, false} {
		t.Run(fmt.Sprintf("record_h2=%v", recordH2), func(t *testing.T) {
			e := newEnv(t)
			rec := e.serve("--mode", "record", "--cassette", "p", "--upstream-ca", caFile)
			c := e.protoClient(rec, recordH2)
			want := map[string]string{}
			var mu sync.Mutex
			var wg sync.WaitGroup
			for i := range 20 { // concurrent streams on one connection when h2
				wg.Add(1)
				go func() {
					defer wg.Done()
					path := fmt.Sprintf("/item/%d", i)
					resp, err := c.Post(up.URL+path, "application/json", strings.NewReader(fmt.Sprintf(`{"n":%d}`, i)))
					if err != nil {
						t.Error(err)
						return
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if recordH2 != (resp.ProtoMajor == 2) {
						t.Errorf("client spoke %s to the proxy, want h2=%v", resp.Proto, recordH2)
					}
					if !strings.Contains(string(b), `"upstream_proto":"HTTP/2.0"`) {
						t.Errorf("upstream not reached over HTTP/2: %s", b)
					}
					mu.Lock()
					want[path] = string(b)
					mu.Unlock()
				}()
			}
			wg.Wait()
			rec.stop()

			for _, replayH2 := range []bool{!recordH2, recordH2} {
				rep := e.serve("--mode", "strict", "--cassette", "p") // each answer once
				c := e.protoClient(rep, replayH2)
				for path, body := range want {
					var n int
					fmt.Sscanf(path, "/item/%d", &n)
					resp, err := c.Post(up.URL+path, "application/json", strings.NewReader(fmt.Sprintf(`{"n":%d}`, n)))
					if err != nil {
						t.Fatal(err)
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if string(b) != body || resp.StatusCode != 200 {
						t.Fatalf("replay over h2=%v of %s: %d %s, want %s", replayH2, path, resp.StatusCode, b, body)
					}
					if replayH2 != (resp.ProtoMajor == 2) {
						t.Errorf("replay answered over %s, want h2=%v", resp.Proto, replayH2)
					}
				}
				// A miss is blocked over h2 as over HTTP/1.1, with its reason.
				resp, err := c.Get(up.URL + "/never")
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.Header.Get("X-Cassetteproxy-Blocked") != "unrecorded_request" {
					t.Errorf("miss over h2=%v: %d %v", replayH2, resp.StatusCode, resp.Header)
				}
				rep.stop()
			}
		})
	}
}

// An SSE stream over HTTP/2 reaches the client event by event while the
// upstream is still writing, in record and in replay.
func TestHTTP2SSEStreamsUnbuffered(t *testing.T) {
	release := make(chan struct{})
	up, caFile := h2Upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		select { // the second event waits until the client has seen the first
		case <-release:
		case <-r.Context().Done():
			return
		}
		fmt.Fprint(w, "data: second\n\n")
	}))
	e := newEnv(t)
	rec := e.serve("--mode", "record", "--cassette", "sse", "--upstream-ca", caFile)
	read := func(c *http.Client, onFirst func()) string {
		resp, err := c.Get(up.URL + "/stream")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.ProtoMajor != 2 {
			t.Fatalf("not HTTP/2: %s", resp.Proto)
		}
		br := bufio.NewReader(resp.Body)
		line, err := br.ReadString('\n')
		if err != nil || line != "data: first\n" {
			t.Fatalf("first event: %q %v", line, err)
		}
		onFirst()
		rest, _ := io.ReadAll(br)
		return line + string(rest)
	}
	got := read(e.protoClient(rec, true), func() { close(release) })
	rec.stop()
	if got != "data: first\n\ndata: second\n\n" {
		t.Fatalf("recorded stream: %q", got)
	}
	rep := e.serve("--mode", "replay", "--cassette", "sse", "--replay-timing", "recorded")
	if again := read(e.protoClient(rep, true), func() {}); again != got {
		t.Fatalf("replayed stream: %q, want %q", again, got)
	}
}

// Python's httpx with http2=True (Debian's python3-httpx and python3-h2)
// negotiates HTTP/2 inside the tunnel, in record and in replay.
func TestHTTP2Httpx(t *testing.T) {
	py := "/usr/bin/python3" // Debian's interpreter, where python3-httpx installs
	if out, err := exec.Command(py, "-c", "import httpx, h2").CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("httpx with HTTP/2 is not installed (.ci/run installs python3-httpx python3-h2): %s", out)
		}
		t.Skip("python3-httpx / python3-h2 not installed")
	}
	up, caFile := h2Upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"upstream_proto":%q}`, r.Proto)
	}))
	e := newEnv(t)
	script := `import httpx, sys
with httpx.Client(http2=True, proxies=sys.argv[1], verify=sys.argv[2]) as c:
    r = c.get(sys.argv[3])
    print(r.http_version, r.status_code, r.text)`
	run := func(p *proxyProc) string {
		out, err := exec.Command(py, "-c", script, "http://"+p.addr, filepath.Join(e.home, "ca.pem"), up.URL+"/v1/models").CombinedOutput()
		if err != nil {
			t.Fatalf("httpx: %v\n%s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	rec := e.serve("--mode", "record", "--cassette", "httpx", "--upstream-ca", caFile)
	live := run(rec)
	rec.stop()
	if live != `HTTP/2 200 {"upstream_proto":"HTTP/2.0"}` {
		t.Fatalf("record: %s", live)
	}
	rep := e.serve("--mode", "strict", "--cassette", "httpx")
	if got := run(rep); got != live {
		t.Fatalf("replay: %s, want %s", got, live)
	}
}
