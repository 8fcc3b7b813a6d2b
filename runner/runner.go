package runner

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/cassetteproxy/cassetteproxy/isolate"
	"github.com/cassetteproxy/cassetteproxy/match"
	"github.com/cassetteproxy/cassetteproxy/store"
)

// Run types.
const (
	RunTypeProduction = "production"
	RunTypeReplay     = "replay"
)

// Defaults.
const (
	DefaultKillGrace    = 5 * time.Second // Spec.KillGrace when 0
	DefaultFlushEvery   = time.Second     // Spec.FlushEvery when 0
	DefaultSweepTimeout = time.Hour       // Sweep's timeout for runs that had none
)

// RecordStore keeps run records and the events of each; *store.Store is one.
type RecordStore interface {
	PutRun(store.Run) error
	EventStore
}

// Redactor scrubs secrets out of what a run record keeps; *redact.Redactor
// is one.
type Redactor interface {
	Args(argv []string) []string
	String(s string) string
}

// Spec is one run to make.
type Spec struct {
	Argv []string // the command; Argv[0] is looked up in PATH of Env
	Dir  string   // the child's working directory; "" = the current one
	// Env is the child's whole environment (KEY=VALUE). Build it with
	// ChildEnv. Run adds CASSETTEPROXY_RUN_ID.
	Env []string

	Stdin          io.Reader // nil: no input
	Stdout, Stderr io.Writer // nil: discarded. *os.File values are handed to the child as they are.

	Timeout    time.Duration // 0: none
	KillGrace  time.Duration // SIGTERM → SIGKILL delay on timeout or interrupt; 0: DefaultKillGrace
	FlushEvery time.Duration // how often the open record is rewritten; 0: DefaultFlushEvery

	// ProcessGroup puts the child in a process group of its own and sends
	// every signal to the whole group (grandchildren included). Use it when
	// stdin is not a terminal: a background group cannot read the terminal.
	ProcessGroup bool

	// Signals are forwarded to the child as they arrive (SIGINT, SIGTERM);
	// the first one also marks the run interrupted and starts the
	// KillGrace timer. nil: none.
	Signals <-chan os.Signal

	// Redact scrubs what the record keeps of the command line and of the
	// failure reasons (package redact's Args and String). nil keeps them
	// as they are.
	Redact Redactor

	Mode      match.Mode // the proxy's mode: decides how blocks count (proxy.Policy)
	Artifacts []string   // paths or globs, relative to Dir; each must match a non-empty file
	InputFile string     // hashed into input_sha256 when set (relative to Dir)
	Checks    []Check    // run after DefaultChecks
	// SideEffects the run must make (run --side-effect), checked after
	// DefaultChecks and kept in the record.
	SideEffects []store.SideEffect

	Store    RecordStore
	Observer *Observer // the proxy's observer; nil: the proxy saw nothing

	// Isolate runs the command in a network namespace of its own, where
	// only the proxy answers (package isolate; Linux). nil: the command
	// shares cassetteproxy's network. A namespace that cannot be made
	// makes the run inconclusive (isolation_failed); the command does
	// not run.
	Isolate *Isolation

	// Drain, when set, is called once the command has ended and before the
	// checks run: it hands every recording of the run to the store (stops
	// the proxy, flushes its recorder) and reports how many could not be
	// committed and the last reason. A loss degrades the run.
	Drain func() (lost int, reason string)

	// Record is the template of the run record: RunID (NewRunID when
	// empty), RunType (production when empty), FixtureID, TaskID, Attempt,
	// AgentName, CodeVersion, Model, PromptVersion, ToolAllowlist,
	// StateRefs, Cassette. Run fills in the rest.
	Record store.Run

	// Now is the clock; nil: time.Now. Tests set it.
	Now func() time.Time
}

// Isolation is where the proxy answers inside the command's namespace.
type Isolation struct {
	// Listen is the proxy's address inside (isolate.InsideAddr), the one
	// the proxy variables in Env name.
	Listen string
	// Serve is handed the listening socket at Listen inside the namespace
	// before the command starts; the caller serves the proxy on it, and
	// closes it with the proxy.
	Serve func(net.Listener)
}

// Result is a finished run.
type Result struct {
	Record   store.Run // the closed record, as stored
	Evidence Evidence
	Failures []Failure // every failure the checks reported, in order
	Status   string    // the verdict
	ExitCode int       // what the CLI should exit with (see the package comment)
}

// ErrNoCommand is returned by Run for an empty Spec.Argv.
var ErrNoCommand = errors.New("no command to run: give one after --, e.g. cassetteproxy run -- sh -c 'curl https://example.com'")

// NewRunID returns a fresh run id that sorts by start time, e.g.
// 20250601T120000.123Z-9f3a1c2b.
func NewRunID(t time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return t.UTC().Format("20060102T150405.000Z") + "-" + hex.EncodeToString(b[:])
}

// ChildEnv returns base with every variable named in vars replaced by its
// value in vars (and vars appended in order). Pass os.Environ() as base and
// proxy.ClientEnv(...) as vars.
func ChildEnv(base []string, vars [][2]string) []string {
	set := make(map[string]bool, len(vars))
	for _, kv := range vars {
		set[kv[0]] = true
	}
	out := make([]string, 0, len(base)+len(vars))
	for _, e := range base {
		k, _, _ := strings.Cut(e, "=")
		if !set[k] {
			out = append(out, e)
		}
	}
	for _, kv := range vars {
		out = append(out, kv[0]+"="+kv[1])
	}
	return out
}

// Run opens the run record, runs the command, closes the record with a
// verdict and returns it. It returns an error, with nothing run, when the
// spec is unusable (no command, no store, an unreadable InputFile) or the
// record cannot be written; once the record is open it is closed in every
// path, and an error then means only that the closing write failed (the
// Result is still complete).
func Run(ctx context.Context, spec Spec) (Result, error) {
	if len(spec.Argv) == 0 || spec.Argv[0] == "" {
		return Result{}, ErrNoCommand
	}
	if spec.Store == nil {
		return Result{}, errors.New("runner: Spec.Store is required")
	}
	now := spec.Now
	if now == nil {
		now = time.Now
	}
	grace := spec.KillGrace
	if grace <= 0 {
		grace = DefaultKillGrace
	}
	flushEvery := spec.FlushEvery
	if flushEvery <= 0 {
		flushEvery = DefaultFlushEvery
	}
	dir := spec.Dir
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return Result{}, fmt.Errorf("working directory: %w", err)
		}
		dir = wd
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return Result{}, err
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return Result{}, fmt.Errorf("working directory %s: not a folder", dir)
	}

	rec := spec.Record
	if rec.RunID == "" {
		rec.RunID = NewRunID(now())
	}
	if rec.RunType == "" {
		rec.RunType = RunTypeProduction
	}
	if rec.Attempt == 0 {
		rec.Attempt = 1
	}
	if spec.InputFile != "" {
		sum, err := FileSHA256(abs(dir, spec.InputFile))
		if err != nil {
			return Result{}, fmt.Errorf("--input: %w", err)
		}
		rec.InputSHA256 = sum
	}
	patterns := make([]string, len(spec.Artifacts))
	for i, p := range spec.Artifacts {
		if p == "" {
			return Result{}, errors.New("--artifact: empty path")
		}
		if _, err := filepath.Match(p, ""); err != nil {
			return Result{}, fmt.Errorf("--artifact %q: bad glob: %w", p, err)
		}
		patterns[i] = abs(dir, p)
	}
	for _, se := range spec.SideEffects {
		if _, err := match.CompileSideEffect(se); err != nil {
			return Result{}, err
		}
	}
	rec.StartedAt = now().UTC()
	rec.UpdatedAt = rec.StartedAt
	rec.Command = append([]string(nil), spec.Argv...)
	if spec.Redact != nil {
		rec.Command = spec.Redact.Args(spec.Argv)
	}
	rec.Dir = dir
	rec.Mode = string(spec.Mode)
	rec.Isolated = spec.Isolate != nil
	rec.TimeoutSeconds = spec.Timeout.Seconds()
	rec.ArtifactRefs = patterns
	rec.SideEffects = spec.SideEffects
	rec.Status = store.RunStatusRunning
	rec.ClosedAt, rec.ExitCode, rec.Signal, rec.FailureClass, rec.FailureReason, rec.Reasons = nil, nil, "", "", "", nil
	if err := spec.Store.PutRun(rec); err != nil {
		return Result{}, fmt.Errorf("open run record: %w", err)
	}

	ev := Evidence{RunID: rec.RunID, Mode: spec.Mode, Dir: dir, Argv: append([]string(nil), spec.Argv...), Timeout: spec.Timeout, Started: rec.StartedAt}
	r := &running{spec: spec, rec: rec, grace: grace}
	spec.Observer.openEvents(spec.Store, rec.RunID)
	r.execute(ctx, &ev, flushEvery, now)
	spec.Observer.closeEvents()
	ev.Isolated = spec.Isolate != nil && ev.IsolationErr == ""
	ev.Ended = now().UTC()
	ev.Artifacts = resolveArtifacts(patterns)
	if spec.Drain != nil {
		ev.RecordingsLost, ev.RecordingLoss = spec.Drain()
	}
	spec.Observer.fill(&ev)

	checks := DefaultChecks()
	if len(spec.SideEffects) > 0 {
		checks = append(checks, SideEffectsCheck{Source: "--side-effect", Specs: spec.SideEffects})
	}
	checks = append(checks, spec.Checks...)
	var fails []Failure
	for _, c := range checks {
		fails = append(fails, runCheck(c, &ev)...)
	}
	status, primary := Verdict(fails)

	rec = r.rec
	observed(&rec, &ev)
	scrub := func(s string) string { return s }
	if spec.Redact != nil {
		scrub = spec.Redact.String
	}
	rec.Status, rec.FailureClass, rec.FailureReason = status, primary.Class, scrub(primary.Reason)
	rec.Reasons = nil
	for _, f := range fails {
		rec.Reasons = append(rec.Reasons, store.RunReason{Status: f.Status, Class: f.Class, Reason: scrub(f.Reason)})
	}
	code := ev.ExitCode
	rec.ExitCode, rec.Signal = &code, ev.Signal
	rec.Isolated = ev.Isolated
	if ev.IsolationErr != "" {
		rec.ExitCode = nil // the command never ran
	}
	eventArtifacts, _ := eventRefs(dir, ev.Events)
	rec.ArtifactRefs = append(artifactRefs(patterns, ev.Artifacts), eventArtifacts...)
	rec.Calls, rec.CallsOmitted = ev.Calls, ev.CallsOmitted
	closed := ev.Ended
	rec.ClosedAt, rec.UpdatedAt = &closed, closed

	res := Result{Record: rec, Evidence: ev, Failures: fails, Status: status, ExitCode: ev.ExitCode}
	if res.ExitCode == 0 && status != StatusPassed {
		res.ExitCode = 3
	}
	if ev.IsolationErr != "" {
		res.ExitCode = 1 // nothing ran: a runtime error, not a verdict on the command
	}
	if err := spec.Store.PutRun(rec); err != nil {
		return res, fmt.Errorf("close run record %s: %w", rec.RunID, err)
	}
	return res, nil
}

// running is one child process under way.
type running struct {
	spec  Spec
	rec   store.Run
	grace time.Duration
	cmd   *exec.Cmd
	ns    *isolate.Namespace // the command's network namespace, when isolated
}

// execute starts the child and waits for it, forwarding signals, enforcing
// the timeout and rewriting the open record as the observer learns more.
func (r *running) execute(ctx context.Context, ev *Evidence, flushEvery time.Duration, now func() time.Time) {
	spec := r.spec
	env := ChildEnv(spec.Env, [][2]string{{"CASSETTEPROXY_RUN_ID", r.rec.RunID}})
	path, code, err := lookPath(spec.Argv[0], envValue(env, "PATH"), ev.Dir)
	if err != nil {
		ev.StartErr, ev.ExitCode = err.Error(), code
		return
	}
	cmd := &exec.Cmd{Path: path, Args: spec.Argv, Dir: ev.Dir, Env: env, Stdin: spec.Stdin, Stdout: spec.Stdout, Stderr: spec.Stderr}
	cmd.SysProcAttr = sysProcAttr(spec.ProcessGroup)
	cmd.WaitDelay = r.grace // a grandchild holding a non-file stdout open cannot hang Wait
	if spec.Isolate != nil {
		if !r.startIsolated(cmd, ev) {
			return
		}
	} else if err := cmd.Start(); err != nil {
		ev.StartErr, ev.ExitCode = err.Error(), 126
		if errors.Is(err, fs.ErrNotExist) {
			ev.ExitCode = 127
		}
		return
	}
	r.cmd = cmd
	r.rec.PID = cmd.Process.Pid
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()

	var timeoutC, killC <-chan time.Time
	if spec.Timeout > 0 {
		t := time.NewTimer(spec.Timeout)
		defer t.Stop()
		timeoutC = t.C
	}
	var killTimer *time.Timer
	startKill := func() {
		if killTimer == nil {
			killTimer = time.NewTimer(r.grace)
			killC = killTimer.C
		}
	}
	defer func() {
		if killTimer != nil {
			killTimer.Stop()
		}
	}()
	flush := time.NewTicker(flushEvery)
	defer flush.Stop()
	var flushed uint64
	dirty := true // the pid is new
	done := ctx.Done()
	signals := spec.Signals
	for {
		select {
		case <-waited:
			st := cmd.ProcessState
			ev.ExitCode = st.ExitCode()
			if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				ev.Signal = ws.Signal().String()
				ev.ExitCode = 128 + int(ws.Signal())
			}
			if r.ns != nil { // how the command inside ended, unless the namespace was killed first
				if code, sig, ok := r.ns.Exit(); ok {
					ev.ExitCode, ev.Signal = code, ""
					if sig != 0 {
						ev.Signal = sig.String()
					}
				}
			}
			return
		case sig := <-signals:
			if ev.Interrupted != "" {
				r.signal(syscall.SIGKILL) // a second interrupt: stop now
				continue
			}
			ev.Interrupted = sig.String()
			r.signal(sig)
			startKill()
		case <-done:
			done = nil
			if ev.Interrupted == "" {
				ev.Interrupted = ctx.Err().Error()
			}
			r.signal(syscall.SIGTERM)
			startKill()
		case <-timeoutC:
			timeoutC = nil
			ev.TimedOut = true
			r.signal(syscall.SIGTERM)
			startKill()
		case <-killC:
			killC = nil
			r.signal(syscall.SIGKILL)
		case <-flush.C:
			if v := spec.Observer.Version(); v != flushed || dirty {
				flushed, dirty = v, false
				snap := *ev
				spec.Observer.fill(&snap)
				rec := r.rec
				observed(&rec, &snap)
				rec.UpdatedAt = now().UTC()
				_ = spec.Store.PutRun(rec) // best effort; the closing write reports errors
			}
		}
	}
}

// signal sends sig to the child, or to its whole process group. An
// isolated child's group holds the namespace's first process too, which
// takes no signal itself; without a group, the signal is passed on by it.
func (r *running) signal(sig os.Signal) {
	s, ok := sig.(syscall.Signal)
	if !ok || r.cmd == nil || r.cmd.Process == nil {
		return
	}
	if r.spec.ProcessGroup {
		if syscall.Kill(-r.cmd.Process.Pid, s) == nil {
			return
		}
	}
	if r.ns != nil {
		_ = r.ns.Signal(s)
		return
	}
	_ = r.cmd.Process.Signal(s)
}

// startIsolated starts cmd in a network namespace of its own and hands the
// proxy its listener there. false: nothing runs (ev says why).
func (r *running) startIsolated(cmd *exec.Cmd, ev *Evidence) bool {
	ns, err := isolate.Wrap(cmd, r.spec.Isolate.Listen)
	var ln net.Listener
	if err == nil {
		ln, err = ns.Start()
	}
	var ce *isolate.CommandError
	switch {
	case errors.As(err, &ce):
		ev.StartErr, ev.ExitCode = ce.Err, ce.Code
		return false
	case err != nil:
		ev.IsolationErr = err.Error()
		return false
	}
	r.ns = ns
	r.spec.Isolate.Serve(ln)
	return true
}

// observed copies the proxy's evidence into the record: what it saw, and
// the state references the agent reported (after the template's).
func observed(rec *store.Run, ev *Evidence) {
	if _, states := eventRefs(ev.Dir, ev.Events); len(states) > 0 {
		rec.StateRefs = slices.Concat(rec.StateRefs, states)
	}
	rec.Interactions, rec.Errors, rec.RecordingsLost = ev.Interactions, ev.Errors, ev.RecordingsLost
	rec.ReplayedIncomplete = ev.Incomplete
	rec.Hosts, rec.Models = ev.Hosts, ev.Models
	rec.Misses, rec.Blocked = runRequests(ev.Misses), runRequests(ev.Blocked)
}

func runRequests(rs []Request) []store.RunRequest {
	if len(rs) == 0 {
		return nil
	}
	out := make([]store.RunRequest, len(rs))
	for i, r := range rs {
		out[i] = store.RunRequest{Method: r.Method, URL: r.URL, Reason: r.Reason}
	}
	return out
}

// runCheck runs one check; a check that panics makes the run inconclusive
// instead of leaving the record open.
func runCheck(c Check, ev *Evidence) (fs []Failure) {
	defer func() {
		if p := recover(); p != nil {
			fs = []Failure{{StatusInconclusive, "check_error", fmt.Sprintf("check %s panicked: %v", c.Name(), p)}}
		}
	}()
	return c.Check(ev)
}

// lookPath finds the command the way a shell would, in the child's PATH,
// and gives the shell's exit code when it cannot: 127 not found, 126 found
// but not executable.
func lookPath(name, pathEnv, dir string) (string, int, error) {
	if strings.Contains(name, "/") {
		p := abs(dir, name)
		return checkExec(p, name)
	}
	for _, d := range filepath.SplitList(pathEnv) {
		if d == "" {
			d = "."
		}
		p := abs(dir, filepath.Join(d, name))
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, 0, nil
		}
	}
	return "", 127, fmt.Errorf("command not found: %s", name)
}

func checkExec(p, name string) (string, int, error) {
	fi, err := os.Stat(p)
	switch {
	case err != nil:
		return "", 127, fmt.Errorf("command not found: %s", name)
	case fi.IsDir():
		return "", 126, fmt.Errorf("%s is a folder, not a command", name)
	case fi.Mode()&0o111 == 0:
		return "", 126, fmt.Errorf("%s is not executable (permission denied)", name)
	}
	return p, 0, nil
}

func envValue(env []string, key string) string {
	v := ""
	for _, e := range env {
		if k, val, ok := strings.Cut(e, "="); ok && k == key {
			v = val
		}
	}
	return v
}

func abs(dir, p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(dir, p)
}

// FileSHA256 is the hex SHA-256 of a file's content.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// resolveArtifacts expands each absolute pattern: one Artifact per match,
// or one with Exists false when nothing matches.
func resolveArtifacts(patterns []string) []Artifact {
	var out []Artifact
	for _, p := range patterns {
		matches, _ := filepath.Glob(p)
		if len(matches) == 0 {
			out = append(out, Artifact{Pattern: p})
			continue
		}
		sort.Strings(matches)
		for _, m := range matches {
			a := Artifact{Pattern: p, Path: m}
			if fi, err := os.Stat(m); err == nil {
				a.Exists = true
				a.IsDir = fi.IsDir()
				a.Size = fi.Size()
				if a.IsDir {
					ents, _ := os.ReadDir(m)
					a.Size = int64(len(ents))
				}
			}
			out = append(out, a)
		}
	}
	return out
}

// artifactRefs lists the files matched, and the patterns that matched nothing.
func artifactRefs(patterns []string, arts []Artifact) []string {
	if len(patterns) == 0 {
		return nil
	}
	var out []string
	for _, a := range arts {
		if a.Path != "" {
			out = append(out, a.Path)
		} else {
			out = append(out, a.Pattern)
		}
	}
	return out
}
