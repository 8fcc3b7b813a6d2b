package proxy

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"strings"
	"testing"

	"github.com/cassetteproxy/cassetteproxy/internal/testeq"
)

// TestRecordedRequestHeader: the recorded header is the live one without
// hop-by-hop headers, Content-Length and Expect (what Clone, stripHop and
// Del left before it was made in one pass), and it is the live map itself
// (shared) exactly when there is nothing to strip or decode. The live map
// is never written.
func TestRecordedRequestHeader(t *testing.T) {
	cases := []struct {
		name   string
		in     http.Header
		body   []byte
		want   http.Header
		shared bool
	}{
		{"clean", http.Header{"Accept": {"*/*"}, "User-Agent": {"x"}}, nil,
			http.Header{"Accept": {"*/*"}, "User-Agent": {"x"}}, true},
		{"hop headers", http.Header{"Accept": {"a"}, "Proxy-Connection": {"keep-alive"}, "Te": {"trailers"}, "Keep-Alive": {"5"}}, nil,
			http.Header{"Accept": {"a"}}, false},
		{"Connection names more", http.Header{"Connection": {"X-Hop, close"}, "X-Hop": {"1"}, "X-Keep": {"2", "3"}}, nil,
			http.Header{"X-Keep": {"2", "3"}}, false},
		{"length and expect", http.Header{"Content-Length": {"3"}, "Expect": {"100-continue"}, "Content-Type": {"text/plain"}}, nil,
			http.Header{"Content-Type": {"text/plain"}}, false},
		{"nil value kept", http.Header{"X-Nil": nil, "Upgrade": {"h2c"}}, nil, http.Header{"X-Nil": nil}, false},
		{"encoded body: decoded, so copied", http.Header{"Content-Encoding": {"gzip"}, "Content-Type": {"text/plain"}}, gzipped(t, "hello"),
			http.Header{"Content-Type": {"text/plain"}}, false},
		{"encoding without a body", http.Header{"Content-Encoding": {"gzip"}}, nil, http.Header{"Content-Encoding": {"gzip"}}, true},
		{"no header", nil, nil, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", "http://h.test/x", nil)
			req.Header = tc.in
			before := tc.in.Clone()
			rec, shared := recordedRequest(req, tc.body)
			if !testeq.Header(rec.Header, tc.want) {
				t.Errorf("recorded header %v, want %v", rec.Header, tc.want)
			}
			same := testeq.SameHeaderMap(rec.Header, tc.in)
			if shared != tc.shared || tc.in != nil && same != shared {
				t.Errorf("shared %v (the live map: %v), want %v", shared, same, tc.shared)
			}
			if !testeq.Header(tc.in, before) {
				t.Errorf("the live header changed: %v, was %v", tc.in, before)
			}
		})
	}
}

func gzipped(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestRecordedResponseHead(t *testing.T) {
	cases := []struct {
		method string
		in     http.Header
		want   http.Header
	}{
		{"GET", http.Header{"Content-Type": {"a"}, "Content-Length": {"3"}, "Connection": {"keep-alive"}, "Transfer-Encoding": {"chunked"}},
			http.Header{"Content-Type": {"a"}}},
		{"HEAD", http.Header{"Content-Type": {"a"}, "Content-Length": {"3"}, "Keep-Alive": {"timeout=5"}},
			http.Header{"Content-Type": {"a"}, "Content-Length": {"3"}}},
		{"GET", http.Header{"Connection": {"X-Conn"}, "X-Conn": {"1"}, "Etag": {`"e"`}}, http.Header{"Etag": {`"e"`}}},
		// Already stripped (as forward leaves it): cloned whole.
		{"GET", http.Header{"Content-Type": {"a"}, "Content-Length": {"3"}, "Set-Cookie": {"a=1", "b=2"}}, http.Header{"Content-Type": {"a"}, "Set-Cookie": {"a=1", "b=2"}}},
		{"HEAD", http.Header{"Content-Type": {"a"}, "Content-Length": {"3"}}, http.Header{"Content-Type": {"a"}, "Content-Length": {"3"}}},
		{"GET", nil, nil},
	}
	for _, tc := range cases {
		req, _ := http.NewRequest(tc.method, "http://h.test/", nil)
		resp := &http.Response{StatusCode: 200, Header: tc.in, Request: req}
		before := tc.in.Clone()
		got := recordedResponseHead(resp)
		if !testeq.Header(got.Header, tc.want) || got.Status != 200 {
			t.Errorf("%s %v: recorded %d %v, want %v", tc.method, tc.in, got.Status, got.Header, tc.want)
		}
		if !testeq.Header(tc.in, before) {
			t.Errorf("the live header changed: %v", tc.in)
		}
	}
}

func TestCanonicalToken(t *testing.T) {
	for _, name := range []string{"keep-alive", "Keep-Alive", "KEEP-ALIVE", "close", "CLOSE", "upgrade", "x-custom-hop",
		"\u212Aeep-alive", "keep alive", "keep-alivee", "", "te", "Proxy-Authorization", "cl\u00f8se"} {
		if got, want := canonicalToken(name), textproto.CanonicalMIMEHeaderKey(name); got != want {
			t.Errorf("canonicalToken(%q) = %q, want %q", name, got, want)
		}
	}
}

// TestForwardedRequestHeader: upstream gets the client's header without
// hop-by-hop headers and Expect, secrets intact (only the recording is
// redacted), whether or not there was anything to strip; the live request
// is left as it came.
func TestForwardedRequestHeader(t *testing.T) {
	got := make(chan http.Header, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
		io.WriteString(w, "ok")
	}))
	defer up.Close()
	s, _ := startTestServer(t, ModeRecord, nil)
	cases := []struct {
		name   string
		in     http.Header
		absent []string
	}{
		{"nothing to strip", http.Header{"Authorization": {"Bearer sk-live-abcdefghijklmnop1234"}, "Accept": {"*/*"}}, nil},
		{"hop headers", http.Header{"Authorization": {"Bearer sk-live-abcdefghijklmnop1234"}, "Connection": {"X-Hop"}, "X-Hop": {"1"},
			"Proxy-Authorization": {"Basic eA=="}, "Te": {"trailers"}}, []string{"X-Hop", "Proxy-Authorization", "Te", "Connection"}},
		{"expect", http.Header{"Authorization": {"Bearer sk-live-abcdefghijklmnop1234"}, "Expect": {"100-continue"}}, []string{"Expect"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", up.URL+"/x", strings.NewReader("body"))
			req.Header = tc.in.Clone()
			req.Header.Set("Content-Type", "text/plain")
			before := req.Header.Clone()
			resp := s.handle(req, false)
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			h := <-got
			if h.Get("Authorization") != "Bearer sk-live-abcdefghijklmnop1234" || h.Get("Accept") != tc.in.Get("Accept") {
				t.Errorf("upstream got %v", h)
			}
			for _, name := range tc.absent {
				if _, ok := h[name]; ok {
					t.Errorf("upstream got %s: %v", name, h)
				}
			}
			if !testeq.Header(req.Header, before) {
				t.Errorf("the live header changed: %v, was %v", req.Header, before)
			}
		})
	}
}
