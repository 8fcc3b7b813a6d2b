package proxy

import (
	"fmt"
	"net/url"

	"github.com/cassetteproxy/cassetteproxy/store"
)

// bodyNotRecorded decides one thing: whether a recorded answer can be
// served at all, or must be blocked with ReasonBodyNotRecorded because its
// body was not kept (over --max-body, or left out by the rules file's
// store policy: store: hash or store: fields). It applies to every answer
// found in the cassette, in every mode that serves from it; blocked is
// false when the answer may be served.
func (s *Server) bodyNotRecorded(in *store.Interaction) (msg, fix string, blocked bool) {
	m := in.Response.NotRecorded
	if m == nil {
		return "", "", false
	}
	if m.Policy == "" {
		return fmt.Sprintf("the recorded response body (%d bytes) was over --max-body and was passed through without being kept", m.Size),
			"record again with a larger --max-body", true
	}
	host := in.Request.URL
	if u, err := url.Parse(in.Request.URL); err == nil && u.Host != "" {
		host = u.Host
	}
	return fmt.Sprintf("the recorded response body of %s (%d bytes, sha256 %.12s…) was not kept: the rules file stores that host's bodies as store: %s",
			host, m.Size, m.SHA256, m.Policy),
		"to replay it, record it again with store: full for that host in the rules file (--rules)", true
}

// observedBody is the request body as the observer may see it (a run
// record reads the model name from it): none when the store policy keeps
// the body out of the store, since the run record is stored too.
func (s *Server) observedBody(req *store.Request) []byte {
	if len(req.Body) == 0 || s.cfg.Rules.StorePolicyFor(req.URL).Kind == store.StoreFull {
		return req.Body
	}
	return nil
}
