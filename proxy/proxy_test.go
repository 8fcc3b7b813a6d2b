package proxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cassetteproxy/cassetteproxy/internal/testeq"
	"github.com/cassetteproxy/cassetteproxy/match"
	"github.com/cassetteproxy/cassetteproxy/redact"
	"github.com/cassetteproxy/cassetteproxy/store"
)

// startTestServer runs a Server on loopback with the given cassette;
// tweaks adjust its Config before it starts.
func startTestServer(t testing.TB, mode Mode, ins []store.Interaction, tweaks ...func(*Config)) (*Server, *http.Client) {
	t.Helper()
	ca, err := LoadOrCreateCA(filepath.Join(t.TempDir(), "home"))
	if err != nil {
		t.Fatal(err)
	}
	red, err := redact.New(redact.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var rec *store.Recorder
	if PolicyFor(mode).Dials {
		st, err := store.Open(filepath.Join(t.TempDir(), "c.db"), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		rec = st.NewRecorder(store.RecorderOptions{})
	}
	cfg := Config{Mode: mode, Cassette: "t", Interactions: ins, Recorder: rec, Rules: match.DefaultRules(),
		Redactor: red, CA: ca, Logger: slog.New(slog.DiscardHandler)}
	for _, tweak := range tweaks {
		tweak(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Shutdown(t.Context()) })
	pu, _ := url.Parse("http://" + ln.Addr().String())
	return s, &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu)}}
}

// TestPanicAnswers502AndKeepsServing: goproxy does not recover; handle must.
func TestPanicAnswers502AndKeepsServing(t *testing.T) {
	ins := []store.Interaction{{Request: store.Request{Method: "GET", URL: "http://tool.test/a"},
		Response: store.Response{Status: 200, Body: []byte("ok")}}}
	s, c := startTestServer(t, ModeReplay, ins)
	s.onRequest = func(*http.Request) { panic("a handler bug") }
	resp, err := c.Get("http://tool.test/a")
	if err != nil {
		t.Fatalf("a panic dropped the connection: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("panic answered %d, want 502", resp.StatusCode)
	}
	s.onRequest = nil
	resp, err = c.Get("http://tool.test/a")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "ok" {
		t.Fatalf("after a panic the proxy answered %q", body)
	}
}

// TestUpstreamErrorIs502WithReason: an unreachable upstream is an answer, not a reset.
func TestUpstreamErrorIs502WithReason(t *testing.T) {
	_, c := startTestServer(t, ModeRecord, nil)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	resp, err := c.Get("http://" + addr + "/x?api_key=hunter2secret")
	if err != nil {
		t.Fatalf("upstream error dropped the connection: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("X-Cassetteproxy-Error") == "" {
		t.Fatalf("got %d %v", resp.StatusCode, resp.Header)
	}
	if !strings.Contains(string(body), "refused") {
		t.Errorf("502 body does not say why: %s", body)
	}
	if strings.Contains(string(body), "hunter2secret") || strings.Contains(resp.Header.Get("X-Cassetteproxy-Error"), "hunter2secret") {
		t.Errorf("502 echoes a secret: %s", body)
	}
}

// TestReplayHasNoDialer: in replay, the transports the server holds fail
// without touching the network, and a request sent through the proxy (an
// unrecorded GET, and an upgrade) never reaches a listening upstream.
func TestReplayHasNoDialer(t *testing.T) {
	var conns atomic.Int32
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	up.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	up.Start()
	defer up.Close()
	s, c := startTestServer(t, ModeReplay, nil)
	req, _ := http.NewRequest("GET", up.URL, nil)
	if _, err := s.upstream.RoundTrip(req); !errors.Is(err, errNoUpstream) {
		t.Fatalf("replay upstream RoundTrip: %v", err)
	}
	if _, err := s.gp.Tr.DialContext(t.Context(), "tcp", up.Listener.Addr().String()); !errors.Is(err, errNoUpstream) {
		t.Fatalf("goproxy's transport dialled in replay: %v", err)
	}
	for _, h := range []http.Header{{}, {"Connection": {"Upgrade"}, "Upgrade": {"websocket"}}} {
		req, _ := http.NewRequest("GET", up.URL+"/unrecorded", nil)
		req.Header = h
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("unrecorded request in replay: %d", resp.StatusCode)
		}
	}
	if n := conns.Load(); n != 0 {
		t.Fatalf("upstream accepted %d connections in replay mode", n)
	}
}

func TestEventReaderServesEventsThenBreak(t *testing.T) {
	for _, incomplete := range []bool{false, true} {
		r := newEventReader(t.Context(), []store.Event{{Data: []byte("data: a\n\n")}, {Data: []byte("data: b\n\n")}}, incomplete, 0)
		var reads []string
		buf := make([]byte, 64)
		var err error
		for {
			var n int
			n, err = r.Read(buf)
			if n > 0 {
				reads = append(reads, string(buf[:n]))
			}
			if err != nil {
				break
			}
		}
		if strings.Join(reads, "|") != "data: a\n\n|data: b\n\n" {
			t.Errorf("reads %q: want one per event", reads)
		}
		want := io.EOF
		if incomplete {
			want = io.ErrUnexpectedEOF
		}
		if err != want {
			t.Errorf("incomplete=%v: ended with %v, want %v", incomplete, err, want)
		}
	}
}

func TestDecodeBody(t *testing.T) {
	if _, err := decodeBody("gzip", []byte("not gzip")); err == nil {
		t.Error("garbage gzip decoded without error")
	}
	if b, err := decodeBody("identity", []byte("x")); err != nil || !bytes.Equal(b, []byte("x")) {
		t.Errorf("identity: %q %v", b, err)
	}
	if _, err := decodeBody("snappy", []byte("x")); err == nil {
		t.Error("unknown encoding accepted")
	}
}

func TestStripHop(t *testing.T) {
	h := http.Header{"Connection": {"X-Hop, close"}, "X-Hop": {"1"}, "Keep-Alive": {"5"}, "X-Keep": {"1"}, "Transfer-Encoding": {"chunked"}}
	stripHop(h, false)
	if len(h) != 1 || h.Get("X-Keep") != "1" {
		t.Fatalf("after stripHop: %v", h)
	}
	up := http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Keep-Alive": {"5"}, "Te": {"trailers"}, "Sec-Websocket-Key": {"k"}}
	stripHop(up, true)
	if want := (http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-Websocket-Key": {"k"}}); !testeq.Header(up, want) {
		t.Fatalf("after stripHop keeping the upgrade: %v, want %v", up, want)
	}
}

// TestStalledTunnelIsClosed: a client that opens a CONNECT tunnel and then
// sends garbage instead of a TLS handshake is cut off after TunnelIdle,
// not held forever; a working tunnel is unaffected.
func TestStalledTunnelIsClosed(t *testing.T) {
	_, c := startTestServer(t, ModeReplay, nil, func(cfg *Config) { cfg.TunnelIdle = 100 * time.Millisecond })
	proxyURL, _ := c.Transport.(*http.Transport).Proxy(nil)
	conn, err := net.Dial("tcp", proxyURL.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "CONNECT tool.test:443 HTTP/1.1\r\nHost: tool.test:443\r\n\r\n")
	br := bufio.NewReader(conn)
	if line, _ := br.ReadString('\n'); !strings.Contains(line, "200") {
		t.Fatalf("CONNECT answered %q", line)
	}
	conn.Write([]byte{0x16}) // the first byte of a TLS record, then nothing
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.Copy(io.Discard, br)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the proxy still held a stalled tunnel open after 10 s")
	}
}

// TestRequestHeadBound: a plain-HTTP request head over MaxHeaderBytes is
// answered 431; one just under it is served.
func TestRequestHeadBound(t *testing.T) {
	ins := []store.Interaction{{Request: store.Request{Method: "GET", URL: "http://tool.test/a"},
		Response: store.Response{Status: 200, Body: []byte("ok")}}}
	_, c := startTestServer(t, ModeReplay, ins)
	for _, tc := range []struct {
		size int
		want int
	}{{MaxHeaderBytes - 4096, http.StatusOK}, {MaxHeaderBytes + 8192, http.StatusRequestHeaderFieldsTooLarge}} {
		req, _ := http.NewRequest("GET", "http://tool.test/a", nil)
		req.Header.Set("X-Big", strings.Repeat("a", tc.size))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%d B header: %v", tc.size, err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%d B header: status %d, want %d", tc.size, resp.StatusCode, tc.want)
		}
	}
}

// TestTunnelRequestHeadBound: inside an intercepted tunnel, requests with
// large heads are served one after another on one connection (the bound
// is per head), while a client sending an endless head is cut off instead
// of being buffered, and the proxy goes on serving.
func TestTunnelRequestHeadBound(t *testing.T) {
	ins := []store.Interaction{{Request: store.Request{Method: "GET", URL: "https://tool.test/a"},
		Response: store.Response{Status: 200, Body: []byte("ok")}}}
	var ca *CA
	_, c := startTestServer(t, ModeReplay, ins, func(cfg *Config) { ca = cfg.CA })
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	proxyURL, _ := c.Transport.(*http.Transport).Proxy(nil)
	// tunnel opens a CONNECT tunnel by hand and speaks TLS in it: no
	// client library to retry on a new connection behind the test's back.
	tunnel := func() *tls.Conn {
		t.Helper()
		conn, err := net.Dial("tcp", proxyURL.Host)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		fmt.Fprintf(conn, "CONNECT tool.test:443 HTTP/1.1\r\nHost: tool.test:443\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("CONNECT: %v %v", resp, err)
		}
		tc := tls.Client(conn, &tls.Config{RootCAs: roots, ServerName: "tool.test"})
		tc.SetDeadline(time.Now().Add(30 * time.Second))
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}
		return tc
	}
	head := func(size int) string {
		return "GET /a HTTP/1.1\r\nHost: tool.test\r\nX-Big: " + strings.Repeat("a", size) + "\r\n\r\n"
	}

	tc := tunnel()
	br := bufio.NewReader(tc)
	for i := range 3 { // 3 x 100 KiB on one connection: more than the bound, in three heads
		if _, err := io.WriteString(tc, head(100<<10)); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d with a 100 KiB head: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || string(body) != "ok" {
			t.Fatalf("request %d with a 100 KiB head: %d %q", i, resp.StatusCode, body)
		}
	}

	tc = tunnel()
	io.WriteString(tc, "GET /a HTTP/1.1\r\nHost: tool.test\r\nX-Big: ")
	chunk := []byte(strings.Repeat("a", 16<<10))
	sent := 0
	var err error
	for ; sent < 64<<20; sent += len(chunk) {
		if _, err = tc.Write(chunk); err != nil {
			break
		}
	}
	if err == nil {
		t.Fatalf("the proxy took a %d MiB request head inside the tunnel without closing it", sent>>20)
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the proxy stopped reading but kept the tunnel open: %v", err)
	}

	tc = tunnel() // still serving
	io.WriteString(tc, head(10))
	if resp, err := http.ReadResponse(bufio.NewReader(tc), nil); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("after the endless head: %v %v", resp, err)
	}
}

// A blocked answer's fix says how to get the request recorded: by default
// into the store's cassette, in a fixture replay the fixture workflow.
func TestBlockedFixNamesTheRecordHint(t *testing.T) {
	for _, tc := range []struct{ hint, want string }{
		{"", "cassetteproxy serve --mode record --append --cassette t"},
		{"record the task again and export it to fixtures/x", "record the task again and export it to fixtures/x"},
	} {
		_, c := startTestServer(t, ModeReplay, nil, func(cfg *Config) { cfg.RecordHint = tc.hint })
		resp, err := c.Get("http://127.0.0.1:1/unrecorded")
		if err != nil {
			t.Fatal(err)
		}
		var ans struct{ Fix string }
		json.NewDecoder(resp.Body).Decode(&ans)
		resp.Body.Close()
		if !strings.HasSuffix(ans.Fix, tc.want) || (tc.hint != "" && strings.Contains(ans.Fix, "--cassette")) {
			t.Errorf("hint %q: fix %q", tc.hint, ans.Fix)
		}
	}
}

// The proxy's own /metrics: Prometheus text with the recordings lost (the
// shipped alert's metric) and the interactions, read at scrape time.
func TestMetricsEndpoint(t *testing.T) {
	ins := []store.Interaction{{Request: store.Request{Method: "GET", URL: "http://tool.test/a"}, Response: store.Response{Status: 200}}}
	s, _ := startTestServer(t, ModeReplay, ins)
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", MetricsPath, nil))
	body := rec.Body.String()
	for _, want := range []string{
		`cassetteproxy_recordings_lost_total{cassette="t",mode="replay"} 0`,
		`cassetteproxy_interactions{cassette="t",mode="replay"} 1`,
		"# TYPE cassetteproxy_recordings_lost_total counter",
	} {
		if rec.Code != 200 || !strings.Contains(body, want) {
			t.Errorf("GET /metrics: %d, no %q in\n%s", rec.Code, want, body)
		}
	}
}

// TestHealthzCounts: /healthz reports the cassette's interactions as they
// are now, not as they were at start: in record mode what the store holds
// (earlier interactions of an appended cassette included) and how many
// recordings this proxy committed; in live mode what it added; in replay
// the cassette's, with no recordings field.
func TestHealthzCounts(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.URL.Path) }))
	defer up.Close()
	recorded := func(n int) []store.Interaction {
		out := make([]store.Interaction, n)
		for i := range out {
			out[i] = store.Interaction{Key: fmt.Sprint(i), Request: store.Request{Method: "GET", URL: fmt.Sprintf("%s/old/%d", up.URL, i)},
				Response: store.Response{Status: 200, Body: []byte("old")}}
		}
		return out
	}
	cases := []struct {
		name      string
		mode      Mode
		stored    int // interactions of the cassette in the store before the proxy starts
		loaded    int // interactions the proxy is given (replay, live)
		requests  int // new requests, each forwarded or answered
		want      int
		committed int // -1: no recordings_committed field
	}{
		{"record, fresh", ModeRecord, 0, 0, 3, 3, 3},
		{"record, appended", ModeRecord, 5, 0, 2, 7, 2},
		{"live adds", ModeLive, 0, 4, 2, 6, 2},
		{"replay", ModeReplay, 0, 4, 2, 4, -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var rec *store.Recorder
			tweak := func(c *Config) {}
			if PolicyFor(tc.mode).Dials {
				st, err := store.Open(filepath.Join(t.TempDir(), "c.db"), store.Options{})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				if err := st.WriteCassette("t", recorded(tc.stored), true); err != nil {
					t.Fatal(err)
				}
				rec = st.NewRecorder(store.RecorderOptions{})
				tweak = func(c *Config) { c.Recorder = rec }
			}
			_, client := startTestServer(t, tc.mode, recorded(tc.loaded), tweak)
			for i := range tc.requests {
				resp, err := client.Get(fmt.Sprintf("%s/new/%d", up.URL, i))
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			if rec != nil {
				if err := rec.Flush(); err != nil {
					t.Fatal(err)
				}
			}
			req, _ := http.NewRequest("GET", up.URL, nil)
			proxyURL, _ := client.Transport.(*http.Transport).Proxy(req)
			resp, err := http.Get(proxyURL.String() + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			var h struct {
				Interactions int    `json:"interactions"`
				Committed    *int64 `json:"recordings_committed"`
			}
			err = json.NewDecoder(resp.Body).Decode(&h)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if h.Interactions != tc.want {
				t.Errorf("interactions %d, want %d", h.Interactions, tc.want)
			}
			switch {
			case tc.committed < 0 && h.Committed != nil:
				t.Errorf("recordings_committed %d in a mode that records nothing", *h.Committed)
			case tc.committed >= 0 && (h.Committed == nil || *h.Committed != int64(tc.committed)):
				t.Errorf("recordings_committed %v, want %d", h.Committed, tc.committed)
			}
		})
	}
}
