package main

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/cassetteproxy/cassetteproxy/internal/fsutil"
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
		UsageText: "cassetteproxy serve --mode record|replay|strict|live --cassette NAME [--listen 127.0.0.1:8080]\n   cassetteproxy serve --tenants FILE [--listen 127.0.0.1:8080]",
		Flags:     append(proxyFlags(), tenantsFlag()),
		Action: func(c *cli.Context) error {
			// Signals first: one that arrives once the ready file is written
			// (a script's Ctrl-C right after start) must stop the proxy
			// cleanly, not kill it with its recordings unflushed.
			sigs, stopCatching := catchInterrupts(1)
			defer stopCatching()
			if c.String("tenants") != "" {
				return serveTenants(c, sigs)
			}
			p, err := startProxy(c, "")
			if err != nil {
				return err
			}
			select {
			case sig := <-sigs:
				p.log.Info("stopping", "signal", sig.String())
			case err := <-p.Served():
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

// runningProxy is a started proxy (proxy.Running) with what the CLI opened
// for it.
type runningProxy struct {
	*proxy.Running
	addr       string
	srv        *proxy.Server
	st         *store.Store
	ca         *proxy.CA
	redactor   *redact.Redactor // the proxy's own, for what run keeps besides interactions
	allowHosts []string         // --allow-host and the rules file's allow_hosts: the run record's tool_allowlist
	logs       *lineBuffer      // request log lines, batched until stop
	log        *slog.Logger
	unlimit    func() // stops the memory limit that follows the live heap, if one runs
	auth       string // --proxy-auth USER:PASS, "" when none
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
	f, err := readProxyFlags(c, logs)
	if err != nil {
		return nil, err
	}
	logger := f.logger
	rules, redactCfg, err := loadRules(c.String("rules"))
	if err != nil {
		return nil, err
	}
	allowHosts, err := match.ParseHostPatterns(append(rules.AllowHosts(), c.StringSlice("allow-host")...))
	if err != nil {
		return nil, fmt.Errorf("--allow-host: %w", err)
	}
	auth := c.String("proxy-auth")
	if u, _, ok := strings.Cut(auth, ":"); auth != "" && (!ok || u == "") {
		return nil, errors.New("--proxy-auth wants USER:PASS (the part before the first colon is the user name)")
	}
	// Per-host modes (rules with mode:) mix record/live hosts with
	// replay/strict ones: the cassette is then both loaded and written, so
	// a record-mode run with such rules appends instead of starting fresh.
	plan := proxy.PlanFor(mode, rules)
	unlimit := tuneMemory(plan.Records)
	defer undoIfFailed(&err, unlimit)

	// Listen before the store is touched: a port in use must fail before a
	// record-mode start has emptied the cassette.
	ln, err := listen(c.String("listen"))
	if err != nil {
		return nil, err
	}
	if auth == "" && !isLoopback(ln.Addr()) {
		ln.Close()
		return nil, fmt.Errorf("--listen %s accepts connections from other machines: add --proxy-auth USER:PASS (or set CASSETTEPROXY_PROXY_AUTH), or listen on 127.0.0.1", c.String("listen"))
	}
	dbPath := globalString(c, "db")
	st, err := store.Open(dbPath, store.Options{Reserve: runID != ""}) // run closes a run record
	if err != nil {
		ln.Close()
		return nil, err
	}
	fail := func(err error) (*runningProxy, error) {
		ln.Close()
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
	start, err := proxy.PrepareCassette(st, cassette, rules, plan, mode, c.Bool("append"))
	if err != nil {
		return fail(err)
	}
	cfg := f.proxyConfig()
	cfg.Mode = mode
	cfg.Cassette = cassette
	cfg.Rules = rules
	cfg.Redactor = redactor
	cfg.Logger = logger
	cfg.RunID = runID
	cfg.Observe = observe
	cfg.Events = events
	cfg.AllowHosts = allowHosts
	cfg.ProxyAuth = auth
	running, err := proxy.Start(proxy.Launch{
		Listener: ln, RecordTo: st, Cassette: start,
		OnRecordError: func(err error) { logger.Error("recordings not committed: the cassette is incomplete", "err", err) },
		Config:        cfg,
	})
	if err != nil {
		st.Close()
		return nil, err
	}
	p := &runningProxy{Running: running, addr: running.Addr, srv: running.Server, st: st, ca: f.ca, redactor: redactor,
		allowHosts: allowHosts.List(), logs: logs, log: logger, unlimit: unlimit, auth: auth}
	logger.Info("listening", "addr", p.addr, "mode", string(mode), "cassette", cassette, "interactions", start.Index.Len(), "db", dbPath, "ca", f.ca.CertPath)
	if err := writeReadyFile(c.String("ready-file"), p.addr); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// drain is Running.Drain without its error (stop reports it): how many
// recordings could not be committed, and the last reason.
func (p *runningProxy) drain() (int, string) {
	lost, reason, _ := p.Drain()
	return lost, reason
}

// stop drains the proxy, then closes the store.
func (p *runningProxy) stop() error {
	_, _, drainErr := p.Drain()
	var errs []error
	if drainErr != nil {
		errs = append(errs, drainErr)
	}
	if err := p.st.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close store: %w", err))
	}
	p.logs.Close()
	p.unlimit()
	return errors.Join(errs...)
}

// loadRules reads --rules FILE; without one, the default rules and no
// extra redaction.
func loadRules(path string) (*match.Rules, redact.Config, error) {
	if path == "" {
		return match.DefaultRules(), redact.Config{}, nil
	}
	return proxy.LoadRulesFile(path)
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

// tuneMemory is proxy.TuneMemory for this process: a GOGC or GOMEMLIMIT
// the user set wins over the proxy's own tuning. The returned func undoes
// the tuning.
func tuneMemory(records bool) (undo func()) {
	return proxy.TuneMemory(records, os.Getenv("GOGC") != "", os.Getenv("GOMEMLIMIT") != "")
}

// undoIfFailed runs undo when *err is set: deferred by a start that has
// to give back what it took (such as the memory tuning) when a later step
// fails, and keep it when the start succeeds.
func undoIfFailed(err *error, undo func()) {
	if *err != nil {
		undo()
	}
}

// listen opens the proxy's TCP listener on addr (--listen); the error for a
// port already in use says how to pick another.
func listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("listen on %s: address already in use (another cassetteproxy? pick another with --listen, or --listen 127.0.0.1:0 for a free port)", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln, nil
}

// writeReadyFile writes addr, the address the proxy accepts connections
// on, to --ready-file's path (nothing when it is ""): a script waits for
// the file instead of polling the port. The write is atomic, so a reader
// never sees half an address.
func writeReadyFile(path, addr string) error {
	if path == "" {
		return nil
	}
	if err := fsutil.WriteFileAtomic(path, []byte(addr+"\n"), 0o644); err != nil {
		return fmt.Errorf("write ready file %s: %w", path, err)
	}
	return nil
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

// sharedProxyFlags are the flags serve and serve --tenants read alike.
type sharedProxyFlags struct {
	logger        *slog.Logger
	blockedStatus int
	ca            *proxy.CA
	roots         *x509.CertPool
	replayTiming  float64
	maxAge        time.Duration
	expiredBlock  bool
	bodyTimeout   time.Duration
	maxBody       int64
}

// proxyConfig is a proxy.Config with what these flags set filled in; serve
// and each tenant of serve --tenants add their own mode, cassette, rules,
// redactor and logger.
func (f sharedProxyFlags) proxyConfig() proxy.Config {
	return proxy.Config{
		CA:              f.ca,
		UpstreamRoots:   f.roots,
		BlockedStatus:   f.blockedStatus,
		MaxBody:         f.maxBody,
		ReplayTiming:    f.replayTiming,
		MaxRecordingAge: f.maxAge,
		ExpiredBlock:    f.expiredBlock,
		BodyTimeout:     f.bodyTimeout,
	}
}

// readProxyFlags reads and checks them; logs is where the logger writes.
func readProxyFlags(c *cli.Context, logs io.Writer) (sharedProxyFlags, error) {
	var f sharedProxyFlags
	var err error
	if f.logger, err = newLogger(globalString(c, "log-format"), logs); err != nil {
		return f, err
	}
	f.blockedStatus = c.Int("blocked-status")
	if f.blockedStatus < 100 || f.blockedStatus > 599 {
		return f, fmt.Errorf("--blocked-status %d is not an HTTP status (100-599)", f.blockedStatus)
	}
	if f.ca, err = proxy.LoadOrCreateCA(globalString(c, "home")); err != nil {
		return f, err
	}
	if f.roots, err = proxy.LoadRoots(c.StringSlice("upstream-ca")); err != nil {
		return f, err
	}
	if f.replayTiming, err = proxy.ParseReplayTiming(c.String("replay-timing")); err != nil {
		return f, err
	}
	if f.maxAge, f.expiredBlock, err = expiry(c); err != nil {
		return f, err
	}
	if f.bodyTimeout, err = parseSeconds("--body-timeout", c.String("body-timeout")); err != nil {
		return f, err
	}
	if f.bodyTimeout == 0 {
		return f, errors.New("--body-timeout 0: give how long a request body may make no progress, e.g. 60s")
	}
	f.maxBody = c.Int64("max-body")
	return f, nil
}
