package proxy

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cassetteproxy/cassetteproxy/match"
	"github.com/cassetteproxy/cassetteproxy/redact"
	"github.com/cassetteproxy/cassetteproxy/store"
)

// startTestFront serves two replaying tenants, a and b, each with its own
// cassette holding http:// and https:// answers that name the tenant.
func startTestFront(t *testing.T) (addr string, ca *CA) {
	t.Helper()
	ca, err := LoadOrCreateCA(filepath.Join(t.TempDir(), "home"))
	if err != nil {
		t.Fatal(err)
	}
	red, err := redact.New(redact.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var tenants []Tenant
	for _, user := range []string{"a", "b"} {
		var ins []store.Interaction
		for _, u := range []string{"http://tool.test/" + user, "https://tool.test/" + user, "http://tool.test/both", "https://tool.test/both"} {
			ins = append(ins, store.Interaction{Request: store.Request{Method: "GET", URL: u},
				Response: store.Response{Status: 200, Body: []byte("tenant " + user)}})
		}
		s, err := New(Config{Mode: ModeReplay, Cassette: "cassette-" + user, Interactions: ins, Rules: match.DefaultRules(),
			Redactor: red, CA: ca, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		tenants = append(tenants, Tenant{User: user, PasswordSum: sha256.Sum256([]byte("pw-" + user)), Server: s})
	}
	f, err := NewFront(FrontConfig{Tenants: tenants, CA: ca, Redactor: red})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go f.Serve(ln)
	t.Cleanup(func() { f.Shutdown(t.Context()) })
	return ln.Addr().String(), ca
}

func frontClient(addr string, ca *CA, user *url.Userinfo) *http.Client {
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	return &http.Client{Transport: &http.Transport{
		Proxy:           http.ProxyURL(&url.URL{Scheme: "http", Host: addr, User: user}),
		TLSClientConfig: &tls.Config{RootCAs: roots},
	}}
}

// TestFrontSelectsTheTenant: credentials pick the tenant, for a plain
// request and for every request inside a tunnel; anything else is 407,
// the CONNECT included.
func TestFrontSelectsTheTenant(t *testing.T) {
	addr, ca := startTestFront(t)
	tests := []struct {
		name string
		user *url.Userinfo
		want string // the body; "" for 407
	}{
		{"tenant a", url.UserPassword("a", "pw-a"), "tenant a"},
		{"tenant b", url.UserPassword("b", "pw-b"), "tenant b"},
		{"no credentials", nil, ""},
		{"a's user, b's password", url.UserPassword("a", "pw-b"), ""},
		{"unknown user", url.UserPassword("c", "pw-a"), ""},
		{"user only", url.User("a"), ""},
		{"empty password", url.UserPassword("a", ""), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := frontClient(addr, ca, tc.user)
			for _, scheme := range []string{"http", "https"} {
				resp, err := c.Get(scheme + "://tool.test/both")
				if tc.want == "" {
					switch {
					case scheme == "https" && (err == nil || !strings.Contains(err.Error(), "Proxy Authentication Required")):
						t.Errorf("CONNECT: %v", err)
					case scheme == "http" && (err != nil || resp.StatusCode != http.StatusProxyAuthRequired || resp.Header.Get("Proxy-Authenticate") != `Basic realm="cassetteproxy"`):
						t.Errorf("plain: %v %v", resp, err)
					}
					if resp != nil {
						resp.Body.Close()
					}
					continue
				}
				if err != nil {
					t.Fatalf("%s: %v", scheme, err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || string(body) != tc.want {
					t.Errorf("%s: %d %q, want %q", scheme, resp.StatusCode, body, tc.want)
				}
			}
		})
	}
}

// TestFrontTenantsNeverCross: two tenants at once, each asking for its own
// and the other's recording: its own is answered, the other's is a miss.
func TestFrontTenantsNeverCross(t *testing.T) {
	addr, ca := startTestFront(t)
	var wg sync.WaitGroup
	for _, pair := range [][2]string{{"a", "b"}, {"b", "a"}} {
		c := frontClient(addr, ca, url.UserPassword(pair[0], "pw-"+pair[0]))
		for range 10 {
			for _, scheme := range []string{"http", "https"} {
				wg.Go(func() {
					for path, want := range map[string]int{pair[0]: 200, pair[1]: 403} {
						resp, err := c.Get(scheme + "://tool.test/" + path)
						if err != nil {
							t.Error(err)
							return
						}
						resp.Body.Close()
						if resp.StatusCode != want {
							t.Errorf("tenant %s, %s://tool.test/%s: %d, want %d", pair[0], scheme, path, resp.StatusCode, want)
						}
					}
				})
			}
		}
	}
	wg.Wait()
}

// TestFrontOwnEndpoints: the health check (every tenant's), the metrics
// and the CA stay open; the events API needs a tenant.
func TestFrontOwnEndpoints(t *testing.T) {
	addr, _ := startTestFront(t)
	get := func(path string, user *url.Userinfo) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
		if path == EventsPath {
			req.Method = http.MethodPost
			req.Body = io.NopCloser(strings.NewReader(`{"kind":"note","name":"x"}`))
		}
		if user != nil {
			p, _ := user.Password()
			req.SetBasicAuth(user.Username(), p)
			req.Header.Set("Proxy-Authorization", req.Header.Get("Authorization"))
			req.Header.Del("Authorization")
		}
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	resp := get("/healthz", nil)
	var h struct {
		Status  string `json:"status"`
		Tenants []struct {
			User, Cassette, Mode string
			Interactions         int
		} `json:"tenants"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/healthz: %d %v", resp.StatusCode, err)
	}
	if h.Status != "ok" || len(h.Tenants) != 2 || h.Tenants[1].User != "b" || h.Tenants[1].Cassette != "cassette-b" || h.Tenants[1].Interactions != 4 {
		t.Fatalf("/healthz: %+v", h)
	}
	resp = get(MetricsPath, nil)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `cassette="cassette-a"`) || !strings.Contains(string(body), `cassette="cassette-b"`) {
		t.Fatalf("/metrics: %d\n%s", resp.StatusCode, body)
	}
	resp = get("/ca.pem", nil)
	body, _ = io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "BEGIN CERTIFICATE") {
		t.Fatalf("/ca.pem: %d", resp.StatusCode)
	}
	if resp = get(EventsPath, nil); resp.StatusCode != http.StatusProxyAuthRequired {
		t.Fatalf("events without credentials: %d", resp.StatusCode)
	}
	// With them the tenant's proxy answers: serve keeps no run, so no event is taken.
	if resp = get(EventsPath, url.UserPassword("a", "pw-a")); resp.StatusCode != http.StatusConflict {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("events as tenant a: %d %s", resp.StatusCode, body)
	}
}

func TestNewFrontRefuses(t *testing.T) {
	s, _ := startTestServer(t, ModeReplay, nil)
	authed, _ := startTestServer(t, ModeReplay, nil, func(c *Config) { c.ProxyAuth = "u:p" })
	for name, tenants := range map[string][]Tenant{
		"none":           nil,
		"same user":      {{User: "a", Server: s}, {User: "a", Server: s}},
		"no user":        {{Server: s}},
		"no server":      {{User: "a"}},
		"own proxy auth": {{User: "a", Server: authed}},
	} {
		if _, err := NewFront(FrontConfig{Tenants: tenants, CA: s.cfg.CA, Redactor: s.redactor}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestFrontWrongCredentialsInALoop: a client retrying wrong credentials
// as fast as it can shares nothing with the right ones (no lock, no delay
// on a failure): every request of the tenant beside it is answered.
func TestFrontWrongCredentialsInALoop(t *testing.T) {
	addr, ca := startTestFront(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, user := range []*url.Userinfo{url.UserPassword("a", "guess"), url.UserPassword("nobody", "pw-a"), nil} {
		c := frontClient(addr, ca, user)
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get("http://tool.test/a")
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusProxyAuthRequired {
					t.Errorf("wrong credentials answered %d", resp.StatusCode)
					return
				}
			}
		})
	}
	c := frontClient(addr, ca, url.UserPassword("a", "pw-a"))
	for i := range 50 {
		scheme := []string{"http", "https"}[i%2]
		resp, err := c.Get(scheme + "://tool.test/a")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "tenant a" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
	close(stop)
	wg.Wait()
}
