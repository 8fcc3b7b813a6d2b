package main

import (
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/cassetteproxy/cassetteproxy/internal/fsutil"
	"github.com/cassetteproxy/cassetteproxy/match"
	"github.com/cassetteproxy/cassetteproxy/store"
)

func rulesCommand() *cli.Command {
	return &cli.Command{
		Name:  "rules",
		Usage: "work with rules files",
		Subcommands: []*cli.Command{{
			Name:      "learn",
			Usage:     "find the volatile fields of two recordings of the same task and write a rules file that ignores them",
			UsageText: "cassetteproxy rules learn --cassette A --cassette B [--out FILE]",
			Flags: []cli.Flag{
				&cli.StringSliceFlag{Name: "cassette", Usage: "cassette `NAME` (twice: two recordings of the same task)"},
				&cli.StringFlag{Name: "out", Usage: "write the rules to `FILE` (default: stdout)"},
			},
			Action: rulesLearnAction,
		}},
	}
}

func rulesLearnAction(c *cli.Context) error {
	args, err := positionals(c)
	if err != nil {
		return err
	}
	names := c.StringSlice("cassette")
	if len(args) > 0 || len(names) != 2 {
		return errors.New("rules learn needs two cassettes: cassetteproxy rules learn --cassette A --cassette B [--out FILE]")
	}
	var a, b []store.Interaction
	err = withStore(c, true, func(st *store.Store) error {
		var err error
		if a, err = st.Interactions(names[0]); err != nil {
			return err
		}
		b, err = st.Interactions(names[1])
		return err
	})
	if err != nil {
		return err
	}
	learned, err := match.Learn(a, b)
	if err != nil {
		return fmt.Errorf("rules learn %s %s: %w", names[0], names[1], err)
	}
	header := fmt.Sprintf("Learned by: cassetteproxy rules learn --cassette %s --cassette %s\n"+
		"%d requests paired of %d and %d. Each field below had different values in the two\n"+
		"recordings (the comment shows them): matching ignores it (ignore_query, ignore_headers,\n"+
		"ignore_body_paths) and drift ignores it in answers (ignore_response_paths).\n"+
		"Use it with --rules FILE, or as rules.yaml in a fixture folder.",
		names[0], names[1], learned.Paired, learned.TotalA, learned.TotalB)
	data, err := learned.YAML(header)
	if err != nil {
		return err
	}
	out := c.String("out")
	summary := c.App.Writer
	if out == "" {
		summary = c.App.ErrWriter
		if _, err := c.App.Writer.Write(data); err != nil {
			return err
		}
	} else if err := fsutil.WriteFileAtomic(out, data, 0o644); err != nil {
		return fmt.Errorf("--out %s: %w", out, err)
	}
	n := 0
	tw := tabwriter.NewWriter(summary, 0, 4, 2, ' ', 0)
	for _, r := range learned.Rules {
		for _, f := range []struct {
			what string
			vs   []match.Volatile
		}{{"query", r.Query}, {"header", r.Headers}, {"body", r.BodyPaths}, {"response", r.ResponsePaths}} {
			for _, v := range f.vs {
				n++
				fmt.Fprintf(tw, "  %s%s\t%s\t%s\t%q vs %q\n", r.Host, r.Path, f.what, v.Name, v.A, v.B)
			}
		}
	}
	where := ""
	if out != "" {
		where = " (written to " + out + ")"
	}
	fmt.Fprintf(summary, "paired %d of %d and %d requests; %d volatile fields%s\n", learned.Paired, learned.TotalA, learned.TotalB, n, where)
	if learned.Structural > 0 {
		fmt.Fprintf(summary, "%d pairs also differ in shape (a key or an element only one side has): real differences, not learned\n", learned.Structural)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return nil
}
