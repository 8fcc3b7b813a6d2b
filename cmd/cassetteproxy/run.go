package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/cassetteproxy/cassetteproxy/isolate"
	"github.com/cassetteproxy/cassetteproxy/match"
	"github.com/cassetteproxy/cassetteproxy/proxy"
	"github.com/cassetteproxy/cassetteproxy/runner"
	"github.com/cassetteproxy/cassetteproxy/store"
	"github.com/cassetteproxy/cassetteproxy/telemetry"
)

// runFlags are serve's flags (with a free port by default) plus the run
// record's fields.
func runFlags() []cli.Flag {
	var flags []cli.Flag
	for _, f := range proxyFlags() {
		if sf, ok := f.(*cli.StringFlag); ok && sf.Name == "listen" {
			f = &cli.StringFlag{Name: "listen", Usage: "`host:port` for the proxy (default: a free loopback port)", Value: "127.0.0.1:0"}
		}
		flags = append(flags, f)
	}
	env := func(name string) []string { return []string{"CASSETTEPROXY_" + name} }
	return append(flags,
		&cli.StringFlag{Name: "task-id", Usage: "task `ID` for the run record [$CASSETTEPROXY_TASK_ID]", EnvVars: env("TASK_ID")},
		&cli.StringFlag{Name: "agent-name", Usage: "agent `NAME` for the run record [$CASSETTEPROXY_AGENT_NAME]", EnvVars: env("AGENT_NAME")},
		&cli.StringFlag{Name: "model", Usage: "the agent's configured `MODEL` [$CASSETTEPROXY_MODEL]", EnvVars: env("MODEL")},
		&cli.StringFlag{Name: "prompt-version", Usage: "prompt `VERSION` [$CASSETTEPROXY_PROMPT_VERSION]", EnvVars: env("PROMPT_VERSION")},
		&cli.StringFlag{Name: "code-version", Usage: "code `VERSION` (e.g. a git commit) [$CASSETTEPROXY_CODE_VERSION]", EnvVars: env("CODE_VERSION")},
		&cli.IntFlag{Name: "attempt", Usage: "attempt `N` of this task [$CASSETTEPROXY_ATTEMPT]", EnvVars: env("ATTEMPT"), Value: 1},
		&cli.StringFlag{Name: "timeout", Usage: "stop the command after `DURATION` (e.g. 10m, or seconds); 0: none [$CASSETTEPROXY_TIMEOUT]", EnvVars: env("TIMEOUT")},
		&cli.StringFlag{Name: "kill-grace", Usage: "after SIGTERM (timeout or interrupt), SIGKILL the command after `DURATION`", Value: runner.DefaultKillGrace.String()},
		&cli.StringFlag{Name: "input", Usage: "the task's input `FILE`; its SHA-256 goes in the record, export copies it into the fixture [$CASSETTEPROXY_INPUT]", EnvVars: env("INPUT")},
		&cli.StringSliceFlag{Name: "state", Usage: "a state `FILE` the task reads (repeatable); kept in state_refs, export copies it into the fixture"},
		&cli.StringSliceFlag{Name: "env", Usage: "`KEY=VALUE` the task needs, set for the child and kept (scrubbed) in the run record and exported fixtures (repeatable)"},
		&cli.StringSliceFlag{Name: "artifact", Usage: "`PATH` or glob the command must write, non-empty (repeatable)"},
		&cli.StringSliceFlag{Name: "side-effect", Usage: "\"`METHOD URLGLOB`\" the command must make exactly once, answered 2xx (repeatable)"},
		&cli.StringFlag{Name: "no-proxy", Usage: "NO_PROXY `LIST` for the command (default: empty, everything goes through the proxy)"},
		isolateFlag(),
		otlpFlag(),
	)
}

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "run a command behind a proxy on a free port, with a run record closed by a verdict",
		UsageText: "cassetteproxy run --mode record|replay|strict|live --cassette NAME [--timeout D] [--artifact PATH]... -- COMMAND [ARGS...]",
		Flags:     runFlags(),
		Action:    runAction,
	}
}

func runAction(c *cli.Context) error {
	argv := c.Args().Slice()
	if len(argv) > 0 && argv[0] == "--" {
		argv = argv[1:]
	}
	if len(argv) == 0 || argv[0] == "" {
		return errors.New("no command after --: cassetteproxy run [flags] -- COMMAND [ARGS...]")
	}
	timeout, err := parseSeconds("--timeout", c.String("timeout"))
	if err != nil {
		return err
	}
	grace, err := parseSeconds("--kill-grace", c.String("kill-grace"))
	if err != nil {
		return err
	}
	if c.Int("attempt") < 1 {
		return fmt.Errorf("--attempt %d: attempts count from 1", c.Int("attempt"))
	}
	taskEnv, err := parseTaskEnv(c.StringSlice("env"))
	if err != nil {
		return err
	}
	var sideEffects []store.SideEffect
	for _, s := range c.StringSlice("side-effect") {
		se, err := match.ParseSideEffect(s)
		if err != nil {
			return fmt.Errorf("--side-effect: %w", err)
		}
		sideEffects = append(sideEffects, se)
	}
	// Paths are resolved against the caller's folder before anything
	// reaches the child or the run record.
	input := absPath(c.String("input"))
	if input != "" {
		if _, err := os.Stat(input); err != nil {
			return fmt.Errorf("--input %s: %w", c.String("input"), errors.Unwrap(err))
		}
	}
	states := absPaths(c.StringSlice("state"))
	for i, s := range states {
		if fi, err := os.Stat(s); err != nil || !fi.Mode().IsRegular() {
			return fmt.Errorf("--state %s: not a readable file (give the path of a file the task reads)", c.StringSlice("state")[i])
		}
	}

	mode, err := proxy.ParseMode(c.String("mode"))
	if err != nil {
		return err
	}
	isolated, err := isolation(c, mode)
	if err != nil {
		return err
	}
	otlp, err := newTelemetry(c)
	if err != nil {
		return err
	}
	defer closeTelemetry(c, otlp)

	// A run records database that cannot be reached fails before anything
	// starts.
	var shared *records
	if runsDB(c) != "" {
		if shared, err = openRecords(c, nil); err != nil {
			return err
		}
		defer shared.close()
	}

	// Signals first: one arriving while the proxy starts is forwarded to
	// the child as soon as it exists, and never leaves a record open.
	sigs, stopCatching := catchInterrupts(4)
	defer stopCatching()

	obs := runner.NewObserver()
	runID := runner.NewRunID(time.Now())
	p, err := startProxyObserved(c, runID, obs.Observe, obs.Event)
	if err != nil {
		return err
	}
	bundle, err := p.ca.WriteBundle()
	if err != nil {
		p.stop()
		return err
	}
	// Isolated, the command finds the proxy at the same address inside
	// its namespace (127.0.0.1:PORT when --listen is not loopback).
	proxyAddr := p.addr
	var iso *runner.Isolation
	if isolated {
		if proxyAddr, err = isolate.InsideAddr(p.addr); err != nil {
			p.stop()
			return err
		}
		iso = &runner.Isolation{Listen: proxyAddr, Serve: func(ln net.Listener) {
			go func() {
				if err := p.srv.Serve(ln); err != nil {
					p.log.Error("serving inside the command's network namespace", "err", err)
				}
			}()
		}}
	}
	vars := append(proxy.ClientEnv(p.proxyURL(proxyAddr), bundle, p.ca.CertPath, c.String("no-proxy")), [2]string{"CASSETTEPROXY_URL", proxy.SelfURL(proxyAddr)})
	recordedEnv := make(map[string]string, len(taskEnv))
	for _, kv := range taskEnv {
		vars = append(vars, kv)
		recordedEnv[kv[0]] = p.redactor.EnvValue(kv[0], kv[1])
	}

	var recs runner.RecordStore = p.st
	if shared != nil {
		recs = shared
	}
	res, runErr := runner.Run(context.Background(), runner.Spec{
		Argv:         argv,
		Env:          runner.ChildEnv(withoutRunsDB(os.Environ()), vars),
		Stdin:        os.Stdin,
		Stdout:       os.Stdout,
		Stderr:       os.Stderr,
		Timeout:      timeout,
		KillGrace:    grace,
		ProcessGroup: !isTerminal(os.Stdin),
		Signals:      sigs,
		Mode:         mode,
		Artifacts:    absPaths(c.StringSlice("artifact")),
		SideEffects:  sideEffects,
		InputFile:    input,
		Store:        recs,
		Observer:     obs,
		Redact:       p.redactor,
		Isolate:      iso,
		Drain:        p.drain,
		Record: store.Run{
			RunID:         runID,
			RunType:       runner.RunTypeProduction,
			Host:          hostName(),
			TaskID:        c.String("task-id"),
			Attempt:       c.Int("attempt"),
			AgentName:     c.String("agent-name"),
			CodeVersion:   c.String("code-version"),
			Model:         c.String("model"),
			PromptVersion: c.String("prompt-version"),
			Cassette:      c.String("cassette"),
			Env:           recordedEnv,
			InputFile:     input,
			StateRefs:     states,
			ToolAllowlist: p.allowHosts,
		},
	})
	if otlp != nil && res.Record.RunID != "" {
		otlp.Emit(telemetry.Run{Record: res.Record, Events: res.Evidence.Events, Interactions: slimInteractions(p.st, c.String("cassette"))})
	}
	stopErr := p.stop()
	if runErr != nil && res.Record.RunID == "" {
		return runErr // nothing ran
	}
	rec := res.Record
	if rec.Status == runner.StatusPassed {
		p.log.Info("run closed", "run_id", rec.RunID, "status", rec.Status, "interactions", rec.Interactions)
	}
	if err := errors.Join(runErr, stopErr); err != nil {
		fmt.Fprintln(c.App.ErrWriter, "cassetteproxy: "+err.Error())
	}
	if res.ExitCode == 0 {
		return nil
	}
	msg := ""
	if rec.Status != runner.StatusPassed {
		msg = fmt.Sprintf("run %s %s (%s): %s", rec.RunID, rec.Status, rec.FailureClass, rec.FailureReason)
	}
	return &exitError{code: res.ExitCode, msg: msg}
}

// parseSeconds reads a duration ("90s", "10m") or a number of seconds.
func parseSeconds(flag, s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		secs, nerr := strconv.ParseFloat(s, 64)
		if nerr != nil {
			return 0, fmt.Errorf("%s %q: not a duration (use e.g. 90s, 10m, or a number of seconds)", flag, s)
		}
		d = time.Duration(secs * float64(time.Second))
	}
	if d < 0 {
		return 0, fmt.Errorf("%s %q: must not be negative", flag, s)
	}
	return d, nil
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// parseTaskEnv reads repeated --env KEY=VALUE.
func parseTaskEnv(pairs []string) ([][2]string, error) {
	out := make([][2]string, 0, len(pairs))
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--env %q: want KEY=VALUE", p)
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}
