package proxy

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/textproto"
	"slices"
	"strings"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/cassetteproxy/cassetteproxy/store"
)

// IsHopHeader reports the (canonical) names of headers that belong to one
// connection and are never forwarded, recorded or imported (RFC 9110
// §7.6.1), plus the proxy's own. A switch, not a list: it runs over every header of
// every request and response.
func IsHopHeader(name string) bool {
	switch name {
	case "Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// stripHop removes hop-by-hop headers, including any named by Connection.
// keepUpgrade leaves Connection/Upgrade in place for a protocol upgrade.
func stripHop(h http.Header, keepUpgrade bool) {
	if !keepUpgrade {
		for _, v := range h["Connection"] {
			for name := range strings.SplitSeq(v, ",") {
				if name = strings.TrimSpace(name); name != "" {
					delete(h, canonicalToken(name))
				}
			}
		}
	}
	for name := range h { // canonical already: delete as Header.Del would
		if IsHopHeader(name) && !(keepUpgrade && (name == "Connection" || name == "Upgrade")) {
			delete(h, name)
		}
	}
}

// isRecordedRequestDrop reports the headers a recorded request never has:
// the hop-by-hop ones, Content-Length (derived from the body) and Expect
// (the proxy has the body already; 100-continue is between it and the
// client).
func isRecordedRequestDrop(name string) bool {
	return IsHopHeader(name) || name == "Content-Length" || name == "Expect"
}

// hasHeader reports whether any of h's (canonical) names satisfies is
// (IsHopHeader, isRecordedRequestDrop: Connection counts for both, so the
// headers it names are covered too).
func hasHeader(h http.Header, is func(name string) bool) bool {
	for name := range h {
		if is(name) {
			return true
		}
	}
	return false
}

// canonicalToken is textproto.CanonicalMIMEHeaderKey(name), without its
// allocation for the tokens a Connection header usually lists.
func canonicalToken(name string) string {
	for _, c := range [...]string{"Keep-Alive", "Close", "Upgrade"} {
		if asciiEqualFold(name, c) {
			return c
		}
	}
	return textproto.CanonicalMIMEHeaderKey(name)
}

// asciiEqualFold is strings.EqualFold for ASCII only (no Kelvin sign for
// a K): what CanonicalMIMEHeaderKey would fold.
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// withoutHop is a copy of h without its hop-by-hop headers and without the
// extra (canonical) names: what Clone, then stripHop(h, false), then Del of
// each extra name leave, made in one pass.
func withoutHop(h http.Header, extra ...string) http.Header {
	if h == nil {
		return nil
	}
	var named []string // canonical names the Connection header lists
	for _, v := range h["Connection"] {
		for name := range strings.SplitSeq(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				named = append(named, canonicalToken(name))
			}
		}
	}
	nv := 0
	for _, vv := range h {
		nv += len(vv)
	}
	sv := make([]string, nv) // one backing array for every value, as Clone does
	out := make(http.Header, len(h))
	for k, vv := range h {
		if IsHopHeader(k) || slices.Contains(extra, k) || slices.Contains(named, k) {
			continue
		}
		if vv == nil {
			out[k] = nil
			continue
		}
		n := copy(sv, vv)
		out[k] = sv[:n:n]
		sv = sv[n:]
	}
	return out
}

// isUpgrade reports a protocol upgrade request (WebSocket and the like).
func isUpgrade(h http.Header) bool {
	return h.Get("Upgrade") != "" && headerHasToken(h, "Connection", "upgrade")
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// recordedRequest is the form a live request is stored and matched in:
// hop-by-hop headers gone, body decoded. Its header is the live request's
// own map when there is nothing to strip (shared is then true: whoever
// redacts it must not write to it while the live request may still be
// forwarded; neither net/http nor goproxy writes it), else a copy.
func recordedRequest(req *http.Request, body []byte) (r store.Request, shared bool) {
	h := req.Header
	enc := h.Get("Content-Encoding")
	decoding := enc != "" && len(body) > 0
	shared = !decoding && !hasHeader(h, isRecordedRequestDrop)
	if !shared {
		h = withoutHop(req.Header, "Content-Length", "Expect")
	}
	r = store.Request{Method: req.Method, URL: req.URL.String(), Header: h, Body: body}
	if decoding {
		if decoded, err := decodeBody(enc, body); err == nil {
			r.Body = decoded
			r.ContentEncoding = enc
			h.Del("Content-Encoding")
		}
	}
	return r, shared
}

// recordedResponseHead is the stored form of a response head. The body is
// filled in by the capture when it ends, and its length derived again when
// served; only the answer to a HEAD keeps Content-Length, since it has no
// body to derive it from (it tells the size of what a GET would fetch).
func recordedResponseHead(resp *http.Response) store.Response {
	// Forward strips the live header first, so usually nothing is left to
	// strip: a shallow clone then copies the map's memory whole instead of
	// inserting key by key. The value slices are shared, which is safe:
	// nothing appends to or writes into the live ones, and redaction copies
	// a slice before it changes it.
	var h http.Header
	if hasHeader(resp.Header, IsHopHeader) {
		h = withoutHop(resp.Header)
	} else {
		h = maps.Clone(resp.Header)
	}
	if resp.Request == nil || resp.Request.Method != http.MethodHead {
		delete(h, "Content-Length")
	}
	return store.Response{Status: resp.StatusCode, Header: h}
}

// maxDecodedBody bounds what a compressed body may expand to (zip bombs).
const maxDecodedBody = 1 << 30

// decodeBody undoes a Content-Encoding (possibly a list, applied in order).
func decodeBody(encoding string, body []byte) ([]byte, error) {
	codings := strings.Split(encoding, ",")
	out := body
	for i := len(codings) - 1; i >= 0; i-- {
		var r io.Reader
		var err error
		switch c := strings.ToLower(strings.TrimSpace(codings[i])); c {
		case "", "identity":
			continue
		case "gzip", "x-gzip":
			r, err = gzip.NewReader(bytes.NewReader(out))
		case "deflate":
			// "deflate" is zlib-wrapped by the spec, raw by some servers.
			r, err = zlib.NewReader(bytes.NewReader(out))
			if err != nil {
				r, err = flate.NewReader(bytes.NewReader(out)), nil
			}
		case "br":
			r = brotli.NewReader(bytes.NewReader(out))
		case "zstd":
			d, derr := zstd.NewReader(bytes.NewReader(out), zstd.WithDecoderMaxMemory(maxDecodedBody), zstd.WithDecoderConcurrency(1))
			if derr != nil {
				return nil, derr
			}
			defer d.Close()
			r = d
		default:
			return nil, fmt.Errorf("unknown content encoding %q", c)
		}
		if err != nil {
			return nil, err
		}
		decoded, err := io.ReadAll(io.LimitReader(r, maxDecodedBody+1))
		if err != nil {
			return nil, err
		}
		if len(decoded) > maxDecodedBody {
			return nil, fmt.Errorf("decoded body over %d bytes", maxDecodedBody)
		}
		out = decoded
	}
	return out, nil
}
