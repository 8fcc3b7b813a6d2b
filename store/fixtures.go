package store

// Fixture history lives in the top-level bucket "fixtures":
//
//	fixtures/
//	    <fixture_id>  JSON of FixtureHistory, prefixed by one format byte (1)
//
// A fixture counts as regression coverage (Proven) only once a replay has
// failed with the class the fixture protects (notes.json failure_class) and
// a later replay has passed: it was seen catching the broken code and
// passing the fixed one. Other failures (a missing command, a timeout) are
// kept as history, never as proof. The bucket is created on the first write.

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ErrNoFixture is returned (wrapped) for a fixture without history.
var ErrNoFixture = errors.New("no history for fixture")

var bucketFixtures = []byte("fixtures")

const fixtureFormatV1 = 1

// FixtureEvent is one replay as the history keeps it.
type FixtureEvent struct {
	At           time.Time `json:"at"`
	RunID        string    `json:"run_id,omitempty"`
	Status       string    `json:"status"`
	FailureClass string    `json:"failure_class,omitempty"`
	CodeVersion  string    `json:"code_version,omitempty"`
}

// FixtureHistory is what the store remembers about one fixture's replays.
type FixtureHistory struct {
	FixtureID string `json:"fixture_id"`
	Replays   int    `json:"replays"`
	Passes    int    `json:"passes"`
	Failures  int    `json:"failures"`
	// FirstFailure is the first replay that did not pass, whatever its class.
	FirstFailure *FixtureEvent `json:"first_failure,omitempty"`
	// Protects is the failure class the fixture protects, as of the last
	// replay. ProofFailure is the first replay that failed with that class,
	// ProofPass the first passing replay after it. Both set: the fixture
	// is proven. A change of Protects starts the proof over.
	Protects     string        `json:"protects,omitempty"`
	ProofFailure *FixtureEvent `json:"proof_failure,omitempty"`
	ProofPass    *FixtureEvent `json:"proof_pass,omitempty"`
	// LastVerdict is the last replay that reached a verdict (passed or not
	// passed, skipped and inconclusive excluded); Last is the last replay of any kind.
	LastVerdict *FixtureEvent `json:"last_verdict,omitempty"`
	Last        *FixtureEvent `json:"last,omitempty"`
}

// Proven reports whether the fixture was seen failing with the class it
// protects and then passing.
func (h *FixtureHistory) Proven() bool {
	return h.ProofFailure != nil && h.ProofPass != nil
}

// ProvenFor reports whether the fixture is proven for the failure class
// class (the one its notes.json names now).
func (h *FixtureHistory) ProvenFor(class string) bool {
	return class != "" && h.Protects == class && h.Proven()
}

// Add counts one replay of fixture id, which protects the failure class
// protects ("" when it names none: it can then never be proven). Every
// Records implementation applies a replay with it.
func (h *FixtureHistory) Add(id, protects string, ev FixtureEvent) {
	h.FixtureID = id
	h.Replays++
	if h.Protects != protects {
		h.Protects, h.ProofFailure, h.ProofPass = protects, nil, nil
	}
	e := ev
	h.Last = &e
	if !noVerdict(ev.Status) {
		h.LastVerdict = &e
		if ev.Status == "passed" {
			h.Passes++
			if h.ProofFailure != nil && h.ProofPass == nil {
				h.ProofPass = &e
			}
		} else {
			h.Failures++
			if h.FirstFailure == nil {
				h.FirstFailure = &e
			}
			if protects != "" && ev.FailureClass == protects && h.ProofFailure == nil {
				h.ProofFailure = &e
			}
		}
	}
}

// Verdict statuses that are no verdict about the code: they neither prove
// nor refresh a fixture.
func noVerdict(status string) bool {
	return status == "skipped" || status == "inconclusive" || status == ""
}

// RecordFixtureReplay adds one replay to the history of fixture id, which
// protects the failure class protects ("" when it names none: it can then
// never be proven), in one transaction, and returns the history after it.
func (s *Store) RecordFixtureReplay(id, protects string, ev FixtureEvent) (FixtureHistory, error) {
	var h FixtureHistory
	if err := s.writable(); err != nil {
		return h, s.wrap(err)
	}
	if id == "" {
		return h, s.wrap(errors.New("fixture history: empty fixture id"))
	}
	err := s.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketFixtures)
		if err != nil {
			return err
		}
		if v := b.Get([]byte(id)); v != nil {
			if err := decodeFixture(v, &h); err != nil {
				return fmt.Errorf("fixture %s: %w", id, err)
			}
		}
		h.Add(id, protects, ev)
		val, err := encodeFixture(&h)
		if err != nil {
			return err
		}
		return b.Put([]byte(id), val)
	})
	if err != nil {
		return FixtureHistory{}, s.wrap(err)
	}
	return h, nil
}

// FixtureHistory reads one fixture's history; an unknown id matches ErrNoFixture.
func (s *Store) FixtureHistory(id string) (FixtureHistory, error) {
	var h FixtureHistory
	err := s.view(func(tx *bolt.Tx) error {
		var v []byte
		if b := tx.Bucket(bucketFixtures); b != nil {
			v = b.Get([]byte(id))
		}
		if v == nil {
			return fmt.Errorf("fixture %q: %w", id, ErrNoFixture)
		}
		return decodeFixture(v, &h)
	})
	if err != nil {
		return FixtureHistory{}, s.wrap(err)
	}
	return h, nil
}

// FixtureHistories returns every fixture's history, by fixture id.
func (s *Store) FixtureHistories() (map[string]FixtureHistory, error) {
	out := map[string]FixtureHistory{}
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketFixtures)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var h FixtureHistory
			if err := decodeFixture(v, &h); err != nil {
				return fmt.Errorf("fixture %s: %w", k, err)
			}
			out[string(k)] = h
			return nil
		})
	})
	if err != nil {
		return nil, s.wrap(err)
	}
	return out, nil
}

func encodeFixture(h *FixtureHistory) ([]byte, error) {
	js, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	return append([]byte{fixtureFormatV1}, js...), nil
}

func decodeFixture(v []byte, h *FixtureHistory) error {
	if len(v) == 0 || v[0] != fixtureFormatV1 {
		return errors.New("unsupported fixture history format")
	}
	return json.Unmarshal(v[1:], h)
}
