package proxy

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/cassetteproxy/cassetteproxy/internal/testeq"
	"github.com/cassetteproxy/cassetteproxy/store"
)

// fakeConn records what reaches the wire. Read answers from in and notes
// what had been written by then.
type fakeConn struct {
	net.Conn // nil: only the methods below are used
	out      bytes.Buffer
	in       string
	sawAtRd  []string
	closed   bool
	failNext bool
}

func (f *fakeConn) Write(p []byte) (int, error) {
	if f.failNext {
		return 0, errors.New("broken pipe")
	}
	return f.out.Write(p)
}

func (f *fakeConn) Read(p []byte) (int, error) {
	f.sawAtRd = append(f.sawAtRd, f.out.String())
	if f.in == "" {
		return 0, io.EOF
	}
	n := copy(p, f.in)
	f.in = f.in[n:]
	return n, nil
}

func (f *fakeConn) Close() error { f.closed = true; return nil }

// TestTrackedConnHoldsHeadForBody: an armed write is kept back and goes
// out with the next write, or before the next read, or at close; bytes
// never change order, and an unarmed connection writes through. A timed
// hold (a forwarded body) also goes out when its time is up, and a timer
// left from an earlier hold never releases a later one.
func TestTrackedConnHoldsHeadForBody(t *testing.T) {
	cases := []struct {
		name string
		ops  []string // "hold", "thold" (timed), "tick:N" (the Nth timed hold's time is up), "w:<bytes>", "r" (read), "c" (close), "fail" (next write fails)
		wire []string // what is on the wire after each op
		err  string   // the error an op must return, if any ("" none)
	}{
		{"unarmed writes go through", []string{"w:A", "w:B"}, []string{"A", "AB"}, ""},
		{"head waits for body", []string{"hold", "w:HEAD", "w:BODY", "w:NEXT"}, []string{"", "", "HEADBODY", "HEADBODYNEXT"}, ""},
		{"read sends what is held first", []string{"hold", "w:HEAD", "r", "w:X"}, []string{"", "", "HEAD", "HEADX"}, ""},
		{"close sends what is held", []string{"hold", "w:HEAD", "c"}, []string{"", "", "HEAD"}, ""},
		{"a read disarms", []string{"hold", "r", "w:A"}, []string{"", "", "A"}, ""},
		{"arming twice holds one write", []string{"hold", "hold", "w:A", "w:B"}, []string{"", "", "", "AB"}, ""},
		{"a failed flush is the next write's error", []string{"hold", "w:HEAD", "fail", "w:BODY"}, []string{"", "", "", ""}, "broken pipe"},
		{"timed: the body comes first", []string{"thold", "w:HEAD", "w:BODY", "tick:1"}, []string{"", "", "HEADBODY", "HEADBODY"}, ""},
		{"timed: time is up before the body", []string{"thold", "w:HEAD", "tick:1", "w:BODY"}, []string{"", "", "HEAD", "HEADBODY"}, ""},
		{"timed: time is up before the head", []string{"thold", "tick:1", "w:HEAD", "w:BODY"}, []string{"", "", "HEAD", "HEADBODY"}, ""},
		{"timed: an old timer leaves a new hold alone", []string{"thold", "w:A", "w:B", "thold", "w:HEAD", "tick:1", "w:BODY"},
			[]string{"", "", "AB", "AB", "AB", "AB", "ABHEADBODY"}, ""},
		{"timed: an old timer leaves an untimed hold alone", []string{"thold", "w:A", "w:B", "hold", "w:HEAD", "tick:1", "w:BODY"},
			[]string{"", "", "AB", "AB", "AB", "AB", "ABHEADBODY"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &Server{conns: map[net.Conn]struct{}{}}
			f := &fakeConn{in: "next request"}
			c := &trackedConn{Conn: f, s: s}
			var lastErr error
			var timed []uint64 // the timed holds' numbers, for tick:N
			for i, op := range tc.ops {
				switch {
				case op == "hold":
					c.holdNextWrite()
				case op == "thold":
					gen := c.holdNextWrite() // as holdNextWriteFor, with the test as its timer
					timed = append(timed, gen)
				case strings.HasPrefix(op, "tick:"):
					var n int
					fmt.Sscan(op[5:], &n)
					c.releaseHold(timed[n-1])
				case op == "r":
					buf := make([]byte, 4)
					_, lastErr = c.Read(buf)
					if got := f.sawAtRd[len(f.sawAtRd)-1]; got != tc.wire[i] {
						t.Errorf("op %d: the read came with %q on the wire, want %q", i, got, tc.wire[i])
					}
				case op == "c":
					lastErr = c.Close()
					if !f.closed {
						t.Errorf("op %d: not closed", i)
					}
				case op == "fail":
					f.failNext = true
				case strings.HasPrefix(op, "w:"):
					p := []byte(op[2:])
					var n int
					n, lastErr = c.Write(p)
					if lastErr == nil && n != len(p) {
						t.Errorf("op %d: Write returned %d, want %d", i, n, len(p))
					}
				}
				if got := f.out.String(); got != tc.wire[i] {
					t.Errorf("after op %d (%s): wire %q, want %q", i, op, got, tc.wire[i])
				}
			}
			if tc.err == "" && lastErr != nil && lastErr != io.EOF {
				t.Errorf("error %v", lastErr)
			}
			if tc.err != "" && (lastErr == nil || !strings.Contains(lastErr.Error(), tc.err)) {
				t.Errorf("error %v, want %q", lastErr, tc.err)
			}
		})
	}
}

func TestHeadThenBody(t *testing.T) {
	get, _ := http.NewRequest("GET", "http://h.test/", nil)
	head, _ := http.NewRequest("HEAD", "http://h.test/", nil)
	mem := func(b string) io.ReadCloser { return nopCloser{bytes.NewReader([]byte(b))} }
	cases := []struct {
		name string
		req  *http.Request
		resp *http.Response
		want bool
	}{
		{"body in memory", get, &http.Response{StatusCode: 200, Body: mem("abc"), ContentLength: 3}, true},
		{"blocked answer", get, &http.Response{StatusCode: 403, Body: mem("{}"), ContentLength: 2}, true},
		{"empty body", get, &http.Response{StatusCode: 200, Body: mem(""), ContentLength: 0}, false},
		{"no body", get, &http.Response{StatusCode: 200, Body: http.NoBody, ContentLength: 0}, false},
		{"HEAD", head, &http.Response{StatusCode: 200, Body: http.NoBody, ContentLength: 10}, false},
		{"204", get, &http.Response{StatusCode: 204, Body: mem("x"), ContentLength: 1}, false},
		{"304", get, &http.Response{StatusCode: 304, Body: mem("x"), ContentLength: 1}, false},
		{"101", get, &http.Response{StatusCode: 101, Body: mem("x"), ContentLength: 1}, false},
		{"unknown length", get, &http.Response{StatusCode: 200, Body: mem("x"), ContentLength: -1}, false},
		{"length disagrees", get, &http.Response{StatusCode: 200, Body: mem("x"), ContentLength: 5}, false},
		{"a stream", get, &http.Response{StatusCode: 200, Body: newEventReader(t.Context(), nil, false, 1), ContentLength: 3}, false},
		{"an upstream body", get, &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("abc")), ContentLength: 3}, false},
		{"no response", get, nil, false},
	}
	for _, tc := range cases {
		if got := headThenBody(tc.req, tc.resp); got != tc.want {
			t.Errorf("%s: headThenBody = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestReplaySharesRecordedHeadersReadOnly: answers of known length are
// handed the recorded header map itself; served many times, at once, over
// plain HTTP and inside intercepted tunnels (where the head is held for
// the body), every answer is whole and the recorded maps never change.
func TestReplaySharesRecordedHeadersReadOnly(t *testing.T) {
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Add(kv[i], kv[i+1])
		}
		return h
	}
	var ins []store.Interaction
	for _, scheme := range []string{"http", "https"} {
		ins = append(ins,
			store.Interaction{Request: store.Request{Method: "GET", URL: scheme + "://tool.test/json"},
				Response: store.Response{Status: 200, Header: hdr("Content-Type", "application/json", "Etag", `"v1"`, "Server", "nginx", "Set-Cookie", "a=1", "Set-Cookie", "b=2"),
					Body: []byte(`{"ok":true}`)}},
			store.Interaction{Request: store.Request{Method: "GET", URL: scheme + "://tool.test/noheader"},
				Response: store.Response{Status: 200, Body: []byte("plain")}},
			store.Interaction{Request: store.Request{Method: "GET", URL: scheme + "://tool.test/empty"},
				Response: store.Response{Status: 200, Header: hdr("X-A", "1")}},
			store.Interaction{Request: store.Request{Method: "HEAD", URL: scheme + "://tool.test/json"},
				Response: store.Response{Status: 200, Header: hdr("Content-Length", "11", "X-A", "1")}},
			store.Interaction{Request: store.Request{Method: "GET", URL: scheme + "://tool.test/none"},
				Response: store.Response{Status: 204, Header: hdr("X-A", "1")}},
			store.Interaction{Request: store.Request{Method: "GET", URL: scheme + "://tool.test/stream"},
				Response: store.Response{Status: 200, Header: hdr("Content-Type", "text/event-stream"), Streamed: true,
					Body: []byte("data: a\n\ndata: b\n\n"), Events: []store.Event{{Data: []byte("data: a\n\n")}, {Data: []byte("data: b\n\n")}}}},
		)
	}
	snapshot := make([]http.Header, len(ins))
	for i := range ins {
		snapshot[i] = ins[i].Response.Header.Clone()
	}
	s, c := startTestServer(t, ModeReplay, ins)
	roots := x509.NewCertPool()
	roots.AddCert(s.cfg.CA.Cert)
	tr := c.Transport.(*http.Transport)
	tr.TLSClientConfig = &tls.Config{RootCAs: roots}
	tr.MaxIdleConnsPerHost = 8

	type want struct {
		method, path string
		status       int
		body         string
		length       string // Content-Length the client sees ("" none)
		header       string // one recorded header that must arrive
	}
	wants := []want{
		{"GET", "/json", 200, `{"ok":true}`, "11", "Etag"},
		{"GET", "/noheader", 200, "plain", "5", ""},
		{"GET", "/empty", 200, "", "0", "X-A"},
		{"HEAD", "/json", 200, "", "11", "X-A"},
		{"GET", "/none", 204, "", "", "X-A"},
		{"GET", "/stream", 200, "data: a\n\ndata: b\n\n", "", "Content-Type"},
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				w := wants[(g+i)%len(wants)]
				scheme := []string{"http", "https"}[(g+i/len(wants))%2]
				req, _ := http.NewRequest(w.method, scheme+"://tool.test"+w.path, nil)
				resp, err := c.Do(req)
				if err != nil {
					errs <- err
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				got := resp.Header.Get("Content-Length") // HEAD, 204: only the header tells
				if w.method != "HEAD" && resp.StatusCode != 204 && resp.ContentLength >= 0 {
					got = fmt.Sprint(resp.ContentLength)
				}
				switch {
				case err != nil:
					errs <- fmt.Errorf("%s %s %s: %v", scheme, w.method, w.path, err)
				case resp.StatusCode != w.status || string(b) != w.body || got != w.length ||
					w.header != "" && resp.Header.Get(w.header) == "":
					errs <- fmt.Errorf("%s %s %s: %d %q length %q headers %v; want %d %q length %q with %s",
						scheme, w.method, w.path, resp.StatusCode, b, got, resp.Header, w.status, w.body, w.length, w.header)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i := range ins {
		if !testeq.Header(ins[i].Response.Header, snapshot[i]) {
			t.Errorf("%s %s: recorded header changed by serving it: %v, was %v",
				ins[i].Request.Method, ins[i].Request.URL, ins[i].Response.Header, snapshot[i])
		}
	}
}

// blockingConn holds its first Write until release is closed, after
// telling entered; it is the wire a timed release writes to while the
// body's first record arrives.
type blockingConn struct {
	net.Conn
	entered, release chan struct{}
	once             sync.Once
	mu               sync.Mutex
	out              bytes.Buffer
}

func (b *blockingConn) Write(p []byte) (int, error) {
	first := false
	b.once.Do(func() { first = true })
	if first {
		close(b.entered)
		<-b.release
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.out.Write(p)
}

// TestTrackedConnFlushKeepsOrder: while held bytes are being written, the
// connection still counts as holding, so a concurrent Write takes the lock
// and goes out after them rather than straight to the wire ahead of them.
func TestTrackedConnFlushKeepsOrder(t *testing.T) {
	wire := &blockingConn{entered: make(chan struct{}), release: make(chan struct{})}
	c := &trackedConn{Conn: wire}
	gen := c.holdNextWrite()
	if _, err := c.Write([]byte("head|")); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { c.releaseHold(gen); close(done) }()
	<-wire.entered
	if !c.holding.Load() {
		t.Fatal("the connection stopped holding before the held bytes were written: a concurrent Write would overtake them")
	}
	close(wire.release)
	<-done
	if _, err := c.Write([]byte("body")); err != nil {
		t.Fatal(err)
	}
	if got := wire.out.String(); got != "head|body" {
		t.Fatalf("wire %q, want head|body", got)
	}
}
