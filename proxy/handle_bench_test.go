package proxy

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cassetteproxy/cassetteproxy/internal/textlog"
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
			logger = slog.New(textlog.New(discard{}, nil))
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

// fakeUpstream answers every request at once from memory, with the head
// nginx gives a static JSON file: the record path's own work, without
// sockets, is what is left to measure.
type fakeUpstream struct{ body []byte }

func (f fakeUpstream) RoundTrip(req *http.Request) (*http.Response, error) {
	h := http.Header{"Server": {"nginx/1.22.1"}, "Date": {"Fri, 27 Nov 2026 07:48:10 GMT"}, "Content-Type": {"application/json"},
		"Content-Length": {strconv.Itoa(len(f.body))}, "Last-Modified": {"Fri, 27 Nov 2026 07:40:10 GMT"}, "Connection": {"keep-alive"},
		"Etag": {`"6747cd1a-400"`}, "Accept-Ranges": {"bytes"}}
	return &http.Response{StatusCode: 200, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: h,
		Body: io.NopCloser(bytes.NewReader(f.body)), ContentLength: int64(len(f.body)), Request: req}, nil
}

// BenchmarkHandleRecord is the proxy's own work for one recorded request
// inside a tunnel (no sockets): scrubbing and keying the request, the
// response's capture, redaction, encoding, the group commit (its share of
// a batch: cpu-µs/op counts every goroutine), and the log line.
func BenchmarkHandleRecord(b *testing.B) {
	for _, size := range []int{1 << 10, 50 << 10} {
		b.Run(fmt.Sprintf("%dK", size>>10), func(b *testing.B) { benchHandleRecord(b, size) })
	}
}

func benchHandleRecord(b *testing.B, size int) {
	ca, err := LoadOrCreateCA(filepath.Join(b.TempDir(), "home"))
	if err != nil {
		b.Fatal(err)
	}
	red, _ := redact.New(redact.Config{Secret: []byte("bench-secret-0123456789abcdef012")})
	st, err := store.Open(filepath.Join(b.TempDir(), "c.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	rec := st.NewRecorder(store.RecorderOptions{})
	body := []byte(strings.Repeat(`{"id":1,"text":"the model returned a tool call"},`, size/40+1)[:size])
	s, err := New(Config{Mode: ModeRecord, Cassette: "b", Recorder: rec, Rules: match.DefaultRules(), Redactor: red, CA: ca,
		Logger: slog.New(textlog.New(discard{}, nil))})
	if err != nil {
		b.Fatal(err)
	}
	s.upstream = fakeUpstream{body: body}
	b.ReportAllocs()
	cpu0 := processCPU()
	for b.Loop() {
		req := httptest.NewRequest("GET", "https://tool.test/data/1k.json", nil)
		req.Header.Set("User-Agent", "Go-http-client/1.1")
		resp := s.handle(req, true)
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
	}
	if err := rec.Flush(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/1e3/float64(b.N), "cpu-µs/op")
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
