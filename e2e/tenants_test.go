package e2e

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// writeTenants writes a tenants file the way an operator should: 0600.
func writeTenants(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// tenantClient is e.client with the tenant's credentials in the proxy URL,
// as HTTPS_PROXY=http://USER:PASSWORD@HOST:PORT gives them.
func tenantClient(e *env, p *proxyProc, user, pass string) *http.Client {
	c := e.client(p)
	u, _ := url.Parse("http://" + p.addr)
	if user != "" {
		u.User = url.UserPassword(user, pass)
	}
	c.Transport.(*http.Transport).Proxy = http.ProxyURL(u)
	return c
}

type tenantsHealth struct {
	Status  string `json:"status"`
	Tenants []struct {
		User         string `json:"user"`
		Mode         string `json:"mode"`
		Cassette     string `json:"cassette"`
		Interactions int    `json:"interactions"`
	} `json:"tenants"`
}

// TestTenantsNeverCross: two agents with their own credentials record at
// once, over plain HTTP and HTTPS, through one proxy into two cassettes; a
// third without credentials gets 407. Replayed, each agent gets its own
// answers and is blocked on the other's: nothing crossed.
func TestTenantsNeverCross(t *testing.T) {
	e := newEnv(t)
	plain := newUpstream(t, false, itemsHandler())
	secure := newUpstream(t, true, itemsHandler())
	const passA, passB = "pw-a-5d1c0e9b7f", "pw-b-a3e8c2d640"
	sumB := sha256.Sum256([]byte(passB))
	tenants := func(mode string) string {
		return writeTenants(t, e.dir, mode+".yaml", fmt.Sprintf(`tenants:
  - user: agent-a
    password: %s
    cassette: cas-a
    mode: %s
  - user: agent-b
    password_sha256: %s
    cassette: cas-b
    mode: %s
`, passA, mode, hex.EncodeToString(sumB[:]), mode))
	}
	p := e.serve("--tenants", tenants("record"), "--upstream-ca", secure.caFile)

	agents := []struct{ user, pass, prefix string }{{"agent-a", passA, "a"}, {"agent-b", passB, "b"}}
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, 4*n+4)
	for _, ag := range agents {
		c := tenantClient(e, p, ag.user, ag.pass)
		for i := range n {
			for _, base := range []string{plain.URL, secure.URL} {
				wg.Go(func() {
					resp, err := c.Get(fmt.Sprintf("%s/%s/%d", base, ag.prefix, i))
					if err != nil {
						errs <- err
						return
					}
					resp.Body.Close()
					if resp.StatusCode != 200 {
						errs <- fmt.Errorf("%s %s/%s/%d: %d", ag.user, base, ag.prefix, i, resp.StatusCode)
					}
				})
			}
		}
	}
	// Meanwhile, an agent without credentials, and one with a wrong password.
	for _, cred := range [][2]string{{"", ""}, {"agent-a", passB}} {
		c := tenantClient(e, p, cred[0], cred[1])
		wg.Go(func() {
			resp, err := c.Get(plain.URL + "/x")
			if err != nil {
				errs <- err
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusProxyAuthRequired || resp.Header.Get("Proxy-Authenticate") != `Basic realm="cassetteproxy"` {
				errs <- fmt.Errorf("plain HTTP as %q: %d %q", cred[0], resp.StatusCode, resp.Header.Get("Proxy-Authenticate"))
			}
			if _, err := c.Get(secure.URL + "/x"); err == nil || !strings.Contains(err.Error(), "Proxy Authentication Required") {
				errs <- fmt.Errorf("CONNECT as %q: %v", cred[0], err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// An agent that sends its own proxy password to a tool: scrubbed.
	if a := do(t, tenantClient(e, p, "agent-a", passA), "GET", plain.URL+"/a/echo?note="+passA, ""); a.status != 200 {
		t.Fatalf("agent a sending its password: %d %s", a.status, a.body)
	}
	// curl's own way of giving proxy credentials.
	if out, code := curl(t, e, p, "--proxy-user", "agent-b:"+passB, secure.URL+"/b/curl"); code != 0 || !strings.Contains(out, `"path":"/b/curl"`) {
		t.Fatalf("curl --proxy-user (exit %d):\n%s", code, out)
	}

	resp, err := http.Get("http://" + p.addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	var h tenantsHealth
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if h.Status != "ok" || len(h.Tenants) != 2 || h.Tenants[0].User != "agent-a" || h.Tenants[0].Cassette != "cas-a" || h.Tenants[1].User != "agent-b" {
		t.Fatalf("/healthz: %+v", h)
	}
	p.stop()
	log := p.stderr.String()
	if !strings.Contains(log, "tenant=agent-a") || !strings.Contains(log, "tenant=agent-b") {
		t.Errorf("log lines do not name the tenant:\n%s", log)
	}

	for _, ag := range agents {
		other := "b"
		if ag.prefix == "b" {
			other = "a"
		}
		show, errOut, code := e.cli("cassettes", "show", "cas-"+ag.prefix, "--json")
		if code != 0 {
			t.Fatalf("cassettes show: %s", errOut)
		}
		if strings.Contains(show, passA) || strings.Contains(show, passB) {
			t.Errorf("a tenant password is in cassette cas-%s", ag.prefix)
		}
		if strings.Contains(show, "/"+other+"/") {
			t.Errorf("cassette cas-%s holds the other tenant's requests:\n%s", ag.prefix, show)
		}
		for i := range n {
			for _, base := range []string{plain.URL, secure.URL} {
				if !strings.Contains(show, fmt.Sprintf("%s/%s/%d", base, ag.prefix, i)) {
					t.Errorf("cassette cas-%s misses %s/%s/%d", ag.prefix, base, ag.prefix, i)
				}
			}
		}
	}
	db, _ := os.ReadFile(e.db)
	for _, pw := range []string{passA, passB} {
		for what, text := range map[string]string{"the log": log, "the store file": string(db)} {
			if strings.Contains(text, pw) || strings.Contains(text, base64.StdEncoding.EncodeToString([]byte("agent-a:"+pw))) ||
				strings.Contains(text, base64.StdEncoding.EncodeToString([]byte("agent-b:"+pw))) {
				t.Errorf("a tenant password is in %s", what)
			}
		}
	}

	// Replay, the upstreams gone: each agent sees its own, never the other's.
	plain.Close()
	secure.Close()
	p = e.serve("--tenants", tenants("replay"))
	for _, ag := range agents {
		other := "b"
		if ag.prefix == "b" {
			other = "a"
		}
		c := tenantClient(e, p, ag.user, ag.pass)
		for _, base := range []string{plain.URL, secure.URL} {
			own := do(t, c, "GET", fmt.Sprintf("%s/%s/3", base, ag.prefix), "")
			if own.status != 200 || !strings.Contains(string(own.body), `"path":"/`+ag.prefix+`/3"`) {
				t.Errorf("%s replaying its own %s: %d %s", ag.user, base, own.status, own.body)
			}
			theirs := do(t, c, "GET", fmt.Sprintf("%s/%s/3", base, other), "")
			if theirs.status != 403 || theirs.header.Get("X-Cassetteproxy-Blocked") != "unrecorded_request" {
				t.Errorf("%s asking for the other tenant's %s: %d %s", ag.user, base, theirs.status, theirs.body)
			}
		}
	}
	resp, err = tenantClient(e, p, "", "").Get(plain.URL + "/a/3")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusProxyAuthRequired {
		t.Errorf("replay without credentials: %d", resp.StatusCode)
	}
	p.stop()
}

// TestTenantsBadInput: a tenants file that cannot be right stops serve
// before it listens, with one line naming the file and the line, and the
// store untouched.
func TestTenantsBadInput(t *testing.T) {
	e := newEnv(t)
	const good = "  - user: a\n    password: pw-a\n    cassette: a\n    mode: record\n"
	tests := []struct {
		name, content string
		wants         []string
	}{
		{"duplicate user", "tenants:\n" + good + "  - user: a\n    password: pw-b\n    cassette: b\n    mode: replay\n", []string{":6:", `user "a" is already the tenant at line 2`}},
		{"empty password", "tenants:\n  - user: a\n    password: \"\"\n    cassette: a\n    mode: record\n", []string{":3:", "password: empty"}},
		{"short hash", "tenants:\n  - user: a\n    password_sha256: abc123\n    cassette: a\n    mode: record\n", []string{":3:", "64 hex digits"}},
		{"hash not hex", "tenants:\n  - user: a\n    password_sha256: " + strings.Repeat("zz", 32) + "\n    cassette: a\n    mode: record\n", []string{":3:", "64 hex digits"}},
		{"unknown mode", "tenants:\n  - user: a\n    password: pw\n    cassette: a\n    mode: recrod\n", []string{":5:", `unknown mode "recrod"`}},
		{"unknown key", "tenants:\n  - user: a\n    pasword: pw\n    cassette: a\n    mode: record\n", []string{":3:", `unknown key "pasword"`}},
		{"no password", "tenants:\n  - user: a\n    cassette: a\n    mode: record\n", []string{":2:", "no password"}},
		{"same cassette", "tenants:\n" + good + "  - user: b\n    password: pw-b\n    cassette: a\n    mode: replay\n", []string{":6:", `cassette "a" is already`}},
		{"not yaml", "tenants: [\n", []string{"tenants.yaml"}},
		{"no tenants", "tenants: []\n", []string{":1:", "at least one tenant"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeTenants(t, t.TempDir(), "tenants.yaml", tc.content)
			errOut, code := serveMustFail(t, e, "--tenants", path, "--listen", "127.0.0.1:0")
			oneLineError(t, errOut, code, append([]string{path}, tc.wants...)...)
			if strings.Contains(errOut, "pw-") {
				t.Errorf("the error shows a password: %s", errOut)
			}
		})
	}
	path := writeTenants(t, e.dir, "tenants.yaml", "tenants:\n"+good)
	t.Run("readable by others", func(t *testing.T) {
		open := writeTenants(t, t.TempDir(), "open.yaml", "tenants:\n"+good)
		if err := os.Chmod(open, 0o640); err != nil {
			t.Fatal(err)
		}
		errOut, code := serveMustFail(t, e, "--tenants", open, "--listen", "127.0.0.1:0")
		oneLineError(t, errOut, code, open, "chmod 600")
	})
	for _, flag := range [][]string{{"--proxy-auth", "u:p"}, {"--mode", "record"}, {"--cassette", "x"}} {
		t.Run("with "+flag[0], func(t *testing.T) {
			errOut, code := serveMustFail(t, e, append([]string{"--tenants", path, "--listen", "127.0.0.1:0"}, flag...)...)
			oneLineError(t, errOut, code, "--tenants and "+flag[0])
		})
	}
	if _, err := os.Stat(e.db); err == nil {
		out, _, _ := e.cli("cassettes", "ls")
		if strings.Contains(out, "a ") {
			t.Errorf("bad input created a cassette:\n%s", out)
		}
	}
}

// TestTenantsListenBeyondLoopback: every request needs a tenant's
// credentials, so serve --tenants may listen on every address.
func TestTenantsListenBeyondLoopback(t *testing.T) {
	e := newEnv(t)
	path := writeTenants(t, e.dir, "tenants.yaml", "tenants:\n  - {user: a, password: pw-a-0123456789, cassette: a, mode: record}\n")
	p := e.serve("--tenants", path, "--listen", "0.0.0.0:0")
	_, port, err := net.SplitHostPort(p.addr)
	if err != nil {
		t.Fatal(err)
	}
	p.addr = "127.0.0.1:" + port
	resp, err := tenantClient(e, p, "", "").Get("http://example.invalid/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusProxyAuthRequired {
		t.Fatalf("no credentials: %d", resp.StatusCode)
	}
	p.stop()
}
