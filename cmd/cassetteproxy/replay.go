package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/cassetteproxy/cassetteproxy/fixtures"
	"github.com/cassetteproxy/cassetteproxy/isolate"
	"github.com/cassetteproxy/cassetteproxy/match"
	"github.com/cassetteproxy/cassetteproxy/proxy"
	"github.com/cassetteproxy/cassetteproxy/store"
)

func replayFlags() []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: "mode", Usage: "strict, replay or live (default: the fixture's input.json mode, else strict)"},
		&cli.StringFlag{Name: "code-version", Usage: "code `VERSION` under test, kept in the fixture's history [$CASSETTEPROXY_CODE_VERSION]", EnvVars: []string{"CASSETTEPROXY_CODE_VERSION"}},
		&cli.BoolFlag{Name: "keep", Usage: "keep the scratch work folder (its path is in the verdict)"},
		&cli.StringSliceFlag{Name: "upstream-ca", Usage: "live mode: PEM `FILE` of extra roots for verifying upstreams (repeatable)"},
		passEnvFlag(), secretEnvFlag(), secretFileFlag(),
		&cli.StringSliceFlag{Name: "allow-host", Usage: "only this host `GLOB` may be called (repeatable; adds to input.json's tool_allowlist and rules.yaml's allow_hosts)"},
		isolateFlag(),
		otlpFlag(),
	}, expiryFlags()...)
}

// passEnvFlag names caller variables a replayed command also gets.
func passEnvFlag() cli.Flag {
	return &cli.StringSliceFlag{Name: "pass-env", Usage: "hand the command your variable `NAME` too (repeatable; the environment is otherwise clean)"}
}

// passEnv reads --pass-env.
func passEnv(c *cli.Context) ([]string, error) {
	names := c.StringSlice("pass-env")
	if err := fixtures.CheckPassEnv(names); err != nil {
		return nil, fmt.Errorf("--pass-env: %w", err)
	}
	return names, nil
}

func replayCommand() *cli.Command {
	return &cli.Command{
		Name:      "replay",
		Usage:     "replay a fixture folder: run its command against its cassette and judge it by its contract",
		UsageText: "cassetteproxy replay FIXTURE_DIR [--mode strict|replay|live] [-- COMMAND [ARGS...]]",
		Flags:     replayFlags(),
		Action:    replayAction,
	}
}

func replayAction(c *cli.Context) error {
	pos, err := positionals(c)
	if err != nil {
		return err
	}
	raw := c.Args().Slice()
	var override []string
	for i, a := range raw {
		if a == "--" {
			override = raw[i+1:]
			break
		}
	}
	if len(pos)-len(override) != 1 {
		return errors.New("replay takes one fixture folder: cassetteproxy replay FIXTURE_DIR [--mode strict|replay|live] [-- COMMAND...]")
	}
	prewarmIsolation(c)
	dir := pos[0]
	var mode match.Mode
	if s := c.String("mode"); s != "" {
		if mode, err = fixtures.ParseReplayMode(s); err != nil {
			return err
		}
	}
	pass, err := passEnv(c)
	if err != nil {
		return err
	}
	f, err := fixtures.Load(dir)
	if err != nil {
		return err
	}
	otlp, err := newTelemetry(c)
	if err != nil {
		return err
	}
	defer closeTelemetry(c, otlp)
	sigs, stopCatching := catchInterrupts(4)
	defer stopCatching()

	re, closeStore, err := openReplayer(c)
	if err != nil {
		return err
	}
	defer closeStore()
	v, err := re.Replay(context.Background(), f, fixtures.ReplayOptions{Mode: mode, Argv: override, Keep: c.Bool("keep"),
		Stdout: os.Stderr, Stderr: os.Stderr, Signals: sigs, PassEnv: pass, WriteProof: true, AllowHosts: c.StringSlice("allow-host")})
	if err != nil {
		return err
	}
	if err := traceReplay(otlp, re.Records().GetRun, f, v); err != nil {
		fmt.Fprintln(c.App.ErrWriter, "cassetteproxy: warning: "+err.Error())
	}
	if err := printJSON(c, v); err != nil {
		return err
	}
	for _, w := range v.Warnings {
		fmt.Fprintln(c.App.ErrWriter, "cassetteproxy: warning: "+w)
	}
	if v.ProofWritten {
		fmt.Fprintf(c.App.ErrWriter, "cassetteproxy: fixture %s is proven (failed with %s in run %s, passed in run %s): proof written to %s\n",
			v.FixtureID, v.Proof.Failing.FailureClass, v.Proof.Failing.RunID, v.Proof.Passing.RunID, filepath.Join(f.Dir, fixtures.NotesFile))
	}
	if v.ExitWith != 0 {
		return &exitError{code: v.ExitWith, msg: fmt.Sprintf("fixture %s %s (%s)", v.FixtureID, v.Status, v.FailureClass)}
	}
	return nil
}

// openReplayer opens the store (and --runs-db) and builds the fixture
// replayer on it from the global flags, the command's flags and the
// process environment. The returned func closes them.
func openReplayer(c *cli.Context) (*fixtures.Replayer, func(), error) {
	var shared *records
	if runsDB(c) != "" {
		var err error
		if shared, err = openRecords(c, nil); err != nil {
			return nil, nil, err
		}
	}
	st, err := store.Open(globalString(c, "db"), store.Options{Reserve: true}) // replay and monitor close run records
	if err != nil {
		if shared != nil {
			shared.close()
		}
		return nil, nil, err
	}
	closeAll := func() {
		st.Close()
		if shared != nil {
			shared.close()
		}
	}
	re, err := newReplayer(c, st)
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	if shared != nil {
		re.Runs = shared
	}
	return re, closeAll, nil
}

func newReplayer(c *cli.Context, st *store.Store) (*fixtures.Replayer, error) {
	iso, err := isolate.ParseMode(c.String("isolate"))
	if err != nil {
		return nil, err
	}
	ca, err := proxy.LoadOrCreateCA(globalString(c, "home"))
	if err != nil {
		return nil, err
	}
	bundle, err := ca.WriteBundle()
	if err != nil {
		return nil, err
	}
	secret, err := st.Secret("redact-hmac", 32)
	if err != nil {
		return nil, err
	}
	roots, err := proxy.LoadRoots(c.StringSlice("upstream-ca"))
	if err != nil {
		return nil, err
	}
	values, err := secretValues(c, os.Environ())
	if err != nil {
		return nil, err
	}
	maxAge, expiredBlock, err := expiry(c)
	if err != nil {
		return nil, err
	}
	// replay logs a line per request, as serve does, so a red fixture shows
	// what was asked and what was blocked; monitor replays many fixtures,
	// whose lines would drown the gate's: warnings only there.
	log, err := newLogger(globalString(c, "log-format"), c.App.ErrWriter)
	if err != nil {
		return nil, err
	}
	if c.Command.Name == "monitor" {
		log = slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return &fixtures.Replayer{Store: st, Host: hostName(), CA: ca, CABundle: bundle, Secret: secret, Logger: log,
		CodeVersion: c.String("code-version"), Environ: os.Environ(), UpstreamRoots: roots, SecretValues: values,
		MaxRecordingAge: maxAge, ExpiredBlock: expiredBlock,
		Isolate: iso, Say: func(s string) { fmt.Fprintln(c.App.ErrWriter, "cassetteproxy: "+s) }}, nil
}
