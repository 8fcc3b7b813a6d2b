package store

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// TestOldestRecording: the earliest recorded_at wins whatever its Seq,
// large bodies stored apart are no obstacle, and a cassette without
// interactions (or a missing one) says so.
func TestOldestRecording(t *testing.T) {
	s := openTest(t)
	big := sample(0, 3, "k3")
	big.Response.Body = bytes.Repeat([]byte("x"), 64<<10) // stored apart
	ins := []Interaction{sample(0, 5, "k5"), big, sample(0, 9, "k9")}
	ins[0].RecordedAt = time.Time{} // unknown times are skipped
	if err := s.WriteCassette("c", ins, true); err != nil {
		t.Fatal(err)
	}
	got, err := s.OldestRecording("c")
	if err != nil || !got.Equal(big.RecordedAt) {
		t.Fatalf("OldestRecording = %v, %v; want %v", got, err, big.RecordedAt)
	}
	if err := s.CreateCassette("empty"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.OldestRecording("empty"); err != nil || !got.IsZero() {
		t.Fatalf("empty cassette: %v, %v", got, err)
	}
	if _, err := s.OldestRecording("nope"); !errors.Is(err, ErrNoCassette) {
		t.Fatalf("missing cassette: %v", err)
	}
}
