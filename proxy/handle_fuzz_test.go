package proxy

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cassetteproxy/cassetteproxy/match"
	"github.com/cassetteproxy/cassetteproxy/redact"
	"github.com/cassetteproxy/cassetteproxy/store"
)

// FuzzHandleReplay drives a whole request through handle in replay mode
// with whatever a client may send: handle recovers from panics (answering
// 502 "internal error"), so any such answer here is a bug the fuzzer found.
func FuzzHandleReplay(f *testing.F) {
	ca, err := LoadOrCreateCA(filepath.Join(f.TempDir(), "home"))
	if err != nil {
		f.Fatal(err)
	}
	red, _ := redact.New(redact.Config{Secret: []byte("k")})
	ins := []store.Interaction{
		{Request: store.Request{Method: "POST", URL: "http://tool.test/rpc", Header: http.Header{"Content-Type": {"application/json"}},
			Body: []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)},
			Response: store.Response{Status: 200, Header: http.Header{"Content-Type": {"text/event-stream"}}, Streamed: true,
				Body:   []byte("event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n"),
				Events: []store.Event{{Data: []byte("event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n")}}}},
		{Request: store.Request{Method: "GET", URL: "http://tool.test/items?a=1&b=2"},
			Response: store.Response{Status: 200, Body: []byte(`{"items":[]}`)}},
	}
	s, err := New(Config{Mode: ModeReplay, Cassette: "f", Interactions: ins, Rules: match.DefaultRules(), Redactor: red,
		CA: ca, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	f.Add("POST", "/rpc", "application/json", []byte(`{"jsonrpc":"2.0","id":"x","method":"tools/list"}`))
	f.Add("GET", "/items?b=2&a=1", "", []byte(nil))
	f.Add("PUT", "/items?api_key=sk-abcdefgh12345678", "application/x-www-form-urlencoded", []byte("token=x&a=%zz"))
	f.Add("GET", "/%00?%%", "text/event-stream", []byte("data: {\n\n"))
	f.Fuzz(func(t *testing.T, method, path, contentType string, body []byte) {
		req, err := http.NewRequest(method, "http://tool.test"+path, bytes.NewReader(body))
		if err != nil {
			return // not a request a client could send
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		if strings.ContainsAny(contentType, "\r\n") {
			return
		}
		resp := s.handle(req, false)
		if resp == nil {
			t.Fatal("no answer")
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusBadGateway && bytes.Contains(b, []byte("internal error")) {
			t.Fatalf("handle panicked on %s %q (%s): %s", method, path, contentType, b)
		}
	})
}
