package proxy

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"net/http"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/cassetteproxy/cassetteproxy/store"
)

// errClientGone marks a body the client stopped reading before its end.
var errClientGone = errors.New("client closed the response before its end")

// spillThreshold is how much of a body the capture keeps in memory; the rest
// goes to a temporary file until --max-body, so a large transfer never sits
// in the proxy's memory while it streams.
const spillThreshold = 1 << 20

// capture tees a response body to the recorder as the client reads it: every
// read is passed on at once (nothing is buffered ahead of the client), and a
// copy is kept up to maxBody: the first spill bytes in memory, the rest in a
// temporary file. Past maxBody only the size and a SHA-256 are kept. When the
// body ends, fails or is closed early, done runs exactly once with what
// arrived.
type capture struct {
	src      io.ReadCloser
	start    time.Time
	length   int64 // the announced length (Content-Length), -1 unknown
	maxBody  int64
	spill    int  // bytes kept in memory before spilling to a file
	streamed bool // keep each read's boundary and offset, to store events
	bodiless bool // an answer that has no body (HEAD, 204, 304, length 0): closing it unread cuts nothing
	sse      bool // Content-Type text/event-stream: events are SSE events when the body parses

	mu      sync.Mutex
	mem     []byte   // the body's first bytes, up to spill
	pooled  *[]byte  // the recycled buffer mem was cut from, until release
	file    *os.File // the rest, once spilled
	reads   []readMark
	size    int64
	sum     hash.Hash // started only when the body passes maxBody
	over    bool      // passed maxBody: only size and hash are kept
	err     error
	done    func(c *capture)
	doneRan sync.Once
}

// Captured bodies of 512 B to 64 KiB are read into recycled buffers: at a
// few thousand recordings a second, a fresh 50 KB buffer each was most of
// the record path's garbage, and at ~20k a second a fresh 1 KB one was the
// largest single piece of it. Two sizes, so a small body never holds a
// 64 KiB buffer. What they buy: BenchmarkServeRecord HTTP 50 KB 127 → 101
// µs CPU and 75 → 19 KB allocated a request (64 KiB class);
// BenchmarkHandleRecord/1K ~2% fewer instructions, 10.8 → 9.8 KB (4 KiB).
const (
	minPooledBody   = 512
	smallPooledBody = 4 << 10
	maxPooledBody   = 64 << 10
)

var (
	smallCaptureBuffers = sync.Pool{New: func() any { b := make([]byte, 0, smallPooledBody); return &b }}
	captureBuffers      = sync.Pool{New: func() any { b := make([]byte, 0, maxPooledBody); return &b }}
)

// captureBufferPool is the pool whose buffers fit a body of n bytes
// (minPooledBody <= n <= maxPooledBody), or that a buffer of capacity n
// came from.
func captureBufferPool(n int) *sync.Pool {
	if n <= smallPooledBody {
		return &smallCaptureBuffers
	}
	return &captureBuffers
}

// release returns the capture's recycled buffer once the recording has
// been handed over, unless what was recorded still uses it: events cut from
// it, or a body that is the buffer. The recorded body is either the body
// fill handed out (the buffer, from its first byte) or a fresh one (a
// redacted copy, the redaction memo's copy, a decoded body): redaction
// returns the body it was given or a new one, never a part of it. A buffer
// still in use is left to the garbage collector. Nothing reads the buffer
// after release: the client got its bytes before the capture finished, and
// the store copied what it keeps.
func (c *capture) release(recorded *store.Response) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pooled == nil {
		return
	}
	buf := (*c.pooled)[:cap(*c.pooled)]
	if len(recorded.Events) > 0 || len(recorded.Body) > 0 && len(buf) > 0 && &recorded.Body[0] == &buf[0] {
		return
	}
	c.mem = nil
	captureBufferPool(cap(*c.pooled)).Put(c.pooled)
	c.pooled = nil
}

// readMark is where one upstream read ended in the body, and when it arrived.
type readMark struct {
	end int64
	ms  int64
}

func newCapture(src io.ReadCloser, resp *http.Response, maxBody int64, done func(*capture)) *capture {
	var mem []byte
	var pooled *[]byte
	if n := resp.ContentLength; n > 0 && n <= min(maxBody, spillThreshold) {
		// Sized once: appending read by read would allocate the body about
		// twice over on its way up (the garbage of a 50 KB body is ~130 KB).
		// Mid-sized bodies borrow a recycled buffer (see release).
		if n >= minPooledBody && n <= maxPooledBody {
			pooled = captureBufferPool(int(n)).Get().(*[]byte)
			mem = (*pooled)[:0:n]
		} else {
			mem = make([]byte, 0, n)
		}
	}
	return &capture{
		mem:      mem,
		pooled:   pooled,
		src:      src,
		start:    time.Now(),
		length:   resp.ContentLength,
		maxBody:  maxBody,
		spill:    spillThreshold,
		streamed: isStreamed(resp),
		sse:      isSSE(resp.Header.Get("Content-Type")),
		bodiless: resp.ContentLength == 0 || resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotModified ||
			resp.Request != nil && resp.Request.Method == http.MethodHead,
		done: done,
	}
}

// isStreamed reports a response whose writes matter as events: server-sent
// events, NDJSON, and any identity-encoded body of unknown length.
func isStreamed(resp *http.Response) bool {
	switch baseMediaType(resp.Header.Get("Content-Type")) {
	case "text/event-stream", "application/x-ndjson", "application/ndjson", "application/jsonl", "application/json-seq":
		return true
	}
	return resp.ContentLength < 0 && resp.Header.Get("Content-Encoding") == ""
}

// sizeSeen is how many body bytes have come from upstream so far.
func (c *capture) sizeSeen() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size
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
	if c.over {
		if c.sum != nil {
			c.sum.Write(b)
		}
		return
	}
	if c.size > c.maxBody {
		c.startHash()
		if c.sum != nil {
			c.sum.Write(b)
		}
		c.over = true
		c.mem, c.reads = nil, nil
		c.dropFile()
		return
	}
	if c.file == nil && len(c.mem)+len(b) > c.spill {
		f, err := os.CreateTemp("", "cassetteproxy-body-*")
		if err == nil {
			// Unredacted bytes: the name goes at once, so a crash or a
			// kill -9 leaves nothing on disk; the open file is all we need.
			_ = os.Remove(f.Name())
			c.file = f
		} // else: keep it in memory rather than lose it
	}
	if c.file != nil {
		if _, err := c.file.Write(b); err != nil {
			// A full disk loses the copy (and the hash), never the client's stream.
			c.over = true
			c.mem, c.reads = nil, nil
			c.dropFile()
			return
		}
	} else {
		c.mem = append(c.mem, b...)
	}
	if c.streamed {
		c.reads = append(c.reads, readMark{end: c.size, ms: time.Since(c.start).Milliseconds()})
	}
}

// startHash begins the body's SHA-256 when it passes maxBody: a body kept
// whole needs no hash, so only an oversized one pays, once, for the bytes
// that came before.
func (c *capture) startHash() {
	c.sum = sha256.New()
	c.sum.Write(c.mem)
	if c.file == nil {
		return
	}
	_, err := c.file.Seek(0, io.SeekStart)
	if err == nil {
		_, err = io.Copy(c.sum, c.file)
	}
	if err != nil {
		c.sum = nil // the marker then carries the size alone
	}
}

func (c *capture) dropFile() {
	if c.file != nil {
		c.file.Close()
		c.file = nil
	}
}

// Close ends the capture; a body closed before EOF was cut short by the
// client, unless every byte it announced had arrived.
func (c *capture) Close() error {
	if c.bodiless || c.length >= 0 && c.sizeSeen() >= c.length {
		c.finish(nil)
	} else {
		c.finish(errClientGone)
	}
	return c.src.Close()
}

func (c *capture) finish(err error) {
	c.doneRan.Do(func() {
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
		c.done(c)
	})
}

// body is the whole kept body: memory then file. The file is removed.
func (c *capture) body() ([]byte, error) {
	if c.file == nil {
		return c.mem, nil
	}
	defer c.dropFile()
	if _, err := c.file.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	rest, err := io.ReadAll(c.file)
	if err != nil {
		return nil, err
	}
	return append(c.mem, rest...), nil
}

// fill completes a recorded response with what the capture kept.
func (c *capture) fill(r *store.Response) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r.Incomplete = c.err != nil
	marker := func() {
		r.NotRecorded = &store.BodyMarker{Size: c.size, Reason: "body_not_recorded"}
		if c.sum != nil {
			r.NotRecorded.SHA256 = hex.EncodeToString(c.sum.Sum(nil))
		}
	}
	if c.over {
		marker()
		return
	}
	body, err := c.body()
	if err != nil {
		marker()
		return
	}
	events := c.streamed
	if enc := r.Header.Get("Content-Encoding"); enc != "" && len(body) > 0 {
		if decoded, err := decodeBody(enc, body); err == nil {
			body = decoded
			r.ContentEncoding = enc
			r.Header.Del("Content-Encoding")
			events = false // reads were encoded bytes; the decoded body stands alone
		}
	}
	r.Body = body
	if r.Incomplete && r.ContentEncoding == "" && c.length > int64(len(body)) {
		r.ContentLength = c.length // replay sends it, then breaks where this body ends
	}
	if events && (len(body) > 0 || r.Incomplete) {
		r.Streamed = true
		r.Events = c.events(body)
	}
}

// events cuts the body into stored events: SSE events when the body is an
// event stream (each stamped with the arrival of the read that completed
// it), else the upstream's reads as they came. Event data shares the body's
// bytes.
func (c *capture) events(body []byte) []store.Event {
	if c.sse {
		if ends, ok := sseEventEnds(body); ok {
			out := make([]store.Event, 0, len(ends))
			start := 0
			for _, end := range ends {
				out = append(out, store.Event{OffsetMs: c.arrival(int64(end)), Data: body[start:end:end]})
				start = end
			}
			return out
		}
	}
	out := make([]store.Event, 0, len(c.reads))
	var start int64
	for _, m := range c.reads {
		out = append(out, store.Event{OffsetMs: m.ms, Data: body[start:m.end:m.end]})
		start = m.end
	}
	return out
}

// arrival is the offset (ms) of the read that brought the body's byte end-1.
func (c *capture) arrival(end int64) int64 {
	i := sort.Search(len(c.reads), func(i int) bool { return c.reads[i].end >= end })
	if i == len(c.reads) {
		if len(c.reads) == 0 {
			return 0
		}
		i = len(c.reads) - 1
	}
	return c.reads[i].ms
}
