package match

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/cassetteproxy/cassetteproxy/store"
)

type kv struct{ k, v string }

func compareKV(a, b kv) int {
	if c := strings.Compare(a.k, b.k); c != 0 {
		return c
	}
	return strings.Compare(a.v, b.v)
}

type bodyKind uint8

const (
	bodyNone    bodyKind = iota // empty body
	bodyIgnored                 // body: ignore, or an ignore_body_paths "$"
	bodyIsJSON
	bodyIsForm
	bodyIsRaw
)

// normReq is a request reduced to what its key is made of.
type normReq struct {
	method   string
	scheme   string
	hostname string // lower-case, no brackets, no port
	port     string // explicit or the scheme's default; "" when unknown
	host     string // hostname[:port], default port dropped (IPv6 in brackets)
	path     string
	query    []kv // ignored names removed, sorted
	header   []kv // only the keyed headers, names lower-case, sorted

	body       bodyKind
	json       jnode  // bodyIsJSON: canonical, ids and ignored paths removed
	form       []kv   // bodyIsForm: sorted, ignored fields removed
	raw        []byte // bodyIsRaw: the bytes, fingerprints stripped
	bodyDigest [32]byte
	// digestOnly: the body was not kept (store policy); body and
	// bodyDigest come from its marker, json, form and raw are empty.
	digestOnly bool
}

// Key is the match key of a (redacted) request under these rules: the hex
// SHA-256 of its canonical form. See the package documentation for what
// goes in.
func (r *Rules) Key(req *store.Request) string {
	d := r.digest(req)
	var buf [2 * len(d)]byte
	hex.Encode(buf[:], d[:])
	return string(buf[:]) // one allocation; hex.EncodeToString makes two
}

var defaultPorts = map[string]string{"http": "80", "https": "443", "ws": "80", "wss": "443"}

// splitURL splits an absolute (or origin-form) URL without rejecting
// anything: keys must exist for whatever the client sent.
func splitURL(raw string) (scheme, authority, path, query string) {
	s := raw
	if i := strings.IndexByte(s, '#'); i >= 0 {
		s = s[:i]
	}
	if i := strings.Index(s, "://"); i > 0 && !strings.ContainsAny(s[:i], "/?") {
		scheme = strings.ToLower(s[:i])
		s = s[i+3:]
		j := strings.IndexAny(s, "/?")
		if j < 0 {
			j = len(s)
		}
		authority = s[:j]
		s = s[j:]
	}
	if i := strings.IndexByte(s, '?'); i >= 0 {
		path, query = s[:i], s[i+1:]
	} else {
		path = s
	}
	return
}

func (r *Rules) normalize(req *store.Request) *normReq {
	n := new(normReq)
	r.normalizeInto(n, req)
	return n
}

// digest is the key's digest of req: normalize, without a normReq left on
// the heap per call.
func (r *Rules) digest(req *store.Request) [32]byte {
	var n normReq
	r.normalizeInto(&n, req)
	return n.digest()
}

func (r *Rules) normalizeInto(n *normReq, req *store.Request) {
	*n = normReq{method: strings.ToUpper(strings.TrimSpace(req.Method))}
	if n.method == "" {
		n.method = http.MethodGet
	}
	var authority, rawQuery string
	n.scheme, authority, n.path, rawQuery = splitURL(req.URL)
	if authority == "" {
		authority = headerGet(req.Header, "Host")
	}
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		authority = authority[i+1:] // userinfo is never part of the key
	}
	n.hostname, n.port = splitHostPort(authority)
	explicitPort := n.port
	if n.port == "" {
		n.port = defaultPorts[n.scheme]
	}
	n.host = hostKey(n.hostname, explicitPort, n.scheme)
	n.path = StripFingerprints(normalizePercent(n.path))
	if n.path == "" {
		n.path = "/"
	}

	eff := r.effectiveFor(n.hostname, n.port, n.path)

	n.query = parsePairs(rawQuery, func(k string) bool { return anyGlob(eff.ignoreQuery, k, false) })
	n.header = keyedHeaders(req.Header, eff)
	n.normalizeBody(req, eff)
}

// hostKey is the host as it goes in the key: the port only when it is
// not the scheme's default.
func hostKey(hostname, port, scheme string) string {
	if port != "" && port != defaultPorts[scheme] {
		return net.JoinHostPort(hostname, port)
	}
	if strings.Contains(hostname, ":") {
		return "[" + hostname + "]"
	}
	return hostname
}

func isUnreserved(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// normalizePercent applies RFC 3986 §6.2.2 to a path: escapes of unreserved
// characters are decoded, other escapes get upper-case hex. %2F stays %2F.
func normalizePercent(s string) string {
	if strings.IndexByte(s, '%') < 0 {
		return s
	}
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' && i+2 < len(s) && isHexByte(s[i+1]) && isHexByte(s[i+2]) {
			d := unhex(s[i+1])<<4 | unhex(s[i+2])
			if isUnreserved(d) {
				sb.WriteByte(d)
			} else {
				sb.WriteByte('%')
				sb.WriteString(strings.ToUpper(s[i+1 : i+3]))
			}
			i += 2
			continue
		}
		sb.WriteByte(c)
	}
	return sb.String()
}

// parsePairs reads a query string or form body into sorted, decoded,
// fingerprint-stripped pairs, leaving out the names drop says to. A piece
// that does not decode is kept as written.
func parsePairs(s string, drop func(string) bool) []kv {
	if s == "" {
		return nil
	}
	var out []kv
	for piece := range strings.SplitSeq(s, "&") {
		if piece == "" {
			continue
		}
		k, v, _ := strings.Cut(piece, "=")
		if dk, err := url.QueryUnescape(k); err == nil {
			k = dk
		}
		if dv, err := url.QueryUnescape(v); err == nil {
			v = dv
		}
		k, v = StripFingerprints(k), StripFingerprints(v)
		if drop != nil && drop(k) {
			continue
		}
		out = append(out, kv{k, v})
	}
	slices.SortFunc(out, compareKV)
	return out
}

// neverKeyed are headers that never go in a key, whatever match_headers
// says: they change on every request (dates, trace and request ids, SDK
// runtime details, MCP session ids) or describe the transport, not the
// request (framing, encodings the proxy may change, hop-by-hop headers).
var neverKeyed = []string{
	"date", "user-agent",
	"traceparent", "tracestate", "x-b3-*", "b3", "x-request-id", "x-amzn-trace-id",
	"x-cloud-trace-context", "sentry-trace", "baggage", "uber-trace-id", "x-datadog-*",
	"idempotency-key", "x-stainless-*", "mcp-session-id", "x-amz-date",
	"host", "content-length", "connection", "keep-alive", "proxy-*", "te", "trailer",
	"transfer-encoding", "upgrade", "accept-encoding", "content-encoding", "x-cassetteproxy-*",
}

// headerKeyed reports whether a header (lower-case name) goes in the key:
// never for the neverKeyed ones, nor for those an ignore_headers names;
// otherwise only when a match_headers names it ("*" names all).
func (e *effective) headerKeyed(name string) bool {
	if len(e.matchHeaders) == 0 || !anyGlob(e.matchHeaders, name, true) {
		return false
	}
	return !anyGlob(neverKeyed, name, false) && !anyGlob(e.ignoreHeaders, name, true)
}

func keyedHeaders(h http.Header, e *effective) []kv {
	if len(e.matchHeaders) == 0 {
		return nil
	}
	var out []kv
	for name, vals := range h {
		ln := strings.ToLower(name)
		if !e.headerKeyed(ln) {
			continue
		}
		for _, v := range vals {
			out = append(out, kv{ln, StripFingerprints(strings.TrimSpace(v))})
		}
	}
	slices.SortFunc(out, compareKV)
	return out
}

// headerGet is http.Header.Get that also finds names stored in a
// non-canonical case.
func headerGet(h http.Header, name string) string {
	if v := h.Get(name); v != "" {
		return v
	}
	for k, vs := range h {
		if len(vs) > 0 && strings.EqualFold(k, name) {
			return vs[0]
		}
	}
	return ""
}

func mediaType(ct string) string {
	if ct == "" {
		return ""
	}
	if mt, _, err := mime.ParseMediaType(ct); err == nil {
		return mt
	}
	mt, _, _ := strings.Cut(ct, ";")
	return strings.ToLower(strings.TrimSpace(mt))
}

func isJSONMediaType(mt string) bool {
	return mt == "application/json" || strings.HasSuffix(mt, "+json") || strings.HasSuffix(mt, "/json") ||
		mt == "application/json-rpc" || mt == "application/jsonrequest"
}

func looksLikeJSONContainer(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '{', '[':
			return true
		}
		return false
	}
	return false
}

func (n *normReq) normalizeBody(req *store.Request, eff *effective) {
	body := req.Body
	mode := eff.body
	if mode == bodyIgnore {
		n.body = bodyIgnored
		return
	}
	if len(body) == 0 {
		if m := req.NotRecorded; m != nil && m.Match != "" && n.setBodyMatch(m.Match) {
			return
		}
		n.body = bodyNone
		return
	}
	if mode != bodyExact {
		for _, p := range eff.bodyPaths {
			if p.IsRoot() {
				n.body = bodyIgnored
				return
			}
		}
	}
	switch mode {
	case bodyExact:
		n.setRaw(body)
		return
	case bodyJSONM:
		if !n.setJSON(body, eff) {
			n.setRaw(body)
		}
		return
	}
	mt := mediaType(headerGet(req.Header, "Content-Type"))
	switch {
	case mt == "application/x-www-form-urlencoded":
		n.setForm(body, eff)
	case isJSONMediaType(mt), looksLikeJSONContainer(body):
		if !n.setJSON(body, eff) {
			n.setRaw(body)
		}
	default:
		n.setRaw(body)
	}
}

func (n *normReq) setRaw(body []byte) {
	n.body = bodyIsRaw
	n.raw = stripFingerprintsBytes(body)
	n.bodyDigest = sha256.Sum256(n.raw)
}

func (n *normReq) setJSON(body []byte, eff *effective) bool {
	v, err := parseJSON(body)
	if err != nil {
		return false
	}
	if bytes.Contains(body, []byte("REDACTED")) {
		v.mapStrings(StripFingerprints)
	}
	v.canonicalize()
	dropJSONRPCIDs(&v)
	for _, p := range eff.bodyPaths {
		p.remove(&v)
	}
	n.body = bodyIsJSON
	n.json = v
	n.bodyDigest = sha256.Sum256(appendJSON(make([]byte, 0, len(body)), &v))
	return true
}

func (n *normReq) setForm(body []byte, eff *effective) {
	n.body = bodyIsForm
	n.form = parsePairs(string(body), func(k string) bool {
		for _, p := range eff.bodyPaths {
			if p.selectsTopLevel(k) {
				return true
			}
		}
		return false
	})
	n.bodyDigest = sha256.Sum256(appendPairs(nil, n.form))
}

// isJSONRPC reports whether an object is a JSON-RPC 2.0 message.
func isJSONRPC(n *jnode) bool {
	if n.kind != jObject {
		return false
	}
	for i := range n.mem {
		if n.mem[i].key == "jsonrpc" && n.mem[i].val.kind == jString && n.mem[i].val.s == "2.0" {
			return true
		}
	}
	return false
}

// dropJSONRPCIDs removes "id" from a JSON-RPC message or from each message
// of a batch: ids count requests, they do not say what is asked. MCP's
// params._meta.progressToken goes too: clients set it from the request id
// (the TypeScript SDK makes it equal), and replay hands the live token to
// the recorded progress notifications (see RewriteSSEForLive). A _meta
// left empty goes with it, so a request with a token and one without match.
func dropJSONRPCIDs(n *jnode) {
	drop := func(m *jnode) {
		if isJSONRPC(m) {
			m.mem = deleteMembers(m.mem, func(k string) bool { return k == "id" })
			dropProgressToken(m)
		}
	}
	switch n.kind {
	case jObject:
		drop(n)
	case jArray:
		for i := range n.arr {
			drop(&n.arr[i])
		}
	}
}

// dropProgressToken removes params._meta.progressToken from a JSON-RPC
// message, and _meta when nothing else is left in it.
func dropProgressToken(m *jnode) {
	params := member(m, "params")
	meta := member(params, "_meta")
	if meta == nil || meta.kind != jObject {
		return
	}
	meta.mem = deleteMembers(meta.mem, func(k string) bool { return k == "progressToken" })
	if len(meta.mem) == 0 {
		params.mem = deleteMembers(params.mem, func(k string) bool { return k == "_meta" })
	}
}

// member is the value of an object's member named key (the last one, as in
// JSON.parse), or nil (also when n is nil or not an object).
func member(n *jnode, key string) *jnode {
	if n == nil || n.kind != jObject {
		return nil
	}
	for i := len(n.mem) - 1; i >= 0; i-- {
		if n.mem[i].key == key {
			return &n.mem[i].val
		}
	}
	return nil
}

func appendField(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendPairs(dst []byte, pairs []kv) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(pairs)))
	for _, p := range pairs {
		dst = appendField(dst, p.k)
		dst = appendField(dst, p.v)
	}
	return dst
}

// summary is the part of a normalized request an Index keeps per
// interaction, to rank closest-miss candidates without re-parsing them.
type summary struct {
	method, scheme, host, path string
	hostname, port             string
	content                    sketch
}

// noPairsDigest is the digest of an empty list of pairs: most requests
// have no query or no keyed header, and need not hash nothing again.
var noPairsDigest = sha256.Sum256(appendPairs(nil, nil))

func (n *normReq) partDigests() (q, h [32]byte) {
	q, h = noPairsDigest, noPairsDigest
	buf := make([]byte, 0, 128)
	if len(n.query) > 0 {
		q = sha256.Sum256(appendPairs(buf, n.query))
	}
	if len(n.header) > 0 {
		h = sha256.Sum256(appendPairs(buf[:0], n.header))
	}
	return
}

func (n *normReq) digest() [32]byte {
	d, _ := n.digestAndSummary(false)
	return d
}

func (n *normReq) digestAndSummary(wantSummary bool) ([32]byte, summary) {
	q, h := n.partDigests()
	buf := make([]byte, 0, 256)
	buf = appendField(buf, "cassetteproxy-key-v1")
	buf = appendField(buf, n.method)
	buf = appendField(buf, n.scheme)
	buf = appendField(buf, n.host)
	buf = appendField(buf, n.path)
	buf = append(buf, q[:]...)
	buf = append(buf, h[:]...)
	buf = append(buf, byte(n.body))
	buf = append(buf, n.bodyDigest[:]...)
	d := sha256.Sum256(buf)
	if !wantSummary {
		return d, summary{}
	}
	return d, summary{
		method: n.method, scheme: n.scheme, host: n.host, path: n.path,
		hostname: n.hostname, port: n.port,
		content: n.sketch(),
	}
}
