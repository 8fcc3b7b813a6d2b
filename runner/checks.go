package runner

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/cassetteproxy/cassetteproxy/proxy"
)

// ClassInterrupted is the failure class of a child that exited 0 after
// cassetteproxy was interrupted: it did not finish on its own.
const ClassInterrupted = "interrupted"

// DefaultChecks are the checks every run gets, in the order that picks the
// primary failure: isolation, timeout, proxy misses/blocks, exit code,
// artifacts present, artifacts non-empty, the agent's artifact events, its
// claims; then recordings lost, which only degrades a run that nothing else
// failed (see Verdict).
func DefaultChecks() []Check {
	return []Check{IsolationCheck{}, TimeoutCheck{}, ProxyCheck{}, ExitCheck{}, ArtifactsPresentCheck{}, ArtifactsNonEmptyCheck{},
		EventArtifactsCheck{}, ClaimsCheck{}, RecordingCheck{}}
}

// IsolationCheck makes a run inconclusive when its network namespace
// could not be made: the command did not run, so nothing is known.
type IsolationCheck struct{}

func (IsolationCheck) Name() string { return "isolation" }
func (IsolationCheck) Check(ev *Evidence) []Failure {
	if ev.IsolationErr == "" {
		return nil
	}
	return []Failure{{StatusInconclusive, ClassIsolationFailed, "the command did not run: " + ev.IsolationErr}}
}

// CheckFunc makes a Check of a function.
type CheckFunc struct {
	CheckName string
	Func      func(*Evidence) []Failure
}

func (c CheckFunc) Name() string                 { return c.CheckName }
func (c CheckFunc) Check(ev *Evidence) []Failure { return c.Func(ev) }

// Verdict combines the failures of every check: passed when there are
// none, else the status and class of the first that is not degraded (a
// failure outranks a degradation, whichever check found it), else of the
// first, with every reason kept.
func Verdict(fs []Failure) (status string, primary Failure) {
	if len(fs) == 0 {
		return StatusPassed, Failure{}
	}
	for _, f := range fs {
		if f.Status != StatusDegraded {
			return f.Status, f
		}
	}
	return fs[0].Status, fs[0]
}

// RecordingCheck degrades a run whose recordings could not all be
// committed: the cassette the user believes holds the run is incomplete.
type RecordingCheck struct{}

func (RecordingCheck) Name() string { return "recordings" }
func (RecordingCheck) Check(ev *Evidence) []Failure {
	if ev.RecordingsLost == 0 {
		return nil
	}
	msg := fmt.Sprintf("%s answered but not committed to the store; the cassette is incomplete", count(ev.RecordingsLost, "recording"))
	if ev.RecordingLoss != "" {
		msg += " (last error: " + ev.RecordingLoss + ")"
	}
	return []Failure{{StatusDegraded, ClassRecordingLost, msg}}
}

// TimeoutCheck fails a run that reached its timeout.
type TimeoutCheck struct{}

func (TimeoutCheck) Name() string { return "timeout" }
func (TimeoutCheck) Check(ev *Evidence) []Failure {
	if !ev.TimedOut {
		return nil
	}
	how := "stopped with SIGTERM"
	if ev.Signal == "killed" {
		how = "SIGTERM then SIGKILL"
	}
	return []Failure{{StatusFailed, ClassTimeout, fmt.Sprintf("the command did not finish within its timeout of %s (%s)", ev.Timeout, how)}}
}

// ProxyCheck judges the requests the proxy blocked, as the mode's policy
// says (proxy.Policy). Where every block fails the run (strict), the run
// fails unrecorded_request, mutation_blocked or body_not_recorded, in the
// order their first blocked requests came.
// Elsewhere blocked requests do not fail a run that otherwise succeeded,
// but a run that failed after being refused answers is blocked (it never
// got the upstream it needed) rather than failed.
//
// Some blocks fail a run in every mode, whatever the command did next
// (their cells' FailsRun): those get a failure class of their own
// (ownClass).
type ProxyCheck struct{}

// ownClass gives the blocked reasons that fail a run by themselves their
// failure class and what the reason says.
var ownClass = map[string]struct{ class, what string }{
	// Recordings too old to trust (--expired block): what the command did
	// was judged against nothing.
	proxy.ReasonExpired: {ClassExpired, "answered from recordings older than --max-recording-age, blocked (--expired block)"},
	// A host outside --allow-host: nothing was sent to it.
	proxy.ReasonHostNotAllowed: {ClassHostNotAllowed, "to hosts outside --allow-host, blocked"},
}

func (ProxyCheck) Name() string { return "proxy" }
func (ProxyCheck) Check(ev *Evidence) []Failure {
	if len(ev.Blocked) == 0 {
		return nil
	}
	pol := proxy.PolicyFor(ev.Mode)
	failing := map[string][]Request{}
	var unrec, mut, noBody []Request
	for _, r := range ev.Blocked {
		switch _, own := ownClass[r.Reason]; {
		case own && pol.FailsRun(r.Reason):
			failing[r.Reason] = append(failing[r.Reason], r)
		case r.Reason == proxy.ReasonMutation:
			mut = append(mut, r)
		case r.Reason == ClassBodyNotRecorded:
			noBody = append(noBody, r)
		default:
			unrec = append(unrec, r) // unrecorded_request, exhausted, host_not_recorded, ...
		}
	}
	var out []Failure
	for _, reason := range slices.Sorted(maps.Keys(failing)) {
		rs, b := failing[reason], ownClass[reason]
		out = append(out, Failure{StatusFailed, b.class, fmt.Sprintf("%s %s: %s", count(len(rs), "request"), b.what, listRequests(rs))})
	}
	if len(unrec)+len(mut)+len(noBody) == 0 {
		return out
	}
	type group struct {
		class string
		reqs  []Request
		what  string
	}
	groups := []group{{ClassUnrecordedRequest, unrec, "not in the cassette"}, {ClassMutationBlocked, mut, "mutating and blocked"},
		{ClassBodyNotRecorded, noBody, "recorded without their response body (store policy or --max-body) and blocked"}}
	// The group of the first blocked request comes first: it names the run's failure.
	groupOf := func(reason string) string {
		if reason == ClassMutationBlocked || reason == ClassBodyNotRecorded {
			return reason
		}
		return ClassUnrecordedRequest
	}
	first := func(g group) int {
		for i, r := range ev.Blocked {
			if _, own := ownClass[r.Reason]; !(own && pol.FailsRun(r.Reason)) && groupOf(r.Reason) == g.class {
				return i
			}
		}
		return len(ev.Blocked)
	}
	slices.SortStableFunc(groups, func(a, b group) int { return first(a) - first(b) })
	if pol.BlockFailsRun {
		for _, g := range groups {
			if len(g.reqs) > 0 {
				out = append(out, Failure{StatusFailed, g.class, fmt.Sprintf("%s %s (%s mode): %s", count(len(g.reqs), "request"), g.what, ev.Mode, listRequests(g.reqs))})
			}
		}
		return out
	}
	if !otherwiseFailing(ev) {
		return out
	}
	g := groups[0] // the first blocked request's, never empty
	return append(out, Failure{StatusBlocked, g.class, fmt.Sprintf("the command failed after the proxy refused it %s (%s mode): %s", count(len(ev.Blocked), "answer"), ev.Mode, listRequests(ev.Blocked))})
}

func otherwiseFailing(ev *Evidence) bool {
	if ev.ExitCode != 0 || ev.TimedOut || ev.StartErr != "" {
		return true
	}
	for _, a := range ev.Artifacts {
		if !a.Exists || a.Size == 0 {
			return true
		}
	}
	return false
}

// ExitCheck fails a run whose command did not start, or ended with a
// non-zero code or a signal (a timeout is TimeoutCheck's), and one that
// exited 0 only after cassetteproxy was interrupted.
type ExitCheck struct{}

func (ExitCheck) Name() string { return "exit" }
func (ExitCheck) Check(ev *Evidence) []Failure {
	switch {
	case ev.IsolationErr != "":
		return nil // IsolationCheck's
	case ev.StartErr != "":
		return []Failure{{StatusFailed, ClassNonzeroExit, fmt.Sprintf("the command did not start: %s (exit %d)", ev.StartErr, ev.ExitCode)}}
	case ev.TimedOut:
		return nil
	case ev.ExitCode != 0:
		msg := fmt.Sprintf("the command exited with code %d", ev.ExitCode)
		if ev.Signal != "" {
			msg = fmt.Sprintf("the command was ended by signal %q (exit %d)", ev.Signal, ev.ExitCode)
		}
		if ev.Interrupted != "" {
			msg += fmt.Sprintf(" after cassetteproxy was interrupted (%s)", ev.Interrupted)
		}
		return []Failure{{StatusFailed, ClassNonzeroExit, msg}}
	case ev.Interrupted != "":
		return []Failure{{StatusFailed, ClassInterrupted, fmt.Sprintf("cassetteproxy was interrupted (%s); the command exited 0 before finishing on its own", ev.Interrupted)}}
	}
	return nil
}

// ArtifactsPresentCheck fails a run when an --artifact path or glob matched
// nothing.
type ArtifactsPresentCheck struct{}

func (ArtifactsPresentCheck) Name() string { return "artifacts_present" }
func (ArtifactsPresentCheck) Check(ev *Evidence) []Failure {
	if ev.StartErr != "" || ev.IsolationErr != "" {
		return nil
	}
	var out []Failure
	for _, a := range ev.Artifacts {
		if !a.Exists {
			out = append(out, Failure{StatusFailed, ClassMissingArtifact, fmt.Sprintf("artifact %s was not written (nothing matches it)", a.Pattern)})
		}
	}
	return out
}

// ArtifactsNonEmptyCheck fails a run when an artifact is an empty file (or
// an empty folder).
type ArtifactsNonEmptyCheck struct{}

func (ArtifactsNonEmptyCheck) Name() string { return "artifacts_non_empty" }
func (ArtifactsNonEmptyCheck) Check(ev *Evidence) []Failure {
	var out []Failure
	for _, a := range ev.Artifacts {
		if a.Exists && a.Size == 0 {
			what := "file"
			if a.IsDir {
				what = "folder"
			}
			out = append(out, Failure{StatusFailed, ClassEmptyOutput, fmt.Sprintf("artifact %s is an empty %s", a.Path, what)})
		}
	}
	return out
}

func count(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func listRequests(rs []Request) string {
	const show = 3
	parts := make([]string, 0, show+1)
	for i, r := range rs {
		if i == show {
			parts = append(parts, fmt.Sprintf("and %d more", len(rs)-show))
			break
		}
		parts = append(parts, fmt.Sprintf("%s %s (%s)", r.Method, r.URL, r.Reason))
	}
	return strings.Join(parts, "; ")
}
