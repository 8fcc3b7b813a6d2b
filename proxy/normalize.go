package proxy

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/cassetteproxy/cassetteproxy/store"
)

// hopHeaders belong to one connection and are never forwarded or recorded
// (RFC 9110 §7.6.1), plus the proxy's own.
var hopHeaders = []string{
	"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// stripHop removes hop-by-hop headers, including any named by Connection.
// keepUpgrade leaves Connection/Upgrade in place for a protocol upgrade.
func stripHop(h http.Header, keepUpgrade bool) {
	if !keepUpgrade {
		for _, v := range h.Values("Connection") {
			for _, name := range strings.Split(v, ",") {
				if name = strings.TrimSpace(name); name != "" {
					h.Del(name)
				}
			}
		}
	}
	for _, name := range hopHeaders {
		if keepUpgrade && (name == "Connection" || name == "Upgrade") {
			continue
		}
		h.Del(name)
	}
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
// hop-by-hop headers gone, body decoded.
func recordedRequest(req *http.Request, body []byte) store.Request {
	h := req.Header.Clone()
	stripHop(h, false)
	h.Del("Content-Length")
	h.Del("Expect") // the proxy has the body already; 100-continue is between it and the client
	r := store.Request{Method: req.Method, URL: req.URL.String(), Header: h, Body: body}
	if enc := h.Get("Content-Encoding"); enc != "" && len(body) > 0 {
		if decoded, err := decodeBody(enc, body); err == nil {
			r.Body = decoded
			r.ContentEncoding = enc
			h.Del("Content-Encoding")
		}
	}
	return r
}

// recordedResponseHead is the stored form of a response head. The body is
// filled in by the capture when it ends, and its length derived again when
// served; only the answer to a HEAD keeps Content-Length, since it has no
// body to derive it from (it tells the size of what a GET would fetch).
func recordedResponseHead(resp *http.Response) store.Response {
	h := resp.Header.Clone()
	stripHop(h, false)
	if resp.Request == nil || resp.Request.Method != http.MethodHead {
		h.Del("Content-Length")
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
