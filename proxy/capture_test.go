package proxy

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cassetteproxy/cassetteproxy/match"
	"github.com/cassetteproxy/cassetteproxy/store"
)

// chunks is an upstream body that returns one chunk per Read, then err.
type chunks struct {
	parts []string
	err   error
}

func (c *chunks) Read(p []byte) (int, error) {
	if len(c.parts) == 0 {
		return 0, c.err
	}
	n := copy(p, c.parts[0])
	if n < len(c.parts[0]) {
		c.parts[0] = c.parts[0][n:]
	} else {
		c.parts = c.parts[1:]
	}
	return n, nil
}
func (c *chunks) Close() error { return nil }

func TestCapture(t *testing.T) {
	sse := http.Header{"Content-Type": {"text/event-stream"}}
	cases := []struct {
		name       string
		header     http.Header
		length     int64
		parts      []string
		err        error // upstream's last error; io.EOF for a clean end
		closeEarly bool  // the client closes after the first read
		maxBody    int64
		spill      int

		events     []string // nil: not streamed
		incomplete bool
		marker     bool
	}{
		{name: "sse split into events, not reads", header: sse, length: -1,
			parts:  []string{"data: a\n\ndata: b", "\n\ndata: c\n\n"},
			err:    io.EOF,
			events: []string{"data: a\n\n", "data: b\n\n", "data: c\n\n"}},
		{name: "not-SSE body under an SSE type stays as reads", header: sse, length: -1,
			parts:  []string{`{"error":`, `"nope"}`},
			err:    io.EOF,
			events: []string{`{"error":`, `"nope"}`}},
		{name: "ndjson kept per read", header: http.Header{"Content-Type": {"application/x-ndjson"}}, length: -1,
			parts:  []string{"{\"a\":1}\n", "{\"a\":2}\n{\"a\":3}\n"},
			err:    io.EOF,
			events: []string{"{\"a\":1}\n", "{\"a\":2}\n{\"a\":3}\n"}},
		{name: "known length is not streamed", header: http.Header{"Content-Type": {"application/json"}}, length: 7,
			parts: []string{"{\"a\":", "1}"}, err: io.EOF},
		{name: "upstream breaks midway", header: sse, length: -1,
			parts:  []string{"data: a\n\n", "data: b"},
			err:    io.ErrUnexpectedEOF,
			events: []string{"data: a\n\n", "data: b"}, incomplete: true},
		{name: "client goes midway", header: sse, length: -1,
			parts:      []string{"data: a\n\n", "data: b\n\n"},
			err:        io.EOF,
			closeEarly: true,
			events:     []string{"data: a\n\n"}, incomplete: true},
		{name: "spilled to a file and back", header: http.Header{"Content-Type": {"application/octet-stream"}}, length: 12,
			parts: []string{"0123", "4567", "89ab"}, err: io.EOF, spill: 5},
		{name: "over max-body is a marker", header: http.Header{"Content-Type": {"application/octet-stream"}}, length: 12,
			parts: []string{"0123", "4567", "89ab"}, err: io.EOF, spill: 5, maxBody: 10, marker: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := &http.Response{Header: c.header, ContentLength: c.length}
			src := &chunks{parts: append([]string(nil), c.parts...), err: c.err}
			maxBody := c.maxBody
			if maxBody == 0 {
				maxBody = 1 << 20
			}
			var got store.Response
			got.Header = c.header.Clone()
			doneRuns := 0
			cp := newCapture(src, resp, maxBody, func(cp *capture) { doneRuns++; cp.fill(&got) })
			if c.spill > 0 {
				cp.spill = c.spill
			}
			var seen bytes.Buffer
			buf := make([]byte, 64)
			for {
				n, err := cp.Read(buf)
				seen.Write(buf[:n])
				if c.closeEarly {
					cp.Close()
					break
				}
				if err != nil {
					if !errors.Is(err, c.err) {
						t.Fatalf("read error %v, want %v", err, c.err)
					}
					break
				}
			}
			cp.Close()
			if doneRuns != 1 {
				t.Fatalf("done ran %d times", doneRuns)
			}
			if got.Incomplete != c.incomplete {
				t.Errorf("incomplete = %v, want %v", got.Incomplete, c.incomplete)
			}
			if c.marker {
				sum := sha256.Sum256(seen.Bytes())
				if got.NotRecorded == nil || got.NotRecorded.Size != int64(seen.Len()) || got.NotRecorded.SHA256 != hex.EncodeToString(sum[:]) || got.Body != nil {
					t.Fatalf("marker %+v body %q: want size %d and the hash", got.NotRecorded, got.Body, seen.Len())
				}
				return
			}
			if !bytes.Equal(got.Body, seen.Bytes()) {
				t.Errorf("body %q, client saw %q", got.Body, seen.Bytes())
			}
			if got.Streamed != (c.events != nil) {
				t.Fatalf("streamed = %v, want %v", got.Streamed, c.events != nil)
			}
			var evs []string
			for _, e := range got.Events {
				evs = append(evs, string(e.Data))
			}
			if strings.Join(evs, "|") != strings.Join(c.events, "|") {
				t.Errorf("events %q, want %q", evs, c.events)
			}
			if cp.file != nil {
				t.Error("the spill file was left open")
			}
		})
	}
}

// TestCaptureSpillFileRemoved: the temporary file goes when the capture ends.
func TestCaptureSpillFileRemoved(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("TMPDIR", dir)
	resp := &http.Response{Header: http.Header{}, ContentLength: 8}
	cp := newCapture(&chunks{parts: []string{"aaaa", "bbbb"}, err: io.EOF}, resp, 100, func(cp *capture) {
		var r store.Response
		r.Header = http.Header{}
		cp.fill(&r)
		if string(r.Body) != "aaaabbbb" {
			t.Errorf("body %q", r.Body)
		}
	})
	cp.spill = 2
	io.Copy(io.Discard, cp)
	left, _ := filepath.Glob(filepath.Join(dir, "cassetteproxy-body-*"))
	if len(left) != 0 {
		t.Fatalf("spill files left: %v", left)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	}
}

func TestJSONRPCAnswer(t *testing.T) {
	rec := &store.Interaction{
		Request: store.Request{Body: []byte(`{"method":"tools/list","jsonrpc":"2.0","id":1}`)},
		Response: store.Response{Header: http.Header{"Content-Type": {"text/event-stream"}},
			Body: []byte("id: e1\ndata: \n\nevent: message\ndata: {\"result\":{},\"jsonrpc\":\"2.0\",\"id\":1}\n\n"),
			Events: []store.Event{{Data: []byte("id: e1\ndata: \n\n")},
				{OffsetMs: 3, Data: []byte("event: message\ndata: {\"result\":{},\"jsonrpc\":\"2.0\",\"id\":1}\n\n")}},
			Streamed: true},
	}
	jsonRec := &store.Interaction{
		Request:  store.Request{Body: []byte(`{"jsonrpc":"2.0","id":"a","method":"x"}`)},
		Response: store.Response{Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"jsonrpc":"2.0","id":"a","result":[1]}`)},
	}
	cases := []struct {
		name     string
		live     string
		in       *store.Interaction
		wantBody string
		wantLast string // last event, for streams
	}{
		{"same id unchanged", `{"method":"tools/list","jsonrpc":"2.0","id":1}`, rec, string(rec.Response.Body), string(rec.Response.Events[1].Data)},
		{"sse gets the live id", `{"jsonrpc":"2.0","id":"x-7","method":"tools/list"}`, rec,
			"id: e1\ndata: \n\nevent: message\ndata: {\"result\":{},\"jsonrpc\":\"2.0\",\"id\":\"x-7\"}\n\n",
			"event: message\ndata: {\"result\":{},\"jsonrpc\":\"2.0\",\"id\":\"x-7\"}\n\n"},
		{"json gets the live id", `{"jsonrpc":"2.0","id":42,"method":"x"}`, jsonRec, `{"jsonrpc":"2.0","id":42,"result":[1]}`, ""},
		{"not json-rpc: unchanged", `{"id":42}`, jsonRec, `{"jsonrpc":"2.0","id":"a","result":[1]}`, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			orig := string(c.in.Response.Body)
			body, events := jsonrpcAnswer([]byte(c.live), c.in)
			if string(body) != c.wantBody {
				t.Errorf("body %q\nwant %q", body, c.wantBody)
			}
			if c.wantLast != "" && string(events[len(events)-1].Data) != c.wantLast {
				t.Errorf("last event %q\nwant %q", events[len(events)-1].Data, c.wantLast)
			}
			if string(c.in.Response.Body) != orig {
				t.Error("the recorded interaction was changed")
			}
		})
	}
	if string(rec.Response.Events[1].Data) != "event: message\ndata: {\"result\":{},\"jsonrpc\":\"2.0\",\"id\":1}\n\n" {
		t.Error("recorded events were changed")
	}
}

func TestParseReplayTiming(t *testing.T) {
	cases := []struct {
		in   string
		want float64
		ok   bool
	}{
		{"", 0, true}, {"fast", 0, true}, {"recorded", 1, true}, {"scale:0.5", 0.5, true}, {"scale:3", 3, true},
		{"scale:0", 0, false}, {"scale:-1", 0, false}, {"scale:x", 0, false}, {"slow", 0, false}, {"scale:+Inf", 0, false},
	}
	for _, c := range cases {
		got, err := ParseReplayTiming(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseReplayTiming(%q) = %v, %v", c.in, got, err)
		}
	}
}

func TestModeFor(t *testing.T) {
	rules, err := match.ParseRules([]byte(`
rules:
  - host: tools.test
    mode: live
  - host: llm.test
    path: /v1/*
    mode: replay
  - host: rec.test:8080
    mode: record
`))
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{cfg: Config{Mode: ModeStrict, Rules: rules}, upstream: noUpstream{}}
	cases := []struct {
		url  string
		want Mode
	}{
		{"http://tools.test/a", ModeLive},
		{"https://llm.test/v1/chat", ModeReplay},
		{"https://llm.test/other", ModeStrict},
		{"http://rec.test:8080/x", ModeRecord},
		{"http://rec.test/x", ModeStrict},
		{"http://else.test/", ModeStrict},
	}
	for _, c := range cases {
		req, _ := http.NewRequest("GET", c.url, nil)
		if got := s.modeFor(req); got != c.want {
			t.Errorf("modeFor(%s) = %s, want %s", c.url, got, c.want)
		}
	}
	if got := s.modeForHost("tools.test:443"); got != ModeLive {
		t.Errorf("modeForHost(tools.test:443) = %s", got)
	}
	if got := s.modeForHost("llm.test:443"); got != ModeStrict {
		t.Errorf("modeForHost(llm.test:443) = %s: path rules do not apply at CONNECT", got)
	}
	if _, ok := s.upstreamFor(PolicyFor(ModeReplay)).(noUpstream); !ok {
		t.Error("a replay-mode request got a transport that can dial")
	}
	if !contacts(&Config{Mode: ModeReplay, Rules: rules}) || contacts(&Config{Mode: ModeReplay, Rules: match.DefaultRules()}) {
		t.Error("contacts: a live or record rule needs the real transport, and only then")
	}
}

// lastWithEOF is an upstream body that, like Go's, returns its end with its
// last bytes.
type lastWithEOF struct{ chunks }

func (c *lastWithEOF) Read(p []byte) (int, error) {
	n, err := c.chunks.Read(p)
	if err == nil && len(c.parts) == 0 {
		err = c.err
	}
	return n, err
}

// TestCaptureEnds: the client reads each body as the source gives it, with
// the same end, and the recording says how the body ended: whole, cut by
// the upstream, or left by the client (then with the length the upstream
// announced, so replay can cut it the same way). A client that closes after
// every announced byte has cut nothing.
func TestCaptureEnds(t *testing.T) {
	json := http.Header{"Content-Type": {"application/json"}}
	cases := []struct {
		name       string
		method     string
		status     int
		header     http.Header
		length     int64
		parts      []string
		err        error
		withLast   bool // the source returns its end with its last bytes
		readSize   int  // the client's buffer
		closeAfter int  // the client closes after this many bytes (-1: reads to the end)

		want       string
		wantErr    error
		incomplete bool
		announced  int64 // the recorded ContentLength
	}{
		{name: "end with the last bytes", header: json, length: 7, parts: []string{`{"a":`, `1}`}, err: io.EOF, withLast: true,
			readSize: 64, closeAfter: -1, want: `{"a":1}`, wantErr: io.EOF},
		{name: "end after the last bytes", header: json, length: 7, parts: []string{`{"a":1}`}, err: io.EOF,
			readSize: 64, closeAfter: -1, want: `{"a":1}`, wantErr: io.EOF},
		{name: "small client reads", header: json, length: 7, parts: []string{`{"a":1}`}, err: io.EOF,
			readSize: 3, closeAfter: -1, want: `{"a":1}`, wantErr: io.EOF},
		{name: "upstream breaks midway", header: json, length: 7, parts: []string{`{"a"`}, err: io.ErrUnexpectedEOF,
			readSize: 64, closeAfter: -1, want: `{"a"`, wantErr: io.ErrUnexpectedEOF, incomplete: true, announced: 7},
		{name: "client closes unread", header: json, length: 7, parts: []string{`{"a":1}`}, err: io.EOF,
			readSize: 64, closeAfter: 0, incomplete: true, announced: 7},
		{name: "client closes midway", header: json, length: 7, parts: []string{`{"a"`, `:1}`}, err: io.EOF,
			readSize: 64, closeAfter: 4, want: `{"a"`, incomplete: true, announced: 7},
		{name: "client closes after every announced byte", header: json, length: 7, parts: []string{`{"a":1}`, ``}, err: io.EOF,
			readSize: 7, closeAfter: 7, want: `{"a":1}`},
		{name: "unknown length, client leaves", header: json, length: -1, parts: []string{`{"a"`, `:1}`}, err: io.EOF,
			readSize: 64, closeAfter: 4, want: `{"a"`, incomplete: true},
		{name: "a stream", header: http.Header{"Content-Type": {"text/event-stream"}}, length: 9,
			parts: []string{"data: a\n\n"}, err: io.EOF, readSize: 64, closeAfter: -1, want: "data: a\n\n", wantErr: io.EOF},
		{name: "unknown length", header: json, length: -1, parts: []string{`{}`}, err: io.EOF,
			readSize: 64, closeAfter: -1, want: `{}`, wantErr: io.EOF},
		{name: "HEAD", method: "HEAD", header: json, length: 7, err: io.EOF, readSize: 64, closeAfter: 0},
		{name: "204", status: 204, header: json, length: 7, err: io.EOF, readSize: 64, closeAfter: 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			method, status := cmp.Or(tc.method, "GET"), cmp.Or(tc.status, 200)
			req, _ := http.NewRequest(method, "http://h.test/", nil)
			var src io.ReadCloser = &chunks{parts: slices.Clone(tc.parts), err: tc.err}
			if tc.withLast {
				src = &lastWithEOF{chunks{parts: slices.Clone(tc.parts), err: tc.err}}
			}
			resp := &http.Response{StatusCode: status, Header: tc.header, ContentLength: tc.length, Request: req, Body: src}
			var rec store.Response
			var doneErr error
			done := 0
			c := newCapture(src, resp, 64<<20, func(c *capture) { done++; doneErr = c.err; c.fill(&rec) })
			resp.Body = c
			var got []byte
			var err error
			buf := make([]byte, tc.readSize)
			for err == nil && (tc.closeAfter < 0 || len(got) < tc.closeAfter) {
				var n int
				n, err = c.Read(buf)
				got = append(got, buf[:n]...)
			}
			if tc.closeAfter >= 0 {
				c.Close()
				err = tc.wantErr
			}
			if string(got) != tc.want || !errors.Is(err, tc.wantErr) {
				t.Errorf("client read %q, %v; want %q, %v", got, err, tc.want, tc.wantErr)
			}
			if done != 1 {
				t.Fatalf("done ran %d times", done)
			}
			if (doneErr != nil) != tc.incomplete || rec.Incomplete != tc.incomplete {
				t.Errorf("recorded incomplete=%v (err %v), want %v", rec.Incomplete, doneErr, tc.incomplete)
			}
			if rec.ContentLength != tc.announced {
				t.Errorf("recorded content length %d, want %d", rec.ContentLength, tc.announced)
			}
			if string(rec.Body) != tc.want {
				t.Errorf("recorded body %q, want %q", rec.Body, tc.want)
			}
		})
	}
}
