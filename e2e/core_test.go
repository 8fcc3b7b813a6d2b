package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
)

// itemsHandler is a small tool API: deterministic answers per path and body.
func itemsHandler() http.Handler {
	var mu sync.Mutex
	counter := map[string]int{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		counter[r.URL.Path]++
		n := counter[r.URL.Path]
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Tool", "items")
		switch r.URL.Path {
		case "/counter": // each call answers differently: order of repeats is visible
			fmt.Fprintf(w, `{"call":%d}`, n)
		case "/gzip":
			w.Header().Set("Content-Encoding", "gzip")
			gz := gzip.NewWriter(w)
			fmt.Fprintf(gz, `{"compressed":"gzip","pad":%q}`, strings.Repeat("g", 2000))
			gz.Close()
		case "/br":
			w.Header().Set("Content-Encoding", "br")
			br := brotli.NewWriter(w)
			fmt.Fprintf(br, `{"compressed":"br","pad":%q}`, strings.Repeat("b", 2000))
			br.Close()
		default:
			fmt.Fprintf(w, `{"method":%q,"path":%q,"query":%q,"body":%q}`, r.Method, r.URL.Path, r.URL.RawQuery, body)
		}
	})
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func do(t *testing.T, c *http.Client, method, url string, body string) answer {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return answer{resp.StatusCode, resp.Header, b}
}

// TestRecordThenReplayByteIdentical records over plain HTTP and HTTPS, stops
// the upstream, and replays: same status, tool headers and body, to the byte.
func TestRecordThenReplayByteIdentical(t *testing.T) {
	for _, tlsOn := range []bool{false, true} {
		t.Run(map[bool]string{false: "http", true: "https"}[tlsOn], func(t *testing.T) {
			e := newEnv(t)
			up := newUpstream(t, tlsOn, itemsHandler())
			args := []string{"--mode", "record", "--cassette", "demo"}
			if tlsOn {
				args = append(args, "--upstream-ca", up.caFile)
			}
			p := e.serve(args...)
			c := e.client(p)
			reqs := []struct{ method, path, body string }{
				{"GET", "/v1/items?b=2&a=1", ""},
				{"POST", "/v1/items", `{"name":"widget","tags":["x","y"]}`},
				{"GET", "/gzip", ""},
			}
			recorded := make([]answer, len(reqs))
			for i, r := range reqs {
				recorded[i] = do(t, c, r.method, up.URL+r.path, r.body)
				if recorded[i].status != 200 {
					t.Fatalf("record %s %s: status %d: %s", r.method, r.path, recorded[i].status, recorded[i].body)
				}
			}
			p.stop()
			up.Close()

			p = e.serve("--mode", "replay", "--cassette", "demo")
			c = e.client(p)
			for i, r := range reqs {
				got := do(t, c, r.method, up.URL+r.path, r.body)
				want := recorded[i]
				if got.status != want.status || got.header.Get("X-Tool") != "items" || got.header.Get("Content-Type") != want.header.Get("Content-Type") {
					t.Errorf("replay %s %s: status %d headers %v, want %d %v", r.method, r.path, got.status, got.header, want.status, want.header)
				}
				wantBody := want.body
				if r.path == "/gzip" { // the client saw gzip bytes live; replay serves them decoded
					wantBody = gunzip(t, want.body)
				}
				if !bytes.Equal(got.body, wantBody) {
					t.Errorf("replay %s %s: body\n%q\nwant\n%q", r.method, r.path, got.body, wantBody)
				}
			}
		})
	}
}

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	return out
}

// TestCompressedUpstreamBodies: gzip and br answers pass to the client
// untouched in record mode, are stored decoded, and replay as those bytes.
func TestCompressedUpstreamBodies(t *testing.T) {
	e := newEnv(t)
	up := newUpstream(t, true, itemsHandler())
	p := e.serve("--mode", "record", "--cassette", "enc", "--upstream-ca", up.caFile)
	c := e.client(p)
	for _, enc := range []string{"gzip", "br"} {
		req, _ := http.NewRequest("GET", up.URL+"/"+enc, nil)
		req.Header.Set("Accept-Encoding", enc)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.Header.Get("Content-Encoding") != enc {
			t.Fatalf("record %s: client got Content-Encoding %q, want the upstream's %q", enc, resp.Header.Get("Content-Encoding"), enc)
		}
		if bytes.Contains(raw, []byte(`"compressed"`)) {
			t.Fatalf("record %s: client got decoded bytes; the proxy must pass the upstream's bytes", enc)
		}
	}
	p.stop()

	out, errOut, code := e.cli("cassettes", "show", "enc", "--json")
	if code != 0 || !strings.Contains(out, `"compressed": "gzip"`) && !strings.Contains(out, `"compressed":"gzip"`) {
		t.Fatalf("cassettes show: stored body not decoded (exit %d):\n%s%s", code, out, errOut)
	}
	p = e.serve("--mode", "replay", "--cassette", "enc")
	c = e.client(p)
	for _, enc := range []string{"gzip", "br"} {
		got := do(t, c, "GET", up.URL+"/"+enc, "")
		var v map[string]string
		if err := json.Unmarshal(got.body, &v); err != nil || v["compressed"] != enc {
			t.Errorf("replay %s: body %q (Content-Encoding %q), want the decoded JSON", enc, got.body, got.header.Get("Content-Encoding"))
		}
		if got.header.Get("Content-Length") != fmt.Sprint(len(got.body)) {
			t.Errorf("replay %s: Content-Length %q for %d bytes", enc, got.header.Get("Content-Length"), len(got.body))
		}
	}
}

// TestBlockedRequestsNeverReachUpstream: in replay and strict, an
// unrecorded GET and POST get a blocked answer with the closest match, and
// the upstream (still running) accepts zero connections.
func TestBlockedRequestsNeverReachUpstream(t *testing.T) {
	for _, tlsOn := range []bool{false, true} {
		for _, mode := range []string{"replay", "strict"} {
			t.Run(fmt.Sprintf("%s/tls=%v", mode, tlsOn), func(t *testing.T) {
				e := newEnv(t)
				up := newUpstream(t, tlsOn, itemsHandler())
				args := []string{"--mode", "record", "--cassette", "b"}
				if tlsOn {
					args = append(args, "--upstream-ca", up.caFile)
				}
				p := e.serve(args...)
				do(t, e.client(p), "GET", up.URL+"/v1/items?page=1", "")
				do(t, e.client(p), "POST", up.URL+"/v1/items", `{"name":"a"}`)
				p.stop()
				before := up.conns.Load()

				p = e.serve("--mode", mode, "--cassette", "b")
				c := e.client(p)
				got := do(t, c, "GET", up.URL+"/v1/items?page=2", "")
				if got.status != 403 || got.header.Get("X-Cassetteproxy-Blocked") != "unrecorded_request" {
					t.Fatalf("unrecorded GET: %d %q %s", got.status, got.header.Get("X-Cassetteproxy-Blocked"), got.body)
				}
				var a struct {
					Reason  string
					Request struct{ Method, URL string }
					Closest *struct {
						URL         string
						Differences []struct{ Field, Recorded, Requested string }
					}
				}
				if err := json.Unmarshal(got.body, &a); err != nil {
					t.Fatalf("blocked body is not JSON: %v\n%s", err, got.body)
				}
				if a.Reason != "unrecorded_request" || a.Request.Method != "GET" || a.Closest == nil {
					t.Fatalf("blocked answer lacks reason, request or closest: %s", got.body)
				}
				if !strings.Contains(string(got.body), "page") {
					t.Errorf("closest-miss differences do not name the query key page: %s", got.body)
				}
				got = do(t, c, "POST", up.URL+"/v1/items", `{"name":"b"}`)
				if got.status != 403 || got.header.Get("X-Cassetteproxy-Blocked") != "mutation_blocked" {
					t.Fatalf("unrecorded POST: %d %q %s", got.status, got.header.Get("X-Cassetteproxy-Blocked"), got.body)
				}
				if !strings.Contains(string(got.body), "name") {
					t.Errorf("closest-miss differences do not name the body field: %s", got.body)
				}
				// The recorded ones still answer.
				if got := do(t, c, "GET", up.URL+"/v1/items?page=1", ""); got.status != 200 {
					t.Fatalf("recorded GET in %s: %d %s", mode, got.status, got.body)
				}
				if n := up.conns.Load() - before; n != 0 {
					t.Fatalf("%s mode opened %d connections to the upstream; want 0", mode, n)
				}
			})
		}
	}
}

// TestRepeatsInOrderAndExhaustion: the nth identical request gets the nth
// recorded answer; past the last, replay repeats it and strict blocks.
func TestRepeatsInOrderAndExhaustion(t *testing.T) {
	e := newEnv(t)
	up := newUpstream(t, false, itemsHandler())
	p := e.serve("--mode", "record", "--cassette", "rep")
	c := e.client(p)
	for i := 1; i <= 3; i++ {
		if got := do(t, c, "GET", up.URL+"/counter", ""); string(got.body) != fmt.Sprintf(`{"call":%d}`, i) {
			t.Fatalf("record call %d: %s", i, got.body)
		}
	}
	p.stop()

	p = e.serve("--mode", "replay", "--cassette", "rep")
	c = e.client(p)
	for i, want := range []string{`{"call":1}`, `{"call":2}`, `{"call":3}`, `{"call":3}`} {
		if got := do(t, c, "GET", up.URL+"/counter", ""); got.status != 200 || string(got.body) != want {
			t.Fatalf("replay call %d: %d %s, want %s", i+1, got.status, got.body, want)
		}
	}
	p.stop()

	p = e.serve("--mode", "strict", "--cassette", "rep")
	c = e.client(p)
	for i := 1; i <= 3; i++ {
		if got := do(t, c, "GET", up.URL+"/counter", ""); string(got.body) != fmt.Sprintf(`{"call":%d}`, i) {
			t.Fatalf("strict call %d: %s", i, got.body)
		}
	}
	got := do(t, c, "GET", up.URL+"/counter", "")
	if got.status != 403 || got.header.Get("X-Cassetteproxy-Blocked") != "exhausted" {
		t.Fatalf("strict 4th call: %d %q %s, want 403 exhausted", got.status, got.header.Get("X-Cassetteproxy-Blocked"), got.body)
	}
}

// TestLiveMode: recorded requests replay, unrecorded GETs go upstream and
// are added, unrecorded POSTs are blocked.
func TestLiveMode(t *testing.T) {
	e := newEnv(t)
	up := newUpstream(t, false, itemsHandler())
	p := e.serve("--mode", "record", "--cassette", "live")
	do(t, e.client(p), "GET", up.URL+"/counter", "")
	p.stop()

	p = e.serve("--mode", "live", "--cassette", "live")
	c := e.client(p)
	if got := do(t, c, "GET", up.URL+"/counter", ""); string(got.body) != `{"call":1}` {
		t.Fatalf("live: recorded GET not replayed: %s", got.body)
	}
	before := up.conns.Load()
	if got := do(t, c, "GET", up.URL+"/new", ""); got.status != 200 {
		t.Fatalf("live: unrecorded GET not forwarded: %d %s", got.status, got.body)
	}
	if up.conns.Load() == before {
		t.Fatalf("live: unrecorded GET did not reach upstream")
	}
	if got := do(t, c, "POST", up.URL+"/new", `{"x":1}`); got.header.Get("X-Cassetteproxy-Blocked") != "mutation_blocked" {
		t.Fatalf("live: unrecorded POST: %d %s", got.status, got.body)
	}
	p.stop()
	out, _, _ := e.cli("cassettes", "ls", "--json")
	var infos []struct {
		Name         string
		Interactions int
	}
	json.Unmarshal([]byte(out), &infos)
	if len(infos) != 1 || infos[0].Interactions != 2 {
		t.Fatalf("live: cassette should hold the recorded and the added GET: %s", out)
	}
}

// TestStrictRefusesUnknownHosts: strict refuses CONNECT to a host the
// cassette never saw, with a real answer.
func TestStrictRefusesUnknownHosts(t *testing.T) {
	e := newEnv(t)
	up := newUpstream(t, true, itemsHandler())
	p := e.serve("--mode", "record", "--cassette", "s", "--upstream-ca", up.caFile)
	do(t, e.client(p), "GET", up.URL+"/a", "")
	p.stop()
	p = e.serve("--mode", "strict", "--cassette", "s")
	_, err := e.client(p).Get("https://never-seen.example.test/")
	if err == nil || !strings.Contains(err.Error(), "Forbidden") {
		t.Fatalf("strict CONNECT to an unseen host: err %v, want a 403 refusal", err)
	}
}

// TestConcurrentRecordThenReplay: 32 clients record 20 distinct requests
// each; all 640 then replay with zero misses.
func TestConcurrentRecordThenReplay(t *testing.T) {
	e := newEnv(t)
	up := newUpstream(t, true, itemsHandler())
	p := e.serve("--mode", "record", "--cassette", "many", "--upstream-ca", up.caFile)
	run := func(c *http.Client, check func(w, i int, a answer)) {
		var wg sync.WaitGroup
		for w := 0; w < 32; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; i < 20; i++ {
					a := do(t, c, "POST", fmt.Sprintf("%s/w%d?i=%d", up.URL, w, i), fmt.Sprintf(`{"w":%d,"i":%d}`, w, i))
					check(w, i, a)
				}
			}(w)
		}
		wg.Wait()
	}
	c := e.client(p)
	run(c, func(w, i int, a answer) {
		if a.status != 200 {
			t.Errorf("record w%d i%d: %d %s", w, i, a.status, a.body)
		}
	})
	p.stop()
	out, _, _ := e.cli("cassettes", "ls")
	if !strings.Contains(out, "640") {
		t.Fatalf("cassettes ls after 640 recordings:\n%s", out)
	}
	up.Close()
	p = e.serve("--mode", "strict", "--cassette", "many")
	c = e.client(p)
	run(c, func(w, i int, a answer) {
		want := fmt.Sprintf(`"body":"{\"w\":%d,\"i\":%d}"`, w, i)
		if a.status != 200 || !strings.Contains(string(a.body), want) {
			t.Errorf("replay w%d i%d: %d %s", w, i, a.status, a.body)
		}
	})
}

// TestHeadKeepsItsLength: the answer to a HEAD tells the size of what a GET
// would fetch; replay must keep it, over HTTP and HTTPS.
func TestHeadKeepsItsLength(t *testing.T) {
	for _, tlsOn := range []bool{false, true} {
		e := newEnv(t)
		up := newUpstream(t, tlsOn, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "1234")
			w.Header().Set("Content-Type", "application/octet-stream")
			if r.Method != http.MethodHead {
				w.Write(bytes.Repeat([]byte("x"), 1234))
			}
		}))
		args := []string{"--mode", "record", "--cassette", "head"}
		if tlsOn {
			args = append(args, "--upstream-ca", up.caFile)
		}
		p := e.serve(args...)
		live := do(t, e.client(p), "HEAD", up.URL+"/file.bin", "")
		p.stop()
		p = e.serve("--mode", "strict", "--cassette", "head")
		got := do(t, e.client(p), "HEAD", up.URL+"/file.bin", "")
		if live.header.Get("Content-Length") != "1234" || got.status != 200 || got.header.Get("Content-Length") != "1234" || len(got.body) != 0 {
			t.Fatalf("tls=%v: HEAD replayed as %d with Content-Length %q (live %q), body %d bytes",
				tlsOn, got.status, got.header.Get("Content-Length"), live.header.Get("Content-Length"), len(got.body))
		}
		out, _, _ := e.cli("cassettes", "show", "head")
		if strings.Contains(out, "incomplete") {
			t.Fatalf("tls=%v: a HEAD answer was recorded as incomplete:\n%s", tlsOn, out)
		}
	}
}

// TestRecordingReusesUpstreamConnections: requests recorded through
// keep-alive clients reach the upstream over reused connections, not one
// each (a new TLS handshake per recording would be the cost).
func TestRecordingReusesUpstreamConnections(t *testing.T) {
	for _, tlsOn := range []bool{false, true} {
		e := newEnv(t)
		up := newUpstream(t, tlsOn, itemsHandler())
		args := []string{"--mode", "record", "--cassette", "reuse"}
		if tlsOn {
			args = append(args, "--upstream-ca", up.caFile)
		}
		p := e.serve(args...)
		c := e.client(p)
		const clients, each = 16, 40
		var wg sync.WaitGroup
		for w := 0; w < clients; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; i < each; i++ {
					if got := do(t, c, "GET", fmt.Sprintf("%s/r%d?i=%d", up.URL, w, i), ""); got.status != 200 {
						t.Errorf("client %d request %d: %d", w, i, got.status)
						return
					}
				}
			}(w)
		}
		wg.Wait()
		p.stop()
		if n := up.conns.Load(); n > 2*clients {
			t.Fatalf("tls=%v: %d recordings by %d keep-alive clients opened %d upstream connections", tlsOn, clients*each, clients, n)
		}
	}
}
