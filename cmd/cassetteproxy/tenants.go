package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/cassetteproxy/cassetteproxy/match"
	"github.com/cassetteproxy/cassetteproxy/proxy"
	"github.com/cassetteproxy/cassetteproxy/redact"
	"github.com/cassetteproxy/cassetteproxy/store"
)

// tenantsFlag is serve's --tenants: many agents on one proxy.
func tenantsFlag() cli.Flag {
	return &cli.StringFlag{Name: "tenants", Usage: "serve many agents: `FILE` (YAML) maps each one's Proxy-Authorization user and password to a cassette and a mode (then no --mode, --cassette, --rules, --proxy-auth)", EnvVars: []string{"CASSETTEPROXY_TENANTS"}}
}

// tenantsProxy is a running serve --tenants: one listener, a proxy per
// tenant behind it.
type tenantsProxy struct {
	front   *proxy.Front
	st      *store.Store
	tenants []runningTenant
	logs    *lineBuffer
	log     *slog.Logger
	addr    string
	served  chan error
	unlimit func()
}

type runningTenant struct {
	spec proxy.TenantSpec
	srv  *proxy.Server
	rec  *store.Recorder // nil when the tenant records nothing
}

// serveTenants is serve --tenants FILE until a signal or a failure.
func serveTenants(c *cli.Context, sigs <-chan os.Signal) error {
	p, err := startTenants(c)
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
	return p.stop()
}

// startTenants checks the tenants file and the flags, listens, opens the
// store, builds each tenant's proxy as serve would build it alone, and
// serves them behind one proxy.Front.
func startTenants(c *cli.Context) (_ *tenantsProxy, err error) {
	for _, f := range [][2]string{{"mode", "MODE"}, {"cassette", "CASSETTE"}, {"rules", "RULES"}, {"proxy-auth", "PROXY_AUTH"}} {
		if c.IsSet(f[0]) {
			return nil, fmt.Errorf("--tenants and --%s (or CASSETTEPROXY_%s) do not go together: the tenants file gives each tenant its credentials, cassette, mode and rules", f[0], f[1])
		}
	}
	path := c.String("tenants")
	specs, err := proxy.LoadTenantsFile(path)
	if err != nil {
		return nil, err
	}
	logs := newLineBuffer(c.App.ErrWriter)
	defer func() {
		if err != nil {
			logs.Close()
		}
	}()
	f, err := readProxyFlags(c, logs)
	if err != nil {
		return nil, err
	}
	logger := f.logger
	type loaded struct {
		rules     *match.Rules
		redactCfg redact.Config
		allow     *match.HostPatterns
		plan      proxy.Plan
	}
	rulesOf := make([]loaded, len(specs))
	records := false
	for i, spec := range specs {
		rules, redactCfg, err := loadRules(spec.Rules)
		if err != nil {
			return nil, fmt.Errorf("tenant %s: %w", spec.User, err)
		}
		allow, err := match.ParseHostPatterns(append(rules.AllowHosts(), c.StringSlice("allow-host")...))
		if err != nil {
			return nil, fmt.Errorf("tenant %s: --allow-host: %w", spec.User, err)
		}
		plan := proxy.PlanFor(spec.Mode, rules)
		records = records || plan.Records
		rulesOf[i] = loaded{rules, redactCfg, allow, plan}
	}
	unlimit := tuneMemory(records)
	defer undoIfFailed(&err, unlimit)

	// Listen before the store is touched, as serve does. Every request needs
	// a tenant's credentials, so any address may be listened on.
	ln, err := listen(c.String("listen"))
	if err != nil {
		return nil, err
	}
	dbPath := globalString(c, "db")
	st, err := store.Open(dbPath, store.Options{})
	if err != nil {
		ln.Close()
		return nil, err
	}
	p := &tenantsProxy{st: st, logs: logs, log: logger, served: make(chan error, 1), unlimit: unlimit}
	fail := func(err error) (*tenantsProxy, error) {
		ln.Close()
		for _, t := range p.tenants {
			if t.rec != nil {
				t.rec.Close()
			}
		}
		st.Close()
		return nil, err
	}
	secret, err := st.Secret("redact-hmac", 32)
	if err != nil {
		return fail(err)
	}
	values, err := secretValues(c, os.Environ())
	if err != nil {
		return fail(err)
	}
	for _, spec := range specs {
		if spec.Password != "" { // an agent that sends its proxy URL somewhere must not get its password recorded
			values = append(values, spec.Password)
		}
	}
	var starts []*proxy.CassetteStart // each begun (emptied when recorded afresh) once every tenant is built
	tenants := make([]proxy.Tenant, 0, len(specs))
	counts := make([]int, len(specs))
	for i, spec := range specs {
		l := rulesOf[i]
		l.redactCfg.Secret, l.redactCfg.Values = secret, values
		redactor, err := redact.New(l.redactCfg)
		if err != nil {
			return fail(fmt.Errorf("tenant %s: rules %s: %w", spec.User, spec.Rules, err))
		}
		start, err := proxy.PrepareCassette(st, spec.Cassette, l.rules, l.plan, spec.Mode, c.Bool("append"))
		if err != nil {
			return fail(fmt.Errorf("tenant %s: %w", spec.User, err))
		}
		starts = append(starts, start)
		counts[i] = start.Index.Len()
		tlog := logger.With("tenant", spec.User)
		t := runningTenant{spec: spec}
		if l.plan.Records {
			t.rec = st.NewRecorder(store.RecorderOptions{OnError: func(err error) {
				tlog.Error("recordings not committed: the cassette is incomplete", "err", err)
			}})
		}
		cfg := f.proxyConfig()
		cfg.Mode = spec.Mode
		cfg.Cassette = spec.Cassette
		cfg.Index = start.Index
		cfg.Recorder = t.rec
		cfg.Rules = l.rules
		cfg.Redactor = redactor
		cfg.Logger = tlog
		cfg.AllowHosts = l.allow
		t.srv, err = proxy.New(cfg)
		p.tenants = append(p.tenants, t) // fail closes its recorder
		if err != nil {
			return fail(fmt.Errorf("tenant %s: %w", spec.User, err))
		}
		tenants = append(tenants, proxy.Tenant{User: spec.User, PasswordSum: spec.PasswordSum, Server: t.srv})
	}
	frontRedactor, err := redact.New(redact.Config{Secret: secret, Values: values})
	if err != nil {
		return fail(err)
	}
	p.front, err = proxy.NewFront(proxy.FrontConfig{Tenants: tenants, CA: f.ca, Redactor: frontRedactor, Logger: logger})
	if err != nil {
		return fail(err)
	}
	for _, start := range starts {
		if err := start.Begin(st); err != nil {
			return fail(err)
		}
	}
	p.addr = ln.Addr().String()
	go func() { p.served <- p.front.Serve(ln) }()
	logger.Info("listening", "addr", p.addr, "tenants", len(specs), "db", dbPath, "ca", f.ca.CertPath)
	for i, t := range p.tenants {
		logger.Info("tenant", "tenant", t.spec.User, "mode", string(t.spec.Mode), "cassette", t.spec.Cassette, "interactions", counts[i])
	}
	if err := writeReadyFile(c.String("ready-file"), p.addr); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// stop drains every tenant (connections closed, in-flight recordings handed
// over, recorders flushed), closes the store, and fails naming the
// cassettes whose recordings were answered but not committed.
func (p *tenantsProxy) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var errs []error
	if err := p.front.Shutdown(ctx); err != nil {
		errs = append(errs, err)
	}
	var lost []string
	for _, t := range p.tenants {
		if t.rec != nil {
			_ = t.rec.Close() // its errors are the failed commits, logged and counted
		}
		if n, reason := t.srv.RecordingLoss(); n > 0 {
			what := "recordings"
			if n == 1 {
				what = "recording"
			}
			lost = append(lost, fmt.Sprintf("tenant %s: %d %s lost, cassette %q incomplete (last error: %s)", t.spec.User, n, what, t.spec.Cassette, firstLine(reason)))
		}
	}
	if err := p.st.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close store: %w", err))
	}
	p.logs.Close()
	p.unlimit()
	if len(lost) > 0 {
		for _, err := range errs {
			p.log.Error("stopping", "err", err)
		}
		return fmt.Errorf("recordings answered but not committed to %s: %s", p.st.Path(), strings.Join(lost, "; "))
	}
	return errors.Join(errs...)
}
