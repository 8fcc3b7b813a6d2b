// Frozen oracle: a verbatim copy of the redact implementation (redact.go,
// scan.go, json.go, body.go and the JSON path parser of config.go) as it
// was at commit a8ad898, before the performance work, kept on purpose in
// this _test.go file so equivalence_test.go can assert that the current
// code writes byte-identical output. Only the package clause and the names
// Redactor -> oracleRedactor, New -> newOracle, Config -> redact.Config
// were changed. Do not edit it to follow new behaviour: when the output
// is meant to change, change the oracle in the same commit and say why.
package redact_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/cassetteproxy/cassetteproxy/redact"
	"github.com/cassetteproxy/cassetteproxy/store"
)

// ---- redact.go ----

// Default name rules. Names compare after normName: lower case,
// without '-' and '_'.
var (
	defaultHeaders = []string{
		"Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie",
		"X-Api-Key", "Api-Key", "X-Auth-Token",
	}
	// A header whose normalized name contains one of these is secret,
	// unless it is a rate-limit header (x-ratelimit-remaining-tokens and
	// kin carry counts, not credentials).
	headerSubstrings = []string{"token", "secret", "password", "apikey"}

	defaultFields = []string{
		"api_key", "apikey", "key", "token", "access_token", "refresh_token",
		"id_token", "client_secret", "password", "secret", "sig", "signature",
		// Beyond the common list: signed-URL and AWS credential names.
		"x-amz-signature", "x-amz-security-token", "x-goog-signature",
		"aws_secret_access_key", "aws_session_token",
	}
)

// Redactor scrubs interactions, requests and text. It is safe for
// concurrent use; New compiles everything once.
type oracleRedactor struct {
	secret  []byte
	hpool   sync.Pool
	fields  map[string]bool // normalized secret field names (query, form, JSON), allow-list applied
	fbloom  [256]uint64     // first byte of a field name -> bit (length mod 64): skips most map lookups
	headers map[string]bool // normalized secret header names, allow-list applied
	allow   map[string]bool
	paths   [][]pseg
	root    []pstate
	pats    []userPat
}

type userPat struct {
	re       *regexp.Regexp
	anchored *regexp.Regexp // ^(?:re), tried where prefix occurs
	prefix   []byte         // literal prefix of every match, or nil
}

// New compiles the defaults and cfg's rules. A bad pattern or JSON path is
// an error that names it.
func newOracle(cfg redact.Config) (*oracleRedactor, error) {
	r := &oracleRedactor{
		fields:  map[string]bool{},
		headers: map[string]bool{},
		allow:   map[string]bool{},
	}
	for _, a := range cfg.Allow {
		r.allow[normName(a)] = true
	}
	addTo := func(m map[string]bool, names []string) {
		for _, n := range names {
			if k := normName(n); k != "" && !r.allow[k] {
				m[k] = true
			}
		}
	}
	addTo(r.fields, defaultFields)
	addTo(r.fields, defaultHeaders) // {"Authorization": "…"} in a JSON body is a credential too
	addTo(r.fields, cfg.Fields)
	for f := range r.fields {
		r.fbloom[f[0]] |= 1 << (len(f) & 63)
	}
	addTo(r.headers, defaultHeaders)
	addTo(r.headers, cfg.Headers)
	for _, p := range cfg.JSONPaths {
		segs, err := parseJSONPath(p)
		if err != nil {
			return nil, fmt.Errorf("redact: json_paths: %v", err)
		}
		r.root = append(r.root, pstate{p: int32(len(r.paths))})
		r.paths = append(r.paths, segs)
	}
	for _, p := range cfg.Patterns {
		if p == "" {
			return nil, fmt.Errorf("redact: patterns: empty pattern")
		}
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("redact: patterns: bad regular expression %q: %v", p, err)
		}
		up := userPat{re: re}
		if pre, _ := re.LiteralPrefix(); pre != "" {
			up.prefix = []byte(pre)
			up.anchored = regexp.MustCompile(`^(?:` + p + `)`)
		}
		r.pats = append(r.pats, up)
	}
	if len(cfg.Secret) > 0 {
		r.secret = append([]byte(nil), cfg.Secret...)
		r.hpool.New = func() any { return hmac.New(sha256.New, r.secret) }
	}
	return r, nil
}

// appendFingerprint appends 8 hex digits of HMAC-SHA256(secret, val).
func (r *oracleRedactor) appendFingerprint(dst, val []byte) []byte {
	h := r.hpool.Get().(hash.Hash)
	h.Reset()
	h.Write(val)
	var sum [sha256.Size]byte
	b := h.Sum(sum[:0])
	r.hpool.Put(h)
	return hex.AppendEncode(dst, b[:4])
}

// normName lower-cases ASCII and drops '-' and '_'.
func normName(s string) string {
	return string(appendNormName(make([]byte, 0, len(s)), s))
}

// appendNormName appends name normalized as normName does, without
// allocating when dst has room (the hot path: every JSON key).
func appendNormName[T string | []byte](dst []byte, name T) []byte {
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '-' || c == '_':
		case c >= 'A' && c <= 'Z':
			dst = append(dst, c+'a'-'A')
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// secretField reports whether a query, form or JSON field name is secret.
// "user[password]" is judged by its last bracket, "password".
func (r *oracleRedactor) secretField(name []byte) bool {
	if n := len(name); n > 2 && name[n-1] == ']' {
		if k := lastIndexByte(name, '['); k >= 0 {
			name = name[k+1 : n-1]
		}
	}
	var buf [64]byte
	b := appendNormName(buf[:0], name)
	if len(b) == 0 {
		return false
	}
	if r.fbloom[b[0]]&(1<<(len(b)&63)) != 0 && r.fields[string(b)] {
		return true
	}
	return r.credentialLike(b)
}

// credentialLike catches field names built like credential header names
// (a tool that echoes request headers puts X-Session-Token in its JSON):
// names containing secret, password or apikey, or ending in token. Counts
// are not credentials: max_tokens, x-ratelimit-remaining-tokens and
// token_count stay.
func (r *oracleRedactor) credentialLike(norm []byte) bool {
	if len(norm) < 5 || r.allow[string(norm)] || bytes.Contains(norm, []byte("ratelimit")) {
		return false
	}
	return bytes.HasSuffix(norm, []byte("token")) || bytes.Contains(norm, []byte("secret")) ||
		bytes.Contains(norm, []byte("password")) || bytes.Contains(norm, []byte("apikey"))
}

func lastIndexByte(b []byte, c byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == c {
			return i
		}
	}
	return -1
}

// secretHeader reports whether a header's whole value is secret.
func (r *oracleRedactor) secretHeader(name string) bool {
	n := normName(name)
	if r.allow[n] {
		return false
	}
	if r.headers[n] {
		return true
	}
	if strings.Contains(n, "ratelimit") {
		return false
	}
	for _, sub := range headerSubstrings {
		if strings.Contains(n, sub) {
			return true
		}
	}
	return false
}

// Interaction scrubs an interaction in place before it is stored: the
// request (as Request does, but with fingerprints), the response headers
// and body, and the stream events, which stay consistent with the body.
// Key is scrubbed like free text.
func (r *oracleRedactor) Interaction(in *store.Interaction) {
	if in == nil {
		return
	}
	r.request(&in.Request, true)
	in.Key = r.text(in.Key, true)
	r.Response(&in.Response)
}

// Response scrubs a response in place, with fingerprints: headers, body and
// stream events (kept consistent with the body). The proxy calls it on its
// own when the request was already scrubbed by Request.
func (r *oracleRedactor) Response(resp *store.Response) {
	if resp == nil {
		return
	}
	r.scrubHeader(resp.Header, true)
	ct := headerValue(resp.Header, "Content-Type")
	if len(resp.Events) == 0 {
		resp.Body = r.body(resp.Body, ct, true)
		return
	}
	r.events(resp, ct)
}

// Request scrubs a request in place the same way as Interaction, but
// without fingerprints ([REDACTED:kind] only), so its match key does not
// depend on which secret was used.
func (r *oracleRedactor) Request(req *store.Request) {
	if req == nil {
		return
	}
	r.request(req, false)
}

// String scrubs free text (URLs, log fields). An absolute URL or a
// /path?query is scrubbed part by part (userinfo, path, query, fragment);
// other text by the patterns and name=value / "name": value rules.
// Markers carry fingerprints when the Redactor has a secret, as stored
// interactions do.
func (r *oracleRedactor) String(s string) string {
	return r.text(s, true)
}

func (r *oracleRedactor) text(s string, fp bool) string {
	if s == "" {
		return s
	}
	w := r.newWriter([]byte(s), fp)
	if looksLikeURL(s) {
		r.scrubURL(w)
	} else {
		r.scanText(w, 0, len(s))
	}
	if !w.dirty {
		return s
	}
	return string(w.bytes())
}

func (r *oracleRedactor) request(req *store.Request, fp bool) {
	if req.URL != "" {
		w := r.newWriter([]byte(req.URL), fp)
		r.scrubURL(w)
		if w.dirty {
			req.URL = string(w.bytes())
		}
	}
	r.scrubHeader(req.Header, fp)
	req.Body = r.body(req.Body, headerValue(req.Header, "Content-Type"), fp)
}

func headerValue(h http.Header, name string) string {
	if v := h[name]; len(v) > 0 {
		return v[0]
	}
	for k, v := range h {
		if len(v) > 0 && strings.EqualFold(k, name) {
			return v[0]
		}
	}
	return ""
}

// Auth schemes whose word is kept in front of the redacted credentials.
var authSchemes = map[string]string{
	"bearer": "bearer", "basic": "header", "digest": "header", "token": "header",
	"negotiate": "header", "ntlm": "header", "dpop": "header", "hoba": "header",
	"mutual": "header", "apikey": "header", "aws4-hmac-sha256": "header",
}

func (r *oracleRedactor) scrubHeader(h http.Header, fp bool) {
	for name, vals := range h {
		secret := r.secretHeader(name)
		var out []string // copy on write: the value slice may be shared
		for i, v := range vals {
			nv := v
			switch {
			case v == "":
			case secret:
				nv = r.secretHeaderValue(v, fp)
			default:
				w := r.newWriter([]byte(v), fp)
				if looksLikeURL(v) { // Location, Referer, Link
					r.scrubURL(w)
				} else {
					r.scanText(w, 0, len(v))
				}
				if w.dirty {
					nv = string(w.bytes())
				}
			}
			if nv != v && out == nil {
				out = append([]string(nil), vals...)
			}
			if out != nil {
				out[i] = nv
			}
		}
		if out != nil {
			h[name] = out
		}
	}
}

// secretHeaderValue redacts a whole header value, keeping an auth scheme
// word: "Bearer [REDACTED:bearer]", "Basic [REDACTED:header]".
func (r *oracleRedactor) secretHeaderValue(v string, fp bool) string {
	kind, cred := "header", v
	if sp := strings.IndexAny(v, " \t"); sp > 0 {
		if k, ok := authSchemes[strings.ToLower(v[:sp])]; ok {
			if c := strings.TrimLeft(v[sp:], " \t"); c != "" {
				kind, cred = k, c
			}
		}
	}
	if isMarker([]byte(cred)) {
		return v
	}
	return v[:len(v)-len(cred)] + string(r.appendMarker(nil, kind, []byte(cred), false, fp))
}

func looksLikeURL(s string) bool {
	if strings.ContainsAny(s, " \t\r\n") {
		return false
	}
	if strings.HasPrefix(s, "/") && !strings.HasPrefix(s, "//") {
		return true
	}
	k := strings.Index(s, "://")
	return k > 0 && k < 32 && isScheme(s[:k])
}

func isScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return s != ""
}

// scrubURL scrubs an absolute URL (or origin-form /path?query) in w.src:
// the password of user:password@ (percent-encoded marker, so the URL still
// parses), patterns in the user name and the path, query parameters by
// name and pattern, and the fragment (OAuth puts access_token there).
// The host is left alone.
func (r *oracleRedactor) scrubURL(w *writer) {
	s := w.src
	n := len(s)
	start := 0
	if k := indexStr(s, "://"); k > 0 && k < 32 && isScheme(string(s[:k])) {
		a := k + 3
		ae := a
		for ae < n && s[ae] != '/' && s[ae] != '?' && s[ae] != '#' {
			ae++
		}
		if at := lastIndexByte(s[a:ae], '@'); at >= 0 {
			at += a
			// Markers in the user name are percent-encoded too: a bare
			// "[REDACTED:kind]" would add a ':' to the userinfo.
			w.encAll = true
			if c := indexByteIn(s, a, at, ':'); c >= 0 {
				r.scanText(w, a, c)
				if c+1 < at && !isMarker(s[c+1:at]) {
					w.replace(span{start: c + 1, end: at, kind: "url_password"})
				}
			} else {
				r.scanText(w, a, at)
			}
			w.encAll = false
		}
		start = ae
	}
	pe := start
	for pe < n && s[pe] != '?' && s[pe] != '#' {
		pe++
	}
	r.scanText(w, start, pe)
	if pe < n && s[pe] == '?' {
		qe := pe + 1
		for qe < n && s[qe] != '#' {
			qe++
		}
		r.scrubPairs(w, pe+1, qe, "query")
		pe = qe
	}
	if pe < n && s[pe] == '#' {
		if indexByteIn(s, pe+1, n, '=') >= 0 {
			r.scrubPairs(w, pe+1, n, "query")
		} else {
			r.scanText(w, pe+1, n)
		}
	}
}

func indexStr(b []byte, sub string) int {
	return strings.Index(string(b), sub) // no copy: the compiler converts in place
}

func indexByteIn(s []byte, from, to int, c byte) int {
	for i := from; i < to; i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// scrubPairs scrubs name=value&… in src[lo:hi] (a query or a form body):
// secret names get their value replaced; other values are scanned for
// patterns, percent-decoded when they are encoded.
func (r *oracleRedactor) scrubPairs(w *writer, lo, hi int, kind string) {
	s := w.src
	for p := lo; p <= hi; {
		e := indexByteIn(s, p, hi, '&')
		if e < 0 {
			e = hi
		}
		if eq := indexByteIn(s, p, e, '='); eq < 0 {
			r.scanEncoded(w, p, e)
		} else {
			if r.secretField(decodeComponent(s[p:eq])) {
				if v := s[eq+1 : e]; len(v) > 0 && !isMarker(v) && !isMarker(decodeComponent(v)) {
					w.replace(span{start: eq + 1, end: e, kind: kind})
				}
			} else {
				r.scanEncoded(w, eq+1, e)
			}
		}
		p = e + 1
	}
}

func decodeComponent(b []byte) []byte {
	for _, c := range b {
		if c == '%' || c == '+' {
			if s, err := url.QueryUnescape(string(b)); err == nil {
				return []byte(s)
			}
			return b
		}
	}
	return b
}

// markerEscaper undoes QueryEscape's escaping of the marker brackets.
var markerEscaper = strings.NewReplacer("%5B", "[", "%5D", "]", "%3A", ":")

// scanEncoded scans a percent-encoded value: as it is, or decoded when it
// holds escapes; a decoded value with a secret is written back escaped.
func (r *oracleRedactor) scanEncoded(w *writer, lo, hi int) {
	raw := w.src[lo:hi]
	dec := decodeComponent(raw)
	if len(dec) == len(raw) && string(dec) == string(raw) {
		r.scanText(w, lo, hi)
		return
	}
	sub := r.newWriter(dec, w.fp)
	r.scanText(sub, 0, len(dec))
	if !sub.dirty {
		return
	}
	lit := markerEscaper.Replace(url.QueryEscape(string(sub.bytes())))
	w.replace(span{start: lo, end: hi, lit: []byte(lit)})
}

// events scrubs a streamed body: the concatenated events are scrubbed as
// one body (a secret split across two writes is still found), then cut
// back at the original write boundaries; a replacement that straddles a
// boundary goes whole into the earlier event. Body stays the concatenation.
func (r *oracleRedactor) events(resp *store.Response, ct string) {
	total := 0
	for _, ev := range resp.Events {
		total += len(ev.Data)
	}
	joined := make([]byte, 0, total)
	for _, ev := range resp.Events {
		joined = append(joined, ev.Data...)
	}
	sameBody := string(joined) == string(resp.Body)
	if !sameBody && len(resp.Body) > 0 {
		resp.Body = r.body(resp.Body, ct, true)
	}
	w := r.newWriter(joined, true)
	w.track = true
	r.scrubBody(w, ct)
	if !w.dirty {
		return
	}
	nb := w.bytes()
	ei, delta, prev, off := 0, 0, 0, 0
	for i := range resp.Events {
		off += len(resp.Events[i].Data)
		// new position of the boundary at off
		pos := -1
		for ei < len(w.edits) && w.edits[ei].start < off {
			e := w.edits[ei]
			if e.end > off {
				pos = e.start + delta + e.newLen
				break
			}
			delta += e.newLen - (e.end - e.start)
			ei++
		}
		if pos < 0 {
			pos = off + delta
		}
		if pos < prev {
			pos = prev
		}
		resp.Events[i].Data = append([]byte(nil), nb[prev:pos]...)
		prev = pos
	}
	if sameBody {
		resp.Body = nb
	}
}

// EnvValue scrubs one environment variable's value for a run record: the
// whole value when the name reads like a credential (OPENAI_API_KEY,
// GITHUB_TOKEN, DB_PASSWORD: the header rules), else the value patterns.
func (r *oracleRedactor) EnvValue(name, value string) string {
	if value == "" {
		return value
	}
	if r.secretHeader(name) || r.secretField([]byte(name)) {
		return string(r.appendMarker(nil, "env", []byte(value), false, r.secret != nil))
	}
	return r.String(value)
}

// ---- scan.go ----

// span is one stretch of w.src to replace.
type span struct {
	start, end int
	kind       string
	enc        bool   // write the marker percent-encoded (URL userinfo)
	quote      int    // >0: wrap the marker as a JSON string behind quote-1 backslashes
	lit        []byte // literal replacement instead of a marker
}

type edit struct{ start, end, newLen int }

// writer rebuilds src with replacements. Until the first replacement it
// copies nothing: a clean body costs one scan and no allocation.
type writer struct {
	r      *oracleRedactor
	fp     bool // append fingerprints
	src    []byte
	out    []byte
	last   int // src[:last] is settled
	dirty  bool
	track  bool // record edits (to re-split stream events)
	encAll bool // percent-encode every marker (inside URL userinfo)
	edits  []edit
	spans  []span
	frames []jframe
}

func (r *oracleRedactor) newWriter(src []byte, fp bool) *writer {
	return &writer{r: r, fp: fp && len(r.secret) > 0, src: src}
}

// replace writes sp. Replacements must come in increasing order; one that
// overlaps what is already written is dropped.
func (w *writer) replace(sp span) {
	if sp.start < w.last || sp.end < sp.start || sp.end > len(w.src) {
		return
	}
	if !w.dirty {
		w.out = make([]byte, 0, len(w.src)+64)
		w.dirty = true
	}
	w.out = append(w.out, w.src[w.last:sp.start]...)
	n0 := len(w.out)
	sp.enc = sp.enc || w.encAll
	if sp.lit != nil {
		w.out = append(w.out, sp.lit...)
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

// bytes returns the result: src itself when nothing was replaced.
func (w *writer) bytes() []byte {
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
func (r *oracleRedactor) appendMarker(dst []byte, kind string, val []byte, enc, fp bool) []byte {
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
	trig     [256]bool // bytes where a built-in rule may fire
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
		trig[b] = true
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
func (r *oracleRedactor) scanText(w *writer, lo, hi int) {
	s := w.src
	spans := w.spans[:0]
	last := lo
	pemNoEnd := hi // no "-----END " at or after this offset
	for i := lo; i < hi; i++ {
		if !trig[s[i]] {
			continue
		}
		sp, ok := r.matchAt(s, lo, hi, i, &pemNoEnd)
		if !ok || sp.start < last || sp.end <= sp.start {
			continue
		}
		spans = append(spans, sp)
		last = sp.end
		if sp.end-1 > i {
			i = sp.end - 1
		}
	}
	if len(r.pats) > 0 {
		spans = r.userSpans(s, lo, hi, spans)
	}
	for _, sp := range spans {
		w.replace(sp)
	}
	w.spans = spans[:0]
}

func (r *oracleRedactor) matchAt(s []byte, lo, hi, i int, pemNoEnd *int) (span, bool) {
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
		return r.matchQuotedField(s, lo, hi, i)
	case '@':
		return matchUserinfo(s, lo, hi, i)
	case '=':
		return r.matchQueryField(s, lo, hi, i)
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

// oddBackslashes reports whether the run of backslashes ending at p (s[p]
// is one) is odd, that is whether s[p] escapes the byte after it.
func oddBackslashes(s []byte, lo, p int) bool {
	n := 0
	for p >= lo && s[p] == '\\' {
		n++
		p--
	}
	return n%2 == 1
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
func (r *oracleRedactor) matchQueryField(s []byte, lo, hi, i int) (span, bool) {
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
	} else if p > lo && bytes.IndexByte([]byte("?&#;, \t\r\n\"'`({|"), s[p-1]) < 0 {
		return span{}, false
	}
	if p >= i || !r.secretField(s[p:i]) {
		return span{}, false
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
func (r *oracleRedactor) matchQuotedField(s []byte, lo, hi, i int) (span, bool) {
	if i > lo && nameChar[s[i-1]] {
		return r.matchColonHeader(s, lo, hi, i)
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
	for p > lo && ne-p < 64 && nameChar[s[p-1]] {
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
	if !r.secretField(s[p:ne]) {
		return span{}, false
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
func (r *oracleRedactor) matchColonHeader(s []byte, lo, hi, i int) (span, bool) {
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
			if k, ok := authSchemes[strings.ToLower(string(s[v:v+sp]))]; ok {
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
	if !r.secretField(name) {
		return span{}, false
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
func (r *oracleRedactor) textHeader(name []byte) bool {
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
func (r *oracleRedactor) userSpans(s []byte, lo, hi int, spans []span) []span {
	n0 := len(spans)
	seg := s[lo:hi]
	add := func(m []int, base int) {
		st, en := m[0], m[1]
		if len(m) >= 4 && m[2] >= 0 {
			st, en = m[2], m[3]
		}
		if en > st {
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
	if len(spans) == n0 {
		return spans
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

// ---- json.go ----

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

type jframe struct {
	arr    bool
	root   bool   // the pseudo-frame around top-level values
	secret bool   // object: the current key is secret; array: its scalars are
	key    []byte // object: the current key (raw)
	idx    int    // array: the current index
	states []pstate
}

var jsonDelim = func() (t [256]bool) {
	for _, c := range []byte(`,{}[]"`) {
		t[c] = true
	}
	return
}()

func isWS(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (r *oracleRedactor) scanJSON(w *writer, lo, hi int) {
	s := w.src
	paths := len(r.paths) > 0
	st := append(w.frames[:0], jframe{root: true, states: r.root})
	for i := lo; i < hi; {
		c := s[i]
		switch {
		case isWS(c) || c == ':':
			i++
		case c == '{' || c == '[':
			top := &st[len(st)-1]
			var states []pstate
			if paths {
				var final bool
				states, final = r.child(top, true)
				if final {
					end := skipComposite(s, i, hi)
					w.replace(span{start: i, end: end, kind: "field", quote: 1})
					i = end
					continue
				}
			}
			st = append(st, jframe{arr: c == '[', secret: c == '[' && top.secret, states: states})
			i++
		case c == '}' || c == ']':
			if len(st) > 1 {
				st = st[:len(st)-1]
			} else {
				st[0].secret, st[0].key = false, nil
			}
			i++
		case c == ',':
			if top := &st[len(st)-1]; top.arr {
				top.idx++
			} else {
				top.secret, top.key = false, nil
			}
			i++
		case c == '"':
			e, closed := stringEnd(s, i+1, hi)
			top := &st[len(st)-1]
			isKey := false
			if closed && !top.arr {
				k := e + 1
				for k < hi && isWS(s[k]) {
					k++
				}
				isKey = k < hi && s[k] == ':'
			}
			switch {
			case isKey:
				r.scanText(w, i+1, e)
				top.key = s[i+1 : e]
				top.secret = r.secretField(unescapeKey(top.key))
			case e > i+1 && (top.secret || paths && r.finalHere(top)) && !isMarker(s[i+1:e]):
				w.replace(span{start: i + 1, end: e, kind: "field"})
			default:
				r.scanText(w, i+1, e)
			}
			i = e + 1
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
				if top.secret || paths && r.finalHere(top) {
					w.replace(span{start: i, end: t, kind: "field", quote: 1})
				}
			} else if !isLiteral(tok) {
				r.scanText(w, i, t)
			}
			i = j
		}
	}
	w.frames = st[:0]
}

// stringEnd returns the index of the quote closing a string whose content
// starts at from, or hi when it is not closed.
func stringEnd(s []byte, from, hi int) (int, bool) {
	for i := from; i < hi; {
		k := bytes.IndexByte(s[i:hi], '"')
		if k < 0 {
			break
		}
		q := i + k
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
func (r *oracleRedactor) child(f *jframe, want bool) ([]pstate, bool) {
	if f.root {
		return r.root, false
	}
	if len(f.states) == 0 || !f.arr && f.key == nil {
		return nil, false
	}
	return r.step(f.states, unescapeKey(f.key), f.idx, f.arr, want)
}

func (r *oracleRedactor) finalHere(f *jframe) bool {
	_, final := r.child(f, false)
	return final && !f.root
}

// step advances path states over one child (a key, or an index).
func (r *oracleRedactor) step(states []pstate, key []byte, idx int, isIdx, want bool) (next []pstate, final bool) {
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

// ---- body.go ----

// body scrubs a decoded body and returns it (the same slice when clean).
func (r *oracleRedactor) body(b []byte, ct string, fp bool) []byte {
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
func (r *oracleRedactor) scrubBody(w *writer, ct string) {
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
	if !utf8.Valid(b) {
		return
	}
	switch {
	case mt == "text/event-stream":
		r.scrubSSE(w)
	case mt == "application/x-www-form-urlencoded":
		r.scrubPairs(w, 0, len(b), "field")
	case strings.Contains(mt, "json"):
		r.scanJSON(w, 0, len(b)) // lenient: truncated JSON and NDJSON too
	case startsJSON(b, 0, len(b)) && json.Valid(b):
		r.scanJSON(w, 0, len(b))
	case mt == "" && looksLikeForm(b):
		r.scrubPairs(w, 0, len(b), "field")
	default:
		r.scanText(w, 0, len(b))
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
func (r *oracleRedactor) scrubSSE(w *writer) {
	s := w.src
	for p := 0; p < len(s); {
		e := p
		for e < len(s) && s[e] != '\n' && s[e] != '\r' {
			e++
		}
		if hasPrefixAt(s, p, e, "data:") {
			d := p + 5
			if startsJSON(s, d, e) && json.Valid(s[d:e]) {
				r.scanJSON(w, d, e)
			} else {
				r.scanText(w, d, e)
			}
		} else {
			r.scanText(w, p, e)
		}
		p = e + 1
	}
}

// scrubMultipart scrubs a multipart body part by part: a part named by a
// secret field loses its content; UTF-8 parts are scanned by their own
// Content-Type; binary parts are left alone.
func (r *oracleRedactor) scrubMultipart(w *writer, ct string) {
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
			if sub.dirty {
				w.replace(span{start: bs, end: be, lit: sub.bytes()})
			}
		}
		if next < 0 {
			return
		}
		p = pe
	}
}

// ---- paths.go ----

// JSON paths: $ then .name, ['name'], ["name"], [N], .*, [*], ..name, ..*

type segKind uint8

const (
	segName segKind = iota
	segAny
	segIndex
	segDescName
	segDescAny
)

type pseg struct {
	kind segKind
	name string
	idx  int
}

func parseJSONPath(p string) ([]pseg, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("bad JSON path %q: %s", p, fmt.Sprintf(format, args...))
	}
	if !strings.HasPrefix(p, "$") {
		return nil, bad("must start with $")
	}
	var segs []pseg
	i := 1
	for i < len(p) {
		switch {
		case strings.HasPrefix(p[i:], ".."):
			i += 2
			if i < len(p) && p[i] == '*' {
				segs = append(segs, pseg{kind: segDescAny})
				i++
				continue
			}
			n := dotName(p[i:])
			if n == "" {
				return nil, bad("a name must follow .. at offset %d", i)
			}
			segs = append(segs, pseg{kind: segDescName, name: n})
			i += len(n)
		case p[i] == '.':
			i++
			if i < len(p) && p[i] == '*' {
				segs = append(segs, pseg{kind: segAny})
				i++
				continue
			}
			n := dotName(p[i:])
			if n == "" {
				return nil, bad("a name must follow . at offset %d", i)
			}
			segs = append(segs, pseg{kind: segName, name: n})
			i += len(n)
		case p[i] == '[':
			end := strings.IndexByte(p[i:], ']')
			if end < 0 {
				return nil, bad("unclosed [ at offset %d", i)
			}
			in := p[i+1 : i+end]
			switch {
			case in == "*":
				segs = append(segs, pseg{kind: segAny})
			case len(in) >= 2 && (in[0] == '\'' || in[0] == '"') && in[len(in)-1] == in[0]:
				segs = append(segs, pseg{kind: segName, name: in[1 : len(in)-1]})
			default:
				n, err := strconv.Atoi(in)
				if err != nil || n < 0 {
					return nil, bad("[%s] is neither an index, * nor a quoted name", in)
				}
				segs = append(segs, pseg{kind: segIndex, idx: n})
			}
			i += end + 1
		default:
			return nil, bad("unexpected %q at offset %d", p[i], i)
		}
	}
	if len(segs) == 0 {
		return nil, bad("names no field (use $.name)")
	}
	return segs, nil
}

func dotName(s string) string {
	n := 0
	for n < len(s) && s[n] != '.' && s[n] != '[' {
		n++
	}
	return s[:n]
}
