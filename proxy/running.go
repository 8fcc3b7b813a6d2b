package proxy

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/cassetteproxy/cassetteproxy/internal/memlimit"
	"github.com/cassetteproxy/cassetteproxy/match"
	"github.com/cassetteproxy/cassetteproxy/store"
)

// Launch is what Start needs besides Config: where to listen, and where
// recordings go.
type Launch struct {
	Config
	Listener net.Listener // Start serves on it; Drain closes it
	// RecordTo is the store recordings are committed to: when the plan
	// records (PlanFor), Start makes Config.Recorder on it, and Drain
	// closes that. nil: Config.Recorder as given (or none).
	RecordTo      *store.Store
	OnRecordError func(error) // a failed commit (RecorderOptions.OnError)
	// Cassette, when set, is how the store's cassette starts
	// (PrepareCassette); Start fills Config.Index from it, and starts a
	// fresh cassette only once everything else is ready.
	Cassette *CassetteStart
}

// Running is a proxy serving in the background, with what it holds open:
// how serve, run, replay and monitor all run one.
type Running struct {
	Server *Server
	Addr   string // the listener's host:port
	rec    *store.Recorder
	owned  bool // rec was made by Start
	served chan error

	drainOnce  sync.Once
	drainErr   error
	lost       int
	lossReason string
}

// Start builds the Server and serves l.Listener in the background. On an
// error nothing is left running, and the listener is closed.
func Start(l Launch) (_ *Running, err error) {
	if l.Listener == nil {
		return nil, errNoListener
	}
	r := &Running{Addr: l.Listener.Addr().String(), served: make(chan error, 1), rec: l.Recorder}
	defer func() {
		if err != nil {
			l.Listener.Close()
			if r.owned {
				r.rec.Close()
			}
		}
	}()
	if l.Cassette != nil {
		l.Index = l.Cassette.Index
	}
	if l.RecordTo != nil && PlanFor(l.Mode, l.Rules).Records {
		r.rec = l.RecordTo.NewRecorder(store.RecorderOptions{OnError: l.OnRecordError})
		r.owned = true
		l.Recorder = r.rec
	}
	if r.Server, err = New(l.Config); err != nil {
		return nil, err
	}
	// Only now, with everything else in place, does a record-mode start
	// empty the cassette: any earlier failure leaves it as it was.
	if l.Cassette != nil {
		if err := l.Cassette.Begin(l.RecordTo); err != nil {
			return nil, err
		}
	}
	go func() { r.served <- r.Server.Serve(l.Listener) }()
	return r, nil
}

// Served delivers Serve's end: nil after Drain, else why it stopped.
func (r *Running) Served() <-chan error { return r.served }

// Drain stops the proxy in the order that loses nothing (connections
// closed, in-flight recordings handed over, the recorder Start made
// flushed and closed) and returns how many recordings could not be
// committed, with the last reason, and Shutdown's error. It is idempotent;
// the store stays open.
func (r *Running) Drain() (lost int, reason string, err error) {
	r.drainOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		r.drainErr = r.Server.Shutdown(ctx)
		if r.owned {
			// Its errors are the failed commits: each was reported as it
			// happened (OnError) and is counted in RecordingLoss.
			_ = r.rec.Close()
		}
		r.lost, r.lossReason = r.Server.RecordingLoss()
	})
	return r.lost, r.lossReason, r.drainErr
}

// CassetteStart is how a proxy starts with its store's cassette, as its
// plan needs: the index of what it replays (nil when nothing is; each
// answer is read from the store when a request matches it), and whether
// the cassette is started afresh (Start does that last).
type CassetteStart struct {
	Index *match.Index
	name  string
	fresh bool
}

// Begin empties the cassette in st when it starts afresh (a recording
// without appendTo), else does nothing. Start calls it once the proxy is
// built; a caller building several proxies (serve --tenants) calls it once
// all are, so that any failure leaves every cassette as it was.
func (c *CassetteStart) Begin(st *store.Store) error {
	if !c.fresh {
		return nil
	}
	return st.ResetCassette(c.name)
}

// PrepareCassette reads or creates the cassette name of st as plan needs:
// nothing read when nothing is replayed (record it afresh, or add to it
// with appendTo); created if new and loaded when rules replay some hosts of
// a recording mode; else it must exist.
func PrepareCassette(st *store.Store, name string, rules *match.Rules, plan Plan, mode Mode, appendTo bool) (*CassetteStart, error) {
	c := &CassetteStart{name: name}
	var err error
	switch {
	case !plan.Replays:
		if c.fresh = !appendTo; !c.fresh {
			err = st.CreateCassette(name)
		}
	case !PolicyFor(mode).Serves(): // rules replay some hosts: load what there is, creating it if new
		if err = st.CreateCassette(name); err == nil {
			c.Index, err = indexCassette(st, name, rules)
		}
	default: // the global mode replays: the cassette must exist
		c.Index, err = loadCassette(st, name, rules)
	}
	if err != nil {
		return nil, err
	}
	if c.Index != nil {
		// Reading the cassette left garbage (its requests, decoded once):
		// collect it and give the pages back before serving.
		debug.FreeOSMemory()
	}
	return c, nil
}

// indexCassette indexes a cassette for replay, reading on demand.
func indexCassette(st *store.Store, name string, rules *match.Rules) (*match.Index, error) {
	r, err := st.Replay(name, store.ReplayOptions{})
	if err != nil {
		return nil, err
	}
	return match.Load(rules, r)
}

// loadCassette indexes a cassette for replay, or says which exist and how
// to record the missing one.
func loadCassette(st *store.Store, name string, rules *match.Rules) (*match.Index, error) {
	ok, err := st.HasCassette(name)
	if err != nil {
		return nil, err
	}
	if !ok {
		infos, err := st.ListCassettes()
		if err != nil {
			return nil, err
		}
		names := make([]string, 0, len(infos))
		for _, in := range infos {
			names = append(names, in.Name)
		}
		have := "it has none"
		if len(names) > 0 {
			have = "it has: " + strings.Join(names, ", ")
		}
		return nil, fmt.Errorf("cassette %q not found in %s (%s); record it with: cassetteproxy serve --mode record --cassette %s", name, st.Path(), have, name)
	}
	return indexCassette(st, name, rules)
}

// TuneMemory sets the garbage collector for a proxy that records (plan
// Records) or only answers, unless the user set GOGC or GOMEMLIMIT (the
// caller says which). Answering from memory allocates little per request
// and keeps a small heap, so at Go's default (GOGC=100) collections come
// often and cost ~10% of a 1 KB replay's CPU; at 200 that halves, for a few
// MiB more. Recording also holds connection buffers and captured bodies
// that come and go: left to GOGC alone it keeps twice its live heap plus
// freed pages not yet given back (peak RSS at 64 clients ~52 MiB), so it
// runs under a soft memory limit that follows the live heap instead
// (internal/memlimit), and GOGC is set high enough (400) never to collect
// before that limit does: the limit counts all of Go's memory, so at
// GOGC=200 under a 24 MiB floor the heap had only 5-8 MiB to grow in and
// the collector ran 25-50 times a second under load (see
// memlimit.Default). A replaying proxy runs under the same limit at
// GOGC=200: with a small cassette the collector runs as at 200 alone, and
// the index of a large one (a few tens of MiB at 100k interactions) no
// longer makes the heap three times its size. The returned func stops the
// limit.
func TuneMemory(records, gogcSet, memLimitSet bool) (stop func()) {
	gcPercent := 200
	stop = func() {}
	if !memLimitSet {
		stop = memlimit.Start(memlimit.Default)
		if records {
			gcPercent = 400
		}
	}
	if !gogcSet {
		debug.SetGCPercent(gcPercent)
	}
	return stop
}

// LoadRoots is the system roots plus the PEM certificates of files, for
// verifying upstreams with a private CA (nil when no files: the system
// roots).
func LoadRoots(files []string) (*x509.CertPool, error) {
	if len(files) == 0 {
		return nil, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	for _, f := range files {
		pem, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read --upstream-ca: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--upstream-ca %s: no PEM certificate in it", f)
		}
	}
	return pool, nil
}

// errNoListener is Start's answer without a listener.
var errNoListener = errors.New("proxy: Start needs a listener")
