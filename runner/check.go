package runner

import (
	"time"

	"github.com/cassetteproxy/cassetteproxy/match"
	"github.com/cassetteproxy/cassetteproxy/proxy"
	"github.com/cassetteproxy/cassetteproxy/store"
)

// Verdict statuses.
const (
	StatusPassed       = "passed"
	StatusFailed       = "failed"
	StatusBlocked      = "blocked"
	StatusDegraded     = "degraded"
	StatusSkipped      = "skipped"
	StatusInconclusive = "inconclusive"
)

// Failure classes this package assigns. Checks added by other packages may
// use their own. The classes of blocked requests are the proxy's reasons.
const (
	ClassNonzeroExit       = "nonzero_exit"
	ClassTimeout           = "timeout"
	ClassUnrecordedRequest = proxy.ReasonUnrecorded
	ClassMutationBlocked   = proxy.ReasonMutation
	// A recorded answer whose body was not kept (the rules file's store
	// policy, or over --max-body) was asked for: it was blocked.
	ClassBodyNotRecorded = proxy.ReasonBodyNotRecorded
	ClassMissingArtifact = "missing_artifact_ref"
	ClassEmptyOutput     = "empty_output"
	ClassRunAbandoned    = "run_abandoned"
	ClassExpired         = proxy.ReasonExpired
	ClassIsolationFailed = "isolation_failed"
	// A host outside the allow-list (--allow-host) was asked for.
	ClassHostNotAllowed = proxy.ReasonHostNotAllowed
	// A side effect the run had to make (or claimed) has too few, or too
	// many, matching answered requests.
	ClassSideEffectUnconfirmed = "side_effect_unconfirmed"
	ClassSideEffectDuplicated  = "side_effect_duplicated"
	ClassRecordingLost         = "recording_lost" // degraded: some answers could not be committed to the store
)

// Failure is one reason a run is not passed.
type Failure struct {
	Status string `json:"status"`        // failed or blocked (or degraded)
	Class  string `json:"failure_class"` // e.g. nonzero_exit, timeout, unrecorded_request, missing_artifact_ref
	Reason string `json:"reason"`        // one line a human can act on
}

// Check is one validator. Each check looks at the evidence of a finished run
// and reports what it finds wrong; the verdict is passed only when no check
// reports anything. The fixtures package adds its contract checks here
// without touching this package.
type Check interface {
	Name() string
	Check(ev *Evidence) []Failure
}

// Evidence is everything known about a finished run. Checks must treat it
// as read-only.
type Evidence struct {
	RunID    string
	Mode     match.Mode // proxy mode the run used
	Dir      string     // the child's working directory, absolute
	Argv     []string   // the command
	ExitCode int        // shell-like: 0 ok; 127 not found / 126 not runnable; 128+n killed by signal n
	Signal   string     // the signal that ended the child, if any ("terminated", "killed", ...)
	TimedOut bool       // Spec.Timeout was reached and the child was stopped
	Timeout  time.Duration
	// Interrupted names what stopped the run from outside (a signal
	// cassetteproxy received and forwarded, or "context canceled").
	Interrupted string
	StartErr    string // why the child did not start, if it did not
	Started     time.Time
	Ended       time.Time

	// Isolated: the run was isolated (Spec.Isolate): the child ran, or
	// would have, in a network namespace of its own. IsolationErr: one
	// was asked for and could not be made, so the child did not run.
	Isolated     bool
	IsolationErr string

	// What the proxy saw (see Observer).
	Interactions int       // requests answered (every decision)
	Misses       []Request // blocked because the cassette had no answer
	Blocked      []Request // every blocked request, misses included
	Errors       int       // upstream failures answered 502
	Incomplete   int       // answers replayed from recordings cut short (then a broken connection)
	Hosts        []string  // hosts contacted, sorted
	Models       []string  // "model" values in JSON request bodies, sorted

	// Recordings answered but not kept (a commit failed: disk full, I/O
	// error), counted once every recording was handed to the store
	// (Spec.Drain), and the last reason.
	RecordingsLost int
	RecordingLoss  string

	Artifacts []Artifact // one per file matched, or per pattern that matched nothing

	// The timeline: the requests in order (the first MaxRunCalls;
	// CallsOmitted counts the rest) and what the agent reported itself.
	Calls        []store.RunCall
	CallsOmitted int
	Events       []store.RunEvent
}

// Request is one request the proxy blocked.
type Request struct {
	Method string `json:"method"`
	URL    string `json:"url"`    // redacted
	Reason string `json:"reason"` // unrecorded_request, mutation_blocked, host_not_recorded, exhausted, ...
}

// Artifact is what one --artifact pattern resolved to after the child ended.
type Artifact struct {
	Pattern string // as given, resolved absolute against Dir
	Path    string // the absolute file matched ("" when nothing matched)
	Exists  bool
	IsDir   bool
	Size    int64 // bytes; for a folder, the number of entries
}
