package proxy

import (
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/cassetteproxy/cassetteproxy/store"
)

// recording is one forwarded answer on its way to the store. forward
// begins it when the upstream answers (counted in Server.inflight); the
// capture calls bodyEnded once the body has ended, read whole or cut short;
// commit redacts and keys it and hands it to the recorder, on the client's
// goroutine or on one of the server's save workers.
type recording struct {
	s       *Server
	in      store.Interaction
	add     bool // RecordAdd: the answer also joins the index
	started time.Time
	c       *capture

	// The upstream call's context: released when the body ends.
	stopAfter func() bool
	cancel    func()
}

// inlineSave is the largest body committed on the client's own goroutine.
const inlineSave = 4 << 10

// bodyEnded is the capture's end: the upstream call is released (a body
// read to its end has already given its connection back to the transport's
// pool; one cut short is aborted here, or inside a tunnel by the Close that
// ends it), and the recording is committed.
func (r *recording) bodyEnded(c *capture) {
	r.in.DurationMs = time.Since(r.started).Milliseconds()
	r.stopAfter()
	r.cancel()
	r.c = c
	if r.add || c.sizeSeen() <= inlineSave {
		// Added to the index: the next identical request must already find
		// it. A small body: committing it costs a few microseconds, less
		// than handing it to a worker would.
		r.commit()
		return
	}
	// Redaction, keying and encoding of a larger body cost more than the
	// response took to stream: a save worker does them, so this
	// connection's next request is not kept waiting. A full queue pushes
	// back here.
	r.s.saves.enqueue(r)
}

// commit moves the captured body into the interaction, saves it, and lets
// the capture recycle its buffer once the store no longer needs it. The
// recording is then no longer in flight.
func (r *recording) commit() {
	defer r.s.inflight.Done()
	r.c.fill(&r.in.Response)
	if recorded, ok := r.s.save(r.in, r.add); ok {
		r.c.release(&recorded)
	}
}

// save redacts a finished interaction and hands it to the recorder; with
// add it also joins the index, so the next identical request is replayed.
// It returns the response as recorded (ok unless a panic cut it short), for
// the capture to tell whether its buffer is still in use.
func (s *Server) save(in store.Interaction, add bool) (recorded store.Response, ok bool) {
	// Upstream bytes drive redaction and keying: a bug they trip must cost
	// this one recording, never the process (goproxy recovers nothing).
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("recording dropped: internal error", "url", in.Request.URL, "panic", fmt.Sprint(p))
			s.dropRecording(fmt.Errorf("recording of %s dropped: internal error: %v", in.Request.URL, p))
			recorded, ok = store.Response{}, false
		}
	}()
	redactResponse(s.memo, s.redactor, &in.Response) // the request was scrubbed in handle, before keying
	in.Key = s.cfg.Rules.Key(&in.Request)
	if add {
		s.tools.learn(&in) // before the store policy: it reads the answer
	}
	// The store policy (rules file store:) leaves bodies out after
	// redaction and keying, and before anything keeps the interaction.
	s.cfg.Rules.ApplyStorePolicy(&in)
	if add {
		s.index.Add(in)
	}
	// The recorded body is never written to afterwards (Record's one
	// condition): it is the memo's copy, a redacted copy, or the capture's
	// buffer, which release then leaves to the garbage collector.
	if err := s.cfg.Recorder.Record(s.cfg.Cassette, in); err != nil {
		s.log.Error("recording failed", "url", s.redactor.String(in.Request.URL), "err", err)
		s.dropRecording(err)
	}
	return in.Response, true
}

// saveWorkers commit a server's larger recordings off the client's path.
// They start with the first such recording and stop when the server has
// shut down with nothing in flight.
type saveWorkers struct {
	once, end sync.Once
	q         chan *recording
}

// saveQueueLen is how many recordings may wait for a worker: enough for a
// burst, and each one holds a captured body, so the bound is also the
// queue's memory (at 256 the record harness's peak RSS at 64 clients grew
// by ~10 MiB).
const saveQueueLen = 64

func (w *saveWorkers) enqueue(r *recording) {
	w.once.Do(func() {
		w.q = make(chan *recording, saveQueueLen)
		for range runtime.GOMAXPROCS(0) {
			go func() {
				for r := range w.q {
					r.commit()
				}
			}()
		}
	})
	w.q <- r
}

// stop ends the workers once nothing more can be enqueued.
func (w *saveWorkers) stop() {
	w.once.Do(func() {}) // none started: none will
	w.end.Do(func() {
		if w.q != nil {
			close(w.q)
		}
	})
}
