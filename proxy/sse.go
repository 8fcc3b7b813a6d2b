package proxy

import (
	"bytes"
	"strings"
	"unicode/utf8"
)

// sseEventEnds splits a server-sent-events body (the whole of it, as
// recorded) into its events, following the WHATWG event-stream grammar: an
// event is a run of lines ended by a blank line, a line ends at CRLF, LF or
// CR. It returns the offset just past each event, so body[ends[i-1]:ends[i]]
// is event i; the events cover every byte (blank lines with no event before
// them go with the neighbouring event), and a last event cut off before its
// blank line (a broken stream) is returned too.
//
// ok is false when body is not an event stream: not UTF-8, a NUL byte, or a
// line that is neither a comment (":...") nor one of the fields data, event,
// id and retry. Such a body, even with Content-Type text/event-stream (an
// error page, say), is kept as the upstream's writes instead.
func sseEventEnds(body []byte) (ends []int, ok bool) {
	if !utf8.Valid(body) || bytes.IndexByte(body, 0) >= 0 {
		return nil, false
	}
	pos := 0
	if bytes.HasPrefix(body, []byte("\xEF\xBB\xBF")) {
		pos = 3
	}
	inEvent := false
	for pos < len(body) {
		end := pos
		for end < len(body) && body[end] != '\n' && body[end] != '\r' {
			end++
		}
		line := body[pos:end]
		next := end
		if next < len(body) {
			if body[next] == '\r' && next+1 < len(body) && body[next+1] == '\n' {
				next += 2
			} else {
				next++
			}
		}
		switch {
		case len(line) == 0: // a blank line dispatches the event
			if inEvent {
				ends = append(ends, next)
				inEvent = false
			} else if len(ends) > 0 {
				ends[len(ends)-1] = next
			}
		case line[0] == ':': // a comment
			inEvent = true
		default:
			name := line
			if i := bytes.IndexByte(line, ':'); i >= 0 {
				name = line[:i]
			}
			switch string(name) {
			case "data", "event", "id", "retry":
			default:
				return nil, false
			}
			inEvent = true
		}
		pos = next
	}
	if len(body) > 0 && (len(ends) == 0 || ends[len(ends)-1] < len(body)) {
		ends = append(ends, len(body))
	}
	return ends, true
}

// isSSE reports a text/event-stream content type.
func isSSE(contentType string) bool {
	return baseMediaType(contentType) == "text/event-stream"
}

// baseMediaType is the media type mime.ParseMediaType returns, for
// comparing with known (valid) types only: it is the same lower-cased,
// trimmed text before any ';', without the parameters parsed (a map per
// call) and without the validity check, which a type equal to a valid one
// passes anyway.
func baseMediaType(contentType string) string {
	base, _, _ := strings.Cut(contentType, ";")
	return strings.TrimSpace(strings.ToLower(base))
}
