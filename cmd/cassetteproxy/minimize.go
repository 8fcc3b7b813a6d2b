package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/cassetteproxy/cassetteproxy/fixtures"
	"github.com/cassetteproxy/cassetteproxy/store"
)

func minimizeCommand() *cli.Command {
	return &cli.Command{
		Name:      "minimize",
		Usage:     "shrink a fixture (interactions, then JSON array elements) to the smallest one whose replay reaches the same verdict",
		UsageText: "cassetteproxy minimize FIXTURE_DIR [--out DIR] [--max-replays N] [--pass-env NAME]...",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Usage: "write the minimized fixture to `DIR` (default: FIXTURE_DIR-min)"},
			&cli.IntFlag{Name: "max-replays", Usage: "stop after `N` replays and write the smallest fixture found so far; 0: no bound", Value: 200},
			passEnvFlag(),
		},
		Action: minimizeAction,
	}
}

func minimizeAction(c *cli.Context) error {
	args, err := positionals(c)
	if err != nil {
		return err
	}
	if len(args) != 1 {
		return errors.New("minimize takes one fixture folder: cassetteproxy minimize FIXTURE_DIR [--out DIR] [--max-replays N]")
	}
	if c.Int("max-replays") < 0 {
		return fmt.Errorf("--max-replays %d: use 0 (no bound) or more", c.Int("max-replays"))
	}
	pass, err := passEnv(c)
	if err != nil {
		return err
	}
	f, err := fixtures.Load(args[0])
	if err != nil {
		return err
	}
	out := c.String("out")
	if out == "" {
		out = filepath.Clean(args[0]) + "-min"
	}
	if entries, err := os.ReadDir(out); err == nil && len(entries) > 0 {
		return fmt.Errorf("--out %s exists and is not empty: pick a new folder, or remove it", out)
	}
	// Candidate replays write run records and fixture history: they go to
	// a scratch store, never the user's.
	scratch, err := os.MkdirTemp("", "cassetteproxy-minimize-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(scratch)
	st, err := store.Open(filepath.Join(scratch, "minimize.db"), store.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	re, err := newReplayer(c, st)
	if err != nil {
		return err
	}
	re.Logger = slog.New(slog.DiscardHandler)

	live := isTerminal(os.Stderr)
	last := -1
	m := &fixtures.Minimizer{Replayer: re, MaxReplays: c.Int("max-replays"), PassEnv: pass, Progress: func(p fixtures.MinimizeProgress) {
		line := fmt.Sprintf("minimize: replay %d (%s): %d interactions, %d bytes", p.Replays, p.Phase, p.Current.Interactions, p.Current.Bytes)
		switch {
		case live:
			fmt.Fprintf(c.App.ErrWriter, "\r\033[K%s", line)
		case p.Current.Bytes != last:
			fmt.Fprintln(c.App.ErrWriter, line)
		}
		last = p.Current.Bytes
	}}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	res, err := m.Minimize(ctx, f)
	if live {
		fmt.Fprintln(c.App.ErrWriter)
	}
	if err != nil {
		return err
	}
	if err := fixtures.WriteMinimized(out, res); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "verdict %s kept in %d replays (mode %s)\n", res.Verdict, res.Replays, fixtures.MinimizeMode)
	fmt.Fprintf(c.App.Writer, "before: %d interactions, %d bytes\nafter:  %d interactions, %d bytes\n",
		res.Before.Interactions, res.Before.Bytes, res.After.Interactions, res.After.Bytes)
	for _, a := range res.Arrays {
		fmt.Fprintf(c.App.Writer, "  array %s\n", a)
	}
	fmt.Fprintf(c.App.Writer, "minimized fixture: %s\n", out)
	if res.Bounded {
		fmt.Fprintf(c.App.ErrWriter, "cassetteproxy: stopped at --max-replays %d: the fixture written is the smallest found so far, maybe not the smallest (raise --max-replays to go on)\n", c.Int("max-replays"))
	}
	return nil
}
