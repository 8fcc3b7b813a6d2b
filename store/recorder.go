package store

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// RecorderOptions tune group commit.
type RecorderOptions struct {
	MaxBatch int           // records per transaction, default 256
	MaxDelay time.Duration // longest a record waits for company, default 20ms (each commit pays two fdatasyncs)
	Queue    int           // channel capacity, default 1024 (back-pressure beyond)

	// OnError, if set, is called from the writer goroutine with every commit
	// error as it happens (Flush and Close report them too). It must not
	// call back into the Recorder.
	OnError func(err error)
}

// Recorder is the single writer goroutine: Record encodes and compresses on
// the caller's goroutine and queues the value; the writer commits queued
// values in batches of up to MaxBatch, or whatever arrived within MaxDelay of
// the first, in one bbolt transaction. Seq is assigned at commit, per
// cassette, continuing after the interactions already stored.
//
// All methods are safe for concurrent use. Commit errors are not returned by
// Record: they surface through Flush, Close and OnError.
type Recorder struct {
	s    *Store
	opts RecorderOptions
	ch   chan op
	wake chan struct{} // cuts the writer's gathering short (see run)
	done chan struct{}

	mu     sync.RWMutex // Record/Flush hold it shared while enqueueing
	closed bool

	closeOnce sync.Once
	closeErr  error

	// lost counts the records whose commit failed (bbolt rolled the
	// transaction back: they are not in the store); lastErr is the last
	// such failure.
	lost    atomic.Int64
	lastErr atomic.Pointer[error]

	// stored holds, per cassette, the hashes of the bodies this Recorder
	// has stored or queued, so a body answered again is not compressed
	// again. A hint only: the commit writes a body it finds missing.
	storedMu sync.Mutex
	stored   map[string]map[[32]byte]struct{}
	sums     *bodySums

	committed atomic.Int64 // records committed so far (see Committed)
}

// op is one queued record, or a control marker when ctl is set.
type op struct {
	cassette string
	value    []byte
	keyHash  [32]byte
	body     *storedBody // the response body, when it is stored apart

	ctl  chan error // flush/stop marker: receives the commit errors since the last marker
	stop bool
}

// NewRecorder starts a Recorder on the store. A Recorder made on a closed
// store is closed: Record returns ErrClosed. On a ReadOnly store Record
// returns ErrReadOnly. Store.Close closes Recorders still open.
func (s *Store) NewRecorder(opts RecorderOptions) *Recorder {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 256
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = 20 * time.Millisecond
	}
	if opts.Queue <= 0 {
		opts.Queue = 1024
	}
	r := &Recorder{s: s, opts: opts, ch: make(chan op, opts.Queue), wake: make(chan struct{}, 1), done: make(chan struct{}),
		stored: map[string]map[[32]byte]struct{}{}, sums: newBodySums()}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		r.closed = true
		close(r.done)
		r.closeOnce.Do(func() {})
		return r
	}
	s.recorders[r] = struct{}{}
	go r.run()
	return r
}

func (r *Recorder) errorf(format string, args ...any) error {
	return fmt.Errorf("store %s: recorder: "+format, append([]any{r.s.path}, args...)...)
}

// Record queues in for the cassette (created on first commit if missing).
// in.Seq is ignored: the store assigns it. in is encoded before Record
// returns, so the caller may reuse it, with one exception: the bytes of a
// response body of 1 KiB or more must never change afterwards: the
// Recorder may keep a reference to it, to write it after all should a body
// it believed stored be missing (see storedBody), and to know the same
// bytes again without hashing or comparing them (bodySums). Record blocks
// while the queue is full and returns an error after Close.
func (r *Recorder) Record(cassette string, in Interaction) error {
	if err := validName(cassette); err != nil {
		return r.errorf("%w", err)
	}
	if r.s.readOnly {
		return r.errorf("%w", ErrReadOnly)
	}
	value, body, err := encodeForStore(&in, r.sums, func(h *[32]byte) bool { return r.bodyStored(cassette, h) })
	if err != nil {
		return r.errorf("encode: %w", err)
	}
	o := op{cassette: cassette, value: value, keyHash: sha256.Sum256([]byte(in.Key)), body: body}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		return r.errorf("%w", ErrClosed)
	}
	r.ch <- o
	if len(r.ch) >= r.opts.MaxBatch {
		r.nudge()
	}
	return nil
}

// Flush waits until everything enqueued before it is committed and returns
// the commit errors that happened since the previous Flush (nil if none).
// After Close it returns an error wrapping ErrClosed.
func (r *Recorder) Flush() error {
	ack := make(chan error, 1)
	r.mu.RLock()
	if r.closed {
		r.mu.RUnlock()
		return r.errorf("flush: %w", ErrClosed)
	}
	r.ch <- op{ctl: ack}
	r.nudge()
	r.mu.RUnlock()
	return <-ack
}

// Close flushes, stops the writer goroutine and returns the commit errors
// since the previous Flush. It is idempotent: later calls return the same
// result. It does not close the store.
func (r *Recorder) Close() error {
	r.closeOnce.Do(func() {
		r.mu.Lock()
		r.closed = true
		r.mu.Unlock()
		// No Record or Flush can enqueue any more; the writer keeps draining,
		// so this send cannot block forever.
		ack := make(chan error, 1)
		r.ch <- op{ctl: ack, stop: true}
		r.nudge()
		r.closeErr = <-ack
		<-r.done
		r.s.mu.Lock()
		delete(r.s.recorders, r)
		r.s.mu.Unlock()
	})
	return r.closeErr
}

// reopenEvery is how often, at most, the writer reopens the store's file
// (Store.reopen) while it commits. Each put reads the pages on its key's path
// through bbolt's memory map, and the key index is ordered by hash, so a busy
// recorder reads pages all over the file: over a second they add up to
// several MiB of RSS. A variable for tests.
var reopenEvery = 100 * time.Millisecond

// Lost returns how many records could not be committed so far (each is
// missing from the store) and the last commit error, nil when none failed.
// Records still queued are not counted: Flush first for a final count.
func (r *Recorder) Lost() (int, error) {
	var last error
	if p := r.lastErr.Load(); p != nil {
		last = *p
	}
	return int(r.lost.Load()), last
}

// nudge wakes the writer if it is gathering a batch.
func (r *Recorder) nudge() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// run is the writer goroutine.
func (r *Recorder) run() {
	defer close(r.done)
	var (
		batch   = make([]op, 0, r.opts.MaxBatch)
		markers []op
		pending []error
		timer   = time.NewTimer(time.Hour)
		// reopened is when the store was last reopened.
		reopened = time.Now()
	)
	timer.Stop()
	add := func(o op) {
		if o.ctl != nil {
			markers = append(markers, o)
		} else {
			batch = append(batch, o)
		}
	}
	for {
		add(<-r.ch)
		if len(markers) == 0 {
			// Let company gather for MaxDelay, then take whatever is queued.
			// A send into the buffered channel wakes no one, so a busy
			// recorder wakes once per batch, not once per record; Flush,
			// Close and a batch's worth of queued records cut the wait short.
			timer.Reset(r.opts.MaxDelay)
			select {
			case <-timer.C:
			case <-r.wake:
			}
			timer.Stop()
		}
	drain:
		for len(batch) < r.opts.MaxBatch && len(markers) == 0 {
			select {
			case o := <-r.ch:
				add(o)
			default:
				break drain
			}
		}
		if len(batch) > 0 {
			fail := func(err error) {
				pending = append(pending, err)
				if r.opts.OnError != nil {
					r.opts.OnError(err)
				}
			}
			if err := r.commit(batch); err != nil {
				err = r.errorf("commit of %d records: %w", len(batch), err)
				r.lost.Add(int64(len(batch))) // rolled back: none of them is in the store
				r.lastErr.Store(&err)
				fail(err)
			}
			if now := time.Now(); now.Sub(reopened) >= reopenEvery {
				if err := r.s.reopen(); err != nil {
					fail(r.errorf("%w", err))
				}
				reopened = now
			}
			clear(batch) // drop references to the values
			batch = batch[:0]
		}
		if len(markers) > 0 {
			err := errors.Join(pending...)
			pending = nil
			stop := false
			for _, m := range markers {
				m.ctl <- err
				stop = stop || m.stop
			}
			clear(markers)
			markers = markers[:0]
			if stop {
				return
			}
		}
	}
}

// commit writes one batch in one transaction.
func (r *Recorder) commit(batch []op) error {
	now := time.Now()
	return r.s.update(func(tx *bolt.Tx) error {
		open := make(map[string]*cassetteTx, 1)
		tx.OnCommit(func() { r.committed.Add(int64(len(batch))) })
		for i := range batch {
			o := &batch[i]
			c := open[o.cassette]
			if c == nil {
				var err error
				if c, err = openCassette(tx, o.cassette, now); err != nil {
					return err
				}
				open[o.cassette] = c
			}
			if err := c.put(o.cassette, o.value, &o.keyHash, o.body); err != nil {
				return err
			}
		}
		for _, c := range open {
			if err := c.finish(now); err != nil {
				return err
			}
		}
		return nil
	})
}

// Committed returns how many records this Recorder has committed so far:
// each is in the store. Records still queued are not counted.
func (r *Recorder) Committed() int64 { return r.committed.Load() }

// Count returns how many interactions the cassette holds in the store now
// (0 when it does not exist yet): what is committed, by this Recorder or
// before it.
func (r *Recorder) Count(cassette string) (int, error) {
	info, err := r.s.Cassette(cassette)
	if errors.Is(err, ErrNoCassette) {
		return 0, nil
	}
	return info.Interactions, err
}
