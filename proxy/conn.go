package proxy

import (
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// The proxy's own hold on every accepted connection (trackedConn): it is
// remembered until closed, so Shutdown can close hijacked tunnels that
// net/http forgets; a tunnel gets an idle deadline renewed at every read
// and a bound on a request head; a stalled request body ends the
// connection; and an answer's head may be held back to leave with its body
// in one write (write coalescing, decided in coalesce.go).

// trackingListener remembers every accepted connection until it is closed,
// whoever closes it: net/http forgets a connection once goproxy hijacks it
// for a CONNECT tunnel, and Shutdown must still be able to end it.
type trackingListener struct {
	net.Listener
	s *Server
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, s: l.s}
	l.s.mu.Lock()
	l.s.conns[tc] = struct{}{}
	l.s.mu.Unlock()
	return tc, nil
}

type trackedConn struct {
	net.Conn
	s        *Server
	once     sync.Once
	hijacked atomic.Bool

	// A request head's bound inside a tunnel (tunnelHeadLimit): headRead
	// counts the bytes read since the last answer was written, unless a
	// request is being answered (its body is not a head) or the connection
	// was upgraded (what follows is not HTTP).
	inRequest atomic.Bool
	headRead  atomic.Int64

	// bodyStalled is set once a request body made no progress for
	// BodyTimeout (readBodyWithin): every later read fails at once.
	bodyStalled atomic.Bool

	// Write coalescing (see holdNextWrite). holding is set while a write
	// is armed to be held or bytes are held, so Read and Write look no
	// further otherwise; wmu orders every write once it is set.
	holding atomic.Bool
	wmu     sync.Mutex
	armed   bool        // under wmu: the next Write is kept back
	holds   uint64      // under wmu: holds armed so far (a timed release acts only on its own)
	held    []byte      // under wmu: the kept-back bytes
	iov     [2][]byte   // under wmu: held and the next write, for one writev
	bufs    net.Buffers // under wmu: over iov (a field, so WriteTo allocates nothing)
}

// connKey finds the accepted *trackedConn in a request's context
// (http.Server.ConnContext).
type connKey struct{}

// holdNextWriteFor is holdNextWrite for an answer whose body comes from
// upstream: what is held goes out after d at the latest, so a body that
// takes its time never holds its head back longer than that.
func (c *trackedConn) holdNextWriteFor(d time.Duration) {
	gen := c.holdNextWrite()
	time.AfterFunc(d, func() { c.releaseHold(gen) })
}

// releaseHold sends what the hold numbered gen keeps back, if that hold is
// still the connection's latest and still holding.
func (c *trackedConn) releaseHold(gen uint64) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.holds == gen && c.holding.Load() {
		_, _ = c.flushLocked(nil)
	}
}

// holdNextWrite keeps the connection's next Write back, to go out in one
// system call with the Write after it, or before the next Read, or at
// Close, whichever comes first. Inside an intercepted tunnel goproxy writes
// a response's head and its body as two TLS records, each its own write(2);
// for an answer whose body is in memory nothing can block between the two,
// so they may share one. Never arm it when the body may wait on anything
// but this connection's own reads (an upstream, a paced stream): the head
// would wait with it; holdNextWriteFor bounds the wait for those. What it
// buys (bench/run.sh, replay HTTPS 1 KB): 28 → 18–20 µs CPU a request.
func (c *trackedConn) holdNextWrite() (gen uint64) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.armed = true
	c.holding.Store(true)
	c.holds++
	return c.holds
}

func (c *trackedConn) Write(p []byte) (int, error) {
	if !c.holding.Load() {
		return c.Conn.Write(p)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.armed {
		c.armed = false
		c.held = append(c.held[:0], p...)
		return len(p), nil
	}
	return c.flushLocked(p)
}

// flushLocked sends the held bytes, then p, with one writev, and disarms.
// The count returned is of p's bytes.
func (c *trackedConn) flushLocked(p []byte) (int, error) {
	c.armed = false
	// holding stays set until the held bytes and p are on the wire: a
	// Write arriving meanwhile (a timed release races the body's first
	// record) waits on wmu instead of overtaking them. TLS records sent
	// out of order end the client's connection with "bad record MAC".
	defer c.holding.Store(false)
	held := c.held
	c.held = c.held[:0]
	if cap(c.held) > 64<<10 {
		c.held = nil // a large record once is no reason to keep its size
	}
	switch {
	case len(held) == 0:
		if len(p) == 0 {
			return 0, nil
		}
		return c.Conn.Write(p)
	case len(p) == 0:
		_, err := c.Conn.Write(held)
		return 0, err
	}
	c.iov = [2][]byte{held, p}
	c.bufs = c.iov[:]
	n, err := c.bufs.WriteTo(c.Conn) // consumes c.bufs
	c.iov, c.bufs = [2][]byte{}, nil // keep no reference to p
	n -= int64(len(held))
	if n < 0 {
		n = 0
	}
	return int(n), err
}

// flushHeld sends anything held back.
func (c *trackedConn) flushHeld() error {
	if !c.holding.Load() {
		return nil
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.flushLocked(nil)
	return err
}

// Read gives a hijacked connection an idle deadline, renewed at every read,
// and first sends anything held back: the peer may be waiting for it.
func (c *trackedConn) Read(p []byte) (int, error) {
	if err := c.flushHeld(); err != nil {
		return 0, err
	}
	if c.bodyStalled.Load() {
		return 0, errBodyStalled
	}
	counting := false
	if c.hijacked.Load() {
		_ = c.Conn.SetReadDeadline(time.Now().Add(c.s.cfg.TunnelIdle))
		if counting = !c.inRequest.Load(); counting && c.headRead.Load() > tunnelHeadLimit {
			return 0, errTunnelHeadTooLarge
		}
	}
	n, err := c.Conn.Read(p)
	if counting && n > 0 {
		c.headRead.Add(int64(n))
	}
	return n, err
}

// errBodyStalled ends every read of a connection whose request body made
// no progress for BodyTimeout: where the next request would begin is
// unknown, so nothing more is read from it.
var errBodyStalled = errors.New("request body made no progress within --body-timeout")

// stall marks the request body being read as stalled and ends the read
// waiting for it (a deadline in the past); the connection is done.
func (c *trackedConn) stall() {
	c.bodyStalled.Store(true)
	_ = c.Conn.SetReadDeadline(time.Now())
}

// requestRead marks a request head read whole: what the connection reads
// next is its body, up to answered.
func (c *trackedConn) requestRead() { c.inRequest.Store(true) }

// answered marks the answer written: what the connection reads next is the
// next request's head, counted against tunnelHeadLimit.
func (c *trackedConn) answered() {
	c.headRead.Store(0)
	c.inRequest.Store(false)
}

// untilAnswered returns resp with a body that calls c.answered when goproxy
// closes it, which it does once the answer is written; a bodiless answer
// has nothing left to wait for.
func (c *trackedConn) untilAnswered(resp *http.Response) *http.Response {
	if resp == nil || resp.Body == nil || resp.Body == http.NoBody {
		c.answered()
		return resp
	}
	resp.Body = &answerBody{ReadCloser: resp.Body, c: c}
	return resp
}

// answerBody is an answer's body inside a tunnel (untilAnswered).
type answerBody struct {
	io.ReadCloser
	c *trackedConn
}

func (b *answerBody) Close() error {
	err := b.ReadCloser.Close()
	b.c.answered()
	return err
}

func (c *trackedConn) Close() error {
	// Held bytes go out first, unless a write is under way (Shutdown
	// closing a connection another goroutine is writing to): Close never
	// waits on a peer that does not read.
	if c.holding.Load() && c.wmu.TryLock() {
		_, _ = c.flushLocked(nil)
		c.wmu.Unlock()
	}
	c.once.Do(func() {
		c.s.mu.Lock()
		delete(c.s.conns, c)
		c.s.mu.Unlock()
	})
	return c.Conn.Close()
}
