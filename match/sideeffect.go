package match

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/cassetteproxy/cassetteproxy/store"
)

// SideEffectMatcher is a checked store.SideEffect: which answered requests
// count as the side effect, and how many of them there must be.
type SideEffectMatcher struct {
	Spec     store.SideEffect
	method   string // upper case; "*" for any
	url      string // the glob, scheme and host lower-cased
	lo, hi   int    // the status range, inclusive
	min, max int    // max -1: no limit
}

// ParseSideEffect reads "METHOD URLGLOB" (run --side-effect): answered
// 2xx exactly once.
func ParseSideEffect(s string) (store.SideEffect, error) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return store.SideEffect{}, fmt.Errorf("side effect %q: want \"METHOD URLGLOB\", e.g. \"POST https://api.example.com/v1/messages*\"", s)
	}
	one := 1
	se := store.SideEffect{Method: f[0], URL: f[1], Status: "2xx", Min: &one, Max: &one}
	if _, err := CompileSideEffect(se); err != nil {
		return store.SideEffect{}, err
	}
	return se, nil
}

// CompileSideEffect checks a side effect: a method (or "*"), a URL glob
// ("*" matches any run of characters, "/" included; "?" one) that starts
// with http://, https://, *:// or *, a status class ("2xx") or code ("201"),
// "" meaning 2xx, and 0 <= min <= max.
func CompileSideEffect(se store.SideEffect) (*SideEffectMatcher, error) {
	name := strings.TrimSpace(se.Method + " " + se.URL)
	bad := func(format string, args ...any) error {
		return fmt.Errorf("side effect %q: %s", name, fmt.Sprintf(format, args...))
	}
	m := &SideEffectMatcher{Spec: se, min: 1, max: -1}
	m.method = strings.ToUpper(se.Method)
	if m.method != "*" && !isToken(m.method) {
		return nil, bad("method %q is not an HTTP method (e.g. POST, or * for any)", se.Method)
	}
	switch u := se.URL; {
	case u == "":
		return nil, bad("url is empty (a glob such as https://api.example.com/v1/messages*)")
	case strings.ContainsFunc(u, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return nil, bad("url glob %q has spaces or control characters", u)
	case !strings.HasPrefix(u, "*") && !strings.HasPrefix(strings.ToLower(u), "http://") && !strings.HasPrefix(strings.ToLower(u), "https://"):
		return nil, bad("url glob %q must start with http://, https:// or * (it matches whole URLs)", u)
	}
	m.url = lowerSchemeHost(se.URL)
	var err error
	if m.lo, m.hi, err = statusRange(se.Status); err != nil {
		return nil, bad("%v", err)
	}
	if se.Min != nil {
		m.min = *se.Min
	}
	if se.Max != nil {
		m.max = *se.Max
	}
	switch {
	case m.min < 0:
		return nil, bad("min %d is below 0", m.min)
	case se.Max != nil && m.max < m.min:
		return nil, bad("max %d is below min %d", m.max, m.min)
	case m.min == 0 && m.max < 0:
		return nil, bad("min 0 and no max checks nothing")
	}
	return m, nil
}

// statusRange reads a status class ("2xx"; "" = 2xx) or an exact code.
func statusRange(s string) (lo, hi int, err error) {
	switch t := strings.ToLower(strings.TrimSpace(s)); {
	case t == "":
		return 200, 299, nil
	case len(t) == 3 && t[1:] == "xx" && t[0] >= '1' && t[0] <= '5':
		n := int(t[0]-'0') * 100
		return n, n + 99, nil
	default:
		if n, err := strconv.Atoi(t); err == nil && len(t) == 3 && n >= 100 && n <= 599 {
			return n, n, nil
		}
	}
	return 0, 0, fmt.Errorf("status %q is not a class (1xx-5xx) or a code (100-599)", s)
}

// Matches reports whether an answered request is one of the side effect.
func (m *SideEffectMatcher) Matches(method, url string, status int) bool {
	if status < m.lo || status > m.hi {
		return false
	}
	if m.method != "*" && !strings.EqualFold(method, m.method) {
		return false
	}
	u := lowerSchemeHost(url)
	return globMatch(m.url, u, false) || globMatch(m.url, withoutDefaultPort(u), false)
}

// Min is how many matching requests there must be at least.
func (m *SideEffectMatcher) Min() int { return m.min }

// Max is how many there may be at most; ok false when there is no limit.
func (m *SideEffectMatcher) Max() (n int, ok bool) { return m.max, m.max >= 0 }

// String names the side effect: "POST https://x/y* (2xx)".
func (m *SideEffectMatcher) String() string {
	st := m.Spec.Status
	if st == "" {
		st = "2xx"
	}
	return m.method + " " + m.Spec.URL + " (" + st + ")"
}

// lowerSchemeHost lower-cases "scheme://host" of a URL or URL glob, leaving
// the path as it is.
func lowerSchemeHost(u string) string {
	i := strings.Index(u, "://")
	if i < 0 {
		return u
	}
	end := len(u)
	if j := strings.IndexAny(u[i+3:], "/?#"); j >= 0 {
		end = i + 3 + j
	}
	return strings.ToLower(u[:end]) + u[end:]
}

// withoutDefaultPort drops :443 from an https URL and :80 from an http one.
func withoutDefaultPort(u string) string {
	for _, d := range [...]struct{ scheme, port string }{{"https://", ":443"}, {"http://", ":80"}} {
		rest, ok := strings.CutPrefix(u, d.scheme)
		if !ok {
			continue
		}
		end := len(rest)
		if j := strings.IndexAny(rest, "/?#"); j >= 0 {
			end = j
		}
		if host, ok := strings.CutSuffix(rest[:end], d.port); ok {
			return d.scheme + host + rest[end:]
		}
	}
	return u
}

// isToken reports an HTTP method token (RFC 9110: letters, digits and a
// few symbols; here letters, digits, - and _).
func isToken(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}
