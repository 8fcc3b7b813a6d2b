package store

// What an agent reports about itself from inside a run (the events API)
// lives beside the run records, one bucket per run:
//
//	run_events/
//	    <run_id>/
//	        <seq>     8-byte big-endian sequence number → JSON of RunEvent
//
// Each event is committed in its own transaction before the agent gets its
// answer, and is never rewritten: the run record, which the runner rewrites
// while the child works, cannot clobber it. GetRun reads them back into
// Run.Events.

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

var bucketRunEvents = []byte("run_events")

// RunEvent is one thing the agent reported: a checkpoint, a retry, an
// exception, a note, an artifact, a state reference or a claim. Every
// string and Data are redacted before it is stored.
type RunEvent struct {
	Seq  int             `json:"seq"`
	At   time.Time       `json:"at"`
	Kind string          `json:"kind"`
	Name string          `json:"name,omitempty"`
	Data json.RawMessage `json:"data,omitempty"`
	Path string          `json:"path,omitempty"` // artifact: a file, relative to the run's folder or absolute
	Ref  string          `json:"ref,omitempty"`  // artifact or state_ref: a row id, message id, URL
	// A claim's: its status ("done"), the artifacts behind it, the side
	// effects it says happened.
	Status       string       `json:"status,omitempty"`
	ArtifactRefs []string     `json:"artifact_refs,omitempty"`
	SideEffects  []SideEffect `json:"side_effects,omitempty"`
}

// SideEffect is a request a run must (or says it did) make: Method and a URL
// glob, answered with Status (a class such as "2xx", or a code; "" = 2xx),
// between Min (nil = 1) and Max (nil = no limit) times. Package match
// validates and matches it.
type SideEffect struct {
	Method string `json:"method"`
	URL    string `json:"url"`
	Status string `json:"status,omitempty"`
	Min    *int   `json:"min,omitempty"`
	Max    *int   `json:"max,omitempty"`
}

// RunCall is one request the proxy answered (or refused) during a run, for
// the run's timeline. At is when the request reached the proxy.
type RunCall struct {
	At       time.Time `json:"at"`
	Method   string    `json:"method"`
	URL      string    `json:"url"` // redacted
	Decision string    `json:"decision"`
	Reason   string    `json:"reason,omitempty"`
	Status   int       `json:"status"`
}

// AppendRunEvent commits one event of a run in its own transaction. The
// caller numbers them (Seq from 1, in order); an event already stored under
// the same number is an error, never overwritten.
func (s *Store) AppendRunEvent(runID string, ev RunEvent) error {
	if err := s.writable(); err != nil {
		return s.wrap(err)
	}
	if runID == "" || ev.Seq < 1 {
		return s.wrap(errors.New("append run event: empty run_id or sequence number below 1"))
	}
	val, err := json.Marshal(&ev)
	if err != nil {
		return s.wrap(fmt.Errorf("run %s event %d: %w", runID, ev.Seq, err))
	}
	key := eventKey(ev.Seq)
	return s.wrap(s.update(func(tx *bolt.Tx) error {
		root, err := tx.CreateBucketIfNotExists(bucketRunEvents)
		if err != nil {
			return err
		}
		b, err := root.CreateBucketIfNotExists([]byte(runID))
		if err != nil {
			return err
		}
		if b.Get(key) != nil {
			return fmt.Errorf("run %s already has event %d", runID, ev.Seq)
		}
		return b.Put(key, val)
	}))
}

// RunEvents reads a run's events in order; a run with none has none.
func (s *Store) RunEvents(runID string) ([]RunEvent, error) {
	var out []RunEvent
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		out, err = runEvents(tx, runID)
		return err
	})
	if err != nil {
		return nil, s.wrap(err)
	}
	return out, nil
}

func runEvents(tx *bolt.Tx, runID string) ([]RunEvent, error) {
	root := tx.Bucket(bucketRunEvents)
	if root == nil {
		return nil, nil
	}
	b := root.Bucket([]byte(runID))
	if b == nil {
		return nil, nil
	}
	var out []RunEvent
	err := b.ForEach(func(k, v []byte) error {
		var ev RunEvent
		if err := json.Unmarshal(v, &ev); err != nil {
			return fmt.Errorf("run %s event %x: %w", runID, k, err)
		}
		out = append(out, ev)
		return nil
	})
	return out, err
}

func eventKey(seq int) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], uint64(seq))
	return k[:]
}
