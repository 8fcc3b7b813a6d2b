package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/cassetteproxy/cassetteproxy/fixtures"
	"github.com/cassetteproxy/cassetteproxy/match"
	"github.com/cassetteproxy/cassetteproxy/proxy"
	"github.com/cassetteproxy/cassetteproxy/redact"
	"github.com/cassetteproxy/cassetteproxy/runner"
	"github.com/cassetteproxy/cassetteproxy/store"
)

func replayFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "mode", Usage: "strict, replay or live (default: the fixture's input.json mode, else strict)"},
		&cli.StringFlag{Name: "code-version", Usage: "code `VERSION` under test, kept in the fixture's history [$CASSETTEPROXY_CODE_VERSION]", EnvVars: []string{"CASSETTEPROXY_CODE_VERSION"}},
		&cli.BoolFlag{Name: "keep", Usage: "keep the scratch work folder (its path is in the verdict)"},
	}
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
	dir := pos[0]
	mode := c.String("mode")
	if mode != "" {
		if err := checkReplayMode(mode); err != nil {
			return err
		}
	}
	f, err := fixtures.Load(dir)
	if err != nil {
		return err
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)

	st, err := store.Open(globalString(c, "db"), store.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	re, err := newReplayEnv(c, st)
	if err != nil {
		return err
	}
	v, err := re.replay(context.Background(), f, replayOptions{mode: mode, argv: override, keep: c.Bool("keep"),
		stdout: os.Stderr, stderr: os.Stderr, signals: sigs})
	if err != nil {
		return err
	}
	if err := printJSON(c, v); err != nil {
		return err
	}
	if v.ExitWith != 0 {
		return &exitError{code: v.ExitWith, msg: fmt.Sprintf("fixture %s %s (%s)", v.FixtureID, v.Status, v.FailureClass)}
	}
	return nil
}

func checkReplayMode(m string) error {
	switch m {
	case "strict", "replay", "live":
		return nil
	}
	return fmt.Errorf("unknown --mode %q for replay: use strict, replay or live", m)
}

// replayEnv is what every replay of one process shares: the main store
// (run records and fixture history; its cassettes are never touched), the
// CA and its bundle, the redaction secret.
type replayEnv struct {
	st          *store.Store
	ca          *proxy.CA
	bundle      string
	secret      []byte
	log         *slog.Logger
	codeVersion string
}

func newReplayEnv(c *cli.Context, st *store.Store) (*replayEnv, error) {
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
	// The proxy's per-request lines would drown the verdict: warnings only.
	log := slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return &replayEnv{st: st, ca: ca, bundle: bundle, secret: secret, log: log, codeVersion: c.String("code-version")}, nil
}

type replayOptions struct {
	mode           string
	argv           []string // overrides input.json's command
	keep           bool
	stdout, stderr io.Writer
	signals        <-chan os.Signal
}

// replay runs one loaded fixture. The fixture's interactions are served
// from memory by a proxy of its own: the main store's cassettes are not
// read or written (live mode records what it adds into a temporary store
// that is thrown away). The run record and the fixture history go to the
// main store.
func (re *replayEnv) replay(ctx context.Context, f *fixtures.Fixture, o replayOptions) (fixtures.Verdict, error) {
	start := time.Now()
	v := fixtures.Verdict{FixtureID: f.ID, Dir: f.Dir, Tier: f.Tier(), ProtectsClass: f.Notes.FailureClass, Reasons: []runner.Failure{}}
	mode := o.mode
	if mode == "" {
		mode = f.Input.Mode
	}
	if mode == "" {
		mode = "strict"
	}
	if err := checkReplayMode(mode); err != nil {
		return v, err
	}
	v.Mode = mode
	if f.Notes.Disabled != "" {
		v.Status = runner.StatusSkipped
		v.Reasons = []runner.Failure{{Status: runner.StatusSkipped, Class: fixtures.ClassFixtureDisabled, Reason: "disabled in notes.json: " + f.Notes.Disabled}}
		v.FailureClass = fixtures.ClassFixtureDisabled
		return re.finish(f, v, start)
	}
	ins, err := f.Interactions()
	if err != nil {
		return v, err
	}

	rules, redactCfg := match.DefaultRules(), redact.Config{}
	if rf := filepath.Join(f.Dir, "rules.yaml"); fileExists(rf) {
		if rules, redactCfg, err = loadRules(rf); err != nil {
			return v, err
		}
	}
	redactCfg.Secret = re.secret
	redactor, err := redact.New(redactCfg)
	if err != nil {
		return v, err
	}

	scratch, err := os.MkdirTemp("", "cassetteproxy-replay-"+f.ID+"-")
	if err != nil {
		return v, err
	}
	if !o.keep {
		defer os.RemoveAll(scratch)
	}
	work := filepath.Join(scratch, "work")
	if f.Input.Workdir != "" {
		src := filepath.Join(f.Dir, f.Input.Workdir)
		if err := copyTree(src, work); err != nil {
			return v, fmt.Errorf("%s: workdir %s: %w", filepath.Join(f.Dir, fixtures.InputFile), f.Input.Workdir, err)
		}
	} else if err := os.MkdirAll(work, 0o755); err != nil {
		return v, err
	}
	if o.keep {
		v.Workdir = work
	}
	var before fixtures.Snapshot
	if len(f.Expected.ForbiddenPaths) > 0 {
		if before, err = fixtures.TakeSnapshot(work); err != nil {
			return v, err
		}
	}

	// The proxy.
	var rec *store.Recorder
	if mode == "live" {
		live, err := store.Open(filepath.Join(scratch, "live.db"), store.Options{})
		if err != nil {
			return v, err
		}
		defer live.Close()
		rec = live.NewRecorder(store.RecorderOptions{})
	}
	obs := runner.NewObserver()
	usage := fixtures.NewUsageTracker(rules, ins)
	runID := runner.NewRunID(start)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return v, err
	}
	cassette := "fixture:" + f.ID
	srv, err := proxy.New(proxy.Config{
		Mode: proxy.Mode(mode), Cassette: cassette, Interactions: ins, Recorder: rec,
		Rules: rules, Redactor: redactor, CA: re.ca, Logger: re.log, RunID: runID,
		Observe: func(out proxy.Outcome) { obs.Observe(out); usage.Observe(out) },
	})
	if err != nil {
		ln.Close()
		return v, err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	stopProxy := func() {
		sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		if rec != nil {
			_ = rec.Close()
		}
	}

	checks, err := f.Checks(fixtures.ContractOptions{Usage: usage, Before: before})
	if err != nil {
		stopProxy()
		return v, err
	}
	wantExit := 0
	if f.Expected.ExitCode != nil {
		wantExit = *f.Expected.ExitCode
	}
	custom := wantExit != 0 || (f.Expected.Status != "" && f.Expected.Status != runner.StatusPassed)
	var runChecks []runner.Check
	for _, ch := range checks {
		if _, isExit := ch.(fixtures.ExitCodeCheck); isExit && !custom {
			continue // the runner's own exit check says the same
		}
		runChecks = append(runChecks, ch)
	}

	argv := o.argv
	if len(argv) == 0 {
		argv = f.Input.Command
	}
	argv = resolveArgv(f.Dir, argv)
	base := os.Environ()
	base = append(base, "CASSETTEPROXY_FIXTURE_DIR="+f.Dir)
	for k, val := range f.Input.Env {
		base = append(base, k+"="+strings.ReplaceAll(val, "${FIXTURE_DIR}", f.Dir))
	}
	env := runner.ChildEnv(base, proxy.ClientEnv("http://"+ln.Addr().String(), re.bundle, re.ca.CertPath, ""))
	timeout := time.Duration(f.Input.TimeoutSeconds * float64(time.Second))

	res, runErr := runner.Run(ctx, runner.Spec{
		Argv: argv, Dir: work, Env: env, Stdout: o.stdout, Stderr: o.stderr,
		Timeout: timeout, ProcessGroup: true, Signals: o.signals,
		Mode: mode, Checks: runChecks, Store: re.st, Observer: obs,
		Record: store.Run{RunID: runID, RunType: runner.RunTypeReplay, FixtureID: f.ID, TaskID: f.Input.TaskID,
			Attempt: 1, AgentName: f.Input.AgentName, CodeVersion: firstNonEmpty(re.codeVersion, f.Input.CodeVersion),
			Model: f.Input.Model, PromptVersion: f.Input.PromptVersion, ToolAllowlist: f.Input.ToolAllowlist, Cassette: cassette},
	})
	stopProxy()
	if runErr != nil && res.Record.RunID == "" {
		return v, runErr
	}
	v.RunID = res.Record.RunID
	v.Status = res.Status
	v.Reasons = append(v.Reasons, res.Failures...)
	v.ExitCode = res.Evidence.ExitCode
	v.ExitWith = res.ExitCode

	if custom {
		// The contract asks for another status or exit code than the
		// defaults: judge the evidence again with the contract's status
		// check over every check but the runner's exit check.
		var inner []runner.Check
		for _, ch := range runner.DefaultChecks() {
			if _, isExit := ch.(runner.ExitCheck); !isExit {
				inner = append(inner, ch)
			}
		}
		sc := fixtures.StatusCheck{Want: f.Expected.Status, WantClass: f.Expected.FailureClass, Inner: append(inner, checks...)}
		fs := sc.Check(&res.Evidence)
		status, primary := runner.Verdict(fs)
		v.Status, v.Reasons = status, append([]runner.Failure{}, fs...)
		v.ExitWith = 0
		if status != runner.StatusPassed {
			v.ExitWith = 3
		}
		_ = re.st.UpdateRun(v.RunID, func(r *store.Run) error {
			r.Status, r.FailureClass, r.FailureReason = status, primary.Class, primary.Reason
			r.Reasons = nil
			for _, f := range fs {
				r.Reasons = append(r.Reasons, store.RunReason{Status: f.Status, Class: f.Class, Reason: f.Reason})
			}
			return nil
		})
	}
	if len(v.Reasons) > 0 {
		v.FailureClass = v.Reasons[0].Class
	}
	return re.finish(f, v, start)
}

// finish records the replay in the fixture's history.
func (re *replayEnv) finish(f *fixtures.Fixture, v fixtures.Verdict, start time.Time) (fixtures.Verdict, error) {
	v.DurationSeconds = time.Since(start).Seconds()
	h, err := re.st.RecordFixtureReplay(f.ID, store.FixtureEvent{At: start.UTC(), RunID: v.RunID, Status: v.Status,
		FailureClass: v.FailureClass, CodeVersion: firstNonEmpty(re.codeVersion, f.Input.CodeVersion)})
	if err != nil {
		return v, err
	}
	v.History = &h
	v.Proven = h.Proven()
	return v, nil
}

// resolveArgv expands ${FIXTURE_DIR} and resolves a relative argv[0] that
// names a path (./agent.sh, bin/agent) against the fixture folder, so a
// fixture runs the same from any current folder.
func resolveArgv(fixtureDir string, argv []string) []string {
	out := make([]string, len(argv))
	for i, a := range argv {
		out[i] = strings.ReplaceAll(a, "${FIXTURE_DIR}", fixtureDir)
	}
	if len(out) > 0 && strings.Contains(out[0], "/") && !filepath.IsAbs(out[0]) {
		out[0] = filepath.Join(fixtureDir, out[0])
	}
	return out
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// copyTree copies the folder src to dst (files, folders and symlinks,
// modes kept).
func copyTree(src, dst string) error {
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a folder", src)
	}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(target, info.Mode().Perm()|0o700)
		case d.Type()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(l, target)
		case d.Type().IsRegular():
			in, err := os.Open(p)
			if err != nil {
				return err
			}
			defer in.Close()
			out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, info.Mode().Perm())
			if err != nil {
				return err
			}
			if _, err := io.Copy(out, in); err != nil {
				out.Close()
				return err
			}
			return out.Close()
		}
		return nil
	})
}
