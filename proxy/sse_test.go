package proxy

import (
	"bytes"
	"mime"
	"strings"
	"testing"
)

func splitAt(body string, ends []int) []string {
	var out []string
	start := 0
	for _, e := range ends {
		out = append(out, body[start:e])
		start = e
	}
	return out
}

func TestSSEEventEnds(t *testing.T) {
	cases := []struct {
		name   string
		body   string
		events []string // nil with ok false: not SSE
		ok     bool
	}{
		{"empty", "", nil, true},
		{"one", "data: a\n\n", []string{"data: a\n\n"}, true},
		{"two", "data: a\n\ndata: b\n\n", []string{"data: a\n\n", "data: b\n\n"}, true},
		{"crlf", "data: a\r\n\r\nevent: x\r\ndata: b\r\n\r\n", []string{"data: a\r\n\r\n", "event: x\r\ndata: b\r\n\r\n"}, true},
		{"cr", "data: a\r\rdata: b\r\r", []string{"data: a\r\r", "data: b\r\r"}, true},
		{"mcp priming event", "id: 1\ndata: \n\nevent: message\nid: 2\ndata: {\"jsonrpc\":\"2.0\",\"id\":0}\n\n",
			[]string{"id: 1\ndata: \n\n", "event: message\nid: 2\ndata: {\"jsonrpc\":\"2.0\",\"id\":0}\n\n"}, true},
		{"comment and retry", ": keepalive\n\nretry: 100\ndata\n\n", []string{": keepalive\n\n", "retry: 100\ndata\n\n"}, true},
		{"extra blank lines join the event before", "data: a\n\n\n\ndata: b\n\n", []string{"data: a\n\n\n\n", "data: b\n\n"}, true},
		{"leading blank lines join the first", "\n\ndata: a\n\n", []string{"\n\ndata: a\n\n"}, true},
		{"cut short", "data: a\n\ndata: b", []string{"data: a\n\n", "data: b"}, true},
		{"cut after one newline", "data: a\n\ndata: b\n", []string{"data: a\n\n", "data: b\n"}, true},
		{"bom", "\xEF\xBB\xBFdata: a\n\n", []string{"\xEF\xBB\xBFdata: a\n\n"}, true},
		{"json error page", "{\"error\":\"rate limited\"}\n", nil, false},
		{"unknown field", "data: a\nfoo: b\n\n", nil, false},
		{"binary", "data: \xff\xfe\n\n", nil, false},
		{"nul", "data: a\x00\n\n", nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ends, ok := sseEventEnds([]byte(c.body))
			if ok != c.ok {
				t.Fatalf("ok = %v, want %v", ok, c.ok)
			}
			if !ok {
				return
			}
			got := splitAt(c.body, ends)
			if strings.Join(got, "|") != strings.Join(c.events, "|") || len(got) != len(c.events) {
				t.Errorf("events %q\nwant %q", got, c.events)
			}
		})
	}
}

// FuzzSSEEventEnds: on any input the split never panics, covers every byte
// in order, and every event but the last ends with a blank line; a stream
// built from well-formed events splits back into exactly those events.
func FuzzSSEEventEnds(f *testing.F) {
	f.Add([]byte("data: a\n\ndata: b\n\n"), "x", "y")
	f.Add([]byte("id: 1\r\ndata: \r\n\r\n: c\r\r"), "{\"a\":1}", "")
	f.Add([]byte("data: a\n\n\n\ndata: b"), "multi\nline", "é")
	f.Fuzz(func(t *testing.T, body []byte, d1, d2 string) {
		ends, ok := sseEventEnds(body)
		if ok {
			prev := 0
			for i, e := range ends {
				if e <= prev || e > len(body) {
					t.Fatalf("ends %v not increasing within %d", ends, len(body))
				}
				ev := body[prev:e]
				if i < len(ends)-1 && !endsWithBlankLine(ev) {
					t.Fatalf("event %d %q does not end with a blank line", i, ev)
				}
				prev = e
			}
			if len(body) > 0 && prev != len(body) {
				t.Fatalf("events cover %d of %d bytes", prev, len(body))
			}
		}
		// Build a stream of two events whose data lines come from d1, d2.
		var want []string
		for _, d := range []string{d1, d2} {
			var ev strings.Builder
			for _, line := range strings.FieldsFunc(d, func(r rune) bool { return r == '\n' || r == '\r' }) {
				if strings.ContainsRune(line, 0) || !utfValid(line) {
					return
				}
				ev.WriteString("data: " + line + "\n")
			}
			if ev.Len() == 0 {
				ev.WriteString("data\n")
			}
			ev.WriteString("\n")
			want = append(want, ev.String())
		}
		stream := strings.Join(want, "")
		ends, ok = sseEventEnds([]byte(stream))
		if !ok {
			t.Fatalf("well-formed stream %q not accepted", stream)
		}
		if got := splitAt(stream, ends); strings.Join(got, "|") != strings.Join(want, "|") || len(got) != len(want) {
			t.Fatalf("split %q\nwant %q", got, want)
		}
	})
}

// endsWithBlankLine: b ends with a line terminator preceded by another one.
func endsWithBlankLine(b []byte) bool {
	trim := func(b []byte) ([]byte, bool) {
		switch {
		case bytes.HasSuffix(b, []byte("\r\n")):
			return b[:len(b)-2], true
		case bytes.HasSuffix(b, []byte("\n")), bytes.HasSuffix(b, []byte("\r")):
			return b[:len(b)-1], true
		}
		return b, false
	}
	b, ok := trim(b)
	if !ok {
		return false
	}
	_, ok = trim(b)
	return ok
}

func utfValid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

// TestBaseMediaType: for the types the proxy looks for, baseMediaType says
// what mime.ParseMediaType would.
func TestBaseMediaType(t *testing.T) {
	known := []string{"text/event-stream", "application/x-ndjson", "application/ndjson", "application/jsonl", "application/json-seq"}
	for _, ct := range []string{
		"text/event-stream", "Text/Event-Stream; charset=utf-8", " text/event-stream ;", "text/event-stream; charset",
		"text/event-stream;;", "text/event-stream garbage", "text/event-stream/x", "application/x-ndjson; q=\"a",
		"application/json", "", ";", "text/", "APPLICATION/JSONL", "application/json-seq\t",
	} {
		mt, _, _ := mime.ParseMediaType(ct)
		for _, k := range known {
			if got, want := baseMediaType(ct) == k, mt == k; got != want {
				t.Errorf("%q is %s: %v, mime says %v (%q)", ct, k, got, want, mt)
			}
		}
	}
}
