package redact

// validJSON is encoding/json.Valid, several times faster: bodies are
// sniffed and every SSE data: line is checked with it before the JSON
// scanner takes it, and json.Valid's byte-at-a-time state machine costs
// more than the scan: BenchmarkRedactStreamed50KB takes 4.08M instructions
// with this, 5.00M with json.Valid (BenchmarkRedactResponse1KB 41.6k, 45.1k). It accepts exactly what encoding/json's scanner accepts
// (checked by FuzzValidJSON): RFC 8259 with any byte >= 0x20 inside strings
// (UTF-8 is not checked), surrounding white space, and at most
// maxJSONDepth nested arrays and objects.
func validJSON(b []byte) bool {
	d := jsonValidator{b: b}
	i := d.value(d.space(0))
	return i >= 0 && d.space(i) == len(b)
}

const maxJSONDepth = 10000 // encoding/json's maxNestingDepth

type jsonValidator struct {
	b     []byte
	depth int
	obj   uint64   // bit k: level k (< 64) is an object, else an array
	deep  []uint64 // the same for the levels from 64 on
}

// jsonStrStop: the bytes a string cannot skip over: the quote, the
// backslash and control characters.
var jsonStrStop = func() (t [256]uint8) {
	for c := range 0x20 {
		t[c] = 1
	}
	t['"'], t['\\'] = 1, 1
	return
}()

var jsonStrStopp = &jsonStrStop // a register, not the global's address at each use

func (d *jsonValidator) space(i int) int {
	for i < len(d.b) {
		switch d.b[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}

// push enters an object or an array; false beyond maxJSONDepth.
func (d *jsonValidator) push(obj bool) bool {
	k := d.depth
	d.depth++
	if d.depth > maxJSONDepth {
		return false
	}
	if k < 64 {
		if obj {
			d.obj |= 1 << k
		} else {
			d.obj &^= 1 << k
		}
		return true
	}
	w, bit := (k-64)/64, uint((k-64)%64)
	for len(d.deep) <= w {
		d.deep = append(d.deep, 0)
	}
	if obj {
		d.deep[w] |= 1 << bit
	} else {
		d.deep[w] &^= 1 << bit
	}
	return true
}

// inObject reports whether the innermost open level is an object.
func (d *jsonValidator) inObject() bool {
	k := d.depth - 1
	if k < 64 {
		return d.obj&(1<<k) != 0
	}
	return d.deep[(k-64)/64]&(1<<uint((k-64)%64)) != 0
}

// value checks the value starting at i (after white space) and, when it
// opens an object or array, everything up to the matching close. It
// returns the index after it, or -1.
func (d *jsonValidator) value(i int) int {
	b := d.b
	for {
		// one value, or the opening of a container
		if i >= len(b) {
			return -1
		}
		switch c := b[i]; {
		case c == '{':
			if !d.push(true) {
				return -1
			}
			i = d.space(i + 1)
			if i < len(b) && b[i] == '}' {
				d.depth--
				i++
				break // an empty object is a whole value
			}
			if i = d.key(i); i < 0 {
				return -1
			}
			i = d.space(i)
			continue
		case c == '[':
			if !d.push(false) {
				return -1
			}
			i = d.space(i + 1)
			if i < len(b) && b[i] == ']' {
				d.depth--
				i++
				break
			}
			continue
		case c == '"':
			if i = d.str(i + 1); i < 0 {
				return -1
			}
		case c == '-' || '0' <= c && c <= '9':
			if i = d.number(i); i < 0 {
				return -1
			}
		case c == 't':
			if i = d.lit(i, "true"); i < 0 {
				return -1
			}
		case c == 'f':
			if i = d.lit(i, "false"); i < 0 {
				return -1
			}
		case c == 'n':
			if i = d.lit(i, "null"); i < 0 {
				return -1
			}
		default:
			return -1
		}
		// after a value: close the containers it ends, or go on to the next
		for {
			if d.depth == 0 {
				return i
			}
			i = d.space(i)
			if i >= len(b) {
				return -1
			}
			obj := d.inObject()
			switch c := b[i]; {
			case c == ',':
				i = d.space(i + 1)
				if obj {
					if i = d.key(i); i < 0 {
						return -1
					}
					i = d.space(i)
				}
			case obj && c == '}' || !obj && c == ']':
				d.depth--
				i++
				continue
			default:
				return -1
			}
			break
		}
	}
}

// key checks `"key" :` at i and returns the index after the colon.
func (d *jsonValidator) key(i int) int {
	b := d.b
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	if i = d.str(i + 1); i < 0 {
		return -1
	}
	i = d.space(i)
	if i >= len(b) || b[i] != ':' {
		return -1
	}
	return i + 1
}

// str checks a string whose content starts at i and returns the index
// after its closing quote.
func (d *jsonValidator) str(i int) int {
	b := d.b
	t := jsonStrStopp
	for {
		// short strings (keys, small values) end within a few bytes: a
		// byte loop first, eight bytes a step after
		for e := min(i+16, len(b)); i < e && t[b[i]] == 0; i++ {
		}
		if i < len(b) && t[b[i]] == 0 {
			for i+8 <= len(b) {
				w := b[i : i+8 : i+8]
				if t[w[0]]|t[w[1]]|t[w[2]]|t[w[3]]|t[w[4]]|t[w[5]]|t[w[6]]|t[w[7]] != 0 {
					break
				}
				i += 8
			}
			for i < len(b) && t[b[i]] == 0 {
				i++
			}
		}
		if i >= len(b) {
			return -1
		}
		switch b[i] {
		case '"':
			return i + 1
		case '\\':
			if i+1 >= len(b) {
				return -1
			}
			switch b[i+1] {
			case 'b', 'f', 'n', 'r', 't', '\\', '/', '"':
				i += 2
			case 'u':
				if i+6 > len(b) || !allHex(b[i+2:i+6]) {
					return -1
				}
				i += 6
			default:
				return -1
			}
		default: // a control character
			return -1
		}
	}
}

// number checks -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? at i.
func (d *jsonValidator) number(i int) int {
	b := d.b
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		for i++; i < len(b) && '0' <= b[i] && b[i] <= '9'; i++ {
		}
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return -1
		}
		for i++; i < len(b) && '0' <= b[i] && b[i] <= '9'; i++ {
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return -1
		}
		for i++; i < len(b) && '0' <= b[i] && b[i] <= '9'; i++ {
		}
	}
	return i
}

func (d *jsonValidator) lit(i int, word string) int {
	if len(d.b)-i < len(word) || string(d.b[i:i+len(word)]) != word {
		return -1
	}
	return i + len(word)
}
