package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/cassetteproxy/cassetteproxy/runner"
	"github.com/cassetteproxy/cassetteproxy/store"
)

func runsCommand() *cli.Command {
	jsonFlag := &cli.BoolFlag{Name: "json", Usage: "print JSON"}
	return &cli.Command{
		Name:  "runs",
		Usage: "list and show run records; close abandoned ones",
		Subcommands: []*cli.Command{
			{
				Name:  "ls",
				Usage: "list runs, oldest first",
				Flags: []cli.Flag{
					jsonFlag,
					&cli.StringFlag{Name: "status", Usage: "only runs with this `STATUS` (running, passed, failed, blocked, ...)"},
					&cli.StringFlag{Name: "since", Usage: "only runs started within `DURATION` (e.g. 24h) or since a `TIME` (RFC 3339 or 2006-01-02)"},
				},
				Action: runsLs,
			},
			{
				Name:      "show",
				Usage:     "show one run record",
				ArgsUsage: "ID",
				Flags:     []cli.Flag{jsonFlag},
				Action:    runsShow,
			},
			{
				Name:  "sweep",
				Usage: "close runs left open past their timeout plus a grace period as failed / run_abandoned",
				Flags: []cli.Flag{
					jsonFlag,
					&cli.StringFlag{Name: "grace", Usage: "`DURATION` past a run's timeout before it counts as abandoned", Value: "5m"},
				},
				Action: runsSweep,
			},
		},
	}
}

func runsLs(c *cli.Context) error {
	if args, err := positionals(c); err != nil {
		return err
	} else if len(args) > 0 {
		return fmt.Errorf("runs ls takes no arguments (got %q)", strings.Join(args, " "))
	}
	since, err := parseSince(c.String("since"), time.Now())
	if err != nil {
		return err
	}
	status := c.String("status")
	return withRecords(c, true, func(st *records) error {
		runs, err := st.ListRuns()
		if err != nil {
			return err
		}
		out := []store.Run{}
		for _, r := range runs {
			if status != "" && r.Status != status {
				continue
			}
			if !since.IsZero() && r.StartedAt.Before(since) {
				continue
			}
			out = append(out, r)
		}
		if c.Bool("json") {
			return printJSON(c, out)
		}
		tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tTYPE\tCASSETTE\tSTATUS\tFAILURE\tSTARTED\tDURATION\tHOST")
		for _, r := range out {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.RunID, r.RunType, dash(r.Cassette), r.Status, dash(r.FailureClass),
				r.StartedAt.Local().Format(time.RFC3339), runDuration(r), dash(r.Host))
		}
		return tw.Flush()
	})
}

func runsShow(c *cli.Context) error {
	id, err := oneArg(c, "ID")
	if err != nil {
		return err
	}
	return withRecords(c, true, func(st *records) error {
		r, err := st.GetRun(id)
		if errors.Is(err, store.ErrNoRun) {
			return fmt.Errorf("run %q not found in %s (list them with: cassetteproxy runs ls)", id, st.where)
		}
		if err != nil {
			return err
		}
		if c.Bool("json") {
			return printJSON(c, struct {
				store.Run
				Timeline []store.TraceEntry `json:"timeline"`
			}{r, r.Timeline()})
		}
		w := c.App.Writer
		field := func(k, v string) {
			if v != "" {
				fmt.Fprintf(w, "%-16s %s\n", k+":", v)
			}
		}
		field("run_id", r.RunID)
		field("run_type", r.RunType)
		field("host", r.Host)
		field("status", r.Status)
		field("failure_class", r.FailureClass)
		field("failure_reason", r.FailureReason)
		field("command", shellJoin(r.Command))
		field("dir", r.Dir)
		field("mode", r.Mode)
		field("isolated", fmt.Sprint(r.Isolated))
		field("cassette", r.Cassette)
		field("fixture_id", r.FixtureID)
		field("task_id", r.TaskID)
		field("attempt", fmt.Sprint(r.Attempt))
		field("agent_name", r.AgentName)
		field("model", r.Model)
		field("prompt_version", r.PromptVersion)
		field("code_version", r.CodeVersion)
		field("input_sha256", r.InputSHA256)
		if r.TimeoutSeconds > 0 {
			field("timeout", (time.Duration(r.TimeoutSeconds * float64(time.Second))).String())
		}
		field("started_at", r.StartedAt.Local().Format(time.RFC3339Nano))
		if r.ClosedAt != nil {
			field("closed_at", r.ClosedAt.Local().Format(time.RFC3339Nano))
		}
		field("duration", runDuration(r))
		if r.ExitCode != nil {
			field("exit_code", fmt.Sprint(*r.ExitCode))
		}
		field("signal", r.Signal)
		field("interactions", fmt.Sprint(r.Interactions))
		if r.ReplayedIncomplete > 0 {
			field("replayed_incomplete", fmt.Sprint(r.ReplayedIncomplete))
		}
		field("hosts", strings.Join(r.Hosts, ", "))
		field("models_seen", strings.Join(r.Models, ", "))
		field("artifact_refs", strings.Join(r.ArtifactRefs, ", "))
		for _, m := range r.Blocked {
			field("blocked", fmt.Sprintf("%s %s (%s)", m.Method, m.URL, m.Reason))
		}
		for _, rs := range r.Reasons {
			field("reason", fmt.Sprintf("%s/%s: %s", rs.Status, rs.Class, rs.Reason))
		}
		return printTimeline(w, &r)
	})
}

// printTimeline prints the run's events and requests in order, one line
// each: time, what (event kind or method and URL), decision, status.
func printTimeline(w io.Writer, r *store.Run) error {
	tl := r.Timeline()
	if len(tl) == 0 {
		return nil
	}
	fmt.Fprintln(w, "timeline:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, e := range tl {
		at := e.At().Local().Format("15:04:05.000")
		if ev := e.Event; ev != nil {
			what := strings.TrimSpace(fmt.Sprintf("%s %s", ev.Kind, firstOf(ev.Name, ev.Path, ev.Ref)))
			if ev.Kind == "artifact" && ev.Name != "" {
				what += " " + firstOf(ev.Path, ev.Ref)
			}
			fmt.Fprintf(tw, "  %s\t#%d %s\tevent\t%s\n", at, ev.Seq, what, dash(ev.Status))
			continue
		}
		q := e.Request
		decision := q.Decision
		if q.Reason != "" {
			decision += " (" + q.Reason + ")"
		}
		fmt.Fprintf(tw, "  %s\t%s %s\t%s\t%d\n", at, q.Method, q.URL, decision, q.Status)
	}
	if r.CallsOmitted > 0 {
		fmt.Fprintf(tw, "  ...\t%d later requests not kept\t\t\n", r.CallsOmitted)
	}
	return tw.Flush()
}

func firstOf(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

func runsSweep(c *cli.Context) error {
	if args, err := positionals(c); err != nil {
		return err
	} else if len(args) > 0 {
		return fmt.Errorf("runs sweep takes no arguments (got %q)", strings.Join(args, " "))
	}
	grace, err := time.ParseDuration(c.String("grace"))
	if err != nil || grace < 0 {
		return fmt.Errorf("--grace %q: not a duration of zero or more (e.g. 5m)", c.String("grace"))
	}
	return withRecords(c, false, func(st *records) error {
		closed, err := runner.Sweep(st, time.Now(), grace)
		if err != nil {
			return err
		}
		if c.Bool("json") {
			if closed == nil {
				closed = []store.Run{}
			}
			return printJSON(c, closed)
		}
		for _, r := range closed {
			fmt.Fprintf(c.App.Writer, "closed %s as %s/%s (started %s)\n", r.RunID, r.Status, r.FailureClass, r.StartedAt.Local().Format(time.RFC3339))
		}
		fmt.Fprintf(c.App.Writer, "swept %d abandoned run(s)\n", len(closed))
		return nil
	})
}

// withRecords runs fn on the run records: --runs-db's database (the store
// file is not opened), else the store's.
func withRecords(c *cli.Context, readOnly bool, fn func(*records) error) error {
	if runsDB(c) != "" {
		rs, err := openRecords(c, nil)
		if err != nil {
			return err
		}
		defer rs.close()
		return fn(rs)
	}
	return withStore(c, readOnly, func(st *store.Store) error {
		rs, err := openRecords(c, st)
		if err != nil {
			return err
		}
		return fn(rs)
	})
}

// parseSince reads --since: a duration back from now, or a time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("--since %q: use a duration (24h) or a time (2006-01-02 or RFC 3339)", s)
}

func runDuration(r store.Run) string {
	end := time.Now()
	suffix := " (open)"
	if r.ClosedAt != nil {
		end, suffix = *r.ClosedAt, ""
	}
	d := end.Sub(r.StartedAt)
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Second:
		d = d.Round(time.Millisecond)
	default:
		d = d.Round(100 * time.Millisecond)
	}
	return d.String() + suffix
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func shellJoin(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && !strings.ContainsAny(a, " \t\n'\"\\$`!*?[]{}()<>|&;#~") {
			out[i] = a
		} else {
			out[i] = shellQuote(a)
		}
	}
	return strings.Join(out, " ")
}
