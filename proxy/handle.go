package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/cassetteproxy/cassetteproxy/match"
	"github.com/cassetteproxy/cassetteproxy/store"
)

// Decisions, as logged and reported to the Observer.
const (
	DecisionRecorded  = "recorded"  // forwarded upstream and recorded
	DecisionReplayed  = "replayed"  // answered from the cassette
	DecisionBlocked   = "blocked"   // answered with a blocked answer
	DecisionError     = "error"     // upstream failed; answered 502
	DecisionTunnelled = "tunnelled" // protocol upgrade passed through
)

// Outcome is what the proxy did with one request, for logs and run records.
type Outcome struct {
	Method   string
	URL      string // redacted
	Host     string
	Decision string
	Reason   string // the blocked reason, or the error
	Status   int
	Duration time.Duration
	Body     []byte // the redacted request body, for callers that look inside (model names)
	// Incomplete: the answer was replayed from a recording cut short (the
	// client left mid-body, or the upstream broke): the client got the
	// recorded bytes, then a broken connection.
	Incomplete bool
}

// DefaultBodyTimeout is Config.BodyTimeout's default.
const DefaultBodyTimeout = 60 * time.Second

// handle is handleOn without the client's connection (no --body-timeout).
func (s *Server) handle(req *http.Request, inTunnel bool) *http.Response {
	return s.handleOn(req, inTunnel, nil)
}

// handleOn is the path every request takes, plain HTTP or from inside an
// intercepted tunnel (inTunnel), read from conn (nil when unknown). It never
// returns nil and never panics: whatever goes wrong, the client gets an
// answer.
func (s *Server) handleOn(req *http.Request, inTunnel bool, conn *trackedConn) (resp *http.Response) {
	start := time.Now()
	out := Outcome{Method: req.Method, Host: req.URL.Host}
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("panic while handling request", "method", req.Method, "url", s.redactor.String(req.URL.String()), "panic", fmt.Sprint(p))
			out.Decision, out.Reason = DecisionError, "internal error"
			resp = s.errorResponse(req, http.StatusBadGateway, "cassetteproxy internal error")
		}
		if out.URL == "" { // it failed before the request was scrubbed (step 2)
			out.URL = s.redactor.String(req.URL.String())
		}
		out.Status = resp.StatusCode
		now := time.Now()
		out.Duration = now.Sub(start)
		s.reportAt(now, out)
	}()
	if s.onRequest != nil {
		s.onRequest(req)
	}

	// 1. Read the request body whole, within bounds: matching needs all of
	// it, and it is forwarded from this copy. A body that stops making
	// progress for BodyTimeout is answered 408: half a request is never
	// forwarded or recorded.
	body, rest, stalled, err := s.readBodyWithin(req, conn)
	if err != nil {
		if stalled {
			out.Decision, out.Reason = DecisionError, fmt.Sprintf("request body made no progress for %s (--body-timeout) after %d bytes", s.cfg.BodyTimeout, len(body))
			resp = s.errorResponse(req, http.StatusRequestTimeout, out.Reason)
			if req.ProtoMajor < 2 { // an HTTP/1 connection is done; an HTTP/2 stream ends alone
				resp.Header.Set("Connection", "close")
				resp.Close = true
			}
			return resp
		}
		out.Decision, out.Reason = DecisionError, "reading request body: "+err.Error()
		return s.errorResponse(req, http.StatusBadRequest, out.Reason)
	}

	// 2. The request as it is stored and matched: normalized, then redacted,
	// so its key does not depend on secrets.
	mode := s.modeFor(req)
	pol := PolicyFor(mode)
	recReq := s.scrubbedRequest(req, body, pol.Dials)
	out.URL, out.Body = recReq.URL, s.observedBody(&recReq)

	// 3. What the mode does in this request's situation (policy.go).
	sit, in, err := s.situate(req, &recReq, body, pol)
	if err != nil {
		return s.cassetteUnreadable(req, err, &out)
	}
	rule := pol.On[sit]
	switch rule.Action {
	case Record, RecordAdd:
		out.Decision = DecisionRecorded
		return s.forward(req, inTunnel, pol, rule.Action == RecordAdd, body, rest, recReq, &out)
	case Replay, ReplayExpired:
		if sit == WebSocket {
			return s.replayWebSocket(req, &recReq, pol, &out)
		}
		out.Decision = DecisionReplayed
		resp := s.replayResponse(req, body, in)
		if rule.Action == ReplayExpired {
			out.Reason = ReasonExpired
			resp.Header = cloneHeader(resp.Header)
			resp.Header.Set(ExpiredHeader, in.RecordedAt.UTC().Format(time.RFC3339))
			return resp
		}
		out.Incomplete = in.Response.Incomplete && resp.Body != http.NoBody
		return resp
	}
	out.Decision, out.Reason = DecisionBlocked, rule.Reason
	return s.blockedResponse(req, s.blockedFor(req, rule.Reason, mode, out.URL, &recReq, in))
}

// situate finds a request's Situation. The cassette is looked up only when
// the mode consults it (record forwards every request alike, so its
// requests are all a Hit); in is the recorded interaction of a hit. A miss
// is safe or mutating by its method and, for JSON-RPC, its method name
// (toolHints).
func (s *Server) situate(req *http.Request, recReq *store.Request, body []byte, pol *Policy) (Situation, *store.Interaction, error) {
	switch {
	case !s.allowed(req):
		return HostNotAllowed, nil, nil
	case isWebSocket(req.Header):
		return WebSocket, nil, nil
	case isUpgrade(req.Header):
		return Upgrade, nil, nil
	case !pol.consults():
		return Hit, nil, nil
	}
	in, status, err := s.index.Next(recReq)
	if err != nil {
		return 0, nil, err
	}
	switch {
	case status == match.Exhausted && pol.On[HitExhausted].Action != Replay:
		return HitExhausted, in, nil
	case status == match.Found, status == match.Exhausted: // an exhausted hit served is a hit on the last answer
		_, _, notKept := s.bodyNotRecorded(in)
		switch {
		case notKept:
			return HitNotKept, in, nil
		case in.Response.Incomplete && s.cfg.Rules.BlockIncomplete():
			return HitIncompleteBlock, in, nil
		case s.isExpired(in) && s.cfg.ExpiredBlock:
			return HitExpiredBlock, in, nil
		case s.isExpired(in):
			return HitExpired, in, nil
		}
		return Hit, in, nil
	case s.tools.safe(req, body):
		return MissSafe, nil, nil
	}
	return MissMutating, nil, nil
}

// blockedFor is the blocked answer for reason: what happened, the closest
// recorded request where one helps, and how to fix it.
func (s *Server) blockedFor(req *http.Request, reason string, mode Mode, url string, recReq *store.Request, in *store.Interaction) blockedAnswer {
	a := blockedAnswer{Reason: reason, Request: blockedRequest{req.Method, url}}
	switch reason {
	case ReasonHostNotAllowed:
		return s.notAllowedAnswer(req.Method, url)
	case ReasonUpgrade:
		a.Message = "protocol upgrades (WebSocket) are tunnelled in record mode but cannot be replayed"
	case ReasonBodyNotRecorded:
		a.Message, a.Fix, _ = s.bodyNotRecorded(in)
	case ReasonExpired:
		a.Message = fmt.Sprintf("the recorded answer was recorded at %s, %s ago, over --max-recording-age %s",
			in.RecordedAt.UTC().Format(time.RFC3339), time.Since(in.RecordedAt).Round(time.Second), s.cfg.MaxRecordingAge)
		a.Fix = s.recordHint() + "; or serve old recordings with a warning: --expired warn"
	case ReasonIncomplete:
		a.Message = incompleteMessage(&in.Response)
		a.Fix = s.recordHint() + "; or replay it as recorded, cut short: incomplete: replay in the rules file"
	case ReasonExhausted:
		a.Message = "every recorded answer to this request was already served; strict mode does not repeat the last one"
		a.Closest = s.closest(recReq)
		a.Fix = "record the run again so the cassette holds as many answers as the client asks for, or use --mode replay to repeat the last"
	case ReasonMutation:
		a.Message = "this " + req.Method + " was never recorded, and a mutating request is never forwarded in " + string(mode) + " mode"
		a.Closest = s.closest(recReq)
		a.Fix = "make the request match the closest recorded one (see differences), add a rule to ignore the differing part (--rules), or " + s.recordHint()
	default: // ReasonUnrecorded
		a.Message = "this request was never recorded in the cassette"
		a.Closest = s.closest(recReq)
		a.Fix = "make the request match the closest recorded one (see differences), add a rule to ignore the differing part (--rules), or " + s.recordHint()
	}
	return a
}

// upstreamContext is the context of the upstream call a request makes.
// The call ends when the server shuts down (base), and with the client's
// request where the client can end it: net/http cancels a plain request's
// context when its client goes. Inside a tunnel the context goproxy gives
// ends only after the answer is written, so the call runs on base itself,
// with no context of its own to make: a client gone from a tunnel is
// noticed at the upstream's next write (README "Broken streams"), when
// goproxy closes the body, which aborts the upstream read. stopAfter
// unlinks the call from the client's request.
func (s *Server) upstreamContext(req *http.Request, inTunnel bool) (ctx context.Context, cancel context.CancelFunc, stopAfter func() bool) {
	if inTunnel {
		return s.base, func() {}, func() bool { return false }
	}
	ctx, cancel = context.WithCancel(s.base)
	return ctx, cancel, context.AfterFunc(req.Context(), cancel)
}

// scrubbedRequest is req as it is stored and matched: recordedRequest's
// form, redacted. When that shares the live request's header map and the
// request may still be forwarded, redaction copies the map before it
// changes anything; otherwise it scrubs in place.
func (s *Server) scrubbedRequest(req *http.Request, body []byte, forwarded bool) store.Request {
	rec, shared := recordedRequest(req, body)
	if shared && forwarded {
		s.redactor.RequestShared(&rec)
	} else {
		s.redactor.Request(&rec)
	}
	return rec
}

// forward sends the request upstream and returns its response with a body
// that records itself as the client reads it (a recording, committed once
// the body ends). add: the recording also joins what is replayed
// (RecordAdd). The upstream request lives as long as the client's: when
// the client goes, it is cancelled, and the partial recording is kept,
// marked incomplete.
func (s *Server) forward(req *http.Request, inTunnel bool, pol *Policy, add bool, body []byte, rest io.Reader, recReq store.Request, out *Outcome) *http.Response {
	// Counted before anything goes out, so Shutdown waits for this
	// recording; refused once Shutdown has begun.
	if !s.beginRecording() {
		out.Decision, out.Reason = DecisionError, "cassetteproxy is shutting down"
		return s.errorResponse(req, http.StatusServiceUnavailable, out.Reason)
	}
	ctx, cancel, stopAfter := s.upstreamContext(req, inTunnel)
	outReq := req.WithContext(ctx) // a shallow copy: only its Header and Body change, both replaced
	outReq.RequestURI = ""
	// A client's Connection: close is about its own connection: the
	// upstream one goes back to the pool (else a client that connects per
	// request costs a TLS handshake upstream each time too).
	outReq.Close = false
	// Hop-by-hop headers and Expect (the body is already here: no
	// 100-continue wait upstream) go; a header with none of them is sent
	// as it is (the transport only reads it, and so does everyone after).
	outReq.Header = req.Header
	if hasHeader(req.Header, isRecordedRequestDrop) {
		outReq.Header = withoutHop(req.Header, "Expect")
	}
	switch {
	case rest != nil: // over --max-body: stream the remainder, key on what was read
		outReq.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), rest))
		outReq.ContentLength = req.ContentLength
	case len(body) == 0:
		outReq.Body, outReq.ContentLength = http.NoBody, 0
	default:
		outReq.Body = io.NopCloser(bytes.NewReader(body))
		outReq.ContentLength = int64(len(body))
	}
	started := time.Now()
	resp, err := s.upstreamFor(pol).RoundTrip(outReq)
	if err != nil {
		stopAfter()
		cancel()
		s.inflight.Done()
		out.Decision, out.Reason = DecisionError, "upstream: "+s.redactor.String(err.Error())
		return s.errorResponse(req, http.StatusBadGateway, out.Reason)
	}
	stripHop(resp.Header, false)
	r := &recording{s: s, add: add, started: started, stopAfter: stopAfter, cancel: cancel,
		in: store.Interaction{RecordedAt: started, Request: recReq, Response: recordedResponseHead(resp), RunID: s.cfg.RunID}}
	resp.Body = newCapture(resp.Body, resp, s.cfg.MaxBody, r.bodyEnded)
	return resp
}

// replayResponse answers from a recorded interaction. A JSON-RPC answer
// carries the live request's id, not the recorded one (see jsonrpcAnswer).
//
// An answer with a body of known length (nearly every one) is handed the
// recorded header map itself, not a copy: its length goes in
// ContentLength, which is what both writers use (Response.Write leaves a
// Content-Length header out and writes the field; writeResponse sets it
// from the field), and no writer changes the map of such an answer
// (goproxy deletes Content-Length only from answers it re-chunks: unknown
// length or a replaced body). The other answers get a copy.
func (s *Server) replayResponse(req *http.Request, liveBody []byte, in *store.Interaction) *http.Response {
	resp := &http.Response{
		StatusCode: in.Response.Status,
		// Status is left empty: Response.Write derives the reason phrase.
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Request: req,
	}
	body, events := jsonrpcAnswer(liveBody, in)
	switch {
	case req.Method == http.MethodHead:
		// No body, but the length a GET would fetch, as recorded.
		resp.Header = cloneHeader(in.Response.Header)
		resp.Body = http.NoBody
		resp.ContentLength, _ = strconv.ParseInt(resp.Header.Get("Content-Length"), 10, 64)
	case in.Response.Status == http.StatusNoContent || in.Response.Status == http.StatusNotModified:
		resp.Header = cloneHeader(in.Response.Header)
		resp.Body = http.NoBody
		resp.ContentLength = 0
	case in.Response.Streamed:
		// A stream is served as its events, one write each, so a client
		// reading event by event sees what it saw live.
		resp.Header = cloneHeader(in.Response.Header)
		resp.Body = newEventReader(req.Context(), events, in.Response.Incomplete, s.cfg.ReplayTiming)
		resp.ContentLength = -1
	case in.Response.Incomplete:
		// A body cut short while recording is served cut short: the
		// recorded bytes, then a broken connection (cutBody), never a
		// clean answer with a shortened length. The announced length goes
		// out when it is known, so the client counts the missing bytes;
		// else the body is chunked and its last chunk never comes.
		resp.Header = cloneHeader(in.Response.Header)
		resp.Body = &cutBody{r: bytes.NewReader(body)}
		resp.ContentLength = -1
		if n := in.Response.ContentLength; n > int64(len(in.Response.Body)) {
			resp.ContentLength = n + int64(len(body)-len(in.Response.Body)) // a JSON-RPC id rewritten
			// HTTP/1.1 writers take the field; goproxy's HTTP/2 path the header.
			resp.Header.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
		}
	case len(body) == 0:
		resp.Header = cloneHeader(in.Response.Header)
		resp.Body = nopCloser{bytes.NewReader(body)}
		resp.ContentLength = 0
		resp.Header.Set("Content-Length", "0") // goproxy re-chunks a 0 without it
	default:
		resp.Header = in.Response.Header // shared, read-only: see above
		if resp.Header == nil {
			resp.Header = emptyHeader
		}
		resp.Body = nopCloser{bytes.NewReader(body)}
		resp.ContentLength = int64(len(body))
	}
	return resp
}

// errRecordedCut ends the body of an answer replayed from a recording that
// was cut short, where the recording ended.
var errRecordedCut = errors.New("the recorded response was cut short here")

// cutBody is a recorded body that was cut short: its bytes, then
// errRecordedCut, which both writers turn into a broken connection
// (writeResponse aborts the handler; goproxy closes the tunnel when the
// body fails).
// It has no WriteTo: a writer must see the error.
type cutBody struct{ r *bytes.Reader }

func (b *cutBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		err = errRecordedCut
		if n > 0 {
			err = nil
		}
	}
	return n, err
}

func (b *cutBody) Close() error { return nil }

// emptyHeader is the shared, never written, header of a recorded answer
// that has none.
var emptyHeader = http.Header{}

func cloneHeader(h http.Header) http.Header {
	if h == nil {
		return http.Header{}
	}
	return h.Clone()
}

// jsonrpcAnswer is the recorded body and events as the live request must
// see them. Keys leave JSON-RPC ids and MCP progress tokens out, so a
// request numbered differently from the recording matched it; the client
// knows only its own numbers. A JSON-RPC response gets the live request's
// id (in an SSE stream, every response on a data: line; server requests
// and notifications keep theirs), and every notifications/progress in the
// stream gets the live request's progressToken. liveBody is the request as
// the client sent it (the client's own numbers go back to the client, even
// where redaction scrubbed them from what is stored). Nothing else
// changes, and the recorded interaction is not touched.
func jsonrpcAnswer(liveBody []byte, in *store.Interaction) ([]byte, []store.Event) {
	body, events := in.Response.Body, in.Response.Events
	liveID, ok := match.JSONRPCID(liveBody)
	if !ok {
		return body, events
	}
	var rewrite func([]byte) []byte // nil: nothing to change
	if recID, ok := match.JSONRPCID(in.Request.Body); ok && !bytes.Equal(liveID, recID) {
		if !isSSE(in.Response.Header.Get("Content-Type")) {
			return match.WithJSONRPCID(body, liveID), events
		}
		rewrite = func(b []byte) []byte { return match.RewriteJSONRPCIDInSSE(b, liveID) }
	}
	if token, ok := match.ProgressToken(liveBody); ok && isSSE(in.Response.Header.Get("Content-Type")) {
		if ids := rewrite; ids != nil {
			rewrite = func(b []byte) []byte { return match.RewriteProgressTokenInSSE(ids(b), token) }
		} else {
			rewrite = func(b []byte) []byte { return match.RewriteProgressTokenInSSE(b, token) }
		}
	}
	if rewrite == nil {
		return body, events
	}
	body = rewrite(body)
	if len(events) > 0 {
		ev := make([]store.Event, len(events))
		for i, e := range events {
			ev[i] = store.Event{OffsetMs: e.OffsetMs, Data: rewrite(e.Data)}
		}
		events = ev
	}
	return body, events
}

// eventReader returns one recorded event per Read, and the recorded break
// (an unexpected EOF) at the end of an incomplete stream. With a timing
// scale above 0 it waits until each event's recorded offset (times the
// scale) from when the response began; at 0 events come as fast as the
// client reads.
type eventReader struct {
	ctx        context.Context
	events     []store.Event
	cur        []byte
	incomplete bool
	scale      float64
	start      time.Time
}

func newEventReader(ctx context.Context, events []store.Event, incomplete bool, scale float64) *eventReader {
	return &eventReader{ctx: ctx, events: events, incomplete: incomplete, scale: scale, start: time.Now()}
}

func (r *eventReader) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
		if len(r.events) == 0 {
			if r.incomplete {
				return 0, io.ErrUnexpectedEOF
			}
			return 0, io.EOF
		}
		if r.scale > 0 {
			if err := r.wait(time.Duration(float64(r.events[0].OffsetMs) * r.scale * float64(time.Millisecond))); err != nil {
				return 0, err
			}
		}
		r.cur, r.events = r.events[0].Data, r.events[1:]
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}

// wait sleeps until offset after the response began, or until the client goes.
func (r *eventReader) wait(offset time.Duration) error {
	d := time.Until(r.start.Add(offset))
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-r.ctx.Done():
		return r.ctx.Err()
	}
}

func (r *eventReader) Close() error { return nil }

// readBodyWithin is readBody under BodyTimeout: a read of the body that
// waits that long ends it, and stalled says so. Over HTTP/1 the connection
// is done (trackedConn.stall: where the next request would begin is
// unknown); an HTTP/2 stream only has its body closed, its connection's
// other streams go on. The watch covers what is read here, up to MaxBody;
// a remainder past it streams upstream unwatched. Without the connection
// (conn nil) there is no watch.
func (s *Server) readBodyWithin(req *http.Request, conn *trackedConn) (body []byte, rest io.Reader, stalled bool, err error) {
	rc := req.Body
	if conn == nil || rc == nil || rc == http.NoBody {
		body, rest, err = readBody(rc, s.cfg.MaxBody)
		return body, rest, false, err
	}
	var fired atomic.Bool
	stall := func() {
		fired.Store(true)
		if req.ProtoMajor == 2 {
			rc.Close() // ends the stream body's pending read
		} else {
			conn.stall()
		}
	}
	w := &stallWatch{r: rc, timer: time.AfterFunc(time.Hour, stall), d: s.cfg.BodyTimeout}
	w.timer.Stop()
	defer w.timer.Stop()
	body, rest, err = readBody(struct {
		io.Reader
		io.Closer
	}{w, rc}, s.cfg.MaxBody)
	if rest != nil {
		rest = rc // the remainder, unwatched
	}
	return body, rest, fired.Load(), err
}

// stallWatch arms its timer around every read: a read that takes d fires it.
type stallWatch struct {
	r     io.Reader
	timer *time.Timer
	d     time.Duration
}

func (w *stallWatch) Read(p []byte) (int, error) {
	w.timer.Reset(w.d)
	n, err := w.r.Read(p)
	w.timer.Stop()
	return n, err
}

// readBody reads up to max bytes. When the body is larger, what was read is
// returned with the unread remainder, to be streamed on. On an error, what
// was read before it is returned with it.
func readBody(rc io.ReadCloser, max int64) (body []byte, rest io.Reader, err error) {
	if rc == nil || rc == http.NoBody {
		return nil, nil, nil
	}
	body, err = io.ReadAll(io.LimitReader(rc, max+1))
	if err != nil {
		return body, nil, err
	}
	if int64(len(body)) > max {
		return body, rc, nil
	}
	return body, nil, nil
}

// ExpiredHeader marks an answer served from a recording older than
// --max-recording-age (--expired warn); its value is the recorded_at.
const ExpiredHeader = "X-Cassetteproxy-Expired"

// isExpired reports whether a recorded answer is older than
// MaxRecordingAge. An interaction without a recorded time is never expired.
func (s *Server) isExpired(in *store.Interaction) bool {
	return s.cfg.MaxRecordingAge > 0 && !in.RecordedAt.IsZero() && time.Since(in.RecordedAt) > s.cfg.MaxRecordingAge
}

// incompleteMessage says how much of a cut-short answer was recorded.
func incompleteMessage(p *store.Response) string {
	got := fmt.Sprintf("%d bytes", len(p.Body))
	if p.ContentLength > 0 {
		got = fmt.Sprintf("%d of the %d bytes announced", len(p.Body), p.ContentLength)
	}
	return "the recorded answer was cut short (" + got + " arrived before the upstream or the client broke it); the rules file's incomplete: block keeps strict mode from replaying it"
}

// cassetteUnreadable answers a request whose recorded answer could not be
// read from the store (a damaged page, an I/O error): 502, logged.
func (s *Server) cassetteUnreadable(req *http.Request, err error, out *Outcome) *http.Response {
	out.Decision, out.Reason = DecisionError, "reading the recorded answer: "+err.Error()
	s.log.Error("recorded answer unreadable", "url", out.URL, "err", err)
	return s.errorResponse(req, http.StatusBadGateway, out.Reason)
}

// closest is the closest recorded interaction for a blocked answer, or nil
// when the cassette is empty or it could not be read (logged: the request
// is blocked all the same, without the hint).
func (s *Server) closest(req *store.Request) *match.Closest {
	c, err := s.index.Closest(req)
	if err != nil {
		s.log.Error("closest recorded interaction unreadable", "url", req.URL, "err", err)
		return nil
	}
	return c
}

// recordHint says how to get a missing request into the recording.
func (s *Server) recordHint() string {
	if s.cfg.RecordHint != "" {
		return s.cfg.RecordHint
	}
	return "record it: cassetteproxy serve --mode record --append --cassette " + s.cfg.Cassette
}

func isSafe(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	return false
}

// report logs the one line a request gets and tells the observer.
func (s *Server) report(o Outcome) { s.reportAt(time.Now(), o) }

// reportAt is report with the line's time already read.
func (s *Server) reportAt(now time.Time, o Outcome) {
	level := slog.LevelInfo
	if o.Decision == DecisionError || o.Reason == ReasonExpired {
		level = slog.LevelWarn // an expired recording served (--expired warn) or blocked
	}
	// The record is built here rather than by Logger.LogAttrs, which asks
	// runtime.Callers for a source location on every call (a fifth of the
	// line's cost) that no handler of ours prints. Typed attributes: no
	// boxing on the per-request path.
	ctx := context.Background()
	if h := s.log.Handler(); h.Enabled(ctx, level) {
		r := slog.NewRecord(now, level, "request", 0)
		r.AddAttrs(slog.String("method", o.Method), slog.String("url", o.URL), slog.String("decision", o.Decision),
			slog.Int("status", o.Status), slog.Float64("ms", float64(o.Duration.Microseconds())/1000))
		if o.Reason != "" {
			r.AddAttrs(slog.String("reason", o.Reason))
		}
		_ = h.Handle(ctx, r)
	}
	if s.cfg.Observe != nil {
		s.cfg.Observe(o)
	}
}
