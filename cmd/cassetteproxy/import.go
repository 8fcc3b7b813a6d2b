package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/cassetteproxy/cassetteproxy/fixtures"
	"github.com/cassetteproxy/cassetteproxy/match"
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
	var ins []store.Interaction
	var skipped []fixtures.HARSkip
	isHAR := !fi.IsDir()
	if isHAR {
		data, err := os.ReadFile(in)
		if err != nil {
			return err
		}
		if ins, skipped, err = fixtures.FromHAR(data); err != nil {
			return fmt.Errorf("%s: %w", in, err)
		}
	} else {
		f, err := fixtures.Load(in)
		if err != nil {
			return err
		}
		if ins, err = f.Interactions(); err != nil {
			return err
		}
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
		for i := range ins {
			r.Interaction(&ins[i])
		}
		n, err := importInteractions(st, name, ins, rules, c.Bool("append"))
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

// importInteractions writes ins into the cassette in order, keys computed
// with rules, in one transaction (a failure leaves the cassette as it was),
// and returns how many were written.
func importInteractions(st *store.Store, name string, ins []store.Interaction, rules *match.Rules, appendTo bool) (int, error) {
	for i := range ins {
		ins[i].Key = rules.Key(&ins[i].Request)
		ins[i].Seq = 0
	}
	if err := st.WriteCassette(name, ins, !appendTo); err != nil {
		return 0, err
	}
	return len(ins), nil
}
