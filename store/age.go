package store

import (
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// OldestRecording returns the earliest recorded_at among the cassette's
// interactions (zero when it has none, or none has a time), reading only
// the head of each stored value: bodies stored apart are never loaded.
func (s *Store) OldestRecording(name string) (time.Time, error) {
	var oldest time.Time
	err := s.view(func(tx *bolt.Tx) error {
		_, items, err := interactionsOf(tx, name)
		if err != nil || items == nil {
			return err
		}
		return items.ForEach(func(k, v []byte) error {
			if len(k) != 8 || v == nil {
				return nil
			}
			at, err := recordedAt(v)
			if err != nil {
				return fmt.Errorf("cassette %q interaction %d: %w", name, getUint(k), err)
			}
			if !at.IsZero() && (oldest.IsZero() || at.Before(oldest)) {
				oldest = at
			}
			return nil
		})
	})
	return oldest, s.wrap(err)
}

// recordedAt decodes the recorded_at of a stored value (it follows the key,
// at the start of the payload).
func recordedAt(value []byte) (time.Time, error) {
	payload, err := unpackValue(value)
	if err != nil {
		return time.Time{}, err
	}
	r := reader{b: payload}
	r.str("key")
	raw := r.bytes("recorded_at")
	if r.err != nil {
		return time.Time{}, fmt.Errorf("%w: %v", ErrCorrupt, r.err)
	}
	var t time.Time
	if err := t.UnmarshalBinary(raw); err != nil {
		return time.Time{}, fmt.Errorf("%w: recorded_at: %v", ErrCorrupt, err)
	}
	return t, nil
}
