package match

import (
	"fmt"
	"strconv"
	"strings"
)

// JSONPath is a parsed path in the JSONPath subset the rules accept:
//
//	$            the whole body
//	.name        a member (name: any characters but . [ ] ' " and spaces)
//	['name']     a member, any name ("..." also works; \' \" \\ escape)
//	[n]          an array element; negative n counts from the end
//	[*]  .*      every element or member
//	..name       a member at any depth ("..*" and "..['name']" too)
//
// Examples: $.metadata.request_id, $.messages[*].timestamp, $..nonce.
type JSONPath struct {
	segs []pathSeg
}

type segKind uint8

const (
	segChild      segKind = iota // .name ['name']
	segIndex                     // [n]
	segWildcard                  // [*] .*
	segDescendant                // ..name
	segDescAll                   // ..*
)

type pathSeg struct {
	kind  segKind
	name  string
	index int
}

// JSONPathError is a JSON path that does not parse.
type JSONPathError struct {
	Path   string
	Offset int
	Msg    string
}

func (e *JSONPathError) Error() string {
	return fmt.Sprintf("invalid JSON path %q: %s at offset %d", e.Path, e.Msg, e.Offset)
}

// ParseJSONPath parses a path in the subset described at JSONPath.
func ParseJSONPath(s string) (JSONPath, error) {
	fail := func(i int, msg string) (JSONPath, error) {
		return JSONPath{}, &JSONPathError{Path: s, Offset: i, Msg: msg}
	}
	if !strings.HasPrefix(s, "$") {
		return fail(0, "must start with $")
	}
	var segs []pathSeg
	i := 1
	for i < len(s) {
		switch s[i] {
		case '.':
			desc := false
			i++
			if i < len(s) && s[i] == '.' {
				desc = true
				i++
			}
			if i >= len(s) {
				return fail(i, "name expected after '.'")
			}
			if s[i] == '*' {
				i++
				if desc {
					segs = append(segs, pathSeg{kind: segDescAll})
				} else {
					segs = append(segs, pathSeg{kind: segWildcard})
				}
				continue
			}
			if s[i] == '[' {
				if !desc {
					return fail(i, "'[' cannot follow a single '.'")
				}
				seg, next, err := parseBracket(s, i)
				if err != nil {
					return JSONPath{}, err
				}
				switch seg.kind {
				case segChild:
					seg.kind = segDescendant
				case segWildcard:
					seg.kind = segDescAll
				default:
					return fail(i, "'..' takes a name or *, not an index")
				}
				segs = append(segs, seg)
				i = next
				continue
			}
			j := i
			for j < len(s) && isNameByte(s[j]) {
				j++
			}
			if j == i {
				return fail(i, fmt.Sprintf("unexpected character %q", s[i]))
			}
			k := segChild
			if desc {
				k = segDescendant
			}
			segs = append(segs, pathSeg{kind: k, name: s[i:j]})
			i = j
		case '[':
			seg, next, err := parseBracket(s, i)
			if err != nil {
				return JSONPath{}, err
			}
			segs = append(segs, seg)
			i = next
		default:
			return fail(i, fmt.Sprintf("unexpected character %q", s[i]))
		}
	}
	return JSONPath{segs: segs}, nil
}

// parseBracket parses [n], [*], ['name'] or ["name"] starting at s[i] == '['.
func parseBracket(s string, i int) (pathSeg, int, error) {
	fail := func(at int, msg string) (pathSeg, int, error) {
		return pathSeg{}, 0, &JSONPathError{Path: s, Offset: at, Msg: msg}
	}
	open := i
	i++ // '['
	for i < len(s) && s[i] == ' ' {
		i++
	}
	if i >= len(s) {
		return fail(open, "unterminated '['")
	}
	var seg pathSeg
	switch c := s[i]; {
	case c == '*':
		seg = pathSeg{kind: segWildcard}
		i++
	case c == '\'' || c == '"':
		quote := c
		i++
		var sb strings.Builder
		for {
			if i >= len(s) {
				return fail(open, "unterminated quoted name")
			}
			c := s[i]
			if c == quote {
				i++
				break
			}
			if c == '\\' {
				if i+1 >= len(s) {
					return fail(i, "unterminated escape")
				}
				switch e := s[i+1]; e {
				case '\\', '\'', '"':
					sb.WriteByte(e)
				default:
					return fail(i, fmt.Sprintf("invalid escape \\%c", e))
				}
				i += 2
				continue
			}
			sb.WriteByte(c)
			i++
		}
		seg = pathSeg{kind: segChild, name: sb.String()}
	case c == '-' || isDigit(c):
		j := i
		if s[j] == '-' {
			j++
		}
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		n, err := strconv.Atoi(s[i:j])
		if err != nil {
			return fail(i, "invalid index")
		}
		seg = pathSeg{kind: segIndex, index: n}
		i = j
	default:
		return fail(i, fmt.Sprintf("unexpected character %q in brackets", c))
	}
	for i < len(s) && s[i] == ' ' {
		i++
	}
	if i >= len(s) || s[i] != ']' {
		return fail(open, "unterminated '['")
	}
	return seg, i + 1, nil
}

func isNameByte(c byte) bool {
	switch c {
	case '.', '[', ']', '\'', '"', ' ', '\t', '\n', '\r', '*':
		return false
	}
	return c >= 0x20 && c != 0x7f
}

// isPlainName reports whether key can be written as .key in a path.
func isPlainName(key string) bool {
	if key == "" {
		return false
	}
	for i := 0; i < len(key); i++ {
		if !isNameByte(key[i]) {
			return false
		}
	}
	return true
}

func quoteSingle(s string) string {
	var sb strings.Builder
	sb.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		if s[i] == '\'' || s[i] == '\\' {
			sb.WriteByte('\\')
		}
		sb.WriteByte(s[i])
	}
	sb.WriteByte('\'')
	return sb.String()
}

// String is the path in canonical spelling; it parses back to the same path.
func (p JSONPath) String() string {
	var sb strings.Builder
	sb.WriteByte('$')
	for _, s := range p.segs {
		switch s.kind {
		case segChild:
			if isPlainName(s.name) {
				sb.WriteString("." + s.name)
			} else {
				sb.WriteString("[" + quoteSingle(s.name) + "]")
			}
		case segDescendant:
			if isPlainName(s.name) {
				sb.WriteString(".." + s.name)
			} else {
				sb.WriteString("..[" + quoteSingle(s.name) + "]")
			}
		case segIndex:
			sb.WriteString("[" + strconv.Itoa(s.index) + "]")
		case segWildcard:
			sb.WriteString("[*]")
		case segDescAll:
			sb.WriteString("..*")
		}
	}
	return sb.String()
}

// IsRoot reports whether the path is "$", the whole body.
func (p JSONPath) IsRoot() bool { return len(p.segs) == 0 }

// remove deletes every value the path selects below n: object members are
// dropped, array elements become jGone (so later indexes keep their place).
// The root path is the caller's business.
func (p JSONPath) remove(n *jnode) {
	if len(p.segs) > 0 {
		removeSegs(n, p.segs)
	}
}

func removeSegs(n *jnode, segs []pathSeg) {
	s := segs[0]
	rest := segs[1:]
	last := len(rest) == 0
	switch s.kind {
	case segChild:
		if n.kind != jObject {
			return
		}
		if last {
			n.mem = deleteMembers(n.mem, func(k string) bool { return k == s.name })
			return
		}
		for i := range n.mem {
			if n.mem[i].key == s.name {
				removeSegs(&n.mem[i].val, rest)
			}
		}
	case segIndex:
		if n.kind != jArray {
			return
		}
		idx := s.index
		if idx < 0 {
			idx += len(n.arr)
		}
		if idx < 0 || idx >= len(n.arr) {
			return
		}
		if last {
			n.arr[idx] = jnode{kind: jGone}
		} else {
			removeSegs(&n.arr[idx], rest)
		}
	case segWildcard:
		switch n.kind {
		case jObject:
			if last {
				n.mem = n.mem[:0]
				return
			}
			for i := range n.mem {
				removeSegs(&n.mem[i].val, rest)
			}
		case jArray:
			for i := range n.arr {
				if last {
					n.arr[i] = jnode{kind: jGone}
				} else {
					removeSegs(&n.arr[i], rest)
				}
			}
		}
	case segDescendant, segDescAll:
		matches := func(k string) bool { return s.kind == segDescAll || k == s.name }
		switch n.kind {
		case jObject:
			if last {
				n.mem = deleteMembers(n.mem, matches)
			} else {
				for i := range n.mem {
					if matches(n.mem[i].key) {
						removeSegs(&n.mem[i].val, rest)
					}
				}
			}
			for i := range n.mem {
				removeSegs(&n.mem[i].val, segs)
			}
		case jArray:
			for i := range n.arr {
				if s.kind == segDescAll {
					if last {
						n.arr[i] = jnode{kind: jGone}
						continue
					}
					removeSegs(&n.arr[i], rest)
				}
				removeSegs(&n.arr[i], segs)
			}
		}
	}
}

func deleteMembers(mem []jmember, drop func(string) bool) []jmember {
	out := mem[:0]
	for _, m := range mem {
		if !drop(m.key) {
			out = append(out, m)
		}
	}
	return out
}

// selectsTopLevel reports whether the path selects the top-level member
// name of an object; used to apply body paths to form fields.
func (p JSONPath) selectsTopLevel(name string) bool {
	if len(p.segs) != 1 {
		return false
	}
	s := p.segs[0]
	switch s.kind {
	case segWildcard, segDescAll:
		return true
	case segChild, segDescendant:
		return s.name == name
	}
	return false
}
