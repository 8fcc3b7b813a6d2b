package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestRepeatedBodiesRecordedOnceReplayedWhole: a tool that answers the same
// large body again and again (one with a secret in it, one without) is
// recorded through the redaction memo and the store's shared bodies; replay
// serves every answer whole and redacted, and the secret is nowhere on disk.
func TestRepeatedBodiesRecordedOnceReplayedWhole(t *testing.T) {
	const secret = "sk-live-9f8e7d6c5b4a39281706f5e4d3c2b1a0"
	pad := strings.Repeat(`{"role":"assistant","content":"a repeated answer of a polled tool"},`, 400)
	bodies := map[string][]byte{
		"/secret": []byte(`{"items":[` + pad + `{"api_key":"` + secret + `"}]}`),
		"/clean":  []byte(`{"items":[` + pad + `{"name":"widget"}]}`),
	}
	up := newUpstream(t, true, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", fmt.Sprint(len(bodies[r.URL.Path]))) // not a stream: one body
		w.Write(bodies[r.URL.Path])
	}))
	e := newEnv(t)
	p := e.serve("--mode", "record", "--cassette", "polled", "--upstream-ca", up.caFile)
	c := e.client(p)
	paths := []string{"/secret", "/clean", "/secret", "/secret", "/clean", "/secret", "/clean", "/secret"}
	for _, path := range paths {
		if a := do(t, c, "GET", up.URL+path, ""); a.status != 200 || !bytes.Equal(a.body, bodies[path]) {
			t.Fatalf("record %s: status %d, %d bytes", path, a.status, len(a.body))
		}
	}
	p.stop()
	up.Close()

	out, _, code := e.cli("cassettes", "ls")
	if code != 0 || !strings.Contains(out, fmt.Sprint(len(paths))) {
		t.Fatalf("cassettes ls (exit %d):\n%s", code, out)
	}
	// The store is compressed: look at what it decodes to, every body whole.
	show, _, code := e.cli("cassettes", "show", "polled", "--json")
	if code != 0 || strings.Contains(show, secret) || strings.Count(show, "[REDACTED") < 5 {
		t.Fatalf("cassettes show --json (exit %d): secret kept or not every /secret answer redacted", code)
	}

	p = e.serve("--mode", "strict", "--cassette", "polled")
	c = e.client(p)
	var first []byte
	for i, path := range paths {
		a := do(t, c, "GET", up.URL+path, "")
		if a.status != 200 {
			t.Fatalf("replay %d %s: status %d: %s", i+1, path, a.status, a.body)
		}
		switch path {
		case "/clean":
			if !bytes.Equal(a.body, bodies[path]) {
				t.Fatalf("replay %d %s: body differs from the recorded one", i+1, path)
			}
		case "/secret":
			if bytes.Contains(a.body, []byte(secret)) || !bytes.Contains(a.body, []byte("[REDACTED")) {
				t.Fatalf("replay %d %s: secret not redacted: %.80s…", i+1, path, a.body[len(a.body)-120:])
			}
			if first == nil {
				first = a.body
			} else if !bytes.Equal(a.body, first) { // the memo's answer is the scan's answer
				t.Fatalf("replay %d %s: redacted body differs from the first one", i+1, path)
			}
			if !bytes.HasPrefix(a.body, bodies[path][:len(bodies[path])-len(secret)-10]) {
				t.Fatalf("replay %d %s: more than the secret changed", i+1, path)
			}
		}
	}
}
