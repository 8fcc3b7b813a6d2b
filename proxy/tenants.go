package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"github.com/cassetteproxy/cassetteproxy/internal/promtext"
	"github.com/cassetteproxy/cassetteproxy/match"
	"github.com/cassetteproxy/cassetteproxy/redact"
)

// Tenant is one agent behind a Front: the credentials that select it and
// the proxy that answers it (its cassette, mode, rules and recorder). Its
// Server is built as for a proxy of its own, without ProxyAuth, and is
// never given a listener: the Front hands it its requests.
type Tenant struct {
	User        string
	PasswordSum [32]byte // SHA-256 of the password
	Server      *Server
}

// FrontConfig is what a Front needs besides its tenants.
type FrontConfig struct {
	Tenants  []Tenant
	CA       *CA              // the tenants' CA: /ca.pem serves it
	Redactor *redact.Redactor // scrubs what the Front logs of requests it refuses
	Logger   *slog.Logger
}

// Front is many agents on one proxy (serve --tenants): every proxied
// request and CONNECT must carry a tenant's credentials in
// Proxy-Authorization: Basic, and goes to that tenant's Server, which
// answers it as if it listened alone; the requests inside a tunnel belong
// to the tenant whose credentials opened it. Without known credentials the
// answer is 407. The proxy's own /healthz (every tenant's counts),
// /metrics and /ca.pem stay open; the events API needs credentials, and
// reaches that tenant's Server.
type Front struct {
	tenants []frontTenant
	log     *slog.Logger
	red     *redact.Redactor
	// conns accepts and tracks the connections (the idle and head bounds
	// of tunnels, closing them all at Shutdown) as for a proxy of its own;
	// its handler is the Front. It answers nothing itself.
	conns   *Server
	metrics http.Handler
}

type frontTenant struct {
	user    string
	userSum [32]byte
	passSum [32]byte
	srv     *Server
}

// NewFront puts tenants behind one listener. Users must be unique.
func NewFront(cfg FrontConfig) (*Front, error) {
	if len(cfg.Tenants) == 0 {
		return nil, errors.New("proxy: a Front needs at least one tenant")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	f := &Front{log: cfg.Logger, red: cfg.Redactor}
	seen := map[string]bool{}
	for _, t := range cfg.Tenants {
		if t.Server == nil || t.User == "" {
			return nil, errors.New("proxy: a tenant needs a user and a Server")
		}
		if seen[t.User] {
			return nil, fmt.Errorf("proxy: tenant %q given twice", t.User)
		}
		seen[t.User] = true
		if t.Server.authSum != nil {
			return nil, fmt.Errorf("proxy: tenant %q: the Front checks credentials, its Server must have no ProxyAuth", t.User)
		}
		f.tenants = append(f.tenants, frontTenant{user: t.User, userSum: sha256.Sum256([]byte(t.User)), passSum: t.PasswordSum, srv: t.Server})
	}
	// One family per metric, with every tenant's series (told apart by
	// their cassettes): promtext merges the families of the same name.
	f.metrics = promtext.Handler(func() []promtext.Family {
		var fams []promtext.Family
		for _, t := range f.tenants {
			fams = append(fams, t.srv.metricFamilies()...)
		}
		return fams
	})
	conns, err := New(Config{Mode: ModeReplay, Rules: match.DefaultRules(), Redactor: cfg.Redactor, CA: cfg.CA, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	conns.srv.Handler = f
	f.conns = conns
	return f, nil
}

// Serve accepts connections until Shutdown.
func (f *Front) Serve(ln net.Listener) error {
	for _, t := range f.tenants {
		// Requests to the proxy's own address (through a tunnel too) are
		// the tenant's to answer: its health, its run's events.
		t.srv.self.CompareAndSwap(nil, newSelfAddr(ln.Addr()))
	}
	return f.conns.Serve(ln)
}

// Shutdown stops accepting and closes every connection, then shuts each
// tenant down: their upstream calls end, their recordings are handed to
// their recorders. The caller closes the recorders afterwards.
func (f *Front) Shutdown(ctx context.Context) error {
	errs := []error{f.conns.Shutdown(ctx)}
	for _, t := range f.tenants {
		if err := t.srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("tenant %s: %w", t.user, err))
		}
	}
	return errors.Join(errs...)
}

// ServeHTTP answers the proxy's open endpoints itself and hands everything
// else to the tenant whose credentials the request carries.
func (f *Front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect && (!r.URL.IsAbs() || f.conns.isSelf(r.URL.Host)) {
		switch r.URL.Path {
		case "/healthz", "/_cassetteproxy/health":
			f.serveHealth(w)
			return
		case MetricsPath:
			f.metrics.ServeHTTP(w, r)
			return
		case "/ca.pem", "/_cassetteproxy/ca.pem":
			f.conns.serveSelf(w, r)
			return
		}
	}
	t := f.tenantFor(r)
	if t == nil {
		target := r.Host
		if r.Method != http.MethodConnect {
			target = f.red.String(r.URL.String())
		}
		f.log.Warn("proxy authentication required", "method", r.Method, "url", target, "remote", r.RemoteAddr,
			"credentials", r.Header.Get("Proxy-Authorization") != "")
		writeProxyAuthRequired(w, `{"error":"proxy authentication required: send Proxy-Authorization: Basic with a tenant's user and password from --tenants (e.g. HTTPS_PROXY=http://USER:PASSWORD@HOST:PORT)"}`)
		return
	}
	t.srv.ServeHTTP(w, r)
}

// tenantFor is the tenant whose user and password the request carries, or
// nil. Every tenant is compared, each in constant time, on SHA-256 sums:
// the time taken says nothing of which part matched, and a client trying
// wrong credentials costs the others nothing but its own CPU.
func (f *Front) tenantFor(r *http.Request) *frontTenant {
	raw, ok := basicCredentials(r)
	if !ok {
		return nil
	}
	user, pass, ok := bytes.Cut(raw, []byte{':'})
	if !ok {
		return nil // not USER:PASSWORD
	}
	us, ps := sha256.Sum256(user), sha256.Sum256(pass)
	found := -1
	for i := range f.tenants {
		t := &f.tenants[i]
		if subtle.ConstantTimeCompare(us[:], t.userSum[:])&subtle.ConstantTimeCompare(ps[:], t.passSum[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return nil
	}
	return &f.tenants[found]
}

// tenantsHealth is a Front's /healthz answer: each tenant's own, with its
// user.
type tenantsHealth struct {
	Status  string         `json:"status"`           // ok, or degraded when any tenant is (answered 503)
	Reason  string         `json:"reason,omitempty"` // recording_lost
	Tenants []tenantHealth `json:"tenants"`
}

type tenantHealth struct {
	User string `json:"user"`
	health
}

func (f *Front) serveHealth(w http.ResponseWriter) {
	h := tenantsHealth{Status: "ok", Tenants: make([]tenantHealth, 0, len(f.tenants))}
	for _, t := range f.tenants {
		th := tenantHealth{User: t.user, health: t.srv.healthNow()}
		if th.Status != "ok" {
			h.Status, h.Reason = th.Status, th.Reason
		}
		h.Tenants = append(h.Tenants, th)
	}
	w.Header().Set("Content-Type", "application/json")
	if h.Status != "ok" {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	b, _ := json.Marshal(h)
	_, _ = w.Write(append(b, '\n'))
}
