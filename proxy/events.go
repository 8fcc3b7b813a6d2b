package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/cassetteproxy/cassetteproxy/match"
	"github.com/cassetteproxy/cassetteproxy/store"
)

// EventsPath is where the agent reports what only it knows, on the proxy's
// own address (CASSETTEPROXY_URL).
const EventsPath = "/_cassetteproxy/v1/events"

// MaxEventBytes bounds one event's JSON.
const MaxEventBytes = 64 << 10

// Errors an Events sink returns for an event it refuses; each has its status
// in eventErrorStatus. Any other error is the sink failing (the event was
// not committed): 500, and logged.
var (
	ErrNoRunOpen  = errors.New("no run is open on this proxy: events are taken while a command runs under cassetteproxy run or replay")
	ErrRunClosed  = errors.New("the run is closed (its command has ended): events after the end are not kept")
	ErrEventLimit = errors.New("the run has reached its limit of events")
)

var eventErrorStatus = map[error]int{
	ErrNoRunOpen:  http.StatusConflict,
	ErrRunClosed:  http.StatusConflict,
	ErrEventLimit: http.StatusTooManyRequests,
}

// eventKinds is the events API, one row per kind: the fields it may carry
// (besides kind and run_id) and what it requires of them.
var eventKinds = map[string]struct {
	fields []string
	check  func(*wireEvent) error
}{
	"checkpoint": {namedFields, needName},
	"retry":      {namedFields, needName},
	"exception":  {namedFields, needName},
	"note":       {namedFields, needName},
	"artifact":   {[]string{"path", "ref", "name", "data"}, needPathOrRef},
	"state_ref":  {[]string{"ref", "name", "data"}, needRef},
	"claim":      {[]string{"status", "artifact_refs", "side_effects", "name", "data"}, needDone},
}

var namedFields = []string{"name", "data"}

// EventKinds lists the kinds the events API takes, sorted.
func EventKinds() []string {
	out := make([]string, 0, len(eventKinds))
	for k := range eventKinds {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// wireEvent is an event as the agent sends it.
type wireEvent struct {
	Kind         string           `json:"kind"`
	RunID        string           `json:"run_id"`
	Name         string           `json:"name"`
	Data         json.RawMessage  `json:"data"`
	Path         string           `json:"path"`
	Ref          string           `json:"ref"`
	Status       string           `json:"status"`
	ArtifactRefs []string         `json:"artifact_refs"`
	SideEffects  []wireSideEffect `json:"side_effects"`
}

// wireSideEffect is a claimed side effect: {"method", "url", "status"},
// or the string "METHOD URLGLOB".
type wireSideEffect struct{ store.SideEffect }

func (w *wireSideEffect) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		se, err := match.ParseSideEffect(s)
		if err != nil {
			return err
		}
		se.Min, se.Max = nil, nil // a claim says it happened: at least once
		w.SideEffect = se
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w.SideEffect); err != nil {
		return fmt.Errorf("a side effect is \"METHOD URLGLOB\" or {\"method\", \"url\", \"status\", \"min\", \"max\"}: %v", err)
	}
	_, err := match.CompileSideEffect(w.SideEffect)
	return err
}

func needName(e *wireEvent) error {
	if strings.TrimSpace(e.Name) == "" {
		return fmt.Errorf("%s needs a name", e.Kind)
	}
	return nil
}

func needPathOrRef(e *wireEvent) error {
	if strings.TrimSpace(e.Path) == "" && strings.TrimSpace(e.Ref) == "" {
		return errors.New("artifact needs a path (a file the run wrote) or a ref (a row id, message id, URL)")
	}
	return nil
}

func needRef(e *wireEvent) error {
	if strings.TrimSpace(e.Ref) == "" {
		return errors.New("state_ref needs a ref")
	}
	return nil
}

func needDone(e *wireEvent) error {
	if e.Status != "done" {
		return fmt.Errorf(`claim needs "status": "done" (got %q)`, e.Status)
	}
	for _, r := range e.ArtifactRefs {
		if strings.TrimSpace(r) == "" {
			return errors.New("claim: artifact_refs has an empty entry")
		}
	}
	return nil
}

// parseEvent checks one event body against the kinds table and returns it
// redacted, as it is stored.
func (s *Server) parseEvent(body []byte) (store.RunEvent, string, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil || raw == nil {
		return store.RunEvent{}, "", fmt.Errorf("an event is a JSON object such as {\"kind\": \"checkpoint\", \"name\": \"fetched\"}: %s", jsonProblem(err))
	}
	var e wireEvent
	if k, ok := raw["kind"]; !ok || json.Unmarshal(k, &e.Kind) != nil || e.Kind == "" {
		return store.RunEvent{}, "", fmt.Errorf("the event has no \"kind\" (one of %s)", strings.Join(EventKinds(), ", "))
	}
	kind, ok := eventKinds[e.Kind]
	if !ok {
		return store.RunEvent{}, "", fmt.Errorf("unknown event kind %q (use one of %s)", e.Kind, strings.Join(EventKinds(), ", "))
	}
	for f := range raw {
		if f != "kind" && f != "run_id" && !slices.Contains(kind.fields, f) {
			return store.RunEvent{}, "", fmt.Errorf("%s takes %s, not %q", e.Kind, strings.Join(kind.fields, ", "), f)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&e); err != nil {
		return store.RunEvent{}, "", fmt.Errorf("%s: %s", e.Kind, jsonProblem(err))
	}
	if err := kind.check(&e); err != nil {
		return store.RunEvent{}, "", err
	}
	ev := store.RunEvent{Kind: e.Kind, Status: e.Status,
		Name: s.redactor.String(e.Name), Path: s.redactor.String(e.Path), Ref: s.redactor.String(e.Ref)}
	if len(e.Data) > 0 && !bytes.Equal(e.Data, []byte("null")) {
		var buf bytes.Buffer
		if err := json.Compact(&buf, e.Data); err != nil {
			return store.RunEvent{}, "", fmt.Errorf("data: %s", jsonProblem(err))
		}
		ev.Data = s.redactJSON(buf.Bytes())
	}
	for _, r := range e.ArtifactRefs {
		ev.ArtifactRefs = append(ev.ArtifactRefs, s.redactor.String(r))
	}
	for _, se := range e.SideEffects {
		se.URL = s.redactor.String(se.URL)
		ev.SideEffects = append(ev.SideEffects, se.SideEffect)
	}
	return ev, e.RunID, nil
}

// redactJSON scrubs a JSON value as a JSON body would be.
func (s *Server) redactJSON(b []byte) []byte {
	r := store.Response{Header: http.Header{"Content-Type": {"application/json"}}, Body: b}
	s.redactor.Response(&r)
	return r.Body
}

// jsonProblem is a decoding error in one line.
func jsonProblem(err error) string {
	if err == nil {
		return "null is not an object"
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	return strings.ReplaceAll(msg, "\n", " ")
}

// serveEvents answers POST /_cassetteproxy/v1/events: 202 {"seq": N} once
// the event is committed, or a one-line JSON error.
func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeEventError(w, http.StatusMethodNotAllowed, "events are sent with POST "+EventsPath+" and a JSON object body")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxEventBytes+1))
	if err != nil {
		w.Header().Set("Connection", "close")
		writeEventError(w, http.StatusBadRequest, "reading the event: "+err.Error())
		return
	}
	if len(body) > MaxEventBytes {
		// The rest is left unread: the connection cannot carry another request.
		w.Header().Set("Connection", "close")
		writeEventError(w, http.StatusBadRequest, fmt.Sprintf("event over %d KiB: keep events small, put large output in a file and report it as an artifact", MaxEventBytes>>10))
		return
	}
	ev, runID, err := s.parseEvent(body)
	if err != nil {
		writeEventError(w, http.StatusBadRequest, err.Error())
		return
	}
	if s.cfg.Events == nil {
		writeEventError(w, eventErrorStatus[ErrNoRunOpen], ErrNoRunOpen.Error())
		return
	}
	if runID != "" && runID != s.cfg.RunID {
		writeEventError(w, http.StatusBadRequest, fmt.Sprintf("run_id %q is not this proxy's run (%s): send CASSETTEPROXY_RUN_ID, or no run_id", s.redactor.String(runID), s.cfg.RunID))
		return
	}
	seq, err := s.cfg.Events(ev)
	if err != nil {
		status := eventStatus(err)
		if status == http.StatusInternalServerError {
			status = http.StatusInternalServerError
			s.log.Error("event not committed", "kind", ev.Kind, "err", err)
			err = fmt.Errorf("event not committed: %w", err)
		}
		writeEventError(w, status, err.Error())
		return
	}
	attrs := []any{"kind", ev.Kind, "seq", seq}
	if ev.Name != "" {
		attrs = append(attrs, "name", ev.Name)
	}
	s.log.Info("event", attrs...)
	w.Header().Set("Content-Type", blockedContentTypeJSON)
	w.WriteHeader(http.StatusAccepted)
	fmt.Fprintf(w, "{\"seq\":%d}\n", seq)
}

// eventStatus is the answer's status for an error of the Events sink.
func eventStatus(err error) int {
	for e, status := range eventErrorStatus {
		if errors.Is(err, e) {
			return status
		}
	}
	return http.StatusInternalServerError
}

func writeEventError(w http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(map[string]string{"error": strings.ReplaceAll(msg, "\n", " ")})
	w.Header().Set("Content-Type", blockedContentTypeJSON)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// selfAddr is where the proxy listens: a request whose URL names it, in
// absolute form or through a tunnel, is for the proxy itself.
type selfAddr struct {
	port  string
	hosts map[string]bool
}

func newSelfAddr(a net.Addr) *selfAddr {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return nil
	}
	sa := &selfAddr{port: port, hosts: map[string]bool{"127.0.0.1": true, "localhost": true, "::1": true}}
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
		sa.hosts[ip.String()] = true
	}
	return sa
}

// isSelf reports whether host[:port] is the proxy's own address.
func (s *Server) isSelf(hostport string) bool {
	sa := s.self.Load()
	if sa == nil || hostport == "" {
		return false
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = strings.Trim(hostport, "[]"), "80"
	}
	if port != sa.port {
		return false
	}
	if ip := net.ParseIP(host); ip != nil {
		host = ip.String()
	}
	return sa.hosts[strings.ToLower(strings.TrimSuffix(host, "."))]
}

// selfResponse is serveSelf's answer as a response, for a request to the
// proxy's own address that came through a tunnel.
func (s *Server) selfResponse(req *http.Request) *http.Response {
	w := &selfWriter{h: http.Header{}}
	s.serveSelf(w, req)
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.h.Del("Content-Length") // localResponse sets it from the body
	resp := s.localResponse(req, w.status, w.h, w.buf.Bytes())
	resp.Close = strings.EqualFold(w.h.Get("Connection"), "close")
	return resp
}

// selfWriter collects what serveSelf writes. Its answers are small (a health
// line, the CA certificate, an event's sequence number).
type selfWriter struct {
	h      http.Header
	status int
	buf    bytes.Buffer
}

func (w *selfWriter) Header() http.Header { return w.h }
func (w *selfWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
func (w *selfWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.buf.Write(p)
}

// SelfURL is CASSETTEPROXY_URL for a proxy listening on addr: its own
// http://HOST:PORT, with a loopback address for one listening on all
// interfaces.
func SelfURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}
