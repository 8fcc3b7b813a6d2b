package proxy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"mime"
	"net/http"
	"sync"
	"time"

	"github.com/cassetteproxy/cassetteproxy/store"
)

// errClientGone marks a body the client stopped reading before its end.
var errClientGone = errors.New("client closed the response before its end")

// capture tees a response body to the recorder as the client reads it: every
// read is passed on at once (nothing is buffered ahead of the client), and a
// copy is kept up to maxBody. When the body ends, fails or is closed early,
// done runs exactly once with what arrived.
type capture struct {
	src      io.ReadCloser
	start    time.Time
	maxBody  int64
	streamed bool // keep each read as an event with its offset

	mu      sync.Mutex
	buf     bytes.Buffer
	events  []store.Event
	size    int64
	sum     hash.Hash
	over    bool // passed maxBody: only size and hash are kept
	err     error
	ended   bool
	done    func(c *capture)
	doneRan sync.Once
}

func newCapture(src io.ReadCloser, resp *http.Response, maxBody int64, done func(*capture)) *capture {
	return &capture{
		src:      src,
		start:    time.Now(),
		maxBody:  maxBody,
		streamed: isStreamed(resp),
		sum:      sha256.New(),
		done:     done,
	}
}

// isStreamed reports a response whose writes matter as events: server-sent
// events, NDJSON, and any identity-encoded body of unknown length.
func isStreamed(resp *http.Response) bool {
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	switch mt {
	case "text/event-stream", "application/x-ndjson", "application/ndjson", "application/jsonl", "application/json-seq":
		return true
	}
	return resp.ContentLength < 0 && resp.Header.Get("Content-Encoding") == ""
}

func (c *capture) Read(p []byte) (int, error) {
	n, err := c.src.Read(p)
	if n > 0 {
		c.keep(p[:n])
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			c.finish(nil)
		} else {
			c.finish(err)
		}
	}
	return n, err
}

func (c *capture) keep(b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.size += int64(len(b))
	c.sum.Write(b)
	if c.over {
		return
	}
	if c.size > c.maxBody {
		c.over = true
		c.buf = bytes.Buffer{}
		c.events = nil
		return
	}
	c.buf.Write(b)
	if c.streamed {
		c.events = append(c.events, store.Event{
			OffsetMs: time.Since(c.start).Milliseconds(),
			Data:     append([]byte(nil), b...),
		})
	}
}

// Close ends the capture; a body closed before EOF was cut short by the client.
func (c *capture) Close() error {
	c.finish(errClientGone)
	return c.src.Close()
}

func (c *capture) finish(err error) {
	c.doneRan.Do(func() {
		c.mu.Lock()
		c.err = err
		c.ended = true
		c.mu.Unlock()
		c.done(c)
	})
}

// fill completes a recorded response with what the capture kept.
func (c *capture) fill(r *store.Response) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r.Incomplete = c.err != nil
	if c.over {
		r.NotRecorded = &store.BodyMarker{Size: c.size, SHA256: hex.EncodeToString(c.sum.Sum(nil)), Reason: "body_not_recorded"}
		return
	}
	body := c.buf.Bytes()
	if enc := r.Header.Get("Content-Encoding"); enc != "" && len(body) > 0 {
		if decoded, err := decodeBody(enc, body); err == nil {
			body = decoded
			r.ContentEncoding = enc
			r.Header.Del("Content-Encoding")
			c.events = nil // events were encoded bytes; the decoded body stands alone
		}
	}
	r.Body = append([]byte(nil), body...)
	if c.streamed && len(c.events) > 0 {
		r.Streamed = true
		r.Events = c.events
	}
}
