package main

import (
	"io"
	"sync"
	"time"
)

// lineBuffer batches log lines while a proxy runs. slog's handlers hold a
// mutex around Write, so one write(2) per request to a slow stderr (a pipe
// read slowly, a file on a busy disk) would queue every request behind it;
// here a request's log line is a copy into memory, and one goroutine
// writes the batch every 50 ms or at 64 KiB. Past 1 MiB a writer flushes
// itself: memory stays bounded when stderr cannot keep up. Close writes
// what is left and switches to writing straight through.
type lineBuffer struct {
	out io.Writer

	mu     sync.Mutex
	buf    []byte
	direct bool

	writeMu sync.Mutex // serializes writes to out
	spare   []byte     // under writeMu: the last batch's buffer, reused by the next (no regrowing every 50 ms)
	kick    chan struct{}
	stop    chan struct{}
	stopped chan struct{}
	once    sync.Once
}

const (
	lineBufferKick  = 64 << 10
	lineBufferLimit = 1 << 20
)

func newLineBuffer(out io.Writer) *lineBuffer {
	b := &lineBuffer{out: out, kick: make(chan struct{}, 1), stop: make(chan struct{}), stopped: make(chan struct{})}
	go b.loop()
	return b
}

func (b *lineBuffer) loop() {
	defer close(b.stopped)
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-b.kick:
		case <-b.stop:
			return
		}
		b.flush()
	}
}

func (b *lineBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	if b.direct {
		b.mu.Unlock()
		b.writeMu.Lock()
		defer b.writeMu.Unlock()
		return b.out.Write(p)
	}
	b.buf = append(b.buf, p...)
	n := len(b.buf)
	b.mu.Unlock()
	switch {
	case n >= lineBufferLimit:
		b.flush()
	case n >= lineBufferKick:
		select {
		case b.kick <- struct{}{}:
		default:
		}
	}
	return len(p), nil
}

func (b *lineBuffer) flush() {
	b.writeMu.Lock()
	defer b.writeMu.Unlock()
	b.mu.Lock()
	out := b.buf
	b.buf, b.spare = b.spare[:0], nil
	b.mu.Unlock()
	if len(out) > 0 {
		_, _ = b.out.Write(out)
	}
	if cap(out) <= lineBufferLimit*2 { // a buffer grown by a flood is let go
		b.spare = out[:0]
	}
}

// Close writes what is buffered; later lines go straight to out.
func (b *lineBuffer) Close() {
	b.once.Do(func() {
		close(b.stop)
		<-b.stopped
		b.writeMu.Lock()
		b.mu.Lock()
		out := b.buf
		b.buf, b.direct = nil, true
		b.mu.Unlock()
		if len(out) > 0 {
			_, _ = b.out.Write(out)
		}
		b.writeMu.Unlock()
	})
}
