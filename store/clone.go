package store

import (
	"bytes"
	"net/http"
)

// Clone returns a deep copy of in: headers, bodies, events and the marker are
// copied, and nil stays nil while empty stays empty.
func (in *Interaction) Clone() Interaction {
	out := *in
	out.Request = in.Request.Clone()
	out.Response = in.Response.Clone()
	return out
}

// Clone returns a deep copy of q.
func (q *Request) Clone() Request {
	out := *q
	out.Header = cloneHeader(q.Header)
	out.Body = bytes.Clone(q.Body)
	out.NotRecorded = q.NotRecorded.clone()
	return out
}

// Clone returns a deep copy of p.
func (p *Response) Clone() Response {
	out := *p
	out.Header = cloneHeader(p.Header)
	out.Body = bytes.Clone(p.Body)
	if p.Events != nil {
		out.Events = make([]Event, len(p.Events))
		for i, e := range p.Events {
			out.Events[i] = Event{OffsetMs: e.OffsetMs, Data: bytes.Clone(e.Data)}
		}
	}
	out.NotRecorded = p.NotRecorded.clone()
	return out
}

func (m *BodyMarker) clone() *BodyMarker {
	if m == nil {
		return nil
	}
	c := *m
	c.Fields = bytes.Clone(m.Fields)
	return &c
}

// cloneHeader is http.Header.Clone, except that a nil value list stays nil
// (http.Header.Clone turns it into an empty one).
func cloneHeader(h http.Header) http.Header {
	if h == nil {
		return nil
	}
	out := make(http.Header, len(h))
	for k, vs := range h {
		if vs == nil {
			out[k] = nil
			continue
		}
		out[k] = append(make([]string, 0, len(vs)), vs...)
	}
	return out
}
