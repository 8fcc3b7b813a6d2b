package proxy

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/cassetteproxy/cassetteproxy/match"
	"github.com/cassetteproxy/cassetteproxy/redact"
	"github.com/cassetteproxy/cassetteproxy/store"
)

// BenchmarkHandleReplayHit is the proxy's own work for one replayed
// request (no sockets): redaction of the request, its key, the lookup, the
// answer's head, and the log line.
func BenchmarkHandleReplayHit(b *testing.B) {
	ca, err := LoadOrCreateCA(filepath.Join(b.TempDir(), "home"))
	if err != nil {
		b.Fatal(err)
	}
	red, _ := redact.New(redact.Config{Secret: []byte("k")})
	body := make([]byte, 1024)
	for i := range body {
		body[i] = 'a'
	}
	ins := []store.Interaction{{Request: store.Request{Method: "GET", URL: "http://tool.test/data/1k.json", Header: http.Header{"Accept": {"*/*"}}},
		Response: store.Response{Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: body}}}
	for _, logged := range []bool{false, true} {
		name := "nolog"
		logger := slog.New(slog.DiscardHandler)
		if logged {
			name = "textlog"
			logger = slog.New(slog.NewTextHandler(discard{}, nil))
		}
		b.Run(name, func(b *testing.B) {
			s, err := New(Config{Mode: ModeReplay, Cassette: "b", Interactions: ins, Rules: match.DefaultRules(), Redactor: red, CA: ca, Logger: logger})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest("GET", "http://tool.test/data/1k.json", nil)
				req.Header.Set("Accept", "*/*")
				req.Header.Set("User-Agent", "Go-http-client/1.1")
				resp := s.handle(req, false)
				resp.Body.Close()
			}
		})
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
