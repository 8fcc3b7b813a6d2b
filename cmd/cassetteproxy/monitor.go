package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/cassetteproxy/cassetteproxy/fixtures"
	"github.com/cassetteproxy/cassetteproxy/isolate"
)

func monitorCommand() *cli.Command {
	return &cli.Command{
		Name:      "monitor",
		Usage:     "replay every fixture under a folder, write monitor.json, metrics.prom, junit.xml and index.html; exit 0 only when all pass",
		UsageText: "cassetteproxy monitor FIXTURES_ROOT [--out DIR] [--max-age D] [--tier critical|hourly|daily] [-j N] [--allow-stale]",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "out", Usage: "report `DIR`", Value: "monitor-out"},
			&cli.StringFlag{Name: "max-age", Usage: "a fixture without a verdict newer than `DURATION` is stale", Value: "24h"},
			&cli.StringFlag{Name: "tier", Usage: "replay only this tier (notes.json tier: critical, hourly, daily)"},
			&cli.IntFlag{Name: "jobs", Aliases: []string{"j"}, Usage: "replay up to `N` fixtures at once", Value: 2},
			&cli.BoolFlag{Name: "allow-stale", Usage: "stale fixtures do not fail the gate"},
			&cli.StringFlag{Name: "code-version", Usage: "code `VERSION` under test, kept in each fixture's history [$CASSETTEPROXY_CODE_VERSION]", EnvVars: []string{"CASSETTEPROXY_CODE_VERSION"}},
			passEnvFlag(),
			isolateFlag(),
		}, expiryFlags()...),
		Action: monitorAction,
	}
}

func monitorAction(c *cli.Context) error {
	args, err := positionals(c)
	if err != nil {
		return err
	}
	if len(args) != 1 {
		return errors.New("monitor takes one folder: cassetteproxy monitor FIXTURES_ROOT [--out DIR] [--max-age D] [--tier T] [-j N]")
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
	pass, err := passEnv(c)
	if err != nil {
		return err
	}
	if _, err := fixtures.FindFixtures(root); err != nil {
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
	re, closeStore, err := openReplayer(c)
	if err != nil {
		return err
	}
	defer closeStore()
	out := c.String("out")
	logs := filepath.Join(out, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return err
	}

	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	rep, err := fixtures.RunMonitor(ctx, fixtures.MonitorOptions{
		Root: root, Tier: c.String("tier"), MaxAge: maxAge, Jobs: c.Int("jobs"), AllowStale: c.Bool("allow-stale"),
		Replay: func(ctx context.Context, dir string) (fixtures.Verdict, error) {
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
			return v, err
		},
		Histories: re.Store.FixtureHistories,
		Runs:      re.Store.ListRuns,
		Progress:  c.App.ErrWriter,
		Live:      isTerminal(os.Stderr),
	})
	if err != nil {
		return err
	}
	if err := fixtures.WriteReport(out, rep); err != nil {
		return err
	}
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
	if rep.Gate != "pass" {
		return &exitError{code: 1, msg: fmt.Sprintf("health gate failed: %d failing, %d stale (see %s)", rep.FixturesFailing, rep.FixturesStale, filepath.Join(out, "monitor.json"))}
	}
	return nil
}
