package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/cassetteproxy/cassetteproxy/fixtures"
	"github.com/cassetteproxy/cassetteproxy/store"
)

func cassettesCommand() *cli.Command {
	jsonFlag := &cli.BoolFlag{Name: "json", Usage: "print JSON"}
	return &cli.Command{
		Name:  "cassettes",
		Usage: "list, show and remove recorded cassettes",
		Subcommands: []*cli.Command{
			{
				Name:  "ls",
				Usage: "list cassettes",
				Flags: []cli.Flag{jsonFlag},
				Action: func(c *cli.Context) error {
					return withStore(c, true, func(st *store.Store) error {
						infos, err := listWithAge(st)
						if err != nil {
							return err
						}
						if c.Bool("json") {
							return printJSON(c, infos)
						}
						tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
						fmt.Fprintln(tw, "NAME\tINTERACTIONS\tCREATED\tUPDATED\tOLDEST RECORDING")
						for _, in := range infos {
							oldest := "-"
							if in.OldestRecordingAt != nil {
								oldest = in.OldestRecordingAt.Format(time.RFC3339)
							}
							fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", in.Name, in.Interactions, in.CreatedAt.Format(time.RFC3339), in.UpdatedAt.Format(time.RFC3339), oldest)
						}
						return tw.Flush()
					})
				},
			},
			{
				Name:      "show",
				Usage:     "show a cassette's interactions",
				ArgsUsage: "NAME",
				Flags:     []cli.Flag{jsonFlag},
				Action: func(c *cli.Context) error {
					name, err := oneArg(c, "NAME")
					if err != nil {
						return err
					}
					return withStore(c, true, func(st *store.Store) error {
						// One interaction at a time: output starts at once and
						// memory holds one, however large the cassette.
						if _, err := st.Cassette(name); err != nil {
							return err
						}
						each := func(yield func(store.Interaction) error) error { return st.EachInteraction(name, yield) }
						if c.Bool("json") {
							_, err := fixtures.WriteReadable(c.App.Writer, name, each)
							return err
						}
						t := newStreamTable(c.App.Writer, "SEQ", "METHOD", "URL", "STATUS", "BODY", "NOTES")
						err := each(func(in store.Interaction) error {
							t.row(strconv.FormatUint(in.Seq, 10), in.Request.Method, in.Request.URL,
								strconv.Itoa(in.Response.Status), bodySize(in.Response), notes(in))
							return nil
						})
						if ferr := t.flush(); err == nil {
							err = ferr
						}
						return err
					})
				},
			},
			{
				Name:      "rm",
				Usage:     "remove a cassette",
				ArgsUsage: "NAME",
				Action: func(c *cli.Context) error {
					name, err := oneArg(c, "NAME")
					if err != nil {
						return err
					}
					return withStore(c, false, func(st *store.Store) error {
						if err := st.DeleteCassette(name); err != nil {
							return err
						}
						fmt.Fprintf(c.App.Writer, "removed cassette %s\n", name)
						return nil
					})
				},
			},
		},
	}
}

// cassetteAge is a cassette as `cassettes ls` lists it: its summary and
// its oldest recording, the one --max-recording-age expires first.
type cassetteAge struct {
	store.CassetteInfo
	OldestRecordingAt *time.Time `json:"oldest_recording_at,omitempty"`
}

func listWithAge(st *store.Store) ([]cassetteAge, error) {
	infos, err := st.ListCassettes()
	if err != nil {
		return nil, err
	}
	out := make([]cassetteAge, 0, len(infos))
	for _, in := range infos {
		ca := cassetteAge{CassetteInfo: in}
		oldest, err := st.OldestRecording(in.Name)
		if err != nil {
			return nil, err
		}
		if !oldest.IsZero() {
			ca.OldestRecordingAt = &oldest
		}
		out = append(out, ca)
	}
	return out, nil
}

func bodySize(r store.Response) string {
	switch m := r.NotRecorded; {
	case m == nil:
		return fmt.Sprintf("%dB", len(r.Body))
	case m.Policy == store.StoreFields && m.Fields != nil:
		f := string(m.Fields)
		if r := []rune(f); len(r) > 60 {
			f = string(r[:60]) + "…"
		}
		return fmt.Sprintf("fields %s of %dB", f, m.Size)
	case m.Policy != "":
		return fmt.Sprintf("hash sha256:%.12s… %dB", m.SHA256, m.Size)
	}
	return fmt.Sprintf("%dB (not kept)", r.NotRecorded.Size)
}

// notes marks what a reader of a cassette must know about an interaction.
func notes(in store.Interaction) string {
	r := in.Response
	var n []string
	for _, m := range []*store.BodyMarker{in.Request.NotRecorded, r.NotRecorded} {
		if m != nil && m.Policy != "" {
			n = append(n, "store:"+m.Policy) // the rules file's store policy left the bodies out
			break
		}
	}
	if r.Streamed {
		n = append(n, fmt.Sprintf("stream:%d events", len(r.Events)))
	}
	switch {
	case r.Incomplete && r.ContentLength > 0:
		n = append(n, fmt.Sprintf("incomplete:%d/%dB", len(r.Body), r.ContentLength))
	case r.Incomplete:
		n = append(n, "incomplete")
	}
	if r.Upgrade {
		n = append(n, "upgrade")
	}
	if r.NotRecorded != nil && r.NotRecorded.Policy == "" {
		n = append(n, "truncated:body_not_recorded") // over --max-body
	}
	if r.ContentEncoding != "" {
		n = append(n, "was:"+r.ContentEncoding)
	}
	return strings.Join(n, ",")
}

// withStore opens the store for a command. Read-only commands on a missing
// store see an empty one rather than creating a file.
func withStore(c *cli.Context, readOnly bool, fn func(*store.Store) error) error {
	path := globalString(c, "db")
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) && readOnly {
		return fmt.Errorf("no store at %s: record a cassette first (cassetteproxy serve --mode record --cassette NAME), or point --db at one", path)
	}
	st, err := store.Open(path, store.Options{ReadOnly: readOnly})
	if err != nil {
		return err
	}
	err = fn(st)
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	return err
}

func oneArg(c *cli.Context, what string) (string, error) {
	args, err := positionals(c)
	if err != nil {
		return "", err
	}
	if len(args) != 1 {
		return "", fmt.Errorf("%s takes one argument, %s", c.Command.Name, what)
	}
	return args[0], nil
}

// positionals returns a command's positional arguments, applying any of its
// flags typed after them: urfave/cli stops reading flags at the first
// argument, and users write `show demo --json` as often as `show --json demo`.
func positionals(c *cli.Context) ([]string, error) {
	var out []string
	args := c.Args().Slice()
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i+1:]...), nil
		}
		if len(a) < 2 || a[0] != '-' {
			out = append(out, a)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		flag := findFlag(c.Command.Flags, name)
		if flag == nil {
			return nil, fmt.Errorf("flag provided but not defined: %s (see: cassetteproxy %s --help)", a, c.Command.Name)
		}
		if _, isBool := flag.(*cli.BoolFlag); isBool && !hasValue {
			value = "true"
		} else if !hasValue {
			if i+1 >= len(args) {
				return nil, fmt.Errorf("flag needs an argument: %s", a)
			}
			i++
			value = args[i]
		}
		// By its first name: an alias (-j) has storage of its own after
		// parsing, which the command never reads.
		if err := c.Set(flag.Names()[0], value); err != nil {
			return nil, fmt.Errorf("%s: %w", a, err)
		}
	}
	return out, nil
}

func findFlag(flags []cli.Flag, name string) cli.Flag {
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				return f
			}
		}
	}
	return nil
}

func printJSON(c *cli.Context, v any) error {
	enc := json.NewEncoder(c.App.Writer)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
