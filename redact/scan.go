package redact

import (
	"bytes"
	"math/bits"
	"sort"
)

// span is one stretch of w.src to replace by a marker. It is small enough
// to be returned in registers by the matchers.
type span struct {
	start, end int
	kind       string
	enc        bool // write the marker percent-encoded (URL userinfo)
	quote      int  // >0: wrap the marker as a JSON string behind quote-1 backslashes
}

type edit struct{ start, end, newLen int }

// writer rebuilds src with replacements. Until the first replacement it
// copies nothing: a clean body costs one scan and no allocation.
type writer struct {
	r      *Redactor
	fp     bool // append fingerprints
	src    []byte
	out    []byte
	last   int // src[:last] is settled
	dirty  bool
	track  bool // record edits (to re-split stream events)
	encAll bool // percent-encode every marker (inside URL userinfo)
	edits  []edit
	// pending are the spans the rules and values found (scanner.spans),
	// sorted and apart, written in order among the name and pattern
	// replacements; one that overlaps such a replacement widens it.
	pending []span
}

func (r *Redactor) newWriter(src []byte, fp bool) *writer {
	return &writer{r: r, fp: fp && len(r.secret) > 0, src: src}
}

// replace writes sp. Replacements must come in increasing order; one that
// overlaps what is already written is dropped.
func (w *writer) replace(sp span) {
	w.replaceWith(sp, nil)
}

// replaceLit writes lit in place of src[start:end], as replace does.
func (w *writer) replaceLit(start, end int, lit []byte) {
	w.replaceWith(span{start: start, end: end}, lit)
}

func (w *writer) replaceWith(sp span, lit []byte) {
	if sp.end < sp.start || sp.end > len(w.src) {
		return
	}
	// Pending spans before sp go first; those that overlap sp widen it,
	// or, for a literal (a decoded value written back, scanned on its
	// own), are dropped.
	for len(w.pending) > 0 && w.pending[0].start < sp.end {
		p := w.pending[0]
		if p.end <= sp.start {
			w.pending = w.pending[1:]
			w.write(p, nil)
			continue
		}
		w.pending = w.pending[1:]
		if lit == nil {
			if p.start < sp.start {
				sp.start = p.start
				sp.quote = 0
			}
			if p.end > sp.end {
				sp.end = p.end
				sp.quote = 0
			}
		}
	}
	w.write(sp, lit)
}

// flush writes the pending spans that are left.
func (w *writer) flush() {
	for _, p := range w.pending {
		w.write(p, nil)
	}
	w.pending = nil
}

func (w *writer) write(sp span, lit []byte) {
	if sp.start < w.last {
		if lit != nil || sp.end <= w.last {
			return
		}
		sp.start, sp.quote = w.last, 0 // the rest of a secret a pending span began
	}
	if !w.dirty {
		if cap(w.out) < len(w.src)+64 { // else a buffer the caller lent
			w.out = make([]byte, 0, len(w.src)+64)
		}
		w.dirty = true
	}
	w.out = append(w.out, w.src[w.last:sp.start]...)
	n0 := len(w.out)
	sp.enc = sp.enc || w.encAll
	if lit != nil {
		w.out = append(w.out, lit...)
	} else {
		q := sp.quote
		for k := 1; k < q; k++ {
			w.out = append(w.out, '\\')
		}
		if q > 0 {
			w.out = append(w.out, '"')
		}
		w.out = w.r.appendMarker(w.out, sp.kind, w.src[sp.start:sp.end], sp.enc, w.fp)
		for k := 1; k < q; k++ {
			w.out = append(w.out, '\\')
		}
		if q > 0 {
			w.out = append(w.out, '"')
		}
	}
	if w.track {
		w.edits = append(w.edits, edit{sp.start, sp.end, len(w.out) - n0})
	}
	w.last = sp.end
}

// changed reports whether anything was or will be replaced.
func (w *writer) changed() bool { return w.dirty || len(w.pending) > 0 }

// bytes returns the result: src itself when nothing was replaced.
func (w *writer) bytes() []byte {
	w.flush()
	if !w.dirty {
		return w.src
	}
	w.out = append(w.out, w.src[w.last:]...)
	w.last = len(w.src)
	return w.out
}

const (
	markerOpen    = "[REDACTED:"
	markerOpenEnc = "%5BREDACTED%3A"
)

// appendMarker appends [REDACTED:kind] or [REDACTED:kind:fp] (or the
// percent-encoded %5BREDACTED%3Akind%3Afp%5D) for the secret val.
func (r *Redactor) appendMarker(dst []byte, kind string, val []byte, enc, fp bool) []byte {
	if enc {
		dst = append(dst, markerOpenEnc...)
	} else {
		dst = append(dst, markerOpen...)
	}
	dst = append(dst, kind...)
	if fp && len(r.secret) > 0 {
		if enc {
			dst = append(dst, "%3A"...)
		} else {
			dst = append(dst, ':')
		}
		dst = r.appendFingerprint(dst, val)
	}
	if enc {
		return append(dst, "%5D"...)
	}
	return append(dst, ']')
}

// isMarker reports whether b is exactly one marker, plain or percent-encoded.
func isMarker(b []byte) bool {
	var rest []byte
	enc := false
	switch {
	case bytes.HasPrefix(b, []byte(markerOpen)):
		rest = b[len(markerOpen):]
	case len(b) >= len(markerOpenEnc) && bytes.EqualFold(b[:len(markerOpenEnc)], []byte(markerOpenEnc)):
		rest, enc = b[len(markerOpenEnc):], true
	default:
		return false
	}
	n := 0
	for n < len(rest) && isKindChar(rest[n]) {
		n++
	}
	if n == 0 {
		return false
	}
	rest = rest[n:]
	sep, cl := ":", "]"
	if enc {
		sep, cl = "%3A", "%5D"
	}
	if len(rest) >= len(sep)+8 && bytes.EqualFold(rest[:len(sep)], []byte(sep)) && allHex(rest[len(sep):len(sep)+8]) {
		rest = rest[len(sep)+8:]
	}
	return bytes.EqualFold(rest, []byte(cl))
}

func isKindChar(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' }

func allHex(b []byte) bool {
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// Byte classes.
var (
	trig     [256]uint8    // bytes where a built-in rule may fire (1), else 0
	strStop  [256]uint8    // where stringScan stops: trig, and the quote
	stop8    [8][256]uint8 // stop8[k][c] = 1<<k where strStop[c] != 0: eight loads OR into a mask
	alnum    [256]bool
	tokChar  [256]bool // [A-Za-z0-9_-]: API keys, base64url
	b64tok   [256]bool // RFC 6750 b64token: [A-Za-z0-9-._~+/]
	nameChar [256]bool // key names before '=' or inside quotes
	qStop    [256]bool // ends a query-style value
	uiStop   [256]bool // ends the authority of a URL in text
	pemBody  [256]bool // base64 body of a PEM block (with \n escapes)
	lineStop [256]bool // ends a header value in text
)

func init() {
	for c := 0; c < 256; c++ {
		b := byte(c)
		a := b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
		alnum[c] = a
		tokChar[c] = a || b == '_' || b == '-'
		b64tok[c] = a || bytes.IndexByte([]byte("-._~+/"), b) >= 0
		nameChar[c] = a || bytes.IndexByte([]byte("_-.[]"), b) >= 0
		pemBody[c] = a || bytes.IndexByte([]byte("+/= \t\r\n\\"), b) >= 0
	}
	for _, b := range []byte("-_AJBb:=@") {
		trig[b] = 1
	}
	strStop = trig
	strStop['"'] = 2
	for k := range stop8 {
		for c := range 256 {
			if strStop[c] != 0 {
				stop8[k][c] = 1 << k
			}
		}
	}
	for _, b := range []byte("&# \t\r\n\"'\\<>;,)`|") {
		qStop[b] = true
	}
	for _, b := range []byte("/?# \t\r\n\"'\\<>[]{}|^`") {
		uiStop[b] = true
	}
	for c := 0; c < 0x20; c++ {
		qStop[c], uiStop[c] = true, true
	}
	for _, b := range []byte("\r\n\"'\\<>`") {
		lineStop[b] = true
	}
}

// scanText redacts the token patterns (and the user patterns) in src[lo:hi].
func (r *Redactor) scanText(w *writer, lo, hi int) {
	r.scanTextAt(w, lo, hi, nil, lo, nil)
}

// scanTextAt is scanText for a stretch where the trigger bytes before
// resume that pass mayMatch were found already (stringScan): cands, in
// increasing order. From resume on it looks for them itself.
func (r *Redactor) scanTextAt(w *writer, lo, hi int, cands []int, resume int, keys *keyCache) {
	if resume >= hi && len(cands) == 0 && len(r.pats) == 0 {
		return
	}
	s := w.src
	// The spans found, the end of the last one, where the next match may
	// start, where a search for the end of a PEM block failed. Locals, not
	// a struct behind a pointer, so that buf stays on the stack.
	var buf [4]span // most stretches hold a secret or two at most
	spans, last, next, pemNoEnd := buf[:0], lo, lo, hi
	for _, i := range cands {
		if i >= next {
			if sp, ok := r.matchAt(&pemNoEnd, keys, s, lo, hi, i); ok && sp.start >= last && sp.end > sp.start {
				spans, last, next = append(spans, sp), sp.end, max(i+1, sp.end)
			}
		}
	}
	q := quickp
	for i := max(resume, next); i < hi; i++ {
		if i = nextTrigger(s, i, hi); i >= hi {
			break
		}
		if quickMay(q, s, lo, hi, i) && mayMatch(s, lo, hi, i) {
			if sp, ok := r.matchAt(&pemNoEnd, keys, s, lo, hi, i); ok && sp.start >= last && sp.end > sp.start {
				spans, last, next = append(spans, sp), sp.end, max(i+1, sp.end)
				i = next - 1
			}
		}
	}
	if len(r.pats) > 0 {
		spans = r.userSpans(s, lo, hi, spans)
	}
	for _, sp := range spans {
		w.replace(sp)
	}
}

// nameCharp is &nameChar, loaded once by the matchers' loops.
var nameCharp = &nameChar

// stop8p is &stop8 as a variable: loaded into a register once, where the
// global's address is rebuilt for each of the eight tables.
var stop8p = &stop8

// nextTrigger returns the first i' >= i below hi where trig is set, or hi.
func nextTrigger(s []byte, i, hi int) int { return nextIn(&trig, s, i, hi) }

// nextIn returns the first i' >= i below hi where t is set, or hi. Most
// text has a trigger byte every few dozen bytes at most, so it looks at
// eight bytes per step with independent table loads and one branch.
func nextIn(t *[256]uint8, s []byte, i, hi int) int {
	if hi > len(s) {
		hi = len(s)
	}
	for ; i+8 <= hi; i += 8 {
		b := s[i : i+8 : i+8]
		if t[b[0]]|t[b[1]]|t[b[2]]|t[b[3]]|t[b[4]]|t[b[5]]|t[b[6]]|t[b[7]] != 0 {
			break
		}
	}
	for ; i < hi; i++ {
		if t[s[i]] != 0 {
			return i
		}
	}
	return hi
}

// stringScan returns the index of the quote closing a JSON string whose
// content starts at from, or hi when it is not closed (as stringEnd), and
// collects in cands the positions in it where mayMatch holds, in order.
// When cands is full it finds the end alone and returns in resume where the
// collection stopped (else end): the caller scans from there.
//
// mayMatch is evaluated against hi rather than the string's end: the only
// byte that differs is the one after the last content byte, the closing
// quote, which fails every test mayMatch makes on the bytes after i, as
// the missing byte does.
func stringScan(s []byte, from, hi int, cands []int) (end int, closed bool, n, resume int) {
	if hi > len(s) {
		hi = len(s)
	}
	t, q := stop8p, quickp // loaded once, not rebuilt at each use
	for i := from; i < hi; {
		// m: the stops among the next (up to) eight bytes, bit k for s[i+k].
		base := i
		var m uint
		if i+32 <= hi {
			b := s[i : i+32 : i+32]
			m = stops8(t, b[0:8:8]) |
				stops8(t, b[8:16:16])<<8 |
				stops8(t, b[16:24:24])<<16 |
				stops8(t, b[24:32:32])<<24
			i += 32
		} else if i+16 <= hi {
			b := s[i : i+16 : i+16]
			m = stops8(t, b[0:8:8]) |
				stops8(t, b[8:16:16])<<8
			i += 16
		} else if i+8 <= hi {
			b := s[i : i+8 : i+8]
			m = stops8(t, b[0:8:8])
			i += 8
		} else {
			for ; i < hi; i++ {
				m |= uint(strStop[s[i]]&1|strStop[s[i]]>>1) << (i - base)
			}
		}
		for m != 0 {
			p := base + bits.TrailingZeros(m)
			m &= m - 1
			if s[p] == '"' {
				if p == from || s[p-1] != '\\' {
					return p, true, n, p
				}
				k := 1
				for p-1-k >= from && s[p-1-k] == '\\' {
					k++
				}
				if k%2 == 0 {
					return p, true, n, p
				}
				continue
			}
			if quickMay(q, s, from, hi, p) && mayMatch(s, from, hi, p) {
				if n == len(cands) {
					end, closed = stringEnd(s, p, hi)
					return end, closed, n, p
				}
				cands[n] = p
				n++
			}
		}
	}
	return hi, false, n, hi
}

// stringScanRules is stringScan that runs the second layer (rules.go) on
// the string in the same pass: the positions of its anchor bytes
// (scanner.anchor) are gathered a batch at a time and handled (stopAt)
// once the string's end is known; what they find goes to w.pending, the
// gated rules whose keywords were seen to js.gated.
func (r *Redactor) stringScanRules(w *writer, from, hi int, cands []int, js *jsonScratch) (end int, closed bool, n, resume int) {
	s := w.src
	if hi > len(s) {
		hi = len(s)
	}
	sc := r.sc
	t, q := &sc.fused, quickp
	rb := &js.rb
	rb.begin(from)
	known := -1 // the string's end, once a full batch needed it
	for i := from; i < hi; {
		base := i
		var m, m2 uint
		if i+32 <= hi {
			b := s[i : i+32 : i+32]
			g0 := t[0][b[0]] | t[1][b[1]] | t[2][b[2]] | t[3][b[3]] | t[4][b[4]] | t[5][b[5]] | t[6][b[6]] | t[7][b[7]]
			g1 := t[0][b[8]] | t[1][b[9]] | t[2][b[10]] | t[3][b[11]] | t[4][b[12]] | t[5][b[13]] | t[6][b[14]] | t[7][b[15]]
			g2 := t[0][b[16]] | t[1][b[17]] | t[2][b[18]] | t[3][b[19]] | t[4][b[20]] | t[5][b[21]] | t[6][b[22]] | t[7][b[23]]
			g3 := t[0][b[24]] | t[1][b[25]] | t[2][b[26]] | t[3][b[27]] | t[4][b[28]] | t[5][b[29]] | t[6][b[30]] | t[7][b[31]]
			m = uint(g0&0xff) | uint(g1&0xff)<<8 | uint(g2&0xff)<<16 | uint(g3&0xff)<<24
			m2 = uint(g0>>8) | uint(g1>>8)<<8 | uint(g2>>8)<<16 | uint(g3>>8)<<24
			i += 32
		} else if i+8 <= hi {
			b := s[i : i+8 : i+8]
			g := t[0][b[0]] | t[1][b[1]] | t[2][b[2]] | t[3][b[3]] | t[4][b[4]] | t[5][b[5]] | t[6][b[6]] | t[7][b[7]]
			m, m2 = uint(g&0xff), uint(g>>8)
			i += 8
		} else {
			for ; i < hi; i++ {
				m |= uint(strStop[s[i]]&1|strStop[s[i]]>>1) << (i - base)
				m2 |= uint(sc.anchor[s[i]]) << (i - base)
			}
		}
		for m != 0 {
			p := base + bits.TrailingZeros(m)
			m &= m - 1
			if s[p] == '"' {
				k := 0
				for p-1-k >= from && s[p-1-k] == '\\' {
					k++
				}
				if k%2 != 0 {
					continue // escaped
				}
				r.rulesBatch(w, rb, m2, base, p, from, hi, p)
				r.rulesEnd(w, rb, from, p, js)
				return p, true, n, p
			}
			if quickMay(q, s, from, hi, p) && mayMatch(s, from, hi, p) {
				if n == len(cands) {
					end, closed = stringEnd(s, p, hi)
					known = r.rulesBatch(w, rb, m2, base, p, from, end, end)
					// The rest of a string this busy: the rules scan it on
					// their own, as the first layer does from p.
					sc.scanFrom(r, s, from, end, p, &rb.acc, &rb.st)
					r.rulesEnd(w, rb, from, end, js)
					return end, closed, n, p
				}
				cands[n] = p
				n++
			}
		}
		known = r.rulesBatch(w, rb, m2, base, i, from, hi, known)
	}
	r.rulesEnd(w, rb, from, hi, js)
	return hi, false, n, hi
}

// ruleBatch is the second layer's state over one string (stringScanRules).
type ruleBatch struct {
	acc   scanAcc
	st    stopState
	stops [64]int
	n     int
}

func (rb *ruleBatch) begin(from int) {
	rb.acc.out, rb.acc.gated = rb.acc.out[:0], 0
	rb.st = stopState{pct: -1}
	rb.n = 0
}

// rulesBatch adds the anchor positions in m2 (bits from base) below lim to
// the batch; a full batch is handled, with the string's end found first
// when it is not known yet (end < 0; stringEnd from the string's start).
// With flushTo >= 0 the batch is handled in any case, up to flushTo. It
// returns the end, if known.
func (r *Redactor) rulesBatch(w *writer, rb *ruleBatch, m2 uint, base, lim, from, hi, end int) int {
	s, sc := w.src, r.sc
	for m2 != 0 {
		p := base + bits.TrailingZeros(m2)
		if p >= lim {
			break
		}
		m2 &= m2 - 1
		// Only a byte stopAt may act on: a special one, or one of an
		// anchor pair (the byte after may lie past the string: stopAt
		// tests again).
		c := s[p]
		if special[c] == 0 {
			k1 := uint16(c) << 8
			if p+1 < len(s) {
				k1 |= uint16(s[p+1])
			}
			if sc.first[k1>>3]&(1<<(k1&7)) == 0 {
				if p == from {
					continue
				}
				if k2 := uint16(s[p-1])<<8 | uint16(c); sc.second[k2>>3]&(1<<(k2&7)) == 0 {
					continue
				}
			}
		}
		if rb.n == len(rb.stops) {
			if end < 0 {
				end, _ = stringEnd(w.src, from, hi)
			}
			r.rulesFlush(w, rb, from, end)
		}
		rb.stops[rb.n] = p
		rb.n++
	}
	return end
}

func (r *Redactor) rulesFlush(w *writer, rb *ruleBatch, from, end int) {
	for _, p := range rb.stops[:rb.n] {
		r.sc.stopAt(r, w.src, from, end, p, &rb.acc, &rb.st)
	}
	rb.n = 0
}

// rulesEnd handles the rest of the batch, the percent-encoded stretches of
// the string, and adds what was found to w.pending.
func (r *Redactor) rulesEnd(w *writer, rb *ruleBatch, from, end int, js *jsonScratch) {
	if rb.n > 0 {
		r.rulesFlush(w, rb, from, end)
	}
	if rb.st.pct >= 0 {
		rb.acc.out = r.sc.decodedSpans(r, w.src, from, rb.st.pct, end, rb.acc.out, 0)
	}
	js.gated |= rb.acc.gated
	if len(rb.acc.out) > 0 {
		w.pending = append(w.pending, mergeSpans(rb.acc.out)...)
	}
}

// Trigger classes for quickMay: one bit per matcher.
const (
	tDash = 1 << iota
	tUnder
	tA
	tJ
	tB
	tColon
	tEq
	tAt
)

// trigClass is the class of a trigger byte; prevOK and nextOK the classes
// whose mayMatch test can pass with that byte before, or after, the
// trigger.
var trigClass, prevOK, nextOK [256]uint8

// quickTabs holds the three for quickMay, behind a variable the scan loops
// load once (the globals' addresses would be rebuilt at each use).
type quickTabs struct{ class, prev, next *[256]uint8 }

var quickp = &quickTabs{&trigClass, &prevOK, &nextOK}

func init() {
	for c, k := range map[byte]uint8{'-': tDash, '_': tUnder, 'A': tA, 'J': tJ, 'B': tB, 'b': tB, ':': tColon, '=': tEq, '@': tAt} {
		trigClass[c] = k
	}
	for c := range 256 {
		prevOK[c] = tAt
		if nameChar[c] {
			prevOK[c] |= tColon | tEq
		}
	}
	for _, c := range []byte("kabprs") {
		prevOK[c] |= tDash
	}
	for _, c := range []byte("kpousrb") {
		prevOK[c] |= tUnder
	}
	prevOK['y'] |= tJ
	for _, c := range []byte("\" \t") {
		prevOK[c] |= tColon
	}
	nextOK['-'] |= tDash
	for _, c := range []byte("KSBCI") {
		nextOK[c] |= tA
	}
	for _, c := range []byte("eEaA") {
		nextOK[c] |= tB
	}
	nextOK[' '] |= tColon
	nextOK['\t'] |= tColon
}

// quickMay is a cheaper superset of mayMatch, small enough to inline: the
// byte before or after the trigger must be one its matcher can start with.
func quickMay(q *quickTabs, s []byte, lo, hi, i int) bool {
	var prev, next byte
	if i > lo {
		prev = s[i-1]
	}
	if i+1 < hi {
		next = s[i+1]
	}
	return (q.prev[prev]|q.next[next])&q.class[s[i]] != 0
}

// mayMatch is a necessary condition for matchAt to find a span at i,
// checked on the neighbouring bytes only: most trigger bytes in prose ('b',
// '-', '_', ':') fail it, and matchAt is not called. Each case mirrors the
// first test of the matcher it guards; keep them in step.
func mayMatch(s []byte, lo, hi, i int) bool {
	var prev, next byte
	if i > lo {
		prev = s[i-1]
	}
	if i+1 < hi {
		next = s[i+1]
	}
	switch s[i] {
	case '-': // sk-, xox[abprs]-, -----BEGIN
		switch prev {
		case 'k':
			return i-2 >= lo && s[i-2] == 's' || next == '-'
		case 'a', 'b', 'p', 'r', 's':
			return i-4 >= lo && s[i-2] == 'x' || next == '-'
		}
		return next == '-'
	case '_': // sk_ rk_, gh[pousr]_, github_
		switch prev {
		case 'k':
			return i-2 >= lo && (s[i-2] == 's' || s[i-2] == 'r')
		case 'p', 'o', 'u', 's', 'r':
			return i-3 >= lo && s[i-2] == 'h' && s[i-3] == 'g'
		case 'b':
			return i-6 >= lo && s[i-2] == 'u'
		}
		return false
	case 'A': // AKIA ASIA ABIA ACCA AIza
		return next == 'K' || next == 'S' || next == 'B' || next == 'C' || next == 'I'
	case 'J': // eyJ
		return prev == 'y' && i-2 >= lo && s[i-2] == 'e'
	case 'B', 'b': // bearer, basic (ASCII case folding only: no other
		// byte folds to e, a or s, and a two-byte rune that folds to s
		// leaves too few bytes for the word)
		if i+2 >= hi {
			return false
		}
		switch next | 0x20 {
		case 'e':
			return s[i+2]|0x20 == 'a'
		case 'a':
			return s[i+2]|0x20 == 's'
		}
		return false
	case ':': // "name": (after a quote and blanks), or Name: value
		return prev == '"' || prev == ' ' || prev == '\t' || nameChar[prev] && (next == ' ' || next == '\t')
	case '=': // name=value
		return nameChar[prev]
	}
	return true // '@'
}

func (r *Redactor) matchAt(pemNoEnd *int, keys *keyCache, s []byte, lo, hi, i int) (span, bool) {
	switch s[i] {
	case '-':
		return matchDash(s, lo, hi, i, pemNoEnd)
	case '_':
		return matchUnderscore(s, lo, hi, i)
	case 'A':
		return matchA(s, lo, hi, i)
	case 'J':
		return matchJWT(s, lo, hi, i)
	case 'B', 'b':
		return matchAuthScheme(s, lo, hi, i)
	case ':':
		return r.matchQuotedField(keys, s, lo, hi, i)
	case '@':
		return matchUserinfo(s, lo, hi, i)
	case '=':
		return r.matchQueryField(keys, s, lo, hi, i)
	}
	return span{}, false
}

// boundary reports whether a token may start at st: at the start, after a
// byte that is not a letter or digit, or right after a JSON escape (\n, \u0026).
func boundary(s []byte, lo, st int) bool {
	if st <= lo || !alnum[s[st-1]] {
		return true
	}
	return escapeBefore(s, lo, st) > 0
}

// escapeBefore returns the length of a JSON escape (\n, \t, \r, \b, \f or
// \uXXXX) that ends right before p, or 0. The backslash may itself be
// escaped (JSON inside a JSON string).
func escapeBefore(s []byte, lo, p int) int {
	if p-2 >= lo && s[p-2] == '\\' {
		switch s[p-1] {
		case 'n', 'r', 't', 'b', 'f':
			return 2
		}
	}
	if p-6 >= lo && s[p-6] == '\\' && s[p-5] == 'u' && allHex(s[p-4:p]) {
		return 6
	}
	return 0
}

func hasPrefixAt(s []byte, i, hi int, p string) bool {
	return hi-i >= len(p) && string(s[i:i+len(p)]) == p
}

func runOf(s []byte, i, hi int, class *[256]bool) int {
	for i < hi && class[s[i]] {
		i++
	}
	return i
}

func hasDigit(b []byte) bool {
	for _, c := range b {
		if c >= '0' && c <= '9' {
			return true
		}
	}
	return false
}

// keyLike accepts the part of an sk- key after "sk-": at least 8 token
// bytes with a digit, or 32 and more. "sk-learn" and "sk-learn-tutorial"
// stay; "sk-test-0000" and real keys (40+ random bytes) go.
func keyLike(b []byte) bool {
	return len(b) >= 32 || len(b) >= 8 && hasDigit(b)
}

func matchDash(s []byte, lo, hi, i int, pemNoEnd *int) (span, bool) {
	// sk-…, sk-proj-…, sk-ant-…
	if i-2 >= lo && s[i-2] == 's' && s[i-1] == 'k' && boundary(s, lo, i-2) {
		e := runOf(s, i+1, hi, &tokChar)
		if tok := s[i+1 : e]; keyLike(tok) {
			kind := "openai_key"
			if bytes.HasPrefix(tok, []byte("ant-")) {
				kind = "anthropic_key"
			}
			return span{start: i - 2, end: e, kind: kind}, true
		}
	}
	// xoxb- xoxa- xoxp- xoxr- xoxs-
	if i-4 >= lo && s[i-4] == 'x' && s[i-3] == 'o' && s[i-2] == 'x' &&
		bytes.IndexByte([]byte("abprs"), s[i-1]) >= 0 && boundary(s, lo, i-4) {
		e := i + 1
		for e < hi && (alnum[s[e]] || s[e] == '-') {
			e++
		}
		if e-(i+1) >= 10 {
			return span{start: i - 4, end: e, kind: "slack_token"}, true
		}
	}
	if hasPrefixAt(s, i, hi, "-----BEGIN ") {
		return matchPEM(s, hi, i, pemNoEnd)
	}
	return span{}, false
}

// matchPEM takes a whole -----BEGIN … PRIVATE KEY----- block; a block cut
// short (no END) is taken to the end of its base64 body. *noEnd remembers
// where a search for END failed, so many BEGINs cost one scan.
func matchPEM(s []byte, hi, i int, noEnd *int) (span, bool) {
	ls := i + len("-----BEGIN ")
	le := indexWithin(s, ls, hi, "-----", 80)
	if le < 0 || !bytes.Contains(s[ls:le], []byte("PRIVATE KEY")) {
		return span{}, false
	}
	body := le + 5
	k := -1
	if body < *noEnd {
		if k = bytes.Index(s[body:hi], []byte("-----END ")); k < 0 {
			*noEnd = body
		}
	}
	if k >= 0 {
		p := body + k + len("-----END ")
		if e := indexWithin(s, p, hi, "-----", 80); e >= 0 {
			return span{start: i, end: e + 5, kind: "private_key"}, true
		}
		return span{start: i, end: runOf(s, p, hi, &nameOrSpace), kind: "private_key"}, true
	}
	return span{start: i, end: runOf(s, body, hi, &pemBody), kind: "private_key"}, true
}

var nameOrSpace = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = c >= 'A' && c <= 'Z' || c == ' ' || c == '-'
	}
	return
}()

func indexWithin(s []byte, from, hi int, sub string, max int) int {
	end := from + max
	if end > hi {
		end = hi
	}
	if k := bytes.Index(s[from:end], []byte(sub)); k >= 0 {
		return from + k
	}
	return -1
}

func matchUnderscore(s []byte, lo, hi, i int) (span, bool) {
	// Stripe: sk_live_ rk_live_ sk_test_ rk_test_
	if i-2 >= lo && (s[i-2] == 's' || s[i-2] == 'r') && s[i-1] == 'k' && boundary(s, lo, i-2) &&
		(hasPrefixAt(s, i+1, hi, "live_") || hasPrefixAt(s, i+1, hi, "test_")) {
		e := runOf(s, i+6, hi, &alnum)
		if e-(i+6) >= 8 {
			return span{start: i - 2, end: e, kind: "stripe_key"}, true
		}
	}
	// GitHub: ghp_ gho_ ghs_ ghu_ ghr_
	if i-3 >= lo && s[i-3] == 'g' && s[i-2] == 'h' && bytes.IndexByte([]byte("pousr"), s[i-1]) >= 0 && boundary(s, lo, i-3) {
		e := runOf(s, i+1, hi, &alnum)
		if e-(i+1) >= 20 {
			return span{start: i - 3, end: e, kind: "github_token"}, true
		}
	}
	// GitHub fine-grained: github_pat_
	if i-6 >= lo && string(s[i-6:i]) == "github" && hasPrefixAt(s, i+1, hi, "pat_") && boundary(s, lo, i-6) {
		e := i + 5
		for e < hi && (alnum[s[e]] || s[e] == '_') {
			e++
		}
		if e-(i+5) >= 20 {
			return span{start: i - 6, end: e, kind: "github_token"}, true
		}
	}
	return span{}, false
}

func matchA(s []byte, lo, hi, i int) (span, bool) {
	if hi-i < 20 {
		return span{}, false
	}
	switch string(s[i : i+4]) {
	case "AKIA", "ASIA", "ABIA", "ACCA":
		if !boundary(s, lo, i) {
			return span{}, false
		}
		e := i + 4
		for e < hi && (s[e] >= 'A' && s[e] <= 'Z' || s[e] >= '0' && s[e] <= '9') {
			e++
		}
		if e-(i+4) == 16 && (e == hi || !alnum[s[e]]) {
			return span{start: i, end: e, kind: "aws_access_key"}, true
		}
	case "AIza":
		if !boundary(s, lo, i) {
			return span{}, false
		}
		e := runOf(s, i+4, hi, &tokChar)
		if e-(i+4) >= 30 {
			return span{start: i, end: e, kind: "google_api_key"}, true
		}
	}
	return span{}, false
}

// matchJWT takes eyJ….….… (three or more base64url segments; the last may
// be empty, as in unsigned tokens).
func matchJWT(s []byte, lo, hi, i int) (span, bool) {
	st := i - 2
	if st < lo || s[st] != 'e' || s[st+1] != 'y' || !boundary(s, lo, st) {
		return span{}, false
	}
	e := runOf(s, i, hi, &tokChar)
	if e-st < 10 || e >= hi || s[e] != '.' {
		return span{}, false
	}
	e2 := runOf(s, e+1, hi, &tokChar)
	if e2-(e+1) < 2 || e2 >= hi || s[e2] != '.' {
		return span{}, false
	}
	end := runOf(s, e2+1, hi, &tokChar)
	for n := 0; n < 2 && end+1 < hi && s[end] == '.' && tokChar[s[end+1]]; n++ { // JWE has five
		end = runOf(s, end+1, hi, &tokChar)
	}
	return span{start: st, end: end, kind: "jwt"}, true
}

// matchAuthScheme takes the credentials after "Bearer " (kind bearer) and
// "Basic " (kind basic_auth), keeping the scheme word.
func matchAuthScheme(s []byte, lo, hi, i int) (span, bool) {
	if !boundary(s, lo, i) {
		return span{}, false
	}
	var kind string
	var n int
	switch {
	case hi-i > 7 && bytes.EqualFold(s[i:i+6], []byte("bearer")):
		kind, n = "bearer", 6
	case hi-i > 6 && bytes.EqualFold(s[i:i+5], []byte("basic")):
		kind, n = "basic_auth", 5
	default:
		return span{}, false
	}
	if s[i+n] != ' ' && s[i+n] != '\t' {
		return span{}, false
	}
	j := i + n
	for j < hi && (s[j] == ' ' || s[j] == '\t') {
		j++
	}
	e := runOf(s, j, hi, &b64tok)
	for e < hi && s[e] == '=' {
		e++
	}
	tok := s[j:e]
	if len(tok) < 8 {
		return span{}, false
	}
	if kind == "basic_auth" {
		// base64 of user:password: a digit, + / or padding, and no - _ . ~
		if bytes.ContainsAny(tok, "-_.~") || !(hasDigit(tok) || bytes.ContainsAny(tok, "+/=")) {
			return span{}, false
		}
	} else if len(tok) < 24 && !hasNonLetter(tok) {
		return span{}, false // "Bearer authentication"
	}
	return span{start: j, end: e, kind: kind}, true
}

func hasNonLetter(b []byte) bool {
	for _, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return true
		}
	}
	return false
}

// matchUserinfo takes the password of scheme://user:password@ in text
// (also JSON-escaped, :\/\/), from the '@' back, so the user name before
// it has been scanned already. The marker is percent-encoded so the URL
// still parses.
func matchUserinfo(s []byte, lo, hi, at int) (span, bool) {
	p := at
	for p > lo && at-p < 1024 && !uiStop[s[p-1]] {
		p--
	}
	if !(p-3 >= lo && string(s[p-3:p]) == "://" || p-5 >= lo && string(s[p-5:p]) == `:\/\/`) {
		return span{}, false
	}
	for j := at + 1; j < hi && j-at < 1024 && !uiStop[s[j]]; j++ {
		if s[j] == '@' {
			return span{}, false // the last '@' ends the userinfo
		}
	}
	c := bytes.IndexByte(s[p:at], ':')
	if c < 0 || p+c+1 >= at || isMarker(s[p+c+1:at]) {
		return span{}, false
	}
	return span{start: p + c + 1, end: at, kind: "url_password", enc: true}, true
}

// matchQueryField takes the value of name=value when name is a secret field
// name and stands at the start, or after ? & # ; , a space, a quote or a
// JSON escape: query strings and form bodies inside text, log fields.
func (r *Redactor) matchQueryField(keys *keyCache, s []byte, lo, hi, i int) (span, bool) {
	p := i
	for p > lo && i-p < 64 && nameChar[s[p-1]] {
		p--
	}
	if p == i {
		return span{}, false
	}
	if p > lo && s[p-1] == '\\' { // \ntoken= or \u0026token= (escaped once or more)
		if s[p] == 'u' && p+5 < i && allHex(s[p+1:p+5]) {
			p += 5
		} else if bytes.IndexByte([]byte("nrtbf"), s[p]) >= 0 {
			p++
		} else {
			return span{}, false
		}
	} else if p > lo && bytes.IndexByte([]byte("?&#;, \t\r\n\"'`({|>"), s[p-1]) < 0 && !(s[p-1] == ':' && p-2 >= lo && s[p-2] == '/') { // .npmrc: //host/:_authToken=
		return span{}, false
	}
	if p >= i {
		return span{}, false
	}
	if !r.secretKey(keys, s, p, s[p:i]) {
		return r.nameValue(s[p:i], s, i+1, hi)
	}
	v := i + 1
	if hasPrefixAt(s, v, hi, markerOpen) || hasPrefixAt(s, v, hi, markerOpenEnc) {
		return span{}, false
	}
	e := runOf2(s, v, hi, &qStop)
	if e == v {
		return span{}, false
	}
	return span{start: v, end: e, kind: "query"}, true
}

// runOf2 advances while the byte is NOT in stop.
func runOf2(s []byte, i, hi int, stop *[256]bool) int {
	for i < hi && !stop[s[i]] {
		i++
	}
	return i
}

// matchQuotedField takes the value of "name": "value" or "name": 123 when
// name is a secret field name: JSON inside text, and JSON encoded inside a
// JSON string (\"name\":\"value\", as in tool-call arguments).
func (r *Redactor) matchQuotedField(keys *keyCache, s []byte, lo, hi, i int) (span, bool) {
	nc := nameCharp
	if i > lo && nc[s[i-1]] {
		return r.matchColonHeader(keys, s, lo, hi, i)
	}
	j := i - 1
	for j >= lo && (s[j] == ' ' || s[j] == '\t') {
		j--
	}
	if j < lo || s[j] != '"' {
		return span{}, false
	}
	k := 0 // backslashes in the quote token
	for j-1-k >= lo && s[j-1-k] == '\\' {
		k++
	}
	ne := j - k
	p := ne
	for p > lo && ne-p < 64 && nc[s[p-1]] {
		p--
	}
	if p == ne || p-1-k < lo || s[p-1] != '"' {
		return span{}, false
	}
	for x := p - 1 - k; x < p-1; x++ {
		if s[x] != '\\' {
			return span{}, false
		}
	}
	if !r.secretKey(keys, s, p, s[p:ne]) {
		if k == 0 {
			return r.nameValue(s[p:ne], s, i+1, hi)
		}
		// \"name\": \"value\" (JSON inside a JSON string): the name
		// rules see the value from its quote on, its escape left behind.
		v := i + 1
		for v < hi && (s[v] == ' ' || s[v] == '\t') {
			v++
		}
		for x := v; x < v+k; x++ {
			if x >= hi || s[x] != '\\' {
				return span{}, false
			}
		}
		return r.nameValue(s[p:ne], s, v+k, hi)
	}
	v := i + 1
	for v < hi && (s[v] == ' ' || s[v] == '\t') {
		v++
	}
	// a string value opened by the same quote token
	if v+k < hi && s[v+k] == '"' {
		for x := v; x < v+k; x++ {
			if s[x] != '\\' {
				return span{}, false
			}
		}
		vs := v + k + 1
		ve := closingQuote(s, vs, hi, k)
		if ve == vs || isMarker(s[vs:ve]) {
			return span{}, false
		}
		return span{start: vs, end: ve, kind: "field"}, true
	}
	if v < hi && (s[v] >= '0' && s[v] <= '9' || s[v] == '-') {
		e := v + 1
		for e < hi && bytes.IndexByte([]byte("0123456789.eE+-"), s[e]) >= 0 {
			e++
		}
		return span{start: v, end: e, kind: "field", quote: k + 1}, true
	}
	return span{}, false
}

// matchColonHeader takes the value of "Name: value" in text (curl -H
// arguments, pasted headers, YAML): after a secret header name from the
// explicit list (Authorization, Cookie, X-Api-Key, ... and the user's), the
// rest of the line, keeping an auth scheme word; after a secret field name,
// one token that looks like a credential (6 bytes or more with a digit, or
// 16 or more), so "password: required" stays.
func (r *Redactor) matchColonHeader(keys *keyCache, s []byte, lo, hi, i int) (span, bool) {
	p := i
	for p > lo && i-p < 64 && nameChar[s[p-1]] {
		p--
	}
	if p > lo && escapeBefore(s, lo, p) == 0 && bytes.IndexByte([]byte(" \t\r\n\"'`({,;"), s[p-1]) < 0 {
		return span{}, false
	}
	v := i + 1
	if v >= hi || s[v] != ' ' && s[v] != '\t' {
		return span{}, false
	}
	for v < hi && (s[v] == ' ' || s[v] == '\t') {
		v++
	}
	if hasPrefixAt(s, v, hi, markerOpen) || hasPrefixAt(s, v, hi, markerOpenEnc) {
		return span{}, false
	}
	name := s[p:i]
	if r.textHeader(name) {
		e := v
		for e < hi && !lineStop[s[e]] {
			e++
		}
		for e > v && (s[e-1] == ' ' || s[e-1] == '\t') {
			e--
		}
		kind := "header"
		if sp := bytes.IndexAny(s[v:e], " \t"); sp > 0 {
			if k, ok := authScheme(s[v : v+sp]); ok {
				kind = k
				for v += sp; v < e && (s[v] == ' ' || s[v] == '\t'); v++ {
				}
			}
		}
		if e <= v || isMarker(s[v:e]) {
			return span{}, false
		}
		return span{start: v, end: e, kind: kind}, true
	}
	if !r.secretKey(keys, s, p, name) {
		return r.nameValue(name, s, i+1, hi)
	}
	e := runOf2(s, v, hi, &qStop)
	if tok := s[v:e]; len(tok) >= 16 || len(tok) >= 6 && hasDigit(tok) {
		return span{start: v, end: e, kind: "field"}, true
	}
	return span{}, false
}

// textHeader reports whether name is on the explicit secret header list
// (the "contains token" rule is for real headers only: "max_tokens: 100"
// in text is not a credential).
func (r *Redactor) textHeader(name []byte) bool {
	var buf [64]byte
	b := appendNormName(buf[:0], name)
	return r.headers[string(b)]
}

// closingQuote finds the end of a string value whose quote token is k
// backslashes and a quote: the next quote preceded by m backslashes with
// m ≡ k (mod 2(k+1)); the start of that run is returned. Without one, hi.
func closingQuote(s []byte, from, hi, k int) int {
	for i := from; i < hi; {
		q := bytes.IndexByte(s[i:hi], '"')
		if q < 0 {
			break
		}
		q += i
		m := 0
		for q-1-m >= from && s[q-1-m] == '\\' {
			m++
		}
		if m >= k && (m-k)%(2*(k+1)) == 0 {
			return q - k
		}
		i = q + 1
	}
	return hi
}

// userSpans adds the user patterns' matches to spans and returns them
// sorted, merged and clear of existing markers.
func (r *Redactor) userSpans(s []byte, lo, hi int, builtin []span) []span {
	// The matches go to a new slice, builtin's spans first; builtin itself
	// is returned when there are none (it may live on the caller's stack).
	var spans []span
	n0 := len(builtin)
	seg := s[lo:hi]
	add := func(m []int, base int) {
		st, en := m[0], m[1]
		if len(m) >= 4 && m[2] >= 0 {
			st, en = m[2], m[3]
		}
		if en > st {
			if spans == nil {
				spans = append(make([]span, 0, n0+4), builtin...)
			}
			spans = append(spans, span{start: base + st, end: base + en, kind: "pattern"})
		}
	}
	for _, p := range r.pats {
		if len(p.prefix) > 0 {
			for off := 0; off < len(seg); {
				k := bytes.Index(seg[off:], p.prefix)
				if k < 0 {
					break
				}
				pos := off + k
				if m := p.anchored.FindSubmatchIndex(seg[pos:]); m != nil {
					add(m, lo+pos)
					off = pos + max(m[1], 1)
				} else {
					off = pos + 1
				}
			}
			continue
		}
		for _, m := range p.re.FindAllSubmatchIndex(seg, -1) {
			add(m, lo)
		}
	}
	if spans == nil {
		return builtin
	}
	// Leave markers alone: drop user matches that touch one.
	if bytes.Contains(seg, []byte("REDACTED")) {
		var marks [][2]int
		for _, open := range []string{markerOpen, markerOpenEnc} {
			cl := "]"
			if open == markerOpenEnc {
				cl = "%5D"
			}
			for off := 0; ; {
				k := bytes.Index(seg[off:], []byte(open))
				if k < 0 {
					break
				}
				st := off + k
				e := bytes.Index(seg[st:], []byte(cl))
				if e < 0 {
					e = len(seg) - st
				} else {
					e += len(cl)
				}
				marks = append(marks, [2]int{lo + st, lo + st + e})
				off = st + e
			}
		}
		kept := spans[:n0]
		for _, sp := range spans[n0:] {
			clear := true
			for _, m := range marks {
				if sp.start < m[1] && m[0] < sp.end {
					clear = false
					break
				}
			}
			if clear {
				kept = append(kept, sp)
			}
		}
		spans = kept
	}
	sort.SliceStable(spans, func(a, b int) bool { return spans[a].start < spans[b].start })
	out := spans[:0]
	for _, sp := range spans {
		if n := len(out); n > 0 && sp.start < out[n-1].end {
			if sp.end > out[n-1].end {
				out[n-1].end = sp.end
				out[n-1].quote = 0
			}
			continue
		}
		out = append(out, sp)
	}
	return out
}

// stops8 is the stop mask of eight bytes: bit k set when b[k] is a stop in
// t (t[k][c] = 1<<k for a stop byte c). Eight loads ORed together, no
// branch; small enough to inline where the scanners call it on 8, 16 or
// 32 bytes at a time.
func stops8(t *[8][256]uint8, b []byte) uint {
	_ = b[7]
	return uint(t[0][b[0]] | t[1][b[1]] | t[2][b[2]] | t[3][b[3]] | t[4][b[4]] | t[5][b[5]] | t[6][b[6]] | t[7][b[7]])
}
