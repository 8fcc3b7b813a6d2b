package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// curl runs the real curl through the proxy, trusting the CA the way the
// README says: --cacert "$(cassetteproxy ca path)". It returns the response
// head and body as curl -i prints them.
func curl(t *testing.T, e *env, p *proxyProc, args ...string) (string, int) {
	t.Helper()
	path, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl is not installed")
	}
	full := append([]string{"-sS", "-i", "--proxy", "http://" + p.addr, "--cacert", filepath.Join(e.home, "ca.pem")}, args...)
	out, err := exec.Command(path, full...).CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	return string(out), code
}

// TestCurlQuickstart is the README quickstart with curl as the client, over
// HTTPS: record, replay with the upstream gone, and a blocked miss.
func TestCurlQuickstart(t *testing.T) {
	e := newEnv(t)
	up := newUpstream(t, true, itemsHandler())
	p := e.serve("--mode", "record", "--cassette", "demo", "--upstream-ca", up.caFile)
	recorded, code := curl(t, e, p, up.URL+"/v1/items")
	if code != 0 || !strings.Contains(recorded, "200") {
		t.Fatalf("curl through the recording proxy (exit %d):\n%s", code, recorded)
	}
	p.stop()
	up.Close()

	p = e.serve("--mode", "replay", "--cassette", "demo")
	replayed, code := curl(t, e, p, up.URL+"/v1/items")
	if code != 0 {
		t.Fatalf("curl replay (exit %d):\n%s", code, replayed)
	}
	// curl -i prints the CONNECT answer first; the body follows the last head.
	bodyOf := func(s string) string { return s[strings.LastIndex(s, "\r\n\r\n")+4:] }
	if bodyOf(replayed) == "" || bodyOf(replayed) != bodyOf(recorded) {
		t.Fatalf("replayed answer differs:\n%s\nrecorded:\n%s", replayed, recorded)
	}
	missed, _ := curl(t, e, p, up.URL+"/v1/other")
	// Over h2, curl prints lower-case header names.
	lower := strings.ToLower(missed)
	status := "HTTP/1.1 403"
	if v, _ := exec.Command("curl", "--version").Output(); strings.Contains(string(v), "HTTP2") {
		status = "HTTP/2 403" // a curl built with nghttp2 offers h2 and the proxy takes it
	}
	if !strings.Contains(missed, status) ||
		!strings.Contains(lower, "x-cassetteproxy-blocked: unrecorded_request") || !strings.Contains(missed, `"closest"`) {
		t.Fatalf("curl miss:\n%s", missed)
	}
}
