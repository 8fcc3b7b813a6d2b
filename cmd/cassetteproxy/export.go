package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/cassetteproxy/cassetteproxy/fixtures"
	"github.com/cassetteproxy/cassetteproxy/internal/fsutil"
	"github.com/cassetteproxy/cassetteproxy/redact"
	"github.com/cassetteproxy/cassetteproxy/runner"
	"github.com/cassetteproxy/cassetteproxy/store"
)

func exportCommand() *cli.Command {
	return &cli.Command{
		Name:      "export",
		Usage:     "write a cassette as a fixture folder (or a HAR file)",
		UsageText: "cassetteproxy export --cassette NAME --out DIR [--format fixture|har] [--run RUN_ID] [--fixture-id ID] [--tier critical|hourly|daily]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "cassette", Usage: "cassette `NAME`"},
			&cli.StringFlag{Name: "out", Usage: "fixture `DIR` (for har: a .har file, or a folder to write NAME.har in)"},
			&cli.StringFlag{Name: "format", Usage: "fixture or har", Value: "fixture"},
			&cli.StringFlag{Name: "run", Usage: "the source run `ID` (default: the latest run on the cassette, if any)"},
			&cli.StringFlag{Name: "fixture-id", Usage: "fixture `ID` (default: from the cassette name)"},
			&cli.StringFlag{Name: "tier", Usage: "monitor tier: critical, hourly or daily", Value: "daily"},
			&cli.StringFlag{Name: "failure-class", Usage: "the failure `CLASS` this fixture protects (default: the source run's)"},
			&cli.StringFlag{Name: "description", Usage: "one line for notes.json"},
			&cli.BoolFlag{Name: "force", Usage: "overwrite a folder that already holds a fixture"},
		},
		Action: exportAction,
	}
}

func exportAction(c *cli.Context) error {
	args, err := positionals(c)
	if err != nil {
		return err
	}
	if len(args) > 0 {
		return fmt.Errorf("export takes no arguments (got %q): cassetteproxy export --cassette NAME --out DIR", args[0])
	}
	name, out := c.String("cassette"), c.String("out")
	if name == "" || out == "" {
		return errors.New("export needs --cassette NAME and --out DIR")
	}
	format := c.String("format")
	if format != "fixture" && format != "har" {
		return fmt.Errorf("unknown --format %q: use fixture or har", format)
	}
	switch t := c.String("tier"); t {
	case "critical", "hourly", "daily":
	default:
		return fmt.Errorf("unknown --tier %q: use critical, hourly or daily", t)
	}
	var shared *records
	if runsDB(c) != "" && format == "fixture" {
		if shared, err = openRecords(c, nil); err != nil {
			return err
		}
		defer shared.close()
	}
	return withStore(c, true, func(st *store.Store) error {
		// One interaction at a time: memory holds one, however large the
		// cassette.
		if _, err := st.Cassette(name); err != nil {
			return err
		}
		each := func(yield func(store.Interaction) error) error { return st.EachInteraction(name, yield) }
		if format == "har" {
			path := out
			if !strings.HasSuffix(strings.ToLower(out), ".har") {
				path = filepath.Join(out, fixtures.SafeID(name)+".har")
			}
			n, err := writeHAR(path, "cassette "+name, each)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "exported %d interactions of cassette %s to %s\n", n, name, path)
			return nil
		}
		if _, err := os.Stat(filepath.Join(out, fixtures.InputFile)); err == nil && !c.Bool("force") {
			return fmt.Errorf("%s already holds a fixture: pass --force to overwrite it, or pick another --out", out)
		}
		var recs store.Records = st
		if shared != nil {
			recs = shared
		}
		run, err := sourceRun(recs, hostName(), name, c.String("run"))
		if err != nil {
			return err
		}
		id := c.String("fixture-id")
		if id == "" {
			id = fixtures.SafeID(name)
		}
		o := fixtures.ExportOptions{FixtureID: id, Cassette: name, Tier: c.String("tier"),
			FailureClass: c.String("failure-class"), Description: c.String("description")}
		if run != nil {
			in, exp := fromRun(run)
			if err := portable(c, st, run, absPath(out), in); err != nil {
				return err
			}
			o.Input, o.Expected, o.SourceRunID = in, exp, run.RunID
			if o.FailureClass == "" {
				o.FailureClass = run.FailureClass
			}
			o.RecordedAt = run.StartedAt
			o.Trace = run.Timeline()
		}
		_, n, err := fixtures.WriteFrom(out, o, each)
		if err != nil {
			return err
		}
		from := ""
		if run != nil {
			from = " (source run " + run.RunID + ")"
		}
		fmt.Fprintf(c.App.Writer, "exported %d interactions of cassette %s to fixture %s%s\n", n, name, out, from)
		return nil
	})
}

// writeHAR writes the HAR of the interactions each yields to path, under a
// temporary name renamed when whole.
func writeHAR(path, comment string, each fixtures.Each) (int, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return 0, err
	}
	n := 0
	err := fsutil.WriteAtomic(path, 0o644, func(w io.Writer) (err error) {
		n, err = fixtures.WriteHAR(w, buildVersion(), comment, each)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return n, nil
}

// sourceRun is the named run, or the latest run made on the cassette on
// this host (run records shared by a fleet hold other hosts' runs on
// cassettes of the same name, which are not in this store), or nil when
// there is none.
func sourceRun(st store.Records, host, cassette, id string) (*store.Run, error) {
	if id != "" {
		r, err := st.GetRun(id)
		if err != nil {
			return nil, err
		}
		return &r, nil
	}
	runs, err := st.ListRuns()
	if err != nil {
		return nil, err
	}
	for i := len(runs) - 1; i >= 0; i-- {
		if r := runs[i]; r.Cassette == cassette && r.RunType != "replay" && (r.Host == "" || r.Host == host) {
			r, err := st.GetRun(runs[i].RunID) // with its events
			if err != nil {
				return nil, err
			}
			return &r, nil
		}
	}
	return nil, nil
}

// portable makes the run's command replay from the fixture folder dir with
// no edits: its --input and --state files are copied (scrubbed) into the
// fixture's workdir/, and its file arguments rewritten (see
// fixtures.PortableCommand).
func portable(c *cli.Context, st *store.Store, run *store.Run, dir string, in *fixtures.Input) error {
	secret, err := st.Secret("redact-hmac", 32)
	if errors.Is(err, store.ErrReadOnly) {
		secret = nil // a store that never recorded: markers without fingerprints
	} else if err != nil {
		return err
	}
	red, err := redact.New(redact.Config{Secret: secret})
	if err != nil {
		return err
	}
	files := []string{}
	if run.InputFile != "" {
		files = append(files, run.InputFile)
		if sum, err := runner.FileSHA256(run.InputFile); err == nil && run.InputSHA256 != "" && sum != run.InputSHA256 {
			fmt.Fprintf(c.App.ErrWriter, "cassetteproxy: note: %s changed since run %s: the fixture gets its content as it is now\n", run.InputFile, run.RunID)
		}
	}
	for _, ref := range run.StateRefs {
		if filepath.IsAbs(ref) { // a file; other refs (row ids, URLs) are not copied
			files = append(files, ref)
		}
	}
	copied, notes, err := fixtures.CopyRunFiles(dir, run.Dir, files, red)
	for _, n := range notes {
		fmt.Fprintln(c.App.ErrWriter, "cassetteproxy: note: "+n)
	}
	if err != nil {
		return err
	}
	if len(copied) > 0 {
		in.Workdir = fixtures.WorkdirName
	}
	in.Command = fixtures.PortableCommand(run.Command, run.Dir, dir, copied, run.ArtifactRefs)
	return nil
}

// fromRun starts input.json and expected.json from what the run did and
// required. input.json carries the task's own variables (run --env), already
// scrubbed.
func fromRun(r *store.Run) (*fixtures.Input, *fixtures.Expected) {
	in := &fixtures.Input{Command: r.Command, Env: r.Env, TimeoutSeconds: r.TimeoutSeconds, TaskID: r.TaskID, AgentName: r.AgentName,
		Model: r.Model, PromptVersion: r.PromptVersion, CodeVersion: r.CodeVersion, ToolAllowlist: r.ToolAllowlist}
	zero := 0
	exp := &fixtures.Expected{Status: "passed", ExitCode: &zero, Requests: &fixtures.Requests{MaxMisses: &zero, ForbidMutations: true},
		SideEffects: r.SideEffects}
	// The agent's artifact events are judged again when it reports them in
	// the replay; the contract takes only the run's --artifact files.
	reported := map[string]bool{}
	for _, e := range r.Events {
		if e.Kind == "artifact" {
			reported[e.Ref] = true
			if e.Path != "" {
				reported[e.Path] = true
				reported[filepath.Join(r.Dir, e.Path)] = true
			}
		}
	}
	for _, ref := range r.ArtifactRefs {
		if reported[ref] {
			continue
		}
		rel := ref
		if r.Dir != "" {
			if x, err := filepath.Rel(r.Dir, ref); err == nil && !strings.HasPrefix(x, "..") {
				rel = x
			}
		}
		exp.Artifacts = append(exp.Artifacts, fixtures.Artifact{Path: filepath.ToSlash(rel)})
	}
	return in, exp
}

// buildVersion is the module version the binary was built from ("devel"
// for a local build).
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}
