package redact

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/cassetteproxy/cassetteproxy/store"
)

// Default name rules. Names compare after normName: lower case,
// without '-' and '_'.
var (
	defaultHeaders = []string{
		"Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie",
		"X-Api-Key", "Api-Key", "X-Auth-Token",
		"Ocp-Apim-Subscription-Key", "X-Functions-Key",
	}
	defaultFields = []string{
		"api_key", "apikey", "key", "token", "access_token", "refresh_token",
		"id_token", "client_secret", "password", "secret", "sig", "signature",
		// Beyond the common list: signed-URL and AWS credential names.
		"x-amz-signature", "x-amz-security-token", "x-goog-signature",
		"aws_secret_access_key", "aws_session_token",
		// Short password names of login forms, key material by name (a
		// service account's private_key and private_key_id), Azure
		// connection strings (AccountKey=…;SharedAccessKey=…).
		"passwd", "pwd", "passphrase", "private_key", "private_key_id",
		"accountkey", "sharedaccesskey", "subscription_key",
	}
)

// Redactor scrubs interactions, requests and text. It is safe for
// concurrent use; New compiles everything once.
type Redactor struct {
	secret  []byte
	hpool   sync.Pool
	fields  map[string]bool // normalized secret field names (query, form, JSON), allow-list applied
	fbloom  [256]uint64     // first byte of a field name -> bit (length mod 64): skips most map lookups
	fneed   *[256]bool      // a secret field name holds one of these bytes (see mayBeSecretName)
	headers map[string]bool // normalized secret header names, allow-list applied
	known   map[string]bool // secretHeader of common header names as they come, worked out in New
	allow   map[string]bool
	paths   [][]pseg
	root    []pstate
	pats    []userPat
	sc      *scanner // gitleaks' rules and Config.Values (rules.go)
	off     bool     // redaction switched off (the noredact build, for tests only)
}

type userPat struct {
	re       *regexp.Regexp
	anchored *regexp.Regexp // ^(?:re), tried where prefix occurs
	prefix   []byte         // literal prefix of every match, or nil
}

// New compiles the defaults and cfg's rules. A bad pattern or JSON path is
// an error that names it.
func New(cfg Config) (*Redactor, error) {
	r := &Redactor{
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
	r.fneed = new([256]bool)
	for f := range r.fields {
		r.fbloom[f[0]] |= 1 << (len(f) & 63)
		r.needByte(f)
	}
	// credentialLike: token and apikey hold a k, secret a c, password a w.
	for _, sub := range []string{"token", "secret", "password", "apikey"} {
		r.needByte(sub)
	}
	r.fneed['\\'] = true // an escaped key may spell anything
	addTo(r.headers, defaultHeaders)
	addTo(r.headers, cfg.Headers)
	r.known = map[string]bool{}
	for _, n := range commonHeaders {
		for _, v := range []string{n, http.CanonicalHeaderKey(n), strings.ToLower(n)} {
			r.known[v] = r.secretHeader(v)
		}
	}
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
	rs, err := loadRules()
	if err != nil {
		return nil, fmt.Errorf("redact: built-in rules: %v", err)
	}
	r.sc = newScanner(rs, cfg.Values)
	r.off = disabled
	if len(cfg.Secret) > 0 {
		r.secret = append([]byte(nil), cfg.Secret...)
		r.hpool.New = func() any { return &fingerprinter{h: hmac.New(sha256.New, r.secret)} }
	}
	return r, nil
}

// fingerprinter is a pooled HMAC with its own sum buffer (a local one
// escapes through the hash.Hash interface: one allocation per marker).
type fingerprinter struct {
	h   hash.Hash
	sum [sha256.Size]byte
}

// appendFingerprint appends 8 hex digits of HMAC-SHA256(secret, val).
func (r *Redactor) appendFingerprint(dst, val []byte) []byte {
	f := r.hpool.Get().(*fingerprinter)
	f.h.Reset()
	f.h.Write(val)
	b := f.h.Sum(f.sum[:0])
	dst = hex.AppendEncode(dst, b[:4])
	r.hpool.Put(f)
	return dst
}

// normName lower-cases ASCII and drops '-' and '_'.
func normName(s string) string {
	return string(appendNormName(make([]byte, 0, len(s)), s))
}

// appendNormName appends name normalized as normName does, without
// allocating when dst has room (the hot path: every JSON key).
func appendNormName[T string | []byte](dst []byte, name T) []byte {
	if n := len(dst); cap(dst)-n >= len(name) { // branch-free: write every byte, keep those that count
		d := dst[:n+len(name)]
		for i := 0; i < len(name); i++ {
			c := name[i]
			d[n] = normLower[c]
			n += int(normKeep[c])
		}
		return d[:n]
	}
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

// normLower lower-cases ASCII letters; normKeep is 0 for the bytes a
// normalized name drops ('-' and '_'), else 1.
var normLower, normKeep = func() (l, k [256]byte) {
	for c := 0; c < 256; c++ {
		l[c], k[c] = byte(c), 1
		if c >= 'A' && c <= 'Z' {
			l[c] = byte(c) + 'a' - 'A'
		}
	}
	k['-'], k['_'] = 0, 0
	return
}()

// needByte marks, for the normalized name f, one of its bytes (the rarest
// in English) in both cases: a name that normalizes to f holds it.
func (r *Redactor) needByte(f string) {
	best := rarestByte(f)
	r.fneed[best] = true
	if best >= 'a' && best <= 'z' {
		r.fneed[best-'a'+'A'] = true
	}
}

// mayBeSecretName is false when the raw key cannot be a secret field name
// (secretField of its unescaped form): it holds none of the bytes needByte
// marked, one per field name and per credential word, nor a backslash.
// Most keys ("role", "type", "name", "query") are settled by it.
func (r *Redactor) mayBeSecretName(raw []byte) bool {
	need := r.fneed
	for _, c := range raw {
		if need[c] {
			return true
		}
	}
	return false
}

// secretField reports whether a query, form or JSON field name is secret.
// "user[password]" is judged by its last bracket, "password".
func (r *Redactor) secretField(name []byte) bool {
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
	return r.credentialLike(b) && !protocolNames[string(b)]
}

// credentialLike catches field names built like credential header names
// (a tool that echoes request headers puts X-Session-Token in its JSON):
// names containing secret, password or apikey, or ending in token. Counts
// are not credentials: max_tokens, x-ratelimit-remaining-tokens and
// token_count stay.
func (r *Redactor) credentialLike(norm []byte) bool {
	if len(norm) < 5 {
		return false
	}
	f := nameSubs(norm)
	if f&subRatelimit != 0 || f&(subSecret|subPassword|subAPIKey|subPasswd) == 0 && !bytes.HasSuffix(norm, []byte("token")) &&
		!credentialKeySuffix(norm) {
		return false
	}
	return !r.allow[string(norm)]
}

// credentialKeySuffix: names ending like a key that is itself a secret
// (accesskey, privatekey, subscriptionkey), not keys that name things
// (idempotencykey, publickey, primarykey).
func credentialKeySuffix(norm []byte) bool {
	if n := len(norm); n < 6 || norm[n-1] != 'y' || norm[n-2] != 'e' || norm[n-3] != 'k' {
		return false
	}
	for _, suf := range []string{"secretkey", "privatekey", "accountkey", "subscriptionkey", "accesskey", "masterkey", "signingkey", "encryptionkey", "sessionkey", "authkey", "functionskey"} {
		if bytes.HasSuffix(norm, []byte(suf)) {
			return true
		}
	}
	return false
}

// Substrings of normalized names that make a header or field a credential.
const (
	subToken = 1 << iota
	subSecret
	subPassword
	subAPIKey
	subRatelimit
	subPasswd // passwd, passphrase
)

// nameSubs reports which of token, secret, password, apikey and ratelimit
// occur in a normalized name, in one pass.
func nameSubs(n []byte) (f uint8) {
	for j := 0; j+5 <= len(n); j++ {
		switch t := n[j:]; t[0] {
		case 't':
			if string(t[:5]) == "token" {
				f |= subToken
			}
		case 's':
			if len(t) >= 6 && string(t[:6]) == "secret" {
				f |= subSecret
			}
		case 'p':
			if len(t) >= 8 && string(t[:8]) == "password" {
				f |= subPassword
			}
			if len(t) >= 6 && string(t[:6]) == "passwd" || len(t) >= 10 && string(t[:10]) == "passphrase" {
				f |= subPasswd
			}
		case 'a':
			if len(t) >= 6 && string(t[:6]) == "apikey" {
				f |= subAPIKey
			}
		case 'r':
			if len(t) >= 9 && string(t[:9]) == "ratelimit" {
				f |= subRatelimit
			}
		}
	}
	return f
}

func lastIndexByte(b []byte, c byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == c {
			return i
		}
	}
	return -1
}

// secretHeader reports whether a header's whole value is secret: a listed
// name, or a name containing token, secret, password or apikey unless it
// is a rate-limit header (x-ratelimit-remaining-tokens and kin carry
// counts, not credentials).
func (r *Redactor) secretHeader(name string) bool {
	var buf [64]byte
	n := appendNormName(buf[:0], name)
	if r.allow[string(n)] {
		return false
	}
	if r.headers[string(n)] {
		return true
	}
	f := nameSubs(n)
	if f&subRatelimit != 0 {
		return false
	}
	if f&(subToken|subSecret|subPassword|subAPIKey|subPasswd) != 0 || credentialKeySuffix(n) {
		return true
	}
	// Pwd, X-Pwd, X-Private-Key-Id: a secret field name, with x- or not.
	return r.fields[string(n)] || len(n) > 1 && n[0] == 'x' && r.fields[string(n[1:])]
}

// Interaction scrubs an interaction in place before it is stored: the
// request (as Request does, but with fingerprints), the response headers
// and body, and the stream events, which stay consistent with the body.
// Key is scrubbed like free text.
func (r *Redactor) Interaction(in *store.Interaction) {
	if in == nil || r.off {
		return
	}
	r.request(&in.Request, true, false)
	in.Key = r.text(in.Key, true)
	r.Response(&in.Response)
}

// Response scrubs a response in place, with fingerprints: headers, body and
// stream events (kept consistent with the body). The proxy calls it on its
// own when the request was already scrubbed by Request.
func (r *Redactor) Response(resp *store.Response) {
	if resp == nil || r.off {
		return
	}
	resp.Header = r.scrubHeader(resp.Header, true, false)
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
func (r *Redactor) Request(req *store.Request) {
	if req == nil || r.off {
		return
	}
	r.request(req, false, false)
}

// RequestShared is Request for a request whose Header map is still in use
// elsewhere (the live request, about to be forwarded): the map is never
// written. When a header needs scrubbing, req.Header is replaced by a
// scrubbed copy; a clean header stays the same map.
func (r *Redactor) RequestShared(req *store.Request) {
	if req == nil || r.off {
		return
	}
	r.request(req, false, true)
}

// String scrubs free text (URLs, log fields). An absolute URL or a
// /path?query is scrubbed part by part (userinfo, path, query, fragment);
// other text by the patterns and name=value / "name": value rules.
// Markers carry fingerprints when the Redactor has a secret, as stored
// interactions do.
func (r *Redactor) String(s string) string {
	return r.text(s, true)
}

func (r *Redactor) text(s string, fp bool) string {
	if s == "" || r.off {
		return s
	}
	return r.scrubString(s, fp, looksLikeURL(s))
}

// scrubString scrubs s as a URL or as text and returns s itself when it is
// clean. The scanners read bytes: s is copied into a recycled buffer, so a
// clean string costs a copy and no allocation.
func (r *Redactor) scrubString(s string, fp, asURL bool) string {
	buf := byteCopies.Get().(*[]byte)
	defer returnBytes(buf)
	return r.scrubStringIn(buf, s, fp, asURL)
}

// scrubStringIn is scrubString with the buffer given, for a caller that
// scrubs many strings (a header's values).
func (r *Redactor) scrubStringIn(buf *[]byte, s string, fp, asURL bool) string {
	*buf = append((*buf)[:0], s...)
	w := r.newWriter((*buf)[:len(s):len(s)], fp)
	w.out = (*buf)[len(s):len(s)] // what follows the copy, for the result
	if asURL {
		r.scrubURL(w)
	} else {
		r.rulesInto(w, 0, len(s))
		r.scanText(w, 0, len(s))
	}
	if !w.changed() {
		return s
	}
	return string(w.bytes())
}

// byteCopies hold copies of strings for the scanners, which read bytes.
var byteCopies = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// returnBytes gives a buffer of byteCopies back.
func returnBytes(b *[]byte) {
	if cap(*b) <= 64<<10 { // a copy of a large text is not kept
		byteCopies.Put(b)
	}
}

func (r *Redactor) request(req *store.Request, fp, sharedHeader bool) {
	if req.URL != "" {
		req.URL = r.scrubString(req.URL, fp, true)
	}
	req.Header = r.scrubHeader(req.Header, fp, sharedHeader)
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

// commonHeaders are the header names most requests and responses carry;
// New works out secretHeader for them once.
var commonHeaders = []string{
	"Accept", "Accept-Encoding", "Accept-Language", "Accept-Ranges", "Access-Control-Allow-Headers",
	"Access-Control-Allow-Methods", "Access-Control-Allow-Origin", "Access-Control-Expose-Headers", "Age",
	"Alt-Svc", "Authorization", "Cache-Control", "Cf-Cache-Status", "Cf-Ray", "Connection", "Content-Disposition",
	"Content-Encoding", "Content-Language", "Content-Length", "Content-Type", "Cookie", "Date", "Etag", "Expires",
	"Host", "If-Modified-Since", "If-None-Match", "Keep-Alive", "Last-Modified", "Link", "Location",
	"Mcp-Protocol-Version", "Mcp-Session-Id", "Openai-Organization", "Openai-Processing-Ms", "Openai-Version",
	"Origin", "Pragma", "Proxy-Authorization", "Referer", "Retry-After", "Sec-Fetch-Dest", "Sec-Fetch-Mode",
	"Sec-Fetch-Site", "Server", "Set-Cookie", "Strict-Transport-Security", "Traceparent", "Transfer-Encoding",
	"User-Agent", "Vary", "Via", "X-Api-Key", "X-Content-Type-Options", "X-Forwarded-For", "X-Forwarded-Proto",
	"X-Frame-Options", "X-Powered-By", "X-Ratelimit-Limit-Requests", "X-Ratelimit-Limit-Tokens",
	"X-Ratelimit-Remaining-Requests", "X-Ratelimit-Remaining-Tokens", "X-Ratelimit-Reset-Requests",
	"X-Ratelimit-Reset-Tokens", "X-Request-Id", "X-Stainless-Arch", "X-Stainless-Lang", "X-Stainless-Os",
	"X-Stainless-Package-Version", "X-Stainless-Retry-Count", "X-Stainless-Runtime", "X-Stainless-Runtime-Version",
	"Anthropic-Version", "Anthropic-Beta", "Request-Id", "X-Goog-Api-Client",
}

// scrubHeader scrubs h in place and returns it, or with shared set leaves
// h as it is and returns a scrubbed copy when anything needed scrubbing.
func (r *Redactor) scrubHeader(h http.Header, fp, shared bool) http.Header {
	if len(h) == 0 {
		return h
	}
	buf := byteCopies.Get().(*[]byte)
	defer returnBytes(buf)
	out, copied := h, false
	for name, vals := range h {
		secret, ok := r.known[name]
		if !ok {
			secret = r.secretHeader(name)
		}
		var scrubbed []string // copy on write: the value slice may be shared
		for i, v := range vals {
			nv := v
			switch {
			case v == "":
			case secret:
				nv = r.secretHeaderValue(buf, v, fp)
			default:
				nv = r.scrubStringIn(buf, v, fp, looksLikeURL(v)) // a URL: Location, Referer, Link
				if !ok && r.mayName([]byte(name)) {
					nv = r.nameRuleHeader(buf, name, nv, fp)
				}
			}
			if nv != v && scrubbed == nil {
				scrubbed = append([]string(nil), vals...)
			}
			if scrubbed != nil {
				scrubbed[i] = nv
			}
		}
		if scrubbed != nil {
			if shared && !copied {
				out, copied = maps.Clone(h), true // ranging on over h: the names not yet seen are in both
			}
			out[name] = scrubbed
		}
	}
	return out
}

// nameRuleHeader checks a header's value against the name rules its name
// calls for (X-Adafruit-Key: …).
func (r *Redactor) nameRuleHeader(buf *[]byte, name, v string, fp bool) string {
	*buf = append((*buf)[:0], v...) // the scanners read bytes
	vb := *buf
	sp, ok := r.nameValue([]byte(name), vb, 0, len(v))
	if !ok {
		return v
	}
	out := r.appendMarker([]byte(v[:sp.start]), sp.kind, vb[sp.start:sp.end], false, fp)
	out = append(out, v[sp.end:]...)
	return string(out)
}

// secretHeaderValue redacts a whole header value, keeping an auth scheme
// word: "Bearer [REDACTED:bearer]", "Basic [REDACTED:header]".
func (r *Redactor) secretHeaderValue(buf *[]byte, v string, fp bool) string {
	kind, cred := "header", v
	if sp := strings.IndexAny(v, " \t"); sp > 0 {
		if k, ok := authScheme(v[:sp]); ok {
			if c := strings.TrimLeft(v[sp:], " \t"); c != "" {
				kind, cred = k, c
			}
		}
	}
	*buf = append((*buf)[:0], cred...) // the scanners read bytes
	cb := *buf
	if isMarker(cb) {
		return v
	}
	var head [128]byte
	out := append(head[:0], v[:len(v)-len(cred)]...)
	return string(r.appendMarker(out, kind, cb, false, fp))
}

// authScheme looks an auth scheme word up in authSchemes, case-insensitively
// as strings.ToLower compares, without allocating for an ASCII word.
func authScheme[T string | []byte](word T) (string, bool) {
	var buf [24]byte
	if len(word) > len(buf) {
		// Longer than any scheme however written: lower-casing shortens a
		// word by at most two bytes a letter (the Kelvin sign is a k), and
		// no scheme is longer than 16 letters.
		return "", false
	}
	for i := 0; i < len(word); i++ {
		c := word[i]
		if c >= utf8.RuneSelf {
			k, ok := authSchemes[strings.ToLower(string(word))] // Unicode folding (the Kelvin sign is a k)
			return k, ok
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	k, ok := authSchemes[string(buf[:len(word)])]
	return k, ok
}

// le64 is binary.LittleEndian.Uint64 of a string's eight bytes; the
// compiler makes it one load.
func le64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

func looksLikeURL(s string) bool {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		// no byte below 0x21 in these eight (the usual case): skip them
		x := le64(s[i : i+8])
		if (x-0x2121212121212121)&^x&0x8080808080808080 != 0 {
			break
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c <= ' ' && (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			return false
		}
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
func (r *Redactor) scrubURL(w *writer) {
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
			r.rulesInto(w, a, at)
			for k := range w.pending {
				w.pending[k].enc = true // percent-encoded, as in the userinfo
			}
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
	// The rules see the whole URL as one text (a name rule may span the
	// path and the query); the host is left alone.
	r.rulesIntoURL(w, start)
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
	return bytes.Index(b, []byte(sub))
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
func (r *Redactor) scrubPairs(w *writer, lo, hi int, kind string) {
	s := w.src
	for p := lo; p <= hi; {
		e := indexByteIn(s, p, hi, '&')
		if e < 0 {
			e = hi
		}
		if eq := indexByteIn(s, p, e, '='); eq < 0 {
			r.scanEncoded(w, p, e)
		} else {
			name := decodeComponent(s[p:eq])
			if r.secretField(name) {
				if v := s[eq+1 : e]; len(v) > 0 && !isMarker(v) && !isMarker(decodeComponent(v)) {
					w.replace(span{start: eq + 1, end: e, kind: kind})
				}
			} else if sp, ok := r.nameValue(name, s, eq+1, e); ok {
				r.scanEncoded(w, eq+1, sp.start)
				w.replace(sp)
				r.scanEncoded(w, sp.end, e)
			} else if k := r.decodedNameValue(name, s[eq+1:e]); k != "" {
				// The value matches only decoded (a ':' sent as %3A): all of it goes.
				w.replace(span{start: eq + 1, end: e, kind: k})
			} else {
				r.scanEncoded(w, eq+1, e)
			}
		}
		p = e + 1
	}
}

// decodedNameValue is the kind of the name rule that takes the
// percent-encoded value v once decoded, or "".
func (r *Redactor) decodedNameValue(name, v []byte) string {
	dec := decodeComponent(v)
	if bytes.Equal(dec, v) {
		return "" // nothing encoded: nameValue already saw it
	}
	sp, _ := r.nameValue(name, dec, 0, len(dec))
	return sp.kind
}

// decodeComponent percent-decodes a query component as url.QueryUnescape
// does ('+' is a space); b itself when it holds no escape or a malformed
// one (a '%' not followed by two hex digits).
func decodeComponent(b []byte) []byte {
	k := 0
	for k < len(b) && b[k] != '%' && b[k] != '+' {
		k++
	}
	if k == len(b) {
		return b
	}
	for i := k; i < len(b); i++ {
		if b[i] == '%' {
			if i+2 >= len(b) || unhex(b[i+1]) < 0 || unhex(b[i+2]) < 0 {
				return b
			}
			i += 2
		}
	}
	out := append(make([]byte, 0, len(b)), b[:k]...)
	for i := k; i < len(b); i++ {
		switch c := b[i]; c {
		case '%':
			out = append(out, byte(unhex(b[i+1])<<4|unhex(b[i+2])))
			i += 2
		case '+':
			out = append(out, ' ')
		default:
			out = append(out, c)
		}
	}
	return out
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c - 'a' + 10)
	case c >= 'A' && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}

// markerEscaper undoes QueryEscape's escaping of the marker brackets.
var markerEscaper = strings.NewReplacer("%5B", "[", "%5D", "]", "%3A", ":")

// scanEncoded scans a percent-encoded value: as it is, or decoded when it
// holds escapes; a decoded value with a secret is written back escaped.
func (r *Redactor) scanEncoded(w *writer, lo, hi int) {
	raw := w.src[lo:hi]
	dec := decodeComponent(raw)
	if len(dec) == len(raw) && string(dec) == string(raw) {
		r.scanText(w, lo, hi)
		return
	}
	sub := r.newWriter(dec, w.fp)
	r.rulesInto(sub, 0, len(dec))
	r.scanText(sub, 0, len(dec))
	if !sub.changed() {
		return
	}
	lit := markerEscaper.Replace(url.QueryEscape(string(sub.bytes())))
	w.replaceLit(lo, hi, []byte(lit))
}

// events scrubs a streamed body: the concatenated events are scrubbed as
// one body (a secret split across two writes is still found), then cut
// back at the original write boundaries; a replacement that straddles a
// boundary goes whole into the earlier event. Body stays the concatenation.
func (r *Redactor) events(resp *store.Response, ct string) {
	total := 0
	for _, ev := range resp.Events {
		total += len(ev.Data)
	}
	// Body is normally the concatenation of the events: then it is scanned
	// as it is, without a joined copy.
	sameBody := total == len(resp.Body)
	for i, off := 0, 0; sameBody && i < len(resp.Events); i++ {
		d := resp.Events[i].Data
		sameBody = string(d) == string(resp.Body[off:off+len(d)])
		off += len(d)
	}
	joined := resp.Body
	if !sameBody {
		joined = make([]byte, 0, total)
		for _, ev := range resp.Events {
			joined = append(joined, ev.Data...)
		}
	}
	if !sameBody && len(resp.Body) > 0 {
		resp.Body = r.body(resp.Body, ct, true)
	}
	w := r.newWriter(joined, true)
	w.track = true
	r.scrubBody(w, ct)
	if !w.changed() {
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
func (r *Redactor) EnvValue(name, value string) string {
	if value == "" || r.off {
		return value
	}
	if SecretEnvName(name) || r.secretHeader(name) || r.secretField([]byte(name)) {
		return string(r.appendMarker(nil, "env", []byte(value), false, r.secret != nil))
	}
	return r.String(value)
}

// SecretEnvName reports whether an environment variable's name reads like
// a credential's: it holds KEY, TOKEN, SECRET, PASSWORD, CREDENTIAL or
// AUTH, or ends in _PAT (case-insensitively). The CLI scrubs such
// variables' values wherever they appear (Config.Values).
func SecretEnvName(name string) bool {
	u := strings.ToUpper(name)
	for _, w := range []string{"KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "AUTH"} {
		if strings.Contains(u, w) {
			return true
		}
	}
	return strings.HasSuffix(u, "_PAT")
}

// Args scrubs a command line for a run record: the value of a long flag
// whose name reads like a credential (--api-key VALUE, --token=VALUE,
// --password=VALUE), header-like arguments ("Authorization: Bearer …"),
// and, in every argument, the patterns and values the rest of the
// redactor knows. Short flags (-p) are not judged by name.
func (r *Redactor) Args(argv []string) []string {
	out := make([]string, len(argv))
	secretNext := false
	nameNext := "" // a flag whose name holds a name rule's identifier (--adafruit-key VALUE)
	for i, a := range argv {
		switch {
		case r.off:
			out[i] = a
			continue
		case secretNext && a != "" && !strings.HasPrefix(a, "-"):
			out[i] = string(r.appendMarker(nil, "arg", []byte(a), false, r.secret != nil))
			secretNext = false
			continue
		case nameNext != "" && a != "" && !strings.HasPrefix(a, "-"):
			if sp, ok := r.nameValue([]byte(nameNext), []byte(a), 0, len(a)); ok {
				out[i] = r.String(a[:sp.start]) + string(r.appendMarker(nil, sp.kind, []byte(a[sp.start:sp.end]), false, r.secret != nil)) + r.String(a[sp.end:])
				nameNext = ""
				continue
			}
		}
		secretNext, nameNext = false, ""
		if name, ok := longFlag(a); ok {
			flagName, val, hasVal := strings.Cut(name, "=")
			if !hasVal && r.mayName([]byte(flagName)) {
				nameNext = flagName
			}
			if r.secretFlag(flagName) {
				if !hasVal {
					secretNext = true
					out[i] = a
					continue
				}
				if val != "" && !isMarker([]byte(val)) {
					out[i] = a[:len(a)-len(val)] + string(r.appendMarker(nil, "arg", []byte(val), false, r.secret != nil))
					continue
				}
			}
		}
		out[i] = r.String(a)
	}
	return out
}

// longFlag returns the name (and =value) of --name or -name (a word of two
// letters or more), or false.
func longFlag(a string) (string, bool) {
	n := strings.TrimPrefix(a, "--")
	if n == a {
		n = strings.TrimPrefix(a, "-")
		if n == a {
			return "", false
		}
		if name, _, _ := strings.Cut(n, "="); len(name) < 2 {
			return "", false
		}
	}
	if n == "" || !alnum[n[0]] {
		return "", false
	}
	return n, true
}

// secretFlag: a command-line flag whose value is a credential.
func (r *Redactor) secretFlag(name string) bool {
	if r.allow[normName(name)] {
		return false
	}
	switch normName(name) {
	case "auth", "credential", "credentials", "creds", "pat":
		return true
	}
	return r.secretField([]byte(name)) // --api-key, --token, --password, --client-secret; not --max-tokens
}
