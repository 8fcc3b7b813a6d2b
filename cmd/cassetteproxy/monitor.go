package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/cassetteproxy/cassetteproxy/fixtures"
	"github.com/cassetteproxy/cassetteproxy/isolate"
	"github.com/cassetteproxy/cassetteproxy/runner"
	"github.com/cassetteproxy/cassetteproxy/store"
)

func monitorCommand() *cli.Command {
	return &cli.Command{
		Name:  "monitor",
		Usage: "replay every fixture under a folder, write monitor.json, metrics.prom, junit.xml and index.html; exit 0 only when all pass",
		UsageText: "cassetteproxy monitor FIXTURES_ROOT [--out DIR] [--max-age D] [--tier critical|hourly|daily] [-j N] [--allow-stale] [--shard K/N]\n" +
			"cassetteproxy monitor merge OUTDIR DIR... [--allow-stale]     (combine the --out folders of shards into one report and gate)",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "out", Usage: "report `DIR`", Value: "monitor-out"},
			&cli.StringFlag{Name: "max-age", Usage: "a fixture without a verdict newer than `DURATION` is stale", Value: "24h"},
			&cli.StringFlag{Name: "tier", Usage: "replay only this tier (notes.json tier: critical, hourly, daily)"},
			&cli.IntFlag{Name: "jobs", Aliases: []string{"j"}, Usage: "replay up to `N` fixtures at once", Value: 2},
			&cli.BoolFlag{Name: "allow-stale", Usage: "stale fixtures do not fail the gate"},
			&cli.StringFlag{Name: "shard", Usage: "replay only shard `K/N` of the fixtures (a stable split by path); merge the outputs with monitor merge"},
			&cli.StringFlag{Name: "code-version", Usage: "code `VERSION` under test, kept in each fixture's history [$CASSETTEPROXY_CODE_VERSION]", EnvVars: []string{"CASSETTEPROXY_CODE_VERSION"}},
			passEnvFlag(),
			isolateFlag(),
			otlpFlag(),
		}, expiryFlags()...),
		Action: monitorAction,
	}
}

func monitorAction(c *cli.Context) error {
	args, err := positionals(c)
	if err != nil {
		return err
	}
	if len(args) > 0 && args[0] == "merge" {
		return monitorMerge(c, args[1:])
	}
	if len(args) != 1 {
		return errors.New("monitor takes one folder: cassetteproxy monitor FIXTURES_ROOT [--out DIR] [--max-age D] [--tier T] [-j N] [--shard K/N]")
	}
	prewarmIsolation(c)
	root := args[0]
	maxAge, err := parseSeconds("--max-age", c.String("max-age"))
	if err != nil {
		return err
	}
	switch t := c.String("tier"); t {
	case "", "critical", "hourly", "daily":
	default:
		return fmt.Errorf("unknown --tier %q: use critical, hourly or daily", t)
	}
	if c.Int("jobs") < 1 {
		return fmt.Errorf("-j %d: at least 1", c.Int("jobs"))
	}
	var shard fixtures.Shard
	if c.IsSet("shard") {
		if shard, err = fixtures.ParseShard(c.String("shard")); err != nil {
			return err
		}
	}
	pass, err := passEnv(c)
	if err != nil {
		return err
	}
	sel, err := fixtures.SelectFixtures(root, c.String("tier"), shard)
	if err != nil {
		return err
	}
	// --isolate on refuses before any fixture runs where isolation is impossible.
	if m, err := isolate.ParseMode(c.String("isolate")); err != nil {
		return err
	} else if m == isolate.On {
		if _, err := isolate.Choose(m, isolate.Check()); err != nil {
			return err
		}
	}
	otlp, err := newTelemetry(c)
	if err != nil {
		return err
	}
	re, closeStore, err := openReplayer(c)
	if err != nil {
		closeTelemetry(c, otlp)
		return err
	}
	defer closeStore()
	out := c.String("out")
	logs := filepath.Join(out, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		closeTelemetry(c, otlp)
		return err
	}
	if shard.N > 0 {
		fmt.Fprintf(c.App.ErrWriter, "cassetteproxy: shard %s: %d fixtures\n", shard, len(sel))
	}

	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	replay := func(ctx context.Context, dir string) (fixtures.Verdict, error) {
		f, err := fixtures.Load(dir)
		if err != nil {
			return fixtures.Verdict{}, err
		}
		// Each fixture's output goes to OUT/logs/<id>.log.
		var w io.Writer = io.Discard
		if lf, err := os.Create(filepath.Join(logs, f.ID+".log")); err == nil {
			defer lf.Close()
			w = lf
		}
		v, err := re.Replay(ctx, f, fixtures.ReplayOptions{Stdout: w, Stderr: w, PassEnv: pass})
		for _, warn := range v.Warnings {
			fmt.Fprintln(c.App.ErrWriter, "cassetteproxy: warning: "+warn)
		}
		if err == nil {
			if terr := traceReplay(otlp, re.Records().GetRun, f, v); terr != nil {
				fmt.Fprintln(c.App.ErrWriter, "cassetteproxy: warning: "+terr.Error())
			}
		}
		return v, err
	}
	results := fixtures.ReplayFixtures(ctx, sel, c.Int("jobs"), replay, progressLine(c.App.ErrWriter, len(sel), isTerminal(os.Stderr)))
	rep, err := fixtures.Classify(results, fixtures.ClassifyOptions{Root: root, Tier: c.String("tier"), Shard: shard, MaxAge: maxAge,
		AllowStale: c.Bool("allow-stale"), Histories: re.Records().FixtureHistories, Runs: runsOnce(c, re.Records())}) // every host's, with --runs-db
	if otlp != nil {
		closeTelemetry(c, otlp)
		if rep != nil {
			rep.Telemetry = &fixtures.TelemetryCounts{SpansExported: otlp.Exported(), SpansDropped: otlp.Dropped()}
		}
	}
	if err != nil {
		return err
	}
	if err := fixtures.WriteReport(out, rep); err != nil {
		return err
	}
	return gateSummary(c, rep, out)
}

// progressLine prints a line per replayed fixture; on a terminal, one line
// redrawn in place that keeps failures on screen.
func progressLine(w io.Writer, total int, live bool) func(int, fixtures.Verdict) {
	return func(done int, v fixtures.Verdict) {
		line := fmt.Sprintf("[%d/%d] %-8s %s", done, total, v.Status, v.FixtureID)
		if v.FailureClass != "" {
			line += " (" + v.FailureClass + ")"
		}
		if v.Stale {
			line = fmt.Sprintf("[%d/%d] %-8s %s (%s)", done, total, "stale", v.FixtureID, v.StaleReason)
		}
		if !live {
			fmt.Fprintln(w, line)
			return
		}
		fmt.Fprintf(w, "\r\033[K%s", line)
		if done == total || v.Status != runner.StatusPassed {
			fmt.Fprintln(w) // keep failures on screen
		}
	}
}

// gateSummary prints the report's line and returns the gate as the exit
// code: 0 when it passes, 1 with a one-line reason when it fails.
func gateSummary(c *cli.Context, rep *fixtures.Report, out string) error {
	notIsolated := ""
	if rep.FixturesNotIsolated > 0 {
		notIsolated = fmt.Sprintf(", %d not isolated", rep.FixturesNotIsolated)
	}
	fmt.Fprintf(c.App.Writer, "%d fixtures: %d passing, %d failing, %d stale, %d unproven%s; gate %s; report in %s\n",
		rep.FixturesTotal, rep.FixturesPassing, rep.FixturesFailing, rep.FixturesStale, rep.FixturesUnproven, notIsolated, rep.Gate, out)
	if rep.FixturesExpired > 0 {
		fmt.Fprintf(c.App.Writer, "%d fixtures hold recordings older than --max-recording-age %s (monitor.json: expired); record them again\n",
			rep.FixturesExpired, c.String("max-recording-age"))
	}
	if t := rep.Telemetry; t != nil && t.SpansDropped > 0 {
		fmt.Fprintf(c.App.Writer, "telemetry: %d spans sent, %d dropped (collector unreachable)\n", t.SpansExported, t.SpansDropped)
	}
	if rep.Gate != "pass" {
		return &exitError{code: 1, msg: fmt.Sprintf("health gate failed: %d failing, %d stale (see %s)", rep.FixturesFailing, rep.FixturesStale, filepath.Join(out, "monitor.json"))}
	}
	return nil
}

// monitorMerge is `monitor merge OUTDIR DIR...`: the shards' reports
// combined into one, their logs copied, the gate over all of them.
func monitorMerge(c *cli.Context, args []string) error {
	if len(args) < 2 {
		return errors.New("monitor merge takes an output folder and the folders to merge: cassetteproxy monitor merge OUTDIR DIR...")
	}
	out, dirs := args[0], args[1:]
	outAbs, _ := filepath.Abs(out)
	var parts []fixtures.ShardReport
	for _, d := range dirs {
		if a, _ := filepath.Abs(d); a == outAbs {
			return fmt.Errorf("monitor merge: %s is both the output and an input: give a new OUTDIR", d)
		}
		rep, err := fixtures.ReadReport(d)
		if err != nil {
			return err
		}
		parts = append(parts, fixtures.ShardReport{Dir: d, Report: rep})
	}
	rep, err := fixtures.MergeReports(parts, c.Bool("allow-stale"))
	if err != nil {
		return err
	}
	if err := fixtures.WriteReport(out, rep); err != nil {
		return err
	}
	for _, d := range dirs {
		if err := copyLogs(filepath.Join(d, "logs"), filepath.Join(out, "logs")); err != nil {
			return err
		}
	}
	return gateSummary(c, rep, out)
}

// copyLogs copies the fixtures' log files of one monitor output into the
// merged one.
func copyLogs(from, to string) error {
	ents, err := os.ReadDir(from)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := os.MkdirAll(to, 0o755); err != nil {
		return err
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// runsOnce reads the run records once for the report (the silent failure
// windows and each fixture's recent replays), and says so on stderr when
// they cannot be read: the report is then made without them.
func runsOnce(c *cli.Context, rs store.Records) func() ([]store.Run, error) {
	var once sync.Once
	var runs []store.Run
	var err error
	return func() ([]store.Run, error) {
		once.Do(func() {
			if runs, err = rs.ListRuns(); err != nil {
				fmt.Fprintln(c.App.ErrWriter, "cassetteproxy: warning: run records not read, the report leaves out silent_failure_window_minutes from production runs and recent replays: "+err.Error())
			}
		})
		return runs, err
	}
}
