package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// The test binary doubles as a load client: with CASSETTEPROXY_E2E_LOAD=N
// it makes N GETs of CASSETTEPROXY_E2E_LOAD_URL through $HTTP_PROXY on one
// kept-alive connection, and writes the mean nanoseconds per request of
// that loop to CASSETTEPROXY_E2E_OUT.
func init() {
	n, _ := strconv.Atoi(os.Getenv("CASSETTEPROXY_E2E_LOAD"))
	if n <= 0 {
		return
	}
	proxyURL, err := url.Parse(os.Getenv("HTTP_PROXY"))
	if err != nil {
		os.Exit(2)
	}
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}}
	get := func() {
		resp, err := c.Get(os.Getenv("CASSETTEPROXY_E2E_LOAD_URL"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "load client:", err)
			os.Exit(2)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			fmt.Fprintln(os.Stderr, "load client: status", resp.StatusCode)
			os.Exit(2)
		}
	}
	get() // the connection
	start := time.Now()
	for i := 0; i < n; i++ {
		get()
	}
	per := time.Since(start).Nanoseconds() / int64(n)
	if err := os.WriteFile(os.Getenv("CASSETTEPROXY_E2E_OUT"), []byte(strconv.FormatInt(per, 10)), 0o644); err != nil {
		os.Exit(2)
	}
	os.Exit(0)
}

// benchReplay runs `cassetteproxy replay ARGS` and fails the benchmark
// unless the fixture passed.
func benchReplay(b *testing.B, dir string, args ...string) {
	cmd := exec.Command(binary, append([]string{"replay"}, args...)...)
	cmd.Env = append(os.Environ(), "CASSETTEPROXY_DB="+filepath.Join(dir, "cassettes.db"), "CASSETTEPROXY_HOME="+filepath.Join(dir, "home"))
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("replay %v: %v\n%s", args, err, out)
	}
}

// BenchmarkReplayStart: the wall time of a whole `cassetteproxy replay`
// whose command does nothing (`true`), without and with --isolate: the
// difference is what making the namespace adds to a replay's start.
//
//	go test -run XXX -bench ReplayStart -benchtime 50x ./e2e/
func BenchmarkReplayStart(b *testing.B) {
	dir := b.TempDir()
	fx := isolatedFixture(b, dir, "start", "true")
	benchReplay(b, dir, fx, "--isolate", "off") // the CA and the store exist before timing
	for _, iso := range []string{"off", "on"} {
		b.Run("isolate-"+iso, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				benchReplay(b, dir, fx, "--isolate", iso)
			}
		})
	}
}

// BenchmarkProxiedRequest: what one request through the proxy costs a
// client inside the command, without and with --isolate (the proxy serves
// the namespace's listening socket itself: there is no forwarder). The
// client times its own loop of b.N requests: ns/req.
//
//	go test -run XXX -bench ProxiedRequest -benchtime 20000x ./e2e/
func BenchmarkProxiedRequest(b *testing.B) {
	dir := b.TempDir()
	out := filepath.Join(dir, "ns-per-request")
	fx := isolatedFixture(b, dir, "load", os.Args[0])
	for _, iso := range []string{"off", "on"} {
		b.Run("isolate-"+iso, func(b *testing.B) {
			input, _ := json.Marshal(map[string]any{"fixture_id": "load", "command": []string{os.Args[0]}, "mode": "replay",
				"env": map[string]string{"CASSETTEPROXY_E2E_LOAD": strconv.Itoa(b.N), "CASSETTEPROXY_E2E_LOAD_URL": "http://api.example.test/v1/tool", "CASSETTEPROXY_E2E_OUT": out}})
			if err := os.WriteFile(filepath.Join(fx, "input.json"), input, 0o644); err != nil {
				b.Fatal(err)
			}
			benchReplay(b, dir, fx, "--isolate", iso)
			per, err := os.ReadFile(out)
			ns, _ := strconv.ParseFloat(string(per), 64)
			if err != nil || ns <= 0 {
				b.Fatalf("no timing from the client: %v %q", err, per)
			}
			b.ReportMetric(ns, "ns/req")
		})
	}
}
