package main

import (
	"github.com/cassetteproxy/cassetteproxy/internal/fsutil"
	"github.com/cassetteproxy/cassetteproxy/internal/memlimit"

	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/cassetteproxy/cassetteproxy/internal/textlog"
	"github.com/cassetteproxy/cassetteproxy/match"
	"github.com/cassetteproxy/cassetteproxy/proxy"
	"github.com/cassetteproxy/cassetteproxy/redact"
	"github.com/cassetteproxy/cassetteproxy/store"
)

// proxyFlags are shared by serve and run.
func proxyFlags() []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: "mode", Usage: "record, replay, strict or live", EnvVars: []string{"CASSETTEPROXY_MODE"}, Value: "replay"},
		&cli.StringFlag{Name: "cassette", Usage: "cassette `NAME`", EnvVars: []string{"CASSETTEPROXY_CASSETTE"}, Value: "default"},
		&cli.StringFlag{Name: "listen", Usage: "`host:port` to listen on (port 0 picks a free one)", EnvVars: []string{"CASSETTEPROXY_LISTEN"}, Value: "127.0.0.1:8080"},
		&cli.StringFlag{Name: "ready-file", Usage: "write the listening host:port to `FILE` once accepting"},
		&cli.StringSliceFlag{Name: "upstream-ca", Usage: "PEM `FILE` of extra roots for verifying upstreams (repeatable)"},
		&cli.StringFlag{Name: "rules", Usage: "matching and redaction rules `FILE` (YAML)", EnvVars: []string{"CASSETTEPROXY_RULES"}},
		&cli.IntFlag{Name: "blocked-status", Usage: "HTTP status of a blocked answer", Value: 403},
		&cli.BoolFlag{Name: "append", Usage: "record mode: add to the cassette instead of starting it fresh"},
		&cli.Int64Flag{Name: "max-body", Usage: "largest body recorded, in bytes; larger ones pass through unrecorded", Value: 64 << 20},
		&cli.StringSliceFlag{Name: "allow-host", Usage: "only this host `GLOB` may be called, in every mode (repeatable; adds to the rules file's allow_hosts); others are blocked host_not_allowed"},
		&cli.StringFlag{Name: "replay-timing", Usage: "pace of replayed streams: fast (as fast as the client reads), recorded (the recorded gaps), or scale:F (gaps times F)", EnvVars: []string{"CASSETTEPROXY_REPLAY_TIMING"}, Value: "fast"},
		secretEnvFlag(), secretFileFlag(),
		&cli.StringFlag{Name: "body-timeout", Usage: "answer 408 to a request body that makes no progress for `DURATION`", Value: proxy.DefaultBodyTimeout.String()},
		&cli.StringFlag{Name: "proxy-auth", Usage: "require Proxy-Authorization: Basic `USER:PASS` on every request (needed to --listen beyond loopback) [$CASSETTEPROXY_PROXY_AUTH]", EnvVars: []string{"CASSETTEPROXY_PROXY_AUTH"}},
	}, expiryFlags()...)
}

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:      "serve",
		Usage:     "run the proxy until interrupted",
		UsageText: "cassetteproxy serve --mode record|replay|strict|live --cassette NAME [--listen 127.0.0.1:8080]",
		Flags:     proxyFlags(),
		Action: func(c *cli.Context) error {
			// Signals first: one that arrives once the ready file is written
			// (a script's Ctrl-C right after start) must stop the proxy
			// cleanly, not kill it with its recordings unflushed.
			sigs := make(chan os.Signal, 1)
			signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
			defer signal.Stop(sigs)
			p, err := startProxy(c, "")
			if err != nil {
				return err
			}
			select {
			case sig := <-sigs:
				p.log.Info("stopping", "signal", sig.String())
			case err := <-p.served:
				if err != nil {
					p.stop()
					return fmt.Errorf("serve on %s: %w", p.addr, err)
				}
			}
			err = p.stop()
			if lost, reason := p.drain(); lost > 0 {
				// What the clients were answered is not all in the store:
				// the exit code must say so, whatever else went wrong.
				if err != nil {
					p.log.Error("stopping", "err", err)
				}
				return fmt.Errorf("%s lost: answered but not committed to %s (last error: %s); cassette %q is incomplete",
					plural(lost, "recording"), p.st.Path(), firstLine(reason), c.String("cassette"))
			}
			return err
		},
	}
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what + " was"
	}
	return fmt.Sprintf("%d %ss were", n, what)
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}

// runningProxy is a started proxy with everything it holds open.
type runningProxy struct {
	addr       string
	srv        *proxy.Server
	st         *store.Store
	rec        *store.Recorder
	ca         *proxy.CA
	redactor   *redact.Redactor // the proxy's own, for what run keeps besides interactions
	allowHosts []string         // --allow-host and the rules file's allow_hosts: the run record's tool_allowlist
	logs       *lineBuffer      // request log lines, batched until stop
	log        *slog.Logger
	served     chan error
	unlimit    func() // stops the memory limit that follows the live heap, if one runs

	auth       string // --proxy-auth USER:PASS, "" when none
	drainOnce  sync.Once
	drainErr   error
	lost       int    // recordings answered but not committed (known once drained)
	lossReason string // the last reason one was lost
}

// startProxy opens the store, loads the cassette, listens, and serves in the
// background. Everything it opened is closed by stop.
func startProxy(c *cli.Context, runID string) (*runningProxy, error) {
	return startProxyObserved(c, runID, nil, nil)
}

// startProxyObserved is startProxy with an observer of every request
// (proxy.Config.Observe) and a taker of the agent's events
// (proxy.Config.Events), for run records.
func startProxyObserved(c *cli.Context, runID string, observe func(proxy.Outcome), events func(store.RunEvent) (int, error)) (_ *runningProxy, err error) {
	logs := newLineBuffer(c.App.ErrWriter)
	defer func() {
		if err != nil {
			logs.Close()
		}
	}()
	mode, err := proxy.ParseMode(c.String("mode"))
	if err != nil {
		return nil, err
	}
	cassette := c.String("cassette")
	if cassette == "" {
		return nil, errors.New("--cassette NAME is required")
	}
	logger, err := newLogger(globalString(c, "log-format"), logs)
	if err != nil {
		return nil, err
	}
	status := c.Int("blocked-status")
	if status < 100 || status > 599 {
		return nil, fmt.Errorf("--blocked-status %d is not an HTTP status (100-599)", status)
	}
	ca, err := proxy.LoadOrCreateCA(globalString(c, "home"))
	if err != nil {
		return nil, err
	}
	roots, err := upstreamRoots(c.StringSlice("upstream-ca"))
	if err != nil {
		return nil, err
	}
	rules, redactCfg, err := loadRules(c.String("rules"))
	if err != nil {
		return nil, err
	}
	allowHosts, err := match.ParseHostPatterns(append(rules.AllowHosts(), c.StringSlice("allow-host")...))
	if err != nil {
		return nil, fmt.Errorf("--allow-host: %w", err)
	}
	replayTiming, err := proxy.ParseReplayTiming(c.String("replay-timing"))
	if err != nil {
		return nil, err
	}
	maxAge, expiredBlock, err := expiry(c)
	if err != nil {
		return nil, err
	}
	bodyTimeout, err := parseSeconds("--body-timeout", c.String("body-timeout"))
	if err != nil {
		return nil, err
	}
	if bodyTimeout == 0 {
		return nil, errors.New("--body-timeout 0: give how long a request body may make no progress, e.g. 60s")
	}
	auth := c.String("proxy-auth")
	if u, _, ok := strings.Cut(auth, ":"); auth != "" && (!ok || u == "") {
		return nil, errors.New("--proxy-auth wants USER:PASS (the part before the first colon is the user name)")
	}
	// Per-host modes (rules with mode:) mix record/live hosts with
	// replay/strict ones: the cassette is then both loaded and written, so
	// a record-mode run with such rules appends instead of starting fresh.
	plan := proxy.PlanFor(mode, rules)
	// Garbage collection. Answering from memory allocates little per
	// request and keeps a small heap, so at Go's default (GOGC=100)
	// collections come often and cost ~10% of a 1 KB replay's CPU; at 200
	// that halves, for a few MiB more. Recording also holds connection
	// buffers and captured bodies that come and go: left to GOGC alone it
	// keeps twice its live heap plus freed pages not yet given back (peak
	// RSS at 64 clients ~52 MiB), so it runs under a soft memory limit
	// that follows the live heap instead (internal/memlimit), and GOGC is
	// set high enough (400) never to collect before that limit does: the
	// limit counts all of Go's memory, so at GOGC=200 under a 24 MiB floor
	// the heap had only 5-8 MiB to grow in and the collector ran 25-50
	// times a second under load (see memlimit.Default). A replaying proxy
	// runs under the same limit at GOGC=200: with a small cassette the
	// collector runs as at 200 alone, and the index of a large one (a few
	// tens of MiB at 100k interactions) no longer makes the heap three
	// times its size. GOGC and GOMEMLIMIT, when set, win.
	gcPercent := 200
	unlimit := func() {}
	if os.Getenv("GOMEMLIMIT") == "" {
		unlimit = memlimit.Start(memlimit.Default)
		if plan.Records {
			gcPercent = 400
		}
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	defer func() {
		if err != nil {
			unlimit()
		}
	}()

	// Listen before the store is touched: a port in use must fail before a
	// record-mode start has emptied the cassette.
	ln, err := net.Listen("tcp", c.String("listen"))
	if err != nil {
		return nil, listenError(c.String("listen"), err)
	}
	if auth == "" && !isLoopback(ln.Addr()) {
		ln.Close()
		return nil, fmt.Errorf("--listen %s accepts connections from other machines: add --proxy-auth USER:PASS (or set CASSETTEPROXY_PROXY_AUTH), or listen on 127.0.0.1", c.String("listen"))
	}
	dbPath := globalString(c, "db")
	st, err := store.Open(dbPath, store.Options{})
	if err != nil {
		ln.Close()
		return nil, err
	}
	p := &runningProxy{st: st, ca: ca, log: logger, logs: logs, served: make(chan error, 1), unlimit: unlimit, allowHosts: allowHosts.List(), auth: auth}
	fail := func(err error) (*runningProxy, error) {
		ln.Close()
		if p.rec != nil {
			p.rec.Close()
		}
		st.Close()
		return nil, err
	}
	secret, err := st.Secret("redact-hmac", 32)
	if err != nil {
		return fail(err)
	}
	redactCfg.Secret = secret
	if redactCfg.Values, err = secretValues(c, os.Environ()); err != nil {
		return fail(err)
	}
	redactor, err := redact.New(redactCfg)
	if err != nil {
		return fail(fmt.Errorf("rules %s: %w", c.String("rules"), err))
	}
	p.redactor = redactor

	// A replaying proxy keeps the cassette's index in memory and reads each
	// recorded answer from the store when a request matches it.
	var index *match.Index
	fresh := false // start the cassette afresh, as the last step before serving
	switch {
	case !plan.Replays: // nothing read from the cassette: record it afresh, or add to it with --append
		if fresh = !c.Bool("append"); !fresh {
			if err = st.CreateCassette(cassette); err != nil {
				return fail(err)
			}
		}
	case mode == proxy.ModeRecord: // rules replay some hosts: load what there is, creating it if new
		if err = st.CreateCassette(cassette); err == nil {
			index, err = indexCassette(st, cassette, rules)
		}
		if err != nil {
			return fail(err)
		}
	default: // the global mode replays: the cassette must exist
		if index, err = loadCassette(st, dbPath, cassette, rules); err != nil {
			return fail(err)
		}
	}
	if index != nil {
		// Reading the cassette left garbage (its requests, decoded once):
		// collect it and give the pages back before serving.
		debug.FreeOSMemory()
	}
	if plan.Records {
		p.rec = st.NewRecorder(store.RecorderOptions{OnError: func(err error) {
			logger.Error("recordings not committed: the cassette is incomplete", "err", err)
		}})
	}

	p.addr = ln.Addr().String()
	p.srv, err = proxy.New(proxy.Config{
		Mode:            mode,
		Cassette:        cassette,
		Index:           index,
		Recorder:        p.rec,
		Rules:           rules,
		Redactor:        redactor,
		CA:              ca,
		UpstreamRoots:   roots,
		BlockedStatus:   status,
		MaxBody:         c.Int64("max-body"),
		ReplayTiming:    replayTiming,
		MaxRecordingAge: maxAge,
		ExpiredBlock:    expiredBlock,
		Logger:          logger,
		RunID:           runID,
		Observe:         observe,
		Events:          events,
		AllowHosts:      allowHosts,
		BodyTimeout:     bodyTimeout,
		ProxyAuth:       auth,
	})
	if err != nil {
		return fail(err)
	}
	// Only now, with everything else in place, does a record-mode start
	// empty the cassette: any earlier failure leaves it as it was.
	if fresh {
		if err := st.ResetCassette(cassette); err != nil {
			return fail(err)
		}
	}
	go func() { p.served <- p.srv.Serve(ln) }()
	logger.Info("listening", "addr", p.addr, "mode", string(mode), "cassette", cassette, "interactions", index.Len(), "db", dbPath, "ca", ca.CertPath)
	if rf := c.String("ready-file"); rf != "" {
		if err := fsutil.WriteFileAtomic(rf, []byte(p.addr+"\n"), 0o644); err != nil {
			p.stop()
			return nil, fmt.Errorf("write ready file %s: %w", rf, err)
		}
	}
	return p, nil
}

// drain stops the proxy in the order that loses nothing (connections
// closed, in-flight recordings handed over, the recorder flushed) and
// returns how many recordings could not be committed, with the last
// reason. The store stays open (run closes its record after this). It is
// idempotent.
func (p *runningProxy) drain() (int, string) {
	p.drainOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		p.drainErr = p.srv.Shutdown(ctx)
		if p.rec != nil {
			// Its errors are the failed commits: each was logged as it
			// happened (OnError) and is counted in RecordingLoss.
			_ = p.rec.Close()
		}
		p.lost, p.lossReason = p.srv.RecordingLoss()
	})
	return p.lost, p.lossReason
}

// stop drains the proxy, then closes the store.
func (p *runningProxy) stop() error {
	p.drain()
	var errs []error
	if p.drainErr != nil {
		errs = append(errs, p.drainErr)
	}
	if err := p.st.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close store: %w", err))
	}
	p.logs.Close()
	p.unlimit()
	return errors.Join(errs...)
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
func loadCassette(st *store.Store, dbPath, name string, rules *match.Rules) (*match.Index, error) {
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
		return nil, fmt.Errorf("cassette %q not found in %s (%s); record it with: cassetteproxy serve --mode record --cassette %s", name, dbPath, have, name)
	}
	return indexCassette(st, name, rules)
}

// loadRules reads --rules FILE; without one, the default rules and no
// extra redaction.
func loadRules(path string) (*match.Rules, redact.Config, error) {
	if path == "" {
		return match.DefaultRules(), redact.Config{}, nil
	}
	return proxy.LoadRulesFile(path)
}

func upstreamRoots(files []string) (*x509.CertPool, error) {
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

// isLoopback reports whether a listener accepts loopback connections only.
func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// proxyURL is the URL clients use to reach the proxy at addr, with the
// --proxy-auth credentials in it when there are any.
func (p *runningProxy) proxyURL(addr string) string {
	u := url.URL{Scheme: "http", Host: addr}
	if user, pass, ok := strings.Cut(p.auth, ":"); ok {
		u.User = url.UserPassword(user, pass)
	}
	return u.String()
}

func listenError(addr string, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("listen on %s: address already in use (another cassetteproxy? pick another with --listen, or --listen 127.0.0.1:0 for a free port)", addr)
	}
	return fmt.Errorf("listen on %s: %w", addr, err)
}

func newLogger(format string, w io.Writer) (*slog.Logger, error) {
	switch format {
	case "text", "":
		return slog.New(textlog.New(w, nil)), nil // slog.TextHandler's format, written faster
	case "json":
		return slog.New(slog.NewJSONHandler(w, nil)), nil
	}
	return nil, fmt.Errorf("unknown --log-format %q: use text or json", format)
}
