package proxy

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/cassetteproxy/cassetteproxy/match"
)

// Reasons a request is blocked. They are the X-Cassetteproxy-Blocked header
// value and the "reason" of the JSON answer.
const (
	ReasonUnrecorded       = "unrecorded_request"
	ReasonMutation         = "mutation_blocked"
	ReasonHostNotRecorded  = "host_not_recorded"
	ReasonExhausted        = "exhausted"
	ReasonUpgrade          = "upgrade_not_replayable"
	ReasonBodyNotRecorded  = "body_not_recorded"
	ReasonExpired          = "expired"
	ReasonHostNotAllowed   = "host_not_allowed"
	ReasonIncomplete       = "incomplete_recording"
	BlockedHeader          = "X-Cassetteproxy-Blocked"
	blockedContentTypeJSON = "application/json; charset=utf-8"
)

// blockedAnswer is the JSON body of a blocked request: enough for a user to
// fix the miss without reading any other output.
type blockedAnswer struct {
	Blocked  bool           `json:"blocked"`
	Reason   string         `json:"reason"`
	Message  string         `json:"message"`
	Mode     string         `json:"mode"`
	Cassette string         `json:"cassette"`
	Request  blockedRequest `json:"request"`
	Closest  *match.Closest `json:"closest,omitempty"`
	Fix      string         `json:"fix,omitempty"`
}

type blockedRequest struct {
	Method string `json:"method"`
	URL    string `json:"url"`
}

// blockedResponse builds the real HTTP answer a blocked request gets: never
// a hang or a reset.
func (s *Server) blockedResponse(req *http.Request, a blockedAnswer) *http.Response {
	a.Blocked = true
	a.Mode = string(s.modeFor(req))
	a.Cassette = s.cfg.Cassette
	body, err := json.MarshalIndent(a, "", "  ")
	if err != nil { // cannot happen with these types; answer anyway
		body = []byte(`{"blocked":true,"reason":"` + a.Reason + `"}`)
	}
	body = append(body, '\n')
	return s.localResponse(req, s.cfg.BlockedStatus, http.Header{
		BlockedHeader:  {a.Reason},
		"Content-Type": {blockedContentTypeJSON},
	}, body)
}

// notAllowedAnswer is the blocked answer to a request or tunnel for a host
// outside the allow-list.
func (s *Server) notAllowedAnswer(method, target string) blockedAnswer {
	return blockedAnswer{Reason: ReasonHostNotAllowed, Request: blockedRequest{method, target},
		Message: "this host is not among the allowed hosts (" + strings.Join(s.cfg.AllowHosts.List(), ", ") + "); nothing is sent to it, in any mode",
		Fix:     "if the agent may call it, add it with --allow-host HOST (or to allow_hosts in the rules file)"}
}

// connectBlocked is the blocked answer to a CONNECT (connectRule).
func (s *Server) connectBlocked(reason, host string) blockedAnswer {
	if reason == ReasonHostNotAllowed {
		return s.notAllowedAnswer(http.MethodConnect, host)
	}
	return blockedAnswer{Reason: reason, Request: blockedRequest{http.MethodConnect, host},
		Message: "strict mode refuses tunnels to hosts the cassette never saw"}
}

// allowed reports whether a request's host is on the allow-list (always,
// without one).
func (s *Server) allowed(req *http.Request) bool {
	if s.cfg.AllowHosts == nil {
		return true
	}
	host := req.URL.Host
	if host == "" {
		host = req.Host
	}
	port := "80"
	if req.URL.Scheme == "https" || req.TLS != nil {
		port = "443"
	}
	return s.cfg.AllowHosts.Allows(host, port)
}

// localResponse is a complete response the proxy answers itself.
func (s *Server) localResponse(req *http.Request, status int, h http.Header, body []byte) *http.Response {
	h.Set("Content-Length", strconv.Itoa(len(body)))
	return &http.Response{
		StatusCode:    status,
		Status:        strconv.Itoa(status) + " " + http.StatusText(status),
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          nopCloser{bytes.NewReader(body)},
		ContentLength: int64(len(body)),
		Request:       req,
	}
}

// errorResponse is a 502 naming why upstream could not be reached, so a
// client sees a reason rather than a dropped connection.
func (s *Server) errorResponse(req *http.Request, status int, reason string) *http.Response {
	body, _ := json.Marshal(map[string]string{"error": reason, "url": s.redactor.String(req.URL.String())})
	return s.localResponse(req, status, http.Header{
		"Content-Type":          {blockedContentTypeJSON},
		"X-Cassetteproxy-Error": {reason},
	}, append(body, '\n'))
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }
