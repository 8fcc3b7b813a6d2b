package redact

import (
	"bytes"
	"mime"
	"strings"
	"unicode/utf8"
)

// body scrubs a decoded body and returns it (the same slice when clean).
func (r *Redactor) body(b []byte, ct string, fp bool) []byte {
	if len(b) == 0 {
		return b
	}
	w := r.newWriter(b, fp)
	r.scrubBody(w, ct)
	return w.bytes()
}

// scrubBody picks the body's form from its Content-Type, sniffing when
// there is none: JSON (and NDJSON) by the JSON scanner, form bodies by
// field name, SSE line by line, multipart part by part, other UTF-8 text
// by the patterns. Binary (non-UTF-8) bodies are left alone.
func (r *Redactor) scrubBody(w *writer, ct string) {
	b := w.src
	mt := ct
	if k := strings.IndexByte(mt, ';'); k >= 0 {
		mt = mt[:k]
	}
	mt = strings.ToLower(strings.TrimSpace(mt))
	if strings.HasPrefix(mt, "multipart/") {
		r.scrubMultipart(w, ct)
		return
	}
	// A body that is not UTF-8 is left alone. A declared text body is
	// scanned first and checked only when something was replaced: clean,
	// it comes back as it was, UTF-8 or not, and most bodies are clean.
	textual := mt == "text/event-stream" || mt == "application/x-www-form-urlencoded" ||
		strings.Contains(mt, "json") || strings.HasPrefix(mt, "text/")
	if !textual && !utf8.Valid(b) {
		return
	}
	// JSON (and SSE of JSON lines) gets the rules string by string in the
	// scan that finds the strings (jsonScratch.rules); the rest, and a body
	// where a gated rule's keyword turned up (its expression runs over the
	// whole body), in a pass of their own first (rulesInto).
	isJSON := strings.Contains(mt, "json") || mt != "text/event-stream" && mt != "application/x-www-form-urlencoded" &&
		startsJSON(b, 0, len(b)) && validJSON(b)
	if (isJSON || mt == "text/event-stream") && r.sc != nil {
		js := jsonScratch{rules: true}
		if mt == "text/event-stream" {
			r.scrubSSE(w, &js)
		} else {
			r.scanJSON(w, 0, len(b), &js) // lenient: truncated JSON and NDJSON too
		}
		if js.gated == 0 {
			if textual && w.changed() && !utf8.Valid(b) {
				*w = writer{r: w.r, fp: w.fp, src: b, track: w.track} // nothing replaced
			}
			return
		}
		*w = writer{r: w.r, fp: w.fp, src: b, track: w.track}
	}
	r.rulesInto(w, 0, len(b))
	switch {
	case mt == "text/event-stream":
		r.scrubSSE(w, &jsonScratch{})
	case mt == "application/x-www-form-urlencoded":
		r.scrubPairs(w, 0, len(b), "field")
	case isJSON:
		var js jsonScratch
		r.scanJSON(w, 0, len(b), &js)
	case mt == "" && looksLikeForm(b):
		r.scrubPairs(w, 0, len(b), "field")
	default:
		r.scanText(w, 0, len(b))
	}
	if textual && w.changed() && !utf8.Valid(b) {
		*w = writer{r: w.r, fp: w.fp, src: b, track: w.track} // nothing replaced
	}
}

func startsJSON(b []byte, lo, hi int) bool {
	for i := lo; i < hi; i++ {
		switch b[i] {
		case ' ', '\t', '\r', '\n':
			continue
		case '{', '[':
			return true
		}
		return false
	}
	return false
}

// looksLikeForm: name=value pairs joined by &, no spaces or line breaks,
// names of name characters (so a bare URL is not a form).
func looksLikeForm(b []byte) bool {
	if len(b) > 1<<16 || bytes.ContainsAny(b, " \t\r\n\"{}") {
		return false
	}
	if bytes.IndexByte(b, '=') <= 0 {
		return false
	}
	for _, pair := range bytes.Split(b, []byte("&")) {
		name, _, _ := bytes.Cut(pair, []byte("="))
		for _, c := range name {
			if !nameChar[c] && c != '%' && c != '+' {
				return false
			}
		}
	}
	return true
}

// scrubSSE scrubs a text/event-stream body line by line: a data: line that
// carries JSON by the JSON scanner, every other line as text.
func (r *Redactor) scrubSSE(w *writer, js *jsonScratch) {
	s := w.src
	nl := -1 // the next '\n' at or after p (len(s): none); kept, so that lines of lone \r stay linear
	// line returns the end of the line at p (its first \n or \r) and
	// whether it is a data: line of JSON.
	line := func(p int) (int, bool) {
		if nl < p {
			nl = len(s)
			if k := bytes.IndexByte(s[p:], '\n'); k >= 0 {
				nl = p + k
			}
		}
		e := nl
		if k := bytes.IndexByte(s[p:e], '\r'); k >= 0 {
			e = p + k
		}
		d := p + 5
		return e, hasPrefixAt(s, p, e, "data:") && startsJSON(s, d, e) && validJSON(s[d:e])
	}
	textEnd := 0 // with js.rules: the rules have seen the text lines before textEnd
	// The line that ended the last look-ahead, a JSON one: not validated twice.
	seenAt, seenEnd := -1, 0
	for p := 0; p < len(s); {
		var e int
		var isJSON bool
		if p == seenAt {
			e, isJSON = seenEnd, true
		} else {
			e, isJSON = line(p)
		}
		if !isJSON && js.rules && p >= textEnd {
			// The rules see a run of text lines as one text (a PEM block,
			// a curl command over several lines).
			q, saved := e+1, nl
			for q < len(s) {
				qe, j := line(q)
				if j {
					seenAt, seenEnd = q, qe
					break
				}
				q = qe + 1
			}
			textEnd = min(q, len(s))
			if bytes.ContainsFunc(s[p:textEnd], func(c rune) bool { return c != '\n' && c != '\r' }) {
				r.rulesAt(w, p, textEnd, nil, p, js)
			}
			nl = saved // the next '\n' after p: the look-ahead went past it
		}
		switch {
		case isJSON:
			r.scanJSON(w, p+5, e, js)
		case hasPrefixAt(s, p, e, "data:"):
			r.scanText(w, p+5, e)
		default:
			r.scanText(w, p, e)
		}
		p = e + 1
	}
}

// scrubMultipart scrubs a multipart body part by part: a part named by a
// secret field loses its content; UTF-8 parts are scanned by their own
// Content-Type; binary parts are left alone.
func (r *Redactor) scrubMultipart(w *writer, ct string) {
	_, params, err := mime.ParseMediaType(ct)
	s := w.src
	if err != nil || params["boundary"] == "" {
		if utf8.Valid(s) {
			r.scanText(w, 0, len(s))
		}
		return
	}
	delim := []byte("--" + params["boundary"])
	p := bytes.Index(s, delim)
	for p >= 0 {
		hs := p + len(delim)
		if bytes.HasPrefix(s[hs:], []byte("--")) {
			return // closing delimiter
		}
		nl := bytes.IndexByte(s[hs:], '\n')
		if nl < 0 {
			return
		}
		hs += nl + 1
		next := bytes.Index(s[hs:], delim)
		pe := len(s)
		if next >= 0 {
			pe = hs + next
		}
		// headers end at a blank line
		he, bs := -1, -1
		if k := bytes.Index(s[hs:pe], []byte("\r\n\r\n")); k >= 0 {
			he, bs = hs+k, hs+k+4
		} else if k := bytes.Index(s[hs:pe], []byte("\n\n")); k >= 0 {
			he, bs = hs+k, hs+k+2
		}
		if he < 0 {
			if next < 0 {
				return
			}
			p = pe
			continue
		}
		be := pe // the line break before the delimiter belongs to it
		if next >= 0 {
			if be > bs && s[be-1] == '\n' {
				be--
			}
			if be > bs && s[be-1] == '\r' {
				be--
			}
		}
		name, pct := "", ""
		for _, line := range strings.Split(string(s[hs:he]), "\n") {
			line = strings.TrimRight(line, "\r")
			k := strings.IndexByte(line, ':')
			if k < 0 {
				continue
			}
			switch strings.ToLower(strings.TrimSpace(line[:k])) {
			case "content-disposition":
				if _, dp, err := mime.ParseMediaType(strings.TrimSpace(line[k+1:])); err == nil {
					name = dp["name"]
				}
			case "content-type":
				pct = strings.TrimSpace(line[k+1:])
			}
		}
		if utf8.Valid(s[hs:he]) {
			r.scanText(w, hs, he)
		}
		switch {
		case be <= bs:
		case name != "" && r.secretField([]byte(name)):
			if !isMarker(s[bs:be]) {
				w.replace(span{start: bs, end: be, kind: "field"})
			}
		case utf8.Valid(s[bs:be]):
			sub := &writer{r: r, fp: w.fp, src: s[bs:be]}
			r.scrubBody(sub, pct)
			if sub.changed() {
				w.replaceLit(bs, be, sub.bytes())
			}
		}
		if next < 0 {
			return
		}
		p = pe
	}
}
