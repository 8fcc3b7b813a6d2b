package match

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// A small JSON parser of our own: encoding/json would lose number literals
// (json.Number keeps them, but maps lose duplicate-key order and byte
// offsets), and the JSON-RPC id rewrite needs the exact byte span of a value.
// It accepts exactly what encoding/json's Valid accepts (RFC 8259; raw
// invalid UTF-8 inside strings is tolerated and read as U+FFFD).

type jkind uint8

const (
	jNull jkind = iota
	jFalse
	jTrue
	jNumber
	jString
	jObject
	jArray
	jGone // an array slot removed by an ignore path; serialized as null
)

// jnode is one parsed JSON value.
type jnode struct {
	kind  jkind
	s     string    // number literal (verbatim) or decoded string
	mem   []jmember // object members, source order until canonicalized
	arr   []jnode   // array elements
	start int       // byte offset of the value in the source
	end   int       // byte offset just past the value
}

type jmember struct {
	key string
	val jnode
}

// maxJSONDepth bounds nesting, as encoding/json does.
const maxJSONDepth = 10000

// JSONSyntaxError reports where a body stopped being JSON.
type JSONSyntaxError struct {
	Offset int
	Msg    string
}

func (e *JSONSyntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at offset %d: %s", e.Offset, e.Msg)
}

type jparser struct {
	b     []byte
	i     int
	depth int
	// Scratch stacks: members and elements gather here while a container
	// is parsed, then move to a slice of the exact size.
	mems  []jmember
	elems []jnode
}

// parseJSON parses exactly one JSON value surrounded by optional whitespace.
func parseJSON(b []byte) (jnode, error) {
	p := jparser{b: b}
	p.ws()
	v, err := p.value()
	if err != nil {
		return jnode{}, err
	}
	p.ws()
	if p.i != len(p.b) {
		return jnode{}, p.errf("unexpected data after the top-level value")
	}
	return v, nil
}

func (p *jparser) errf(format string, args ...any) error {
	return &JSONSyntaxError{Offset: p.i, Msg: fmt.Sprintf(format, args...)}
}

func (p *jparser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jparser) value() (jnode, error) {
	if p.i >= len(p.b) {
		return jnode{}, p.errf("unexpected end of input")
	}
	start := p.i
	switch c := p.b[p.i]; {
	case c == '{':
		return p.object()
	case c == '[':
		return p.array()
	case c == '"':
		s, err := p.str()
		if err != nil {
			return jnode{}, err
		}
		return jnode{kind: jString, s: s, start: start, end: p.i}, nil
	case c == 't':
		return p.literal("true", jTrue)
	case c == 'f':
		return p.literal("false", jFalse)
	case c == 'n':
		return p.literal("null", jNull)
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	default:
		return jnode{}, p.errf("unexpected character %q", c)
	}
}

func (p *jparser) literal(word string, k jkind) (jnode, error) {
	start := p.i
	if !bytes.HasPrefix(p.b[p.i:], []byte(word)) {
		return jnode{}, p.errf("invalid literal")
	}
	p.i += len(word)
	return jnode{kind: k, start: start, end: p.i}, nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func (p *jparser) number() (jnode, error) {
	start := p.i
	b := p.b
	if p.i < len(b) && b[p.i] == '-' {
		p.i++
	}
	switch {
	case p.i < len(b) && b[p.i] == '0':
		p.i++
	case p.i < len(b) && b[p.i] >= '1' && b[p.i] <= '9':
		for p.i < len(b) && isDigit(b[p.i]) {
			p.i++
		}
	default:
		return jnode{}, p.errf("invalid number")
	}
	if p.i < len(b) && b[p.i] == '.' {
		p.i++
		if p.i >= len(b) || !isDigit(b[p.i]) {
			return jnode{}, p.errf("invalid number: digit expected after '.'")
		}
		for p.i < len(b) && isDigit(b[p.i]) {
			p.i++
		}
	}
	if p.i < len(b) && (b[p.i] == 'e' || b[p.i] == 'E') {
		p.i++
		if p.i < len(b) && (b[p.i] == '+' || b[p.i] == '-') {
			p.i++
		}
		if p.i >= len(b) || !isDigit(b[p.i]) {
			return jnode{}, p.errf("invalid number: digit expected in exponent")
		}
		for p.i < len(b) && isDigit(b[p.i]) {
			p.i++
		}
	}
	return jnode{kind: jNumber, s: string(b[start:p.i]), start: start, end: p.i}, nil
}

func (p *jparser) enter() error {
	p.depth++
	if p.depth > maxJSONDepth {
		return p.errf("nesting deeper than %d", maxJSONDepth)
	}
	return nil
}

func (p *jparser) object() (jnode, error) {
	start := p.i
	if err := p.enter(); err != nil {
		return jnode{}, err
	}
	p.i++ // '{'
	n := jnode{kind: jObject, start: start}
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		p.depth--
		n.end = p.i
		n.mem = []jmember{}
		return n, nil
	}
	mark := len(p.mems)
	defer func() { p.mems = p.mems[:mark] }()
	for {
		p.ws()
		if p.i >= len(p.b) || p.b[p.i] != '"' {
			return jnode{}, p.errf("object key expected")
		}
		k, err := p.str()
		if err != nil {
			return jnode{}, err
		}
		p.ws()
		if p.i >= len(p.b) || p.b[p.i] != ':' {
			return jnode{}, p.errf("':' expected after object key")
		}
		p.i++
		p.ws()
		v, err := p.value()
		if err != nil {
			return jnode{}, err
		}
		p.mems = append(p.mems, jmember{key: k, val: v})
		p.ws()
		if p.i >= len(p.b) {
			return jnode{}, p.errf("unexpected end of input in object")
		}
		if p.b[p.i] == ',' {
			p.i++
			continue
		}
		if p.b[p.i] == '}' {
			p.i++
			p.depth--
			n.end = p.i
			n.mem = slices.Clone(p.mems[mark:])
			return n, nil
		}
		return jnode{}, p.errf("',' or '}' expected in object")
	}
}

func (p *jparser) array() (jnode, error) {
	start := p.i
	if err := p.enter(); err != nil {
		return jnode{}, err
	}
	p.i++ // '['
	n := jnode{kind: jArray, start: start}
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
		p.depth--
		n.end = p.i
		n.arr = []jnode{}
		return n, nil
	}
	mark := len(p.elems)
	defer func() { p.elems = p.elems[:mark] }()
	for {
		p.ws()
		v, err := p.value()
		if err != nil {
			return jnode{}, err
		}
		p.elems = append(p.elems, v)
		p.ws()
		if p.i >= len(p.b) {
			return jnode{}, p.errf("unexpected end of input in array")
		}
		if p.b[p.i] == ',' {
			p.i++
			continue
		}
		if p.b[p.i] == ']' {
			p.i++
			p.depth--
			n.end = p.i
			n.arr = slices.Clone(p.elems[mark:])
			return n, nil
		}
		return jnode{}, p.errf("',' or ']' expected in array")
	}
}

// str reads a string starting at the opening quote and returns it decoded.
func (p *jparser) str() (string, error) {
	p.i++ // opening quote
	start := p.i
	b := p.b
	high := false
	// Fast path: no escapes.
	for i := start; i < len(b); i++ {
		c := b[i]
		switch {
		case c == '"':
			if !high || utf8.Valid(b[start:i]) {
				p.i = i + 1
				return string(b[start:i]), nil
			}
			return p.strSlow(start)
		case c == '\\':
			return p.strSlow(start)
		case c < 0x20:
			p.i = i
			return "", p.errf("control character in string")
		case c >= 0x80:
			high = true
		}
	}
	p.i = len(b)
	return "", p.errf("unterminated string")
}

func (p *jparser) strSlow(start int) (string, error) {
	b := p.b
	var sb strings.Builder
	i := start
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			p.i = i + 1
			return sb.String(), nil
		case c < 0x20:
			p.i = i
			return "", p.errf("control character in string")
		case c == '\\':
			if i+1 >= len(b) {
				p.i = i
				return "", p.errf("unterminated escape")
			}
			e := b[i+1]
			i += 2
			switch e {
			case '"', '\\', '/':
				sb.WriteByte(e)
			case 'b':
				sb.WriteByte('\b')
			case 'f':
				sb.WriteByte('\f')
			case 'n':
				sb.WriteByte('\n')
			case 'r':
				sb.WriteByte('\r')
			case 't':
				sb.WriteByte('\t')
			case 'u':
				r, ok := hex4(b, i)
				if !ok {
					p.i = i
					return "", p.errf("invalid \\u escape")
				}
				i += 4
				if r >= 0xD800 && r < 0xDC00 {
					// High surrogate: pair it with a following low one if present.
					if i+6 <= len(b) && b[i] == '\\' && b[i+1] == 'u' {
						if r2, ok := hex4(b, i+2); ok && r2 >= 0xDC00 && r2 < 0xE000 {
							i += 6
							sb.WriteRune(((r - 0xD800) << 10) + (r2 - 0xDC00) + 0x10000)
							continue
						}
					}
					r = utf8.RuneError
				} else if r >= 0xDC00 && r < 0xE000 {
					r = utf8.RuneError
				}
				sb.WriteRune(r)
			default:
				p.i = i - 1
				return "", p.errf("invalid escape character %q", e)
			}
		case c < utf8.RuneSelf:
			sb.WriteByte(c)
			i++
		default:
			r, size := utf8.DecodeRune(b[i:])
			sb.WriteRune(r) // invalid bytes become U+FFFD
			i += size
		}
	}
	p.i = len(b)
	return "", p.errf("unterminated string")
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// canonicalize sorts object members by key (byte order of the decoded key)
// and drops duplicate keys, keeping the last one as JavaScript's JSON.parse
// and encoding/json do. It works in place, recursively.
func (n *jnode) canonicalize() {
	switch n.kind {
	case jObject:
		for i := range n.mem {
			n.mem[i].val.canonicalize()
		}
		if len(n.mem) < 2 {
			return
		}
		slices.SortStableFunc(n.mem, func(a, b jmember) int { return strings.Compare(a.key, b.key) })
		out := n.mem[:0]
		for i := range n.mem {
			if i+1 < len(n.mem) && n.mem[i+1].key == n.mem[i].key {
				continue // a later duplicate wins
			}
			out = append(out, n.mem[i])
		}
		n.mem = out
	case jArray:
		for i := range n.arr {
			n.arr[i].canonicalize()
		}
	}
}

// mapStrings applies f to every string value and object key.
func (n *jnode) mapStrings(f func(string) string) {
	switch n.kind {
	case jString:
		n.s = f(n.s)
	case jObject:
		for i := range n.mem {
			n.mem[i].key = f(n.mem[i].key)
			n.mem[i].val.mapStrings(f)
		}
	case jArray:
		for i := range n.arr {
			n.arr[i].mapStrings(f)
		}
	}
}

// appendJSON writes n compactly (members in their current order).
func appendJSON(dst []byte, n *jnode) []byte {
	switch n.kind {
	case jNull, jGone:
		return append(dst, "null"...)
	case jTrue:
		return append(dst, "true"...)
	case jFalse:
		return append(dst, "false"...)
	case jNumber:
		return append(dst, n.s...)
	case jString:
		return appendJSONString(dst, n.s)
	case jObject:
		dst = append(dst, '{')
		for i := range n.mem {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, n.mem[i].key)
			dst = append(dst, ':')
			dst = appendJSON(dst, &n.mem[i].val)
		}
		return append(dst, '}')
	case jArray:
		dst = append(dst, '[')
		for i := range n.arr {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSON(dst, &n.arr[i])
		}
		return append(dst, ']')
	}
	return dst
}

const hexDigits = "0123456789abcdef"

// appendJSONString writes s as a JSON string with the minimal escaping:
// '"', '\\' and control characters; everything else is written as UTF-8.
// Strings that come out of the parser are valid UTF-8.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// CanonicalJSON returns b in canonical form: object keys sorted (by the
// bytes of the decoded key), duplicate keys collapsed to the last one,
// insignificant whitespace dropped, strings re-escaped minimally (only '"',
// '\\' and control characters; \u escapes of other characters are decoded),
// and numbers kept as their literal text (1.0 and 1 stay different). The
// output is itself valid JSON and CanonicalJSON of it is identical.
func CanonicalJSON(b []byte) ([]byte, error) {
	n, err := parseJSON(b)
	if err != nil {
		return nil, err
	}
	n.canonicalize()
	return appendJSON(make([]byte, 0, len(b)), &n), nil
}

// renderJSON is the canonical text of n, truncated for display.
func renderJSON(n *jnode) string {
	return truncate(string(appendJSON(nil, n)))
}

// jsonPathString appends one path step to a display path such as $.a[0].
func jsonPathChild(parent, key string) string {
	if isPlainName(key) {
		return parent + "." + key
	}
	return parent + "[" + quoteSingle(key) + "]"
}

func jsonPathIndex(parent string, i int) string {
	return parent + "[" + strconv.Itoa(i) + "]"
}
