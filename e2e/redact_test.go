package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cassetteproxy/cassetteproxy/store"
)

// secretSamples cover every default of the redaction issue. Each value is
// unique so a leak names its sample.
var secretSamples = []struct{ kind, value string }{
	{"openai", "sk-abc123def456ghi789jkl012mno345pq"},
	{"openai-proj", "sk-proj-AbCdEf1234567890GhIjKlMnOp"},
	{"openai-test", "sk-test-0000"},
	{"anthropic", "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUv12"},
	{"aws", "AKIAIOSFODNN7EXAMPLE"},
	{"aws-session", "ASIAY34FZKBOKMUTVV7A"},
	{"github-ghp", "ghp_1234567890abcdefghijABCDEFGHIJ123456"},
	{"github-gho", "gho_16C7e42F292c6912E7710c838347Ae178B4a"},
	{"github-ghs", "ghs_abcdefghijklmnopqrstuvwxyz0123456789"},
	{"github-pat", "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRS"},
	{"slack", "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"},
	{"google", "AIzaSyA1234567890abcdefghijklmnopqrstu"},
	{"stripe-live", "sk_live_51H8abcdefghijklmnopqrstuvwx"},
	{"stripe-restricted", "rk_live_51H8zyxwvutsrqponmlkjihgfedc"},
	{"jwt", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"},
	{"bearer-opaque", "Bearer opaque-bearer-value-7f3a9c"}, // only "Bearer " makes it a secret
	{"pem", "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7pemsample\n-----END PRIVATE KEY-----"},
}

// secretFields are names whose values are scrubbed whatever they look like.
var secretFields = []string{"api_key", "apikey", "key", "token", "access_token", "refresh_token", "id_token",
	"client_secret", "password", "secret", "sig", "signature"}

// secretHeaders are header names scrubbed whatever their value.
var secretHeaders = []string{"Authorization", "Cookie", "X-Api-Key", "Api-Key", "X-Auth-Token",
	"X-Session-Token", "X-Client-Secret", "X-Db-Password", "X-Custom-Api-Key"}

// echoHandler answers with everything it was sent, so secrets appear in
// responses (headers and bodies) too.
func echoHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Decoded values, as a typical tool echoes them (URL-encoded text
		// inside a JSON string is caught by field name only: see README).
		var form url.Values
		var body string
		if r.Header.Get("Content-Type") == "application/x-www-form-urlencoded" {
			r.ParseForm()
			form = r.PostForm
		} else {
			b, _ := io.ReadAll(r.Body)
			body = string(b)
		}
		w.Header().Set("Set-Cookie", "session=sess-cookie-value-4242; HttpOnly")
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"headers": r.Header, "query": r.URL.Query(), "form": form, "body": body})
	})
}

// TestNoSecretReachesDiskLogsOrShow sends every sample through the proxy in
// headers, query, form and JSON bodies, over HTTP and HTTPS, and then scans
// the decoded store, `cassettes show --json` and the log lines.
func TestNoSecretReachesDiskLogsOrShow(t *testing.T) {
	e := newEnv(t)
	plain := newUpstream(t, false, echoHandler())
	secure := newUpstream(t, true, echoHandler())
	p := e.serve("--mode", "record", "--cassette", "leaky", "--upstream-ca", secure.caFile, "--log-format", "json")
	c := e.client(p)
	var leaks []string // every value that must not survive
	send := func(req *http.Request) {
		t.Helper()
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s %s: %d", req.Method, req.URL, resp.StatusCode)
		}
	}
	for _, up := range []*upstream{plain, secure} {
		for i, s := range secretSamples {
			leaks = append(leaks, s.value)
			q := url.Values{"q": {s.value}}
			// Header, query, form and JSON body.
			req, _ := http.NewRequest("GET", up.URL+"/h?"+q.Encode(), nil)
			if !strings.Contains(s.value, "\n") { // a header cannot carry a PEM block
				req.Header.Set("X-Note", "value "+s.value+" inline")
				req.Header.Set("Authorization", "Bearer "+s.value)
			}
			send(req)
			req, _ = http.NewRequest("POST", up.URL+"/form", strings.NewReader(url.Values{"note": {s.value}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			send(req)
			js, _ := json.Marshal(map[string]any{"messages": []any{map[string]string{"content": "use " + s.value}}, "n": i})
			req, _ = http.NewRequest("POST", up.URL+"/json", strings.NewReader(string(js)))
			req.Header.Set("Content-Type", "application/json")
			send(req)
		}
		for _, f := range secretFields {
			v := fmt.Sprintf("opaque-%s-value-%d", f, len(leaks))
			leaks = append(leaks, v)
			req, _ := http.NewRequest("GET", up.URL+"/f?"+url.Values{f: {v}}.Encode(), nil)
			send(req)
			req, _ = http.NewRequest("POST", up.URL+"/form", strings.NewReader(url.Values{f: {v}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			send(req)
			req, _ = http.NewRequest("POST", up.URL+"/json", strings.NewReader(fmt.Sprintf(`{"outer":{"list":[{%q:%q}]}}`, f, v)))
			req.Header.Set("Content-Type", "application/json")
			send(req)
		}
		for _, h := range secretHeaders {
			v := fmt.Sprintf("opaque-header-%s-%d", strings.ToLower(h), len(leaks))
			leaks = append(leaks, v)
			req, _ := http.NewRequest("GET", up.URL+"/hdr", nil)
			req.Header.Set(h, v)
			send(req)
		}
		// user:password in a URL.
		u, _ := url.Parse(up.URL + "/userinfo")
		u.User = url.UserPassword("alice", "url-password-hunter2")
		leaks = append(leaks, "url-password-hunter2")
		req, _ := http.NewRequest("GET", u.String(), nil)
		send(req)
	}
	leaks = append(leaks, "sess-cookie-value-4242")
	p.stop()

	showOut, errOut, code := e.cli("cassettes", "show", "leaky", "--json")
	if code != 0 {
		t.Fatalf("cassettes show: %s", errOut)
	}
	fixtureDir := filepath.Join(e.dir, "fixture")
	harFile := filepath.Join(e.dir, "leaky.har")
	for _, args := range [][]string{
		{"export", "--cassette", "leaky", "--out", fixtureDir},
		{"export", "--cassette", "leaky", "--format", "har", "--out", harFile},
	} {
		if _, errOut, code := e.cli(args...); code != 0 {
			t.Fatalf("%v: %s", args, errOut)
		}
	}
	exported := readTree(t, fixtureDir)
	harBytes, _ := os.ReadFile(harFile)
	st, err := store.Open(e.db, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	ins, err := st.Interactions("leaky")
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	decoded, _ := json.Marshal(ins)
	rawFile, _ := os.ReadFile(e.db)
	places := map[string]string{
		"decoded store":          string(decoded) + stringsOfBodies(ins),
		"cassettes show --json":  showOut,
		"proxy logs":             p.stderr.String(),
		"store file (raw bytes)": string(rawFile),
		"exported fixture":       exported,
		"exported HAR":           string(harBytes),
	}
	if !strings.Contains(showOut, "[REDACTED:") {
		t.Fatalf("cassettes show has no redaction markers at all:\n%.2000s", showOut)
	}
	for where, text := range places {
		for _, leak := range leaks {
			probe := strings.TrimPrefix(leak, "Bearer ")
			if i := strings.IndexByte(probe, '\n'); i > 0 { // PEM: look for its body line
				probe = strings.Split(leak, "\n")[1]
			}
			if strings.Contains(text, probe) || strings.Contains(text, url.QueryEscape(probe)) {
				t.Errorf("%s leaks %q", where, probe)
			}
		}
	}
}

// stringsOfBodies adds bodies as plain text (json.Marshal shows []byte as base64).
func stringsOfBodies(ins []store.Interaction) string {
	var b strings.Builder
	for _, in := range ins {
		b.Write(in.Request.Body)
		b.Write(in.Response.Body)
		for _, ev := range in.Response.Events {
			b.Write(ev.Data)
		}
	}
	return b.String()
}

// TestRotatedKeyStillMatches: a request recorded with one secret replays
// when sent with another (redacted values are compared after redaction).
func TestRotatedKeyStillMatches(t *testing.T) {
	e := newEnv(t)
	up := newUpstream(t, true, itemsHandler())
	p := e.serve("--mode", "record", "--cassette", "rot", "--upstream-ca", up.caFile)
	send := func(c *http.Client, key string) answer {
		req, _ := http.NewRequest("POST", up.URL+"/v1/chat?api_key="+key, strings.NewReader(`{"model":"m","api_key":"`+key+`","q":"hi"}`))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return answer{resp.StatusCode, resp.Header, b}
	}
	if rec := send(e.client(p), "sk-OLDkey1234567890abcdefABCDEF"); rec.status != 200 {
		t.Fatalf("record: %d %s", rec.status, rec.body)
	}
	p.stop()
	p = e.serve("--mode", "strict", "--cassette", "rot")
	got := send(e.client(p), "sk-NEWkey0987654321zyxwvuZYXWVU")
	if got.status != 200 || got.header.Get("X-Cassetteproxy-Blocked") != "" || !strings.Contains(string(got.body), `"path":"/v1/chat"`) {
		t.Fatalf("replay with a rotated key: %d %s", got.status, got.body)
	}
	if strings.Contains(string(got.body), "OLDkey") {
		t.Fatalf("replayed answer carries the recorded secret: %s", got.body)
	}
}

// readTree concatenates every file under dir.
func readTree(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		b.Write(data)
		return err
	})
	if err != nil || b.Len() == 0 {
		t.Fatalf("read exported fixture %s: %v", dir, err)
	}
	return b.String()
}
