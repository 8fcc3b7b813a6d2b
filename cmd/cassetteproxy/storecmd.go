package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/cassetteproxy/cassetteproxy/store"
)

func storeCommand() *cli.Command {
	return &cli.Command{
		Name:  "store",
		Usage: "diagnose a damaged store, or salvage what is readable of it into a new file",
		Subcommands: []*cli.Command{
			{
				Name:      "check",
				Usage:     "check every page and value of the store without writing it; exit 1 when anything is wrong",
				UsageText: "cassetteproxy store check [--db FILE]",
				Action:    storeCheck,
			},
			{
				Name:      "compact",
				Usage:     "copy what is readable of the store into a new file (the store itself is never written)",
				UsageText: "cassetteproxy store compact --out NEW [--db FILE]",
				Flags:     []cli.Flag{&cli.StringFlag{Name: "out", Usage: "the new store `FILE` (must not exist)"}},
				Action:    storeCompact,
			},
		},
	}
}

func storeCheck(c *cli.Context) error {
	if _, err := positionals(c); err != nil {
		return err
	}
	path := globalString(c, "db")
	rep, err := store.CheckFile(path, time.Second)
	if err != nil {
		return err
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(c.App.Writer, "%s: %s\n", path, p)
	}
	if n := len(rep.Problems); n > 0 {
		return fmt.Errorf("store %s: %d problems; save what is readable: cassetteproxy store compact --db %s --out NEW", path, n, shellQuote(path))
	}
	fmt.Fprintf(c.App.Writer, "%s: ok (%d pages of %d bytes; cassettes: %d, run records: %d, fixture histories: %d)\n",
		path, rep.Pages, rep.PageSize, rep.Cassettes, rep.Runs, rep.Fixtures)
	return nil
}

func storeCompact(c *cli.Context) error {
	if _, err := positionals(c); err != nil {
		return err
	}
	out := c.String("out")
	if out == "" {
		return errors.New("--out NEW is required: the file to write what is readable into (cassetteproxy store compact --out NEW)")
	}
	path := globalString(c, "db")
	rep, err := store.CompactFile(path, out, time.Second)
	if err != nil {
		return err
	}
	w := c.App.Writer
	for _, n := range rep.Notes {
		fmt.Fprintln(w, "note:  "+n)
	}
	for _, s := range rep.Saved {
		fmt.Fprintln(w, "saved: "+s)
	}
	for _, l := range rep.Lost {
		fmt.Fprintln(w, "lost:  "+l)
	}
	chk, err := store.CheckFile(out, time.Second)
	if err != nil {
		return fmt.Errorf("check %s: %w", out, err)
	}
	if len(chk.Problems) > 0 {
		return fmt.Errorf("%s was written but does not pass its check: %s", out, chk.Problems[0])
	}
	var before, after int64
	if fi, err := os.Stat(path); err == nil {
		before = fi.Size()
	}
	if fi, err := os.Stat(out); err == nil {
		after = fi.Size()
	}
	fmt.Fprintf(w, "wrote %s (%d bytes; %s has %d), and it passes store check; use it with --db %s, or move it over %s once nothing has that open\n",
		out, after, path, before, shellQuote(out), path)
	return nil
}
