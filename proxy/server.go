package proxy

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/elazarl/goproxy"

	"github.com/cassetteproxy/cassetteproxy/match"
	"github.com/cassetteproxy/cassetteproxy/redact"
	"github.com/cassetteproxy/cassetteproxy/store"
)

// Config is everything a Server needs; the CLI builds it.
type Config struct {
	Mode         Mode
	Cassette     string
	Interactions []store.Interaction // the cassette as loaded, for replay, strict and live
	// Index, when set, is the cassette's index (match.Load over a
	// store.Replay), built with Rules, instead of one of Interactions.
	Index         *match.Index
	Recorder      *store.Recorder // where record and live modes write; nil in replay and strict
	Rules         *match.Rules
	Redactor      *redact.Redactor
	CA            *CA
	UpstreamRoots *x509.CertPool // nil: the system roots
	BlockedStatus int            // default 403
	MaxBody       int64          // default 64 MiB
	Logger        *slog.Logger
	RunID         string
	Observe       func(Outcome) // called once per request, after the answer's head is ready
	// TunnelIdle closes an intercepted (CONNECT) connection whose client
	// has sent nothing for this long: goproxy sets no deadline of its own,
	// so a client that opens a tunnel and stalls (or sends garbage instead
	// of a TLS handshake) would hold it forever. Default 10 minutes; it
	// only runs while the proxy waits to read, never during a response.
	TunnelIdle time.Duration
	// RecordHint ends the fix of an unrecorded request's blocked answer: how
	// to get the request into the recording. Default: record it into the
	// store's cassette with serve --append; fixture replays name the
	// fixture workflow instead.
	RecordHint string
	// Events takes what the agent reports on /_cassetteproxy/v1/events,
	// already checked and redacted, and returns its sequence number
	// (runner.Observer.Event). nil: the proxy serves no run, and events are
	// refused.
	Events func(store.RunEvent) (int, error)
	// AllowHosts, when set, are the only hosts requests and tunnels may go
	// to, in every mode; any other is blocked host_not_allowed.
	AllowHosts *match.HostPatterns
	// ReplayTiming paces replayed streams: 0 serves events as fast as the
	// client reads, 1 at their recorded offsets, F at F times them (see
	// ParseReplayTiming).
	ReplayTiming float64
	// MaxRecordingAge marks a recorded answer older than this (by its
	// recorded_at) expired; 0 never does. An expired answer is served with
	// the header X-Cassetteproxy-Expired and a warning in the log, or, with
	// ExpiredBlock, blocked with reason expired.
	MaxRecordingAge time.Duration
	ExpiredBlock    bool
	// BodyTimeout answers 408 to a request whose body makes no progress
	// (no byte read) for this long; what was read is neither forwarded nor
	// recorded. Default 60s.
	BodyTimeout time.Duration
	// ProxyAuth, "USER:PASSWORD", makes every proxied request and CONNECT
	// without those credentials in Proxy-Authorization: Basic get 407. The
	// proxy's own /healthz and /ca.pem stay open. "" (default): no check.
	ProxyAuth string
}

// ParseReplayTiming reads --replay-timing: "fast" (or ""), "recorded", or
// "scale:F" with F > 0 multiplying the recorded offsets (scale:2 is half
// speed, scale:0.1 ten times faster).
func ParseReplayTiming(s string) (float64, error) {
	switch s {
	case "", "fast":
		return 0, nil
	case "recorded":
		return 1, nil
	}
	if f, ok := strings.CutPrefix(s, "scale:"); ok {
		v, err := strconv.ParseFloat(f, 64)
		if err == nil && v > 0 && !math.IsInf(v, 0) {
			return v, nil
		}
	}
	return 0, fmt.Errorf("unknown --replay-timing %q: use fast, recorded or scale:F (F > 0, e.g. scale:0.5)", s)
}

// Plan is what a proxy in a mode, with per-host rule modes, needs from the
// one who builds its Config: PlanFor is the single place that decides it.
type Plan struct {
	// Records: some request may be forwarded upstream and recorded (the
	// global mode, or a rule's mode, is record or live). Config.Recorder
	// is then required.
	Records bool
	// Replays: some request may be answered from the cassette (the global
	// mode, or a rule's mode, is replay, strict or live). Config.Interactions
	// should then hold the cassette; when false (record mode, no rule
	// overriding it) nothing is ever read from it, and a recording may
	// start it fresh.
	Replays bool
}

// PlanFor computes the Plan of mode with rules (nil rules: no per-host modes).
func PlanFor(mode Mode, rules *match.Rules) Plan {
	var p Plan
	for _, m := range append(rules.Modes(), mode) {
		pol := PolicyFor(m)
		p.Records = p.Records || pol.Dials
		p.Replays = p.Replays || pol.Serves()
	}
	return p
}

// contacts reports whether any request could be forwarded upstream: the
// global mode, or a per-host rule, is record or live.
func contacts(cfg *Config) bool { return PlanFor(cfg.Mode, cfg.Rules).Records }

// Server is one running proxy.
type Server struct {
	cfg      Config
	log      *slog.Logger
	redactor *redact.Redactor
	memo     *redactMemo // recent response bodies and what they redacted to
	index    *match.Index
	tools    *toolHints   // MCP tools the cassette's tools/list answers mark read-only
	metrics  http.Handler // GET /metrics on the proxy's own address
	upstream http.RoundTripper
	gp       *goproxy.ProxyHttpServer
	srv      *http.Server
	inflight sync.WaitGroup // recordings begun (see beginRecording) and not yet handed to the recorder
	saves    saveWorkers    // commit the larger recordings

	// base ends every upstream call when Shutdown cancels it.
	base       context.Context
	cancelBase context.CancelFunc

	// onRequest, when set, runs first in handle. Tests use it to make a
	// handler fail the way a bug would.
	onRequest func(*http.Request)

	mu      sync.Mutex
	conns   map[net.Conn]struct{} // every accepted connection, hijacked ones included
	closing bool                  // Shutdown has begun: no new recording may start

	self atomic.Pointer[selfAddr] // where Serve listens: requests to it are the proxy's own

	// Recordings that never reached the recorder (it refused them, or
	// saving them failed); the recorder counts those whose commit failed.
	dropped    atomic.Int64
	dropReason atomic.Pointer[string]

	authSum *[32]byte // sha256 of Config.ProxyAuth; nil: no authentication
}

// dropRecording counts a recording that will never be in the store.
func (s *Server) dropRecording(err error) {
	reason := err.Error()
	s.dropReason.Store(&reason)
	s.dropped.Add(1)
}

// RecordingLoss returns how many recordings this proxy answered but could
// not keep (the recorder refused them, or their commit failed: disk full,
// I/O error) and the last reason; 0 and "" while nothing was lost. Flush or
// close the recorder first for a final count.
func (s *Server) RecordingLoss() (int, string) {
	n, reason := int(s.dropped.Load()), ""
	if r := s.dropReason.Load(); r != nil {
		reason = *r
	}
	if s.cfg.Recorder != nil {
		lost, err := s.cfg.Recorder.Lost()
		n += lost
		if err != nil {
			reason = err.Error()
		}
	}
	return n, reason
}

// beginRecording counts a recording in, unless Shutdown has begun: the
// count and the flag share a lock, so Shutdown's wait never races an Add.
func (s *Server) beginRecording() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.inflight.Add(1)
	return true
}

// MaxHeaderBytes bounds a plain-HTTP request's head (request line and
// headers); a larger one is answered 431 Request Header Fields Too Large.
const MaxHeaderBytes = 128 << 10

// tunnelHeadLimit bounds what a client may send inside an intercepted tunnel
// while the proxy waits for its next request head. goproxy reads heads there
// with http.ReadRequest, which has no limit: a client sending an endless
// header would make the proxy buffer it all. The count is of the bytes on
// the wire (TLS records, the handshake before the first head), hence the
// slack over MaxHeaderBytes. Past it the tunnel is closed: the head is
// encrypted by then, so no 431 can be written from below TLS.
const tunnelHeadLimit = MaxHeaderBytes + 32<<10

// errTunnelHeadTooLarge ends a tunnel whose client sent more than
// tunnelHeadLimit without completing a request head.
var errTunnelHeadTooLarge = errors.New("request head inside the tunnel exceeds the limit")

// New wires a Server. It opens no socket; Serve does.
func New(cfg Config) (*Server, error) {
	if cfg.CA == nil || cfg.Rules == nil || cfg.Redactor == nil {
		return nil, errors.New("proxy: CA, Rules and Redactor are required")
	}
	if _, err := ParseMode(string(cfg.Mode)); err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	if contacts(&cfg) && cfg.Recorder == nil {
		return nil, fmt.Errorf("proxy: %s mode (or a rule's mode) needs a recorder", cfg.Mode)
	}
	if cfg.BlockedStatus == 0 {
		cfg.BlockedStatus = http.StatusForbidden
	}
	if cfg.TunnelIdle <= 0 {
		cfg.TunnelIdle = 10 * time.Minute
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 64 << 20
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = DefaultBodyTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	index := cfg.Index
	if index == nil {
		index = match.NewIndex(cfg.Rules, cfg.Interactions)
	} else if index.Rules() != cfg.Rules {
		return nil, errors.New("proxy: Index was built with other rules than Rules")
	}
	tools, err := newToolHints(index)
	if err != nil {
		return nil, fmt.Errorf("proxy: reading the recorded tools/list answers: %w", err)
	}
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger,
		redactor: cfg.Redactor,
		memo:     newRedactMemo(),
		index:    index,
		tools:    tools,
		conns:    make(map[net.Conn]struct{}),
	}
	s.base, s.cancelBase = context.WithCancel(context.Background())
	s.metrics = s.metricsHandler()
	if cfg.ProxyAuth != "" {
		if u, _, ok := strings.Cut(cfg.ProxyAuth, ":"); !ok || u == "" {
			return nil, errors.New("proxy: ProxyAuth must be USER:PASSWORD")
		}
		sum := sha256.Sum256([]byte(cfg.ProxyAuth))
		s.authSum = &sum
	}

	gp := goproxy.NewProxyHttpServer()
	gp.Logger = discardLogger{}
	gp.KeepAcceptEncoding = true // the client's own encodings go upstream, bytes come back untouched
	gp.CertStore = &leafCache{}
	// The real transport exists only when some request may go upstream:
	// the global mode is record or live, or a rule gives some host one of
	// those modes (e.g. --mode replay with `mode: live` for tool hosts).
	// Even then each request gets it only when its own mode contacts
	// (upstreamFor): a host in replay or strict is handed the dial-less
	// noUpstream, so per-host overrides never open a path out for them.
	// goproxy itself never dials: every request is answered by handle, and
	// upgrades go through upgradeTrip, so its transport cannot dial either.
	if contacts(&cfg) {
		s.upstream = newUpstreamTransport(cfg.UpstreamRoots)
	} else {
		s.upstream = noUpstream{}
	}
	gp.Tr = &http.Transport{Proxy: nil, DialContext: refuseDial, DialTLSContext: refuseDial}
	gp.ConnectDial = func(string, string) (net.Conn, error) { return nil, errors.New("cassetteproxy never tunnels blind") }

	mitm := &goproxy.ConnectAction{Action: goproxy.ConnectMitm, TLSConfig: mitmTLSConfig(&cfg.CA.TLS)}
	gp.OnRequest().HandleConnectFunc(func(host string, ctx *goproxy.ProxyCtx) (*goproxy.ConnectAction, string) {
		switch {
		case s.isSelf(host):
			// A tunnel to the proxy itself (undici tunnels http:// URLs
			// too): what comes through it is answered by serveSelf.
		default:
			if rule := s.connectRule(host); rule.Action == Block {
				ctx.Resp = s.blockedResponse(ctx.Req, s.connectBlocked(rule.Reason, host))
				s.report(Outcome{Method: http.MethodConnect, URL: host, Host: host, Decision: DecisionBlocked, Reason: rule.Reason, Status: cfg.BlockedStatus})
				return goproxy.RejectConnect, host
			}
		}
		// goproxy copies UserData into every request of the tunnel: it is
		// how a request's answer finds the client connection (holdNextWrite).
		if tc, ok := ctx.Req.Context().Value(connKey{}).(*trackedConn); ok {
			ctx.UserData = tc
		}
		return mitm, host
	})
	// A client that offers h2 by ALPN inside a tunnel is served HTTP/2:
	// goproxy runs x/net/http2's server on the tunnel and calls DoFunc
	// once per stream, concurrently. Streams share the connection, so
	// nothing per-connection (the head bound, write coalescing) applies
	// to them: http2's server bounds header lists itself, and each stream
	// ends its upstream call with its own context (reset or done).
	gp.AllowHTTP2 = true
	gp.OnRequest().DoFunc(func(req *http.Request, ctx *goproxy.ProxyCtx) (*http.Request, *http.Response) {
		tc, inTunnel := ctx.UserData.(*trackedConn)
		if inTunnel && req.ProtoMajor == 2 {
			tc.requestRead() // never answered: the head bound stays off for this connection
			if s.isSelf(req.URL.Host) {
				return req, s.selfResponse(req)
			}
			return req, resetOnBreak(streamH2(s.handleOn(req, false, tc)))
		}
		if inTunnel {
			tc.requestRead()
		}
		if s.isSelf(req.URL.Host) {
			resp := s.selfResponse(req)
			if inTunnel {
				resp = tc.untilAnswered(resp)
			}
			return req, resp
		}
		if isUpgrade(req.Header) && s.allowed(req) && PolicyFor(s.modeFor(req)).On[upgradeSituation(req.Header)].Action == Record {
			// goproxy tunnels the upgraded connection itself; we only note it.
			// What follows is no longer HTTP: no head is counted again.
			ctx.RoundTripper = goproxy.RoundTripperFunc(s.upgradeTrip)
			return req, nil
		}
		resp := s.handleOn(req, inTunnel, tc)
		if inTunnel && resp.StatusCode == http.StatusSwitchingProtocols {
			return req, resp // a replayed WebSocket: what follows is not HTTP (the head bound stays off)
		}
		if inTunnel {
			switch {
			case headThenBody(req, resp):
				tc.holdNextWrite() // the head waits for the body: one write(2), not two
			case forwardedBody(req, resp):
				tc.holdNextWriteFor(headDelay) // the same, unless the upstream takes its time
			}
			resp = tc.untilAnswered(resp)
		}
		return req, resp
	})
	s.gp = gp
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// A request head over 128 KiB is answered 431. net/http's default
		// (1 MiB) let each peer sending an endless header line make the
		// proxy grow ~2 MiB of buffers; nginx allows 32 KiB, Node 16 KiB.
		MaxHeaderBytes: MaxHeaderBytes,
		ErrorLog:       slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug),
		// Once goproxy hijacks a connection net/http's deadlines are gone;
		// trackedConn applies TunnelIdle from then on.
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, c)
		},
		ConnState: func(c net.Conn, st http.ConnState) {
			if tc, ok := c.(*trackedConn); ok && st == http.StateHijacked {
				tc.hijacked.Store(true)
			}
		},
	}
	return s, nil
}

// headDelay is the longest the head of a forwarded answer waits for the
// first bytes of its body, so that both leave in one write: a body that
// takes longer (a slow tool, a dripping download) gets its head at once
// after this, and every read as it arrives.
const headDelay = 2 * time.Millisecond

// ServeHTTP takes plain proxy requests itself (so every response, streamed
// or not, is flushed as upstream writes it) and hands CONNECT and upgrades
// to goproxy. Requests with a relative URL are for the proxy itself.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.authSum != nil && needsAuth(r) && !s.authorized(r) {
		s.proxyAuthRequired(w, r)
		return
	}
	switch {
	case r.Method == http.MethodConnect, isUpgrade(r.Header) && r.URL.IsAbs() && !s.isSelf(r.URL.Host):
		s.gp.ServeHTTP(w, r)
	case !r.URL.IsAbs(), s.isSelf(r.URL.Host):
		// Origin form, or absolute form naming the proxy's own address (a
		// client with HTTP_PROXY set calling CASSETTEPROXY_URL): answered
		// here, never forwarded, recorded or blocked.
		s.serveSelf(w, r)
	default:
		tc, _ := r.Context().Value(connKey{}).(*trackedConn)
		writeResponse(w, s.handleOn(r, false, tc))
	}
}

// needsAuth reports whether --proxy-auth applies to a request: to every
// CONNECT and proxied (absolute-form) request, and to the proxy's own
// endpoints (the events API) when the client is not on this machine. The
// health check and the CA certificate stay open: probes and first-time
// clients have no credentials, and neither answer holds a secret.
func needsAuth(r *http.Request) bool {
	if r.Method == http.MethodConnect || r.URL.IsAbs() {
		return true
	}
	switch r.URL.Path {
	case "/healthz", "/_cassetteproxy/health", "/ca.pem", "/_cassetteproxy/ca.pem", MetricsPath:
		return false
	}
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback()
}

// authorized reports whether the request carries the --proxy-auth
// credentials: Proxy-Authorization: Basic base64(USER:PASSWORD). The
// comparison is of SHA-256 sums, in constant time.
func (s *Server) authorized(r *http.Request) bool {
	raw, ok := basicCredentials(r)
	if !ok {
		return false
	}
	sum := sha256.Sum256(raw)
	return subtle.ConstantTimeCompare(sum[:], s.authSum[:]) == 1
}

// basicCredentials is what a request's Proxy-Authorization: Basic carries,
// decoded: USER:PASSWORD.
func basicCredentials(r *http.Request) ([]byte, bool) {
	scheme, cred, ok := strings.Cut(r.Header.Get("Proxy-Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Basic") {
		return nil, false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
	return raw, err == nil
}

// proxyAuthRequired answers 407 with the challenge clients answer with
// their proxy credentials. The credentials tried are never logged.
func (s *Server) proxyAuthRequired(w http.ResponseWriter, r *http.Request) {
	target := r.Host
	if r.Method != http.MethodConnect {
		target = s.redactor.String(r.URL.String())
	}
	s.log.Warn("proxy authentication required", "method", r.Method, "url", target, "remote", r.RemoteAddr,
		"credentials", r.Header.Get("Proxy-Authorization") != "")
	writeProxyAuthRequired(w, `{"error":"proxy authentication required: send Proxy-Authorization: Basic with the USER:PASSWORD of --proxy-auth (e.g. HTTPS_PROXY=http://USER:PASSWORD@HOST:PORT)"}`)
}

// writeProxyAuthRequired writes a 407 with the Basic challenge and body, a
// line of JSON.
func writeProxyAuthRequired(w http.ResponseWriter, body string) {
	h := w.Header()
	h.Set("Proxy-Authenticate", `Basic realm="cassetteproxy"`)
	h.Set("Content-Type", blockedContentTypeJSON)
	h.Set("Connection", "close")
	w.WriteHeader(http.StatusProxyAuthRequired)
	_, _ = io.WriteString(w, body+"\n")
}

// writeResponse copies a response to a plain-HTTP client as it arrives,
// whatever its length or type: each read of the body is flushed unless it
// ended the body (net/http's writer would hold up to 4 KiB, and the head,
// until the handler returns). A body in memory goes out in one write. The
// head of a body on its way waits at most headDelay for the body's first
// bytes, to leave with them. A body that ends in an error (an upstream that
// broke, a recording cut short) ends in a broken connection, after every
// byte before the break.
func writeResponse(w http.ResponseWriter, resp *http.Response) {
	defer resp.Body.Close()
	h := w.Header()
	for k, vs := range resp.Header {
		h[k] = vs
	}
	if resp.ContentLength >= 0 {
		h.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	} else {
		h.Del("Content-Length")
	}
	w.WriteHeader(resp.StatusCode)
	if wt, ok := resp.Body.(io.WriterTo); ok && resp.ContentLength >= 0 {
		// A body in memory (replay, blocked answers): one write, no copy buffer.
		_, _ = wt.WriteTo(w)
		return
	}
	rc := http.NewResponseController(w)
	head := &headFlush{rc: rc}
	head.timer = time.AfterFunc(headDelay, head.fire)
	defer head.stop() // nothing touches w once the handler returns
	bp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bp)
	buf := *bp
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			head.stop()
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			if err == nil { // more may come, after a while: send this now
				if rc.Flush() != nil {
					return
				}
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				// Pass a broken body on as a broken response: what came
				// before the break, then no clean end.
				head.stop()
				_ = rc.Flush()
				panic(http.ErrAbortHandler)
			}
			return
		}
	}
}

// headFlush sends a plain-HTTP answer's head if the body's first bytes
// have not come within headDelay. The timer's goroutine and the handler
// never use the ResponseWriter at once: fire flushes under mu, and the
// handler calls stop, under mu, before its first write.
type headFlush struct {
	rc      *http.ResponseController
	timer   *time.Timer
	mu      sync.Mutex
	stopped bool
}

func (h *headFlush) fire() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.stopped {
		h.stopped = true
		_ = h.rc.Flush()
	}
}

// stop keeps the timer from touching the writer from now on.
func (h *headFlush) stop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.stopped {
		h.stopped = true
		h.timer.Stop()
	}
}

// copyBuffers are writeResponse's read buffers, reused: a fresh 32 KiB per
// request was the replay path's largest cost.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// serveSelf answers requests addressed to the proxy itself: a health check
// and the CA certificate, for clients that fetch it over HTTP.
func (s *Server) serveSelf(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/healthz", "/_cassetteproxy/health":
		w.Header().Set("Content-Type", "application/json")
		h := s.healthNow()
		if h.RecordingsLost > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		b, _ := json.Marshal(h)
		w.Write(append(b, '\n'))
	case "/ca.pem", "/_cassetteproxy/ca.pem":
		w.Header().Set("Content-Type", "application/x-pem-file")
		http.ServeFile(w, r, s.cfg.CA.CertPath)
	case EventsPath:
		s.serveEvents(w, r)
	case MetricsPath:
		s.metrics.ServeHTTP(w, r)
	default:
		http.Error(w, "cassetteproxy is a proxy: set HTTP_PROXY/HTTPS_PROXY to this address (GET /healthz, /metrics, /ca.pem)", http.StatusBadRequest)
	}
}

// healthNow is the proxy's health as /healthz answers it.
func (s *Server) healthNow() health {
	h := health{Status: "ok", Mode: string(s.cfg.Mode), Cassette: s.cfg.Cassette, Interactions: s.liveCount()}
	if s.cfg.Recorder != nil {
		n := s.cfg.Recorder.Committed()
		h.RecordingsCommitted = &n
	}
	if h.RecordingsLost, h.Error = s.RecordingLoss(); h.RecordingsLost > 0 {
		// The recording a client believes exists does not: a health
		// check must not call that healthy (answered 503).
		h.Status, h.Reason = "degraded", "recording_lost"
	}
	return h
}

// health is the proxy's /healthz answer.
type health struct {
	Status       string `json:"status"`           // ok, or degraded (then answered 503)
	Reason       string `json:"reason,omitempty"` // recording_lost
	Mode         string `json:"mode"`
	Cassette     string `json:"cassette"`
	Interactions int    `json:"interactions"` // the cassette's, now (see liveCount)
	// RecordingsCommitted counts the recordings this proxy has committed to
	// the store; absent when it records nothing.
	RecordingsCommitted *int64 `json:"recordings_committed,omitempty"`
	RecordingsLost      int    `json:"recordings_lost"`
	Error               string `json:"error,omitempty"` // the last reason a recording was lost
}

// liveCount is how many interactions the cassette holds now: in record
// mode the store's count (what was committed, earlier ones included when
// appending), else the index's (live mode adds to it what it records).
func (s *Server) liveCount() int {
	if !PolicyFor(s.cfg.Mode).Serves() && s.cfg.Recorder != nil {
		if n, err := s.cfg.Recorder.Count(s.cfg.Cassette); err == nil {
			return n
		}
	}
	return s.index.Len()
}

// upgradeTrip forwards a protocol upgrade in record mode and notes it in the
// cassette. The frames that follow are tunnelled by goproxy, not recorded.
func (s *Server) upgradeTrip(req *http.Request, _ *goproxy.ProxyCtx) (resp *http.Response, err error) {
	defer func() { // goproxy recovers nothing: a bug here must cost one answer, not the process
		if p := recover(); p != nil {
			s.log.Error("panic while tunnelling an upgrade", "method", req.Method, "panic", fmt.Sprint(p))
			resp, err = s.errorResponse(req, http.StatusBadGateway, "cassetteproxy internal error"), nil
		}
	}()
	recReq := s.scrubbedRequest(req, nil, true)
	if isWebSocket(req.Header) {
		// No compression extension: the tap reads the messages as sent.
		req.Header.Del("Sec-WebSocket-Extensions")
	}
	resp, err = s.upstream.RoundTrip(req)
	out := Outcome{Method: req.Method, URL: recReq.URL, Host: req.URL.Host, Decision: DecisionTunnelled}
	if err != nil {
		out.Decision, out.Reason = DecisionError, s.redactor.String(err.Error())
		s.report(out)
		return s.errorResponse(req, http.StatusBadGateway, "upstream: "+out.Reason), nil
	}
	out.Status = resp.StatusCode
	s.report(out)
	in := store.Interaction{RecordedAt: time.Now(), Request: recReq, Response: recordedResponseHead(resp), RunID: s.cfg.RunID}
	in.Response.Upgrade = true
	if resp.StatusCode == http.StatusSwitchingProtocols && isWebSocket(resp.Header) {
		return s.recordWebSocket(resp, in), nil
	}
	s.save(in, false)
	return resp, nil
}

// modeFor is the mode that applies to one request: the first rule whose
// host and path match it and that sets a mode (match.Rules.ModeFor), else
// the global --mode.
func (s *Server) modeFor(req *http.Request) Mode {
	host := req.URL.Host
	if host == "" {
		host = req.Host
	}
	if m, ok := s.cfg.Rules.ModeFor(host, req.URL.Path); ok {
		return m
	}
	return s.cfg.Mode
}

// modeForHost is the mode for a CONNECT target, before any path is known:
// only rules without a path pattern apply.
func (s *Server) modeForHost(host string) Mode {
	if m, ok := s.cfg.Rules.ModeFor(host, ""); ok {
		return m
	}
	return s.cfg.Mode
}

// connectRule is what the mode of a CONNECT target does with the tunnel:
// HostNotAllowed outside the allow-list, HostUnknown for a host the
// cassette never saw, else Pass (it is intercepted).
func (s *Server) connectRule(host string) Rule {
	pol := PolicyFor(s.modeForHost(host))
	switch {
	case !s.cfg.AllowHosts.Allows(host, "443"):
		return pol.On[HostNotAllowed]
	case pol.On[HostUnknown].Action != Pass && !s.index.HasHost(host):
		return pol.On[HostUnknown]
	}
	return Rule{Action: Pass}
}

// upstreamFor is the transport a request under pol may use: the real one
// where the mode dials, else the dial-less one.
func (s *Server) upstreamFor(pol *Policy) http.RoundTripper {
	if pol.Dials {
		return s.upstream
	}
	return noUpstream{}
}

// Serve accepts connections until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	// The first listener names the proxy's address; another (the one
	// inside an isolated command's network namespace) has the same port on
	// loopback, which is the proxy's own already.
	s.self.CompareAndSwap(nil, newSelfAddr(ln.Addr()))
	err := s.srv.Serve(&trackingListener{Listener: ln, s: s})
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting, lets plain requests finish until ctx ends, then
// closes every connection left, hijacked CONNECT tunnels included (net/http
// forgets those), and waits for in-flight recordings to reach the recorder.
// The caller closes the recorder and the store afterwards.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	s.mu.Lock()
	s.closing = true
	open := make([]net.Conn, 0, len(s.conns))
	for c := range s.conns {
		open = append(open, c)
	}
	s.mu.Unlock()
	for _, c := range open {
		_ = c.Close()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		_ = s.srv.Close()
		err = nil
	}
	// Upstream calls still waiting have no client left: end them, so their
	// recordings (marked incomplete) are handed over now.
	s.cancelBase()
	done := make(chan struct{})
	go func() { s.inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		return errors.New("some recordings were still in flight at shutdown")
	}
	s.saves.stop()
	return err
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}
