package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/cassetteproxy/cassetteproxy/fixtures"
	"github.com/cassetteproxy/cassetteproxy/proxy"
)

func driftCommand() *cli.Command {
	return &cli.Command{
		Name:      "drift",
		Usage:     "re-send fixtures' safe requests (GET, HEAD, read-only JSON-RPC) to the live upstreams and compare the answers with the recordings; exit 1 on a shape or status change",
		UsageText: "cassetteproxy drift FIXTURE_DIR... [--out DIR] [--upstream-ca FILE] [--rules FILE] [--header 'Name: value']",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Usage: "write drift.json and drift.prom to `DIR`", Value: "drift-out"},
			&cli.StringSliceFlag{Name: "upstream-ca", Usage: "PEM `FILE` of extra roots for verifying upstreams (repeatable)"},
			&cli.StringFlag{Name: "rules", Usage: "rules `FILE` whose ignore_response_paths are volatile (a fixture's rules.yaml is read too)"},
			&cli.StringSliceFlag{Name: "header", Usage: "`'Name: value'` sent with every request, e.g. credentials the recording scrubbed (repeatable)"},
			&cli.StringFlag{Name: "timeout", Usage: "give up on an answer after `DURATION`", Value: "30s"},
		},
		Action: driftAction,
	}
}

func driftAction(c *cli.Context) error {
	dirs, err := positionals(c)
	if err != nil {
		return err
	}
	if len(dirs) == 0 {
		return errors.New("drift takes fixture folders: cassetteproxy drift FIXTURE_DIR... [--out DIR]")
	}
	timeout, err := parseSeconds("--timeout", c.String("timeout"))
	if err != nil {
		return err
	}
	roots, err := proxy.LoadRoots(c.StringSlice("upstream-ca"))
	if err != nil {
		return err
	}
	rules, redactCfg, err := loadRules(c.String("rules"))
	if err != nil {
		return err
	}
	headers := http.Header{}
	for _, h := range c.StringSlice("header") {
		name, value, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(name) == "" {
			return fmt.Errorf("--header %q: use 'Name: value'", h)
		}
		headers.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	// Every fixture is loaded before anything is sent: a corrupt one stops
	// the run with its file named.
	var fs []*fixtures.Fixture
	for _, d := range dirs {
		f, err := fixtures.Load(d)
		if err != nil {
			return err
		}
		fs = append(fs, f)
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return err
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	d := &fixtures.Drifter{
		Client: &http.Client{Timeout: timeout, Transport: &http.Transport{
			Proxy: nil, DialContext: dialer.DialContext, TLSClientConfig: &tls.Config{RootCAs: roots},
			TLSHandshakeTimeout: 10 * time.Second, ForceAttemptHTTP2: true,
		}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		Secret: secret, Rules: rules, Redact: redactCfg, Headers: headers,
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	var results []fixtures.DriftFixture
	for _, f := range fs {
		df, err := d.Fixture(ctx, f)
		if err != nil {
			return err
		}
		results = append(results, df)
	}
	rep := fixtures.NewDriftReport(time.Now(), results)
	out := c.String("out")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	if err := fixtures.WriteDrift(out, rep); err != nil {
		return err
	}
	rep.WriteText(c.App.Writer)
	fmt.Fprintf(c.App.Writer, "report: %s, %s\n", filepath.Join(out, "drift.json"), filepath.Join(out, "drift.prom"))
	if rep.Requests[fixtures.DriftUnreachable] > 0 {
		fmt.Fprintf(c.App.ErrWriter, "cassetteproxy: warning: %d requests got no answer (upstream down or unreachable): their drift is unknown\n", rep.Requests[fixtures.DriftUnreachable])
	}
	if rep.Fail {
		return &exitError{code: 1, msg: fmt.Sprintf("drift: %d requests changed shape, %d changed status (see %s)",
			rep.Requests[fixtures.DriftShape], rep.Requests[fixtures.DriftStatus], filepath.Join(out, "drift.json"))}
	}
	return nil
}
