package store

// Run records live in the top-level bucket "runs":
//
//	runs/
//	    <run_id>      JSON of Run, prefixed by one format byte (1)
//
// Run ids sort by start time (see runner.NewRunID), so a cursor walk lists
// runs oldest first. The bucket is created on the first write; a store that
// never saw a run simply has none.

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ErrNoRun is returned (wrapped) for an unknown run id.
var ErrNoRun = errors.New("no such run")

var bucketRuns = []byte("runs")

const runFormatV1 = 1

// Run statuses that mean "not closed yet".
const RunStatusRunning = "running"

// Run is one run record: who ran what, what the proxy saw, and the verdict.
// It is written before the child starts (Status "running", ClosedAt nil),
// updated while the child works, and closed with a verdict.
type Run struct {
	RunID          string     `json:"run_id"`
	RunType        string     `json:"run_type"`       // production or replay
	Host           string     `json:"host,omitempty"` // the machine it ran on (a fleet sharing one run records database tells them apart)
	FixtureID      string     `json:"fixture_id,omitempty"`
	TaskID         string     `json:"task_id,omitempty"`
	Attempt        int        `json:"attempt"`
	AgentName      string     `json:"agent_name,omitempty"`
	StartedAt      time.Time  `json:"started_at"`
	CodeVersion    string     `json:"code_version,omitempty"`
	Model          string     `json:"model,omitempty"`
	PromptVersion  string     `json:"prompt_version,omitempty"`
	ToolAllowlist  []string   `json:"tool_allowlist,omitempty"`
	TimeoutSeconds float64    `json:"timeout_seconds"` // 0: none
	InputSHA256    string     `json:"input_sha256,omitempty"`
	InputFile      string     `json:"input_file,omitempty"`    // the run --input file (absolute), copied into exported fixtures
	StateRefs      []string   `json:"state_refs,omitempty"`    // run --state files (absolute), copied into exported fixtures
	ArtifactRefs   []string   `json:"artifact_refs,omitempty"` // absolute paths (patterns before the close, matches after)
	Status         string     `json:"status"`                  // running, then passed, failed, blocked, ...
	FailureClass   string     `json:"failure_class,omitempty"`
	FailureReason  string     `json:"failure_reason,omitempty"`
	ClosedAt       *time.Time `json:"closed_at"`

	// What was run.
	Cassette string            `json:"cassette,omitempty"`
	Mode     string            `json:"mode,omitempty"`
	Command  []string          `json:"command"`
	Env      map[string]string `json:"env,omitempty"` // the task's own variables (--env), secrets scrubbed
	Dir      string            `json:"dir,omitempty"`
	PID      int               `json:"pid,omitempty"`       // the child's pid once started
	ExitCode *int              `json:"exit_code,omitempty"` // shell-like: 127 not found, 128+n killed by signal n
	Signal   string            `json:"signal,omitempty"`    // the signal that ended the child
	Reasons  []RunReason       `json:"reasons,omitempty"`
	Isolated bool              `json:"isolated"` // ran in a network namespace of its own (--isolate)

	// What the proxy saw.
	Interactions int          `json:"interactions"`
	Misses       []RunRequest `json:"misses,omitempty"`
	Blocked      []RunRequest `json:"blocked,omitempty"`
	Errors       int          `json:"errors,omitempty"` // upstream failures answered 502
	// RecordingsLost counts answers the proxy could not commit to the
	// store (disk full, I/O error): the cassette is that much incomplete.
	RecordingsLost int `json:"recordings_lost"`
	// ReplayedIncomplete counts answers replayed from recordings cut short:
	// the client got the recorded bytes, then a broken connection.
	ReplayedIncomplete int      `json:"replayed_incomplete,omitempty"`
	Hosts              []string `json:"hosts,omitempty"`
	Models             []string `json:"models_seen,omitempty"`

	// The run's evidence: the requests made, in order (a bounded number;
	// CallsOmitted counts the rest), the side effects it had to make (run
	// --side-effect), and what the agent reported itself (kept in their
	// own bucket, see events.go; filled in by GetRun).
	Calls        []RunCall    `json:"calls,omitempty"`
	CallsOmitted int          `json:"calls_omitted,omitempty"`
	SideEffects  []SideEffect `json:"side_effects,omitempty"`
	Events       []RunEvent   `json:"events,omitempty"`

	UpdatedAt time.Time `json:"updated_at"`
}

// RunReason is one reason a run is not passed (runner.Failure, stored).
type RunReason struct {
	Status string `json:"status"`
	Class  string `json:"failure_class"`
	Reason string `json:"reason"`
}

// RunRequest is one request the proxy blocked (or could not answer).
type RunRequest struct {
	Method string `json:"method"`
	URL    string `json:"url"` // redacted
	Reason string `json:"reason"`
}

// Open reports whether the run has not been closed.
func (r *Run) Open() bool { return r.ClosedAt == nil }

// PutRun writes (creates or replaces) a run record in one transaction. A
// write that closes the record (ClosedAt set) and fails on a full disk
// removes the store's reserve file (see makeReserve) and tries once more.
func (s *Store) PutRun(r Run) error {
	if err := s.writable(); err != nil {
		return s.wrap(err)
	}
	if r.RunID == "" {
		return s.wrap(errors.New("put run: empty run_id"))
	}
	val, err := encodeRun(&r)
	if err != nil {
		return s.wrap(fmt.Errorf("run %s: %w", r.RunID, err))
	}
	put := func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketRuns)
		if err != nil {
			return err
		}
		return b.Put([]byte(r.RunID), val)
	}
	err = s.update(put)
	// A record that closes a run may spend the reserve: a run left
	// "running" on a full disk would hide the verdict that says why.
	if err != nil && isNoSpace(err) && !r.Open() && releaseReserve(s.path) {
		err = s.update(put)
	}
	return s.wrap(err)
}

// GetRun reads one run record, with its events; an unknown id matches
// ErrNoRun.
func (s *Store) GetRun(id string) (Run, error) {
	var r Run
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRuns)
		var v []byte
		if b != nil {
			v = b.Get([]byte(id))
		}
		if v == nil {
			return &runNotFoundError{id}
		}
		if err := decodeRun(v, &r); err != nil {
			return err
		}
		var err error
		r.Events, err = runEvents(tx, id)
		return err
	})
	if err != nil {
		return Run{}, s.wrap(err)
	}
	return r, nil
}

// ListRuns returns every run record, oldest start first, without their
// events (GetRun and RunEvents read those).
func (s *Store) ListRuns() ([]Run, error) {
	out := []Run{}
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRuns)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var r Run
			if err := decodeRun(v, &r); err != nil {
				return fmt.Errorf("run %s: %w", k, err)
			}
			out = append(out, r)
			return nil
		})
	})
	if err != nil {
		return nil, s.wrap(err)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].StartedAt.Before(out[j].StartedAt) })
	return out, nil
}

// UpdateRun reads a run, lets fn change it, and writes it back, all in one
// transaction. If fn returns an error nothing is written.
func (s *Store) UpdateRun(id string, fn func(*Run) error) error {
	if err := s.writable(); err != nil {
		return s.wrap(err)
	}
	return s.wrap(s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRuns)
		var v []byte
		if b != nil {
			v = b.Get([]byte(id))
		}
		if v == nil {
			return &runNotFoundError{id}
		}
		var r Run
		if err := decodeRun(v, &r); err != nil {
			return fmt.Errorf("run %s: %w", id, err)
		}
		if err := fn(&r); err != nil {
			return err
		}
		r.RunID = id
		val, err := encodeRun(&r)
		if err != nil {
			return err
		}
		return b.Put([]byte(id), val)
	}))
}

// encodeRun leaves the events out: they have their own bucket.
func encodeRun(r *Run) ([]byte, error) {
	c := *r
	c.Events = nil
	js, err := json.Marshal(&c)
	if err != nil {
		return nil, err
	}
	return append([]byte{runFormatV1}, js...), nil
}

func decodeRun(v []byte, r *Run) error {
	if len(v) == 0 || v[0] != runFormatV1 {
		return fmt.Errorf("unsupported run record format")
	}
	return json.Unmarshal(v[1:], r)
}

type runNotFoundError struct{ id string }

func (e *runNotFoundError) Error() string { return fmt.Sprintf("run %q not found", e.id) }
func (e *runNotFoundError) Unwrap() error { return ErrNoRun }
