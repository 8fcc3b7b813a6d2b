package proxy

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func basic(userPass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(userPass))
}

func TestProxyAuthorization(t *testing.T) {
	s, _ := startTestServer(t, ModeReplay, nil, func(c *Config) { c.ProxyAuth = "agent:pa:ss" })
	tests := []struct {
		header string
		ok     bool
	}{
		{"", false},
		{basic("agent:pa:ss"), true},
		{"basic " + base64.StdEncoding.EncodeToString([]byte("agent:pa:ss")), true}, // the scheme is case-insensitive
		{"Basic  " + base64.StdEncoding.EncodeToString([]byte("agent:pa:ss")) + " ", true},
		{basic("agent:pa:s"), false},
		{basic("agent:pa:sss"), false},
		{basic("Agent:pa:ss"), false},
		{basic(""), false},
		{"Basic", false},
		{"Basic !!!not-base64", false},
		{"Bearer " + base64.StdEncoding.EncodeToString([]byte("agent:pa:ss")), false},
		{"agent:pa:ss", false},
	}
	for _, tc := range tests {
		r := httptest.NewRequest(http.MethodGet, "http://example.com/", nil)
		if tc.header != "" {
			r.Header.Set("Proxy-Authorization", tc.header)
		}
		if got := s.authorized(r); got != tc.ok {
			t.Errorf("Proxy-Authorization %q: authorized %v, want %v", tc.header, got, tc.ok)
		}
	}
}

// TestProxyAuthAnswers407ButNotForItsOwnEndpoints: the health check and
// the CA certificate stay reachable without credentials (probes and
// first-time clients have none; neither reveals a secret); the events API
// needs them from anywhere but this machine.
func TestProxyAuthAnswers407ButNotForItsOwnEndpoints(t *testing.T) {
	s, _ := startTestServer(t, ModeReplay, nil, func(c *Config) { c.ProxyAuth = "u:p" })
	tests := []struct {
		method, target string
		auth           string
		want           int
		remote         string // the client's address; default a host elsewhere
	}{
		{http.MethodConnect, "example.com:443", "", http.StatusProxyAuthRequired, ""},
		{http.MethodGet, "http://example.com/x", "", http.StatusProxyAuthRequired, ""},
		{http.MethodGet, "http://example.com/x", basic("u:wrong"), http.StatusProxyAuthRequired, ""},
		{http.MethodGet, "http://example.com/x", "", http.StatusProxyAuthRequired, "127.0.0.1:40000"}, // loopback or not
		{http.MethodGet, "http://example.com/x", basic("u:p"), http.StatusForbidden, ""},              // through: replay blocks the unrecorded request
		{http.MethodGet, "/healthz", "", http.StatusOK, ""},
		{http.MethodGet, "/ca.pem", "", http.StatusOK, ""},
		// The events API: open to the agent on this machine, not to others.
		{http.MethodPost, EventsPath, "", http.StatusProxyAuthRequired, ""},
		{http.MethodPost, EventsPath, basic("u:p"), http.StatusBadRequest, ""}, // through: an empty body is no event
		{http.MethodPost, EventsPath, "", http.StatusBadRequest, "127.0.0.1:40000"},
		{http.MethodPost, EventsPath, "", http.StatusBadRequest, "[::1]:40000"},
	}
	for _, tc := range tests {
		r := httptest.NewRequest(tc.method, tc.target, nil)
		if tc.method == http.MethodConnect {
			r.URL.Host, r.Host = tc.target, tc.target
		}
		if tc.auth != "" {
			r.Header.Set("Proxy-Authorization", tc.auth)
		}
		if tc.remote != "" {
			r.RemoteAddr = tc.remote
		}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		if w.Code != tc.want {
			t.Errorf("%s %s from %s: %d, want %d", tc.method, tc.target, r.RemoteAddr, w.Code, tc.want)
		}
		if tc.want == http.StatusProxyAuthRequired && w.Header().Get("Proxy-Authenticate") != `Basic realm="cassetteproxy"` {
			t.Errorf("%s %s: Proxy-Authenticate %q", tc.method, tc.target, w.Header().Get("Proxy-Authenticate"))
		}
	}
}

func TestNewRefusesMalformedProxyAuth(t *testing.T) {
	for auth, ok := range map[string]bool{"u:p": true, "u:": true, "nocolon": false, ":onlypassword": false} {
		s, _ := startTestServer(t, ModeReplay, nil)
		cfg := s.cfg
		cfg.ProxyAuth = auth
		if _, err := New(cfg); (err == nil) != ok {
			t.Errorf("ProxyAuth %q: %v", auth, err)
		}
	}
}

func TestHomeWritableByOthersIsRefused(t *testing.T) {
	tests := []struct {
		mode os.FileMode
		ok   bool
	}{
		{0o700, true},
		{0o750, true},
		{0o755, true},
		{0o770, false},
		{0o720, false},
		{0o707, false},
		{0o777, false},
	}
	for _, tc := range tests {
		home := filepath.Join(t.TempDir(), "my home")
		if err := os.Mkdir(home, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(home, tc.mode); err != nil {
			t.Fatal(err)
		}
		_, err := LoadOrCreateCA(home)
		if tc.ok != (err == nil) {
			t.Errorf("mode %04o: %v", tc.mode, err)
			continue
		}
		if err != nil && !strings.Contains(err.Error(), "chmod 700 '"+home+"'") {
			t.Errorf("mode %04o: the error does not give the chmod: %v", tc.mode, err)
		}
	}
}

func TestQuoteArg(t *testing.T) {
	for in, want := range map[string]string{
		"/home/me/.cassetteproxy": "/home/me/.cassetteproxy",
		"/tmp/my home":            "'/tmp/my home'",
		"it's":                    `'it'\''s'`,
		"":                        "''",
		"$HOME/x":                 "'$HOME/x'",
	} {
		if got := quoteArg(in); got != want {
			t.Errorf("quoteArg(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestHealthzReportsRecordingLoss: a recording the recorder refuses (here:
// it was closed under the proxy) is counted, and /healthz turns 503 with
// the reason while the client still got its answer.
func TestHealthzReportsRecordingLoss(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "fine") }))
	defer up.Close()
	s, c := startTestServer(t, ModeRecord, nil)
	health := func() (int, map[string]any) {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/healthz", nil))
		var h map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &h); err != nil {
			t.Fatal(err)
		}
		return w.Code, h
	}
	if code, h := health(); code != 200 || h["status"] != "ok" || h["recordings_lost"] != 0.0 {
		t.Fatalf("before: %d %v", code, h)
	}
	if err := s.cfg.Recorder.Close(); err != nil {
		t.Fatal(err)
	}
	resp, err := c.Get(up.URL + "/x")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "fine" {
		t.Fatalf("the client was not answered: %q", body)
	}
	// The recording is handed over after the answer: wait until it was.
	s.mu.Lock()
	s.closing = true // no new recording may start; the one above is counted in inflight
	s.mu.Unlock()
	s.inflight.Wait()
	code, h := health()
	if code != http.StatusServiceUnavailable || h["status"] != "degraded" || h["reason"] != "recording_lost" || h["recordings_lost"] != 1.0 ||
		!strings.Contains(h["error"].(string), "closed") {
		t.Fatalf("after a lost recording: %d %v", code, h)
	}
}
