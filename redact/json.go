package redact

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math/bits"
)

// The JSON scanner is a lenient byte-level tokenizer: it copies every byte
// as it was and rewrites only string contents (and the numbers of secret
// fields, which become marker strings). Valid JSON stays valid JSON with its
// key order and spacing; truncated JSON, NDJSON and stray text are handled
// as far as they go, and never rejected.
//
// A string followed by ':' is a key. The value of a secret key is redacted
// when it is a string or a number; when it is an array, its scalars (and
// those of nested arrays) are; an object under a secret key is walked like
// any other (JSON Schemas name properties "token" or "key" and are not
// secrets). Every other string, keys included, is scanned for patterns.

type pstate struct{ p, pos int32 }

// jframe is one open object or array. It holds no pointer (the key is a
// place in src), so pushing one costs no write barrier; the JSON path
// states of each frame, when there are paths, live beside the stack.
type jframe struct {
	arr        bool
	root       bool // the pseudo-frame around top-level values
	secret     bool // object: the current key is secret; array: its scalars are
	named      bool // object: the current key holds a name rule's identifier
	hasKey     bool // object: a key was read, src[key0:key1] (raw)
	key0, key1 int
	idx        int // array: the current index
}

var jsonDelim = func() (t [256]bool) {
	for _, c := range []byte(`,{}[]"`) {
		t[c] = true
	}
	return
}()

// keyCache remembers the verdicts of secretKey on recent keys of one JSON
// body, which repeats its keys ("role", "content", "type", ...) and, in
// tool-call arguments, the keys of the JSON inside its strings: 16 sets of
// 4, the most recent first. An entry is a key's place in the body,
// src[start:end].
type keyCache [16][4]struct {
	head       uint64 // the key's first eight bytes, zero-padded
	start, end int32
	secret     bool
	named      bool // not secret, but holds a name rule's identifier (rules.go)
}

// secretKey is secretField of a raw JSON key (unescaped first), answered
// from c when it saw the same bytes before; c may be nil. raw is
// src[start:start+len(raw)].
func (r *Redactor) secretKey(c *keyCache, src []byte, start int, raw []byte) bool {
	if !r.mayBeSecretName(raw) {
		return false
	}
	secret, _ := r.keyVerdict(c, src, start, raw)
	return secret
}

// keyVerdict is secretKey, and whether a key that is not secret holds an
// identifier of a name rule (its value is then checked by nameValue).
func (r *Redactor) keyVerdict(c *keyCache, src []byte, start int, raw []byte) (secret, named bool) {
	if !r.mayBeSecretName(raw) { // nor escaped: mayBeSecretName holds for a backslash
		return false, r.mayName(raw)
	}
	n := len(raw)
	if c == nil || n == 0 || start+n > 1<<31-1 {
		return r.keyVerdictOf(raw)
	}
	var head uint64
	if start+8 <= len(src) {
		head = binary.LittleEndian.Uint64(src[start:])
		if n < 8 {
			head &= 1<<(8*n) - 1
		}
	} else {
		for k := min(n, 8) - 1; k >= 0; k-- {
			head = head<<8 | uint64(raw[k])
		}
	}
	set := &c[((head^uint64(n)<<56^uint64(raw[n-1])<<48)*0x9E3779B97F4A7C15)>>60]
	for k := range set {
		e := &set[k]
		if e.end == 0 {
			break
		}
		if e.head == head && int(e.end-e.start) == n && (n <= 8 || string(src[e.start+8:e.end]) == string(raw[8:])) {
			return e.secret, e.named
		}
	}
	secret, named = r.keyVerdictOf(raw)
	copy(set[1:], set[:3])
	set[0].head, set[0].start, set[0].end, set[0].secret, set[0].named = head, int32(start), int32(start+n), secret, named
	return secret, named
}

func (r *Redactor) keyVerdictOf(raw []byte) (secret, named bool) {
	k := unescapeKey(raw)
	if r.secretField(k) {
		return true, false
	}
	return false, r.mayName(k)
}

// Classes of the byte that starts a JSON token.
const (
	jOther = iota // a number, a literal or stray text
	jSkip         // white space, ':'
	jOpen         // { [
	jClose        // } ]
	jComma
	jQuote
)

var jclass = func() (t [256]uint8) {
	for _, c := range []byte(" \t\n\r:") {
		t[c] = jSkip
	}
	t['{'], t['['], t['}'], t[']'], t[','], t['"'] = jOpen, jOpen, jClose, jClose, jComma, jQuote
	return
}()

var jclassp = &jclass // loaded once by scanJSON, not rebuilt at each use

func isWS(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// jsonScratch is scanJSON's working memory. A caller that scans many JSON
// values of one body (the data: lines of an SSE stream) passes the same one
// to each: it is zeroed once, and the keys of one line are known in the
// next.
type jsonScratch struct {
	stack [16]jframe // the first frames; deeper nesting grows on the heap
	cands [32]int    // mayMatch positions in the current string (stringScan)
	keys  keyCache
	// rules: the second layer (rules.go) runs string by string in the same
	// pass (stringScanRules), its secrets added to the writer's pending
	// ones as they come; the gated rules whose keywords were seen are left
	// in gated for the caller, who then scans the whole body again.
	rules bool
	gated uint64
	rb    ruleBatch // stringScanRules', reused string after string
	acc   scanAcc   // rulesAt's
}

func (r *Redactor) scanJSON(w *writer, lo, hi int, js *jsonScratch) {
	s := w.src
	paths := len(r.paths) > 0
	cands, keys := &js.cands, &js.keys
	st := append(js.stack[:0], jframe{root: true})
	var pst [][]pstate // with paths: the states of st[k] in pst[k]
	if paths {
		pst = append(pst, r.root)
	}
	jc, t8 := jclassp, stop8p
	for i := lo; i < hi; {
		c := s[i]
		switch jc[c] {
		case jSkip:
			i++
		case jOpen:
			top := &st[len(st)-1]
			if paths {
				states, final := r.child(top, pst[len(pst)-1], s, true)
				if final {
					end := skipComposite(s, i, hi)
					w.replace(span{start: i, end: end, kind: "field", quote: 1})
					i = end
					continue
				}
				pst = append(pst, states)
			}
			st = append(st, jframe{arr: c == '[', secret: c == '[' && top.secret})
			i++
		case jClose:
			if len(st) > 1 {
				st = st[:len(st)-1]
				if paths {
					pst = pst[:len(pst)-1]
				}
			} else {
				st[0].secret, st[0].hasKey = false, false
			}
			i++
		case jComma:
			if top := &st[len(st)-1]; top.arr {
				top.idx++
			} else {
				top.secret, top.named, top.hasKey = false, false, false
			}
			i++
		case jQuote:
			// A short string (most keys and many values) that ends in the
			// next eight bytes with no trigger byte before its quote is
			// settled here; anything else goes to stringScan.
			var e, nc, resume int
			var closed bool
			if js.rules {
				f := i + 1
				if f+8 <= hi {
					b := s[f : f+8 : f+8]
					ft := &r.sc.fused
					g := ft[0][b[0]] | ft[1][b[1]] | ft[2][b[2]] | ft[3][b[3]] | ft[4][b[4]] | ft[5][b[5]] | ft[6][b[6]] | ft[7][b[7]]
					m := uint(g & 0xff)
					if k := bits.TrailingZeros(m); m != 0 && s[f+k] == '"' && (k == 0 || s[f+k-1] != '\\') {
						e, closed, resume = f+k, true, f+k
						if m2 := uint(g>>8) & (1<<k - 1); m2 != 0 { // anchor bytes before the quote
							rb := &js.rb
							rb.begin(f)
							r.rulesBatch(w, rb, m2, f, e, f, hi, e)
							r.rulesEnd(w, rb, f, e, js)
						}
					}
				}
				if !closed {
					e, closed, nc, resume = r.stringScanRules(w, f, hi, cands[:], js)
				}
			} else {
				if f := i + 1; f+8 <= hi {
					b := s[f : f+8 : f+8]
					m := stops8(t8, b[0:8:8])
					if k := bits.TrailingZeros(m); m != 0 && s[f+k] == '"' && (k == 0 || s[f+k-1] != '\\') {
						e, closed, resume = f+k, true, f+k
					}
				}
				if !closed {
					e, closed, nc, resume = stringScan(s, i+1, hi, cands[:])
				}
			}
			top := &st[len(st)-1]
			next := e + 1 // where the scan goes on: after the ':' of a key
			isKey := false
			if closed && !top.arr {
				k := e + 1
				for k < hi && isWS(s[k]) {
					k++
				}
				if isKey = k < hi && s[k] == ':'; isKey {
					next = k + 1
				}
			}
			scan := nc > 0 || resume < e || len(r.pats) > 0
			switch {
			case isKey:
				if scan {
					r.scanTextAt(w, i+1, e, cands[:nc], resume, keys)
				}
				top.hasKey, top.key0, top.key1 = true, i+1, e
				top.secret, top.named = r.keyVerdict(keys, s, i+1, s[i+1:e])
			case e > i+1 && (top.secret || paths && r.finalHere(top, pst[len(pst)-1], s)) && !isMarker(s[i+1:e]):
				w.replace(span{start: i + 1, end: e, kind: "field"})
			case e > i+1 && top.named && closed && r.nameValueInto(w, s[top.key0:top.key1], s, i, e+1):
			case scan:
				r.scanTextAt(w, i+1, e, cands[:nc], resume, keys)
			}
			i = next
		default:
			j := i
			for j < hi && !jsonDelim[s[j]] {
				j++
			}
			t := j
			for t > i && isWS(s[t-1]) {
				t--
			}
			tok := s[i:t]
			top := &st[len(st)-1]
			if isNumber(tok) {
				if top.secret || paths && r.finalHere(top, pst[len(pst)-1], s) {
					w.replace(span{start: i, end: t, kind: "field", quote: 1})
				}
			} else if !isLiteral(tok) {
				if js.rules {
					r.rulesAt(w, i, t, nil, i, js)
				}
				r.scanText(w, i, t)
			}
			i = j
		}
	}
}

// stringEnd returns the index of the quote closing a string whose content
// starts at from, or hi when it is not closed.
func stringEnd(s []byte, from, hi int) (int, bool) {
	for i := from; i < hi; {
		// Most strings (keys, short values) end within a few bytes: a byte
		// loop first, IndexByte for the rest.
		q, e := i, min(i+16, hi)
		for q < e && s[q] != '"' {
			q++
		}
		if q == e {
			if e == hi {
				break
			}
			k := bytes.IndexByte(s[e:hi], '"')
			if k < 0 {
				break
			}
			q = e + k
		}
		n := 0
		for q-1-n >= from && s[q-1-n] == '\\' {
			n++
		}
		if n%2 == 0 {
			return q, true
		}
		i = q + 1
	}
	return hi, false
}

// skipComposite returns the end of the object or array starting at i.
func skipComposite(s []byte, i, hi int) int {
	d := 0
	for j := i; j < hi; j++ {
		switch s[j] {
		case '{', '[':
			d++
		case '}', ']':
			d--
			if d == 0 {
				return j + 1
			}
		case '"':
			e, closed := stringEnd(s, j+1, hi)
			if !closed {
				return hi
			}
			j = e
		}
	}
	return hi
}

func isNumber(b []byte) bool {
	if len(b) == 0 || !(b[0] == '-' || b[0] >= '0' && b[0] <= '9') {
		return false
	}
	digit := false
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			digit = true
		case c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E':
		default:
			return false
		}
	}
	return digit
}

func isLiteral(b []byte) bool {
	switch string(b) {
	case "true", "false", "null", "":
		return true
	}
	return false
}

// unescapeKey decodes a raw JSON key that holds escapes.
func unescapeKey(raw []byte) []byte {
	if bytes.IndexByte(raw, '\\') < 0 {
		return raw
	}
	q := make([]byte, 0, len(raw)+2)
	q = append(append(append(q, '"'), raw...), '"')
	var s string
	if json.Unmarshal(q, &s) != nil {
		return raw
	}
	return []byte(s)
}

// child returns the path states for a composite value in frame f and
// whether a JSON path ends at it.
func (r *Redactor) child(f *jframe, states []pstate, src []byte, want bool) ([]pstate, bool) {
	if f.root {
		return r.root, false
	}
	if len(states) == 0 || !f.arr && !f.hasKey {
		return nil, false
	}
	var key []byte
	if f.hasKey {
		key = unescapeKey(src[f.key0:f.key1])
	}
	return r.step(states, key, f.idx, f.arr, want)
}

func (r *Redactor) finalHere(f *jframe, states []pstate, src []byte) bool {
	_, final := r.child(f, states, src, false)
	return final && !f.root
}

// step advances path states over one child (a key, or an index).
func (r *Redactor) step(states []pstate, key []byte, idx int, isIdx, want bool) (next []pstate, final bool) {
	for _, st := range states {
		path := r.paths[st.p]
		seg := path[st.pos]
		var m bool
		switch seg.kind {
		case segName, segDescName:
			m = !isIdx && string(key) == seg.name
		case segAny, segDescAny:
			m = true
		case segIndex:
			m = isIdx && idx == seg.idx
		}
		if want && (seg.kind == segDescName || seg.kind == segDescAny) {
			next = addState(next, st)
		}
		if m {
			if int(st.pos)+1 == len(path) {
				final = true
			} else if want {
				next = addState(next, pstate{st.p, st.pos + 1})
			}
		}
	}
	return next, final
}

func addState(sts []pstate, s pstate) []pstate {
	for _, x := range sts {
		if x == s {
			return sts
		}
	}
	return append(sts, s)
}
