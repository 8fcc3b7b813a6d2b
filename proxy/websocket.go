package proxy

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/cassetteproxy/cassetteproxy/internal/wsframe"
	"github.com/cassetteproxy/cassetteproxy/match"
	"github.com/cassetteproxy/cassetteproxy/store"
)

// WebSocket messages are recorded and replayed like the events of a
// stream. Recording taps both directions of the upgraded connection that
// goproxy relays (wsTap); replay answers the upgrade itself and speaks the
// server's side from the recording (wsReplay): each client message must
// match the next recorded client message, and the server messages that
// followed it are sent back. An unmatched client message closes the
// connection with 1008 (policy violation) and counts as a miss.

// maxWSMessage bounds one recorded or replayed message.
const maxWSMessage = 16 << 20

func isWebSocket(h http.Header) bool {
	return isUpgrade(h) && strings.EqualFold(h.Get("Upgrade"), "websocket")
}

// wsTap is the upstream end of a recorded WebSocket: goproxy reads the
// server's bytes from it and writes the client's into it, and it keeps the
// messages both send. It stays an io.ReadWriteCloser, as goproxy needs.
type wsTap struct {
	up    io.ReadWriteCloser
	start time.Time
	save  func(msgs []store.Event, broken bool) // called once, when the connection ends

	mu             sync.Mutex
	client, server wsframe.Reader
	msgs           []store.Event
	broken         bool // a direction could not be followed (bad frames, an oversized message)
	once           sync.Once
}

func (t *wsTap) Read(p []byte) (int, error) { // server → client
	n, err := t.up.Read(p)
	t.keep(&t.server, store.DirServer, p[:n])
	if err != nil {
		t.finish()
	}
	return n, err
}

func (t *wsTap) Write(p []byte) (int, error) { // client → server
	t.keep(&t.client, store.DirClient, p)
	return t.up.Write(p)
}

func (t *wsTap) Close() error {
	err := t.up.Close()
	t.finish()
	return err
}

func (t *wsTap) keep(r *wsframe.Reader, dir string, p []byte) {
	if len(p) == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.broken {
		return
	}
	msgs, err := r.Feed(p)
	offset := time.Since(t.start).Milliseconds()
	for _, m := range msgs {
		if m.Op == wsframe.OpText || m.Op == wsframe.OpBinary {
			t.msgs = append(t.msgs, store.Event{OffsetMs: offset, Data: m.Data, Dir: dir, Binary: m.Op == wsframe.OpBinary})
		}
	}
	if err != nil {
		t.broken = true
	}
}

func (t *wsTap) finish() {
	t.once.Do(func() {
		t.mu.Lock()
		msgs, broken := t.msgs, t.broken
		t.mu.Unlock()
		t.save(msgs, broken)
	})
}

// recordWebSocket wraps a 101 answer's upstream connection in a tap that
// records the messages when the connection ends.
func (s *Server) recordWebSocket(resp *http.Response, in store.Interaction) *http.Response {
	up, ok := resp.Body.(io.ReadWriteCloser)
	if !ok || !s.beginRecording() {
		s.save(in, false) // the upgrade alone, as before
		return resp
	}
	tap := &wsTap{up: up, start: time.Now(), save: func(msgs []store.Event, broken bool) {
		defer s.inflight.Done()
		for i := range msgs {
			msgs[i].Data = s.scrubMessage(msgs[i].Data, msgs[i].Dir == store.DirClient)
		}
		in.Response.Events = msgs
		in.Response.Incomplete = broken
		s.save(in, false)
	}}
	tap.client.Max, tap.server.Max = maxWSMessage, maxWSMessage
	resp.Body = tap
	return resp
}

// scrubMessage redacts one message like a body: a client's as a request
// is (no fingerprints, so it matches a live message scrubbed the same way),
// a server's as a response.
func (s *Server) scrubMessage(data []byte, fromClient bool) []byte {
	ct := "text/plain"
	if looksJSON(data) {
		ct = "application/json"
	}
	h := http.Header{"Content-Type": {ct}}
	if fromClient {
		req := store.Request{Header: h, Body: data}
		s.redactor.Request(&req)
		return req.Body
	}
	resp := store.Response{Header: h, Body: data}
	s.redactor.Response(&resp)
	return resp.Body
}

func looksJSON(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && (b[0] == '{' || b[0] == '[')
}

// replayWebSocket answers a WebSocket upgrade from the cassette: the
// recorded 101 (with the Sec-WebSocket-Accept the live key needs) and a
// connection that plays the recorded server.
func (s *Server) replayWebSocket(req *http.Request, recReq *store.Request, pol *Policy, out *Outcome) *http.Response {
	in, status, err := s.index.Next(recReq)
	if err != nil {
		return s.cassetteUnreadable(req, err, out)
	}
	found := status == match.Found || status == match.Exhausted && pol.On[HitExhausted].Action == Replay
	if found {
		if _, _, notKept := s.bodyNotRecorded(in); notKept && pol.On[HitNotKept].Action == Block {
			reason := pol.On[HitNotKept].Reason
			out.Decision, out.Reason = DecisionBlocked, reason
			return s.blockedResponse(req, s.blockedFor(req, reason, pol.Mode, out.URL, recReq, in))
		}
	}
	if !found || !in.Response.Upgrade || in.Response.Status != http.StatusSwitchingProtocols || !hasMessages(in.Response.Events) {
		reason, msg := ReasonUnrecorded, "this WebSocket was never recorded in the cassette"
		if found {
			reason, msg = ReasonUpgrade, "this WebSocket was recorded without its messages (by an older cassetteproxy): record it again"
		}
		out.Decision, out.Reason = DecisionBlocked, reason
		return s.blockedResponse(req, blockedAnswer{Reason: reason, Request: blockedRequest{req.Method, out.URL}, Message: msg,
			Closest: s.closest(recReq), Fix: s.recordHint()})
	}
	out.Decision = DecisionReplayed
	h := in.Response.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Set("Upgrade", "websocket")
	h.Set("Connection", "Upgrade")
	h.Set("Sec-WebSocket-Accept", wsframe.AcceptKey(req.Header.Get("Sec-WebSocket-Key")))
	h.Del("Sec-WebSocket-Extensions") // the replayed server speaks no extension
	url := out.URL
	r := newWSReplay(in.Response.Events, func(msg []byte) string {
		return s.cfg.Rules.Key(&store.Request{Method: "WEBSOCKET", URL: url, Header: http.Header{"Content-Type": {"application/json"}}, Body: msg})
	}, func(got []byte, want *store.Event) {
		expected := "nothing more"
		if want != nil {
			expected = truncate(string(want.Data), 200)
		}
		s.log.Warn("websocket message not recorded", "url", url, "message", truncate(string(got), 200), "expected", expected)
		s.report(Outcome{Method: "WEBSOCKET", URL: url, Host: req.URL.Host, Decision: DecisionBlocked, Reason: ReasonUnrecorded, Status: 1008,
			Body: s.observedBody(&store.Request{URL: url, Body: got})})
	}, s.scrubMessage)
	return &http.Response{StatusCode: http.StatusSwitchingProtocols, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: r, ContentLength: 0, Request: req} // 0, as for any 101: -1 would make Response.Write add "Connection: close"
}

func hasMessages(events []store.Event) bool {
	for i := range events {
		if events[i].Dir != "" {
			return true
		}
	}
	return false
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// wsReplay is the server's end of a replayed WebSocket: goproxy writes the
// client's bytes into it and relays what it reads from it to the client.
type wsReplay struct {
	events []store.Event
	key    func(msg []byte) string             // the match key of a (scrubbed) client message
	miss   func(got []byte, want *store.Event) // reports an unmatched client message
	scrub  func(data []byte, fromClient bool) []byte
	reader wsframe.Reader

	mu     sync.Mutex
	cond   *sync.Cond
	pos    int    // the next recorded event
	out    []byte // frames for the client
	closed bool   // no more frames: Read ends once out is sent
}

func newWSReplay(events []store.Event, key func([]byte) string, miss func([]byte, *store.Event), scrub func([]byte, bool) []byte) *wsReplay {
	r := &wsReplay{events: events, key: key, miss: miss, scrub: scrub}
	r.reader.Max = maxWSMessage
	r.cond = sync.NewCond(&r.mu)
	r.serverTurn() // what the server said before the client's first message
	return r
}

// serverTurn queues the server messages from pos up to the next client one.
func (r *wsReplay) serverTurn() {
	for r.pos < len(r.events) && r.events[r.pos].Dir != store.DirClient {
		e := &r.events[r.pos]
		op := byte(wsframe.OpText)
		if e.Binary {
			op = wsframe.OpBinary
		}
		r.out = wsframe.AppendFrame(r.out, op, e.Data)
		r.pos++
	}
}

// closeWith queues a close frame and ends the connection after it.
func (r *wsReplay) closeWith(code uint16, reason string) {
	r.out = wsframe.AppendFrame(r.out, wsframe.OpClose, wsframe.CloseFrame(code, reason))
	r.closed = true
}

func (r *wsReplay) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	defer r.cond.Broadcast()
	if r.closed {
		return 0, io.ErrClosedPipe
	}
	msgs, err := r.reader.Feed(p)
	for _, m := range msgs {
		switch m.Op {
		case wsframe.OpPing:
			r.out = wsframe.AppendFrame(r.out, wsframe.OpPong, m.Data)
			continue
		case wsframe.OpPong:
			continue
		case wsframe.OpClose:
			r.out = wsframe.AppendFrame(r.out, wsframe.OpClose, m.Data) // echo, as a server does
			r.closed = true
			return len(p), nil
		}
		var want *store.Event
		if r.pos < len(r.events) {
			want = &r.events[r.pos]
		}
		got := r.scrub(m.Data, true)
		if want == nil || want.Binary != (m.Op == wsframe.OpBinary) || r.key(got) != r.key(want.Data) {
			r.miss(got, want)
			r.closeWith(1008, "cassetteproxy: message not recorded")
			return len(p), nil
		}
		r.pos++
		r.serverTurn()
	}
	if err != nil {
		r.closeWith(1002, "cassetteproxy: "+err.Error()) // protocol error
	}
	return len(p), nil
}

func (r *wsReplay) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for len(r.out) == 0 && !r.closed {
		r.cond.Wait()
	}
	if len(r.out) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.out)
	r.out = r.out[n:]
	if len(r.out) == 0 {
		r.out = nil
	}
	return n, nil
}

func (r *wsReplay) Close() error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.cond.Broadcast()
	return nil
}
