package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/cassetteproxy/cassetteproxy/fixtures"
	"github.com/cassetteproxy/cassetteproxy/redact"
	"github.com/cassetteproxy/cassetteproxy/store"
)

func importCommand() *cli.Command {
	return &cli.Command{
		Name:      "import",
		Usage:     "load a fixture folder or a HAR file into a cassette",
		UsageText: "cassetteproxy import --in DIR|FILE.har --cassette NAME [--append] [--rules FILE]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "in", Usage: "a fixture `DIR` or a .har FILE"},
			&cli.StringFlag{Name: "cassette", Usage: "cassette `NAME` to write (replaced unless --append)"},
			&cli.BoolFlag{Name: "append", Usage: "add to the cassette instead of replacing it"},
			&cli.StringFlag{Name: "rules", Usage: "matching and redaction rules `FILE` (YAML) the keys are computed with"},
		},
		Action: importAction,
	}
}

func importAction(c *cli.Context) error {
	args, err := positionals(c)
	if err != nil {
		return err
	}
	if len(args) > 0 {
		return fmt.Errorf("import takes no arguments (got %q): cassetteproxy import --in DIR|FILE.har --cassette NAME", args[0])
	}
	in, name := c.String("in"), c.String("cassette")
	if in == "" || name == "" {
		return errors.New("import needs --in DIR|FILE.har and --cassette NAME")
	}
	fi, err := os.Stat(in)
	if err != nil {
		return fmt.Errorf("--in %s: %w", in, errors.Unwrap(err))
	}
	rules, redactCfg, err := loadRules(c.String("rules"))
	if err != nil {
		return err
	}
	// One interaction at a time, from the file into a staging copy of the
	// cassette that replaces (or extends) it only once all of it is in:
	// memory holds one interaction, and a failure leaves the cassette as
	// it was.
	var each fixtures.Each
	var skipped []fixtures.HARSkip
	isHAR := !fi.IsDir()
	if isHAR {
		file, err := os.Open(in)
		if err != nil {
			return err
		}
		defer file.Close()
		each = func(yield func(store.Interaction) error) error {
			var yieldErr error
			s, err := fixtures.ReadHAR(bufio.NewReaderSize(file, 64<<10), func(in store.Interaction) error {
				yieldErr = yield(in)
				return yieldErr
			})
			skipped = s
			if err != nil && err != yieldErr {
				return fmt.Errorf("%s: %w", in, err)
			}
			return err
		}
	} else {
		f, err := fixtures.LoadLazy(in)
		if err != nil {
			return err
		}
		each = f.EachInteraction
	}
	return withStore(c, false, func(st *store.Store) error {
		// Scrub what comes in the way the proxy scrubs what it records: a
		// HAR from a browser carries cookies and tokens, and a fixture
		// folder is hand-edited and reviewed, so a pasted token must not
		// reach the store either. Redaction leaves what is already
		// scrubbed as it is, so an exported fixture comes back byte for byte.
		secret, err := st.Secret("redact-hmac", 32)
		if err != nil {
			return err
		}
		redactCfg.Secret = secret
		r, err := redact.New(redactCfg)
		if err != nil {
			return err
		}
		w, err := st.NewCassetteWriter(name, !c.Bool("append"))
		if err != nil {
			return err
		}
		err = each(func(in store.Interaction) error {
			r.Interaction(&in)
			in.Key, in.Seq = rules.Key(&in.Request), 0
			return w.Add(in)
		})
		if err != nil {
			_ = w.Abort()
			return err
		}
		n, err := w.Commit()
		if err != nil {
			return err
		}
		fmt.Fprintf(c.App.Writer, "imported %d interactions from %s into cassette %s\n", n, filepath.Clean(in), name)
		if len(skipped) > 0 {
			reasons := map[string]int{}
			var order []string
			for _, s := range skipped {
				if reasons[s.Reason] == 0 {
					order = append(order, s.Reason)
				}
				reasons[s.Reason]++
			}
			parts := make([]string, 0, len(order))
			for _, r := range order {
				parts = append(parts, fmt.Sprintf("%d: %s", reasons[r], r))
			}
			fmt.Fprintf(c.App.Writer, "skipped %d entries the store cannot hold (%s)\n", len(skipped), strings.Join(parts, "; "))
		}
		return nil
	})
}
