package proxy

import (
	"errors"
	"io"
	"net/http"
	"strconv"
)

// resetOnBreak makes a body that breaks (an upstream that died midway, or
// the replay of a recording that did) reset its HTTP/2 stream, as the
// break closes an HTTP/1.1 connection before the body's end. goproxy's h2
// path stops copying at a read error and returns, and x/net/http2 would
// then end the stream cleanly: the client would take a cut-short body for
// a whole one. Panicking with http.ErrAbortHandler is net/http's way for a
// handler to abort a response; the http2 server answers it with
// RST_STREAM and logs nothing.
func resetOnBreak(resp *http.Response) *http.Response {
	if resp != nil && resp.Body != nil && resp.Body != http.NoBody {
		resp.Body = &abortingBody{ReadCloser: resp.Body}
	}
	return resp
}

type abortingBody struct {
	io.ReadCloser
	broken bool // the last read broke after returning bytes: they go out first
}

func (b *abortingBody) Read(p []byte) (int, error) {
	if b.broken {
		panic(http.ErrAbortHandler)
	}
	n, err := b.ReadCloser.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		if n == 0 {
			panic(http.ErrAbortHandler)
		}
		b.broken = true
		err = nil
	}
	return n, err
}

// streamH2 has goproxy copy a forwarded body of known length, or a
// replayed body that was cut short, to an HTTP/2 client read by read, each
// flushed as it arrives: goproxy flushes only bodies of unknown length (and
// event streams), and leaves one of known length in the http2 server's
// buffer, with the head, until the handler ends, where a stream reset
// drops it. The length stays in the header, so the client sees it as
// before. The head goes out with the body's first bytes.
func streamH2(resp *http.Response) *http.Response {
	switch resp.Body.(type) {
	case *capture, *cutBody:
	default:
		return resp
	}
	if resp.ContentLength > 0 {
		if resp.Header.Get("Content-Length") == "" {
			resp.Header.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
		}
		resp.ContentLength = -1
	}
	return resp
}
