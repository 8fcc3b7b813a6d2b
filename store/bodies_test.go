package store

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bodyOf returns a JSON body of about n bytes that differs by seed.
func bodyOf(seed, n int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"seed":%d,"items":[`, seed)
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, `{"id":%d,"text":"item %d of seed %d"},`, i, i, seed)
	}
	b.WriteString(`{}]}`)
	return b.Bytes()
}

func withBody(url string, body []byte) Interaction {
	in := sample(0, 0, "GET "+url)
	in.Request.URL = url
	in.Response.Body = body
	return in
}

// storedBodies counts the cassette's bodies kept apart.
func storedBodies(t *testing.T, s *Store, cassette string) int {
	t.Helper()
	n := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		if b := cassetteBucket(tx, cassette).Bucket(subBodies); b != nil {
			n = b.Stats().KeyN
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRecorderStoresRepeatedBodiesOnce(t *testing.T) {
	s := openTest(t)
	r := s.NewRecorder(RecorderOptions{MaxBatch: 7})
	big, other, small := bodyOf(1, 50<<10), bodyOf(2, 8<<10), []byte(`{"ok":true}`)
	var want []Interaction
	for i := range 60 {
		body := big
		switch i % 3 {
		case 1:
			body = other
		case 2:
			body = small
		}
		in := withBody(fmt.Sprintf("https://tool.test/%d", i%3), body)
		want = append(want, in)
		if err := r.Record("c", in); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if n := storedBodies(t, s, "c"); n != 2 { // the small body stays inline
		t.Errorf("bodies stored apart: %d, want 2", n)
	}
	got, err := s.Interactions("c")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d interactions, want %d", len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i].Response.Body, want[i].Response.Body) || got[i].Key != want[i].Key {
			t.Fatalf("interaction %d: key %q, body %d bytes; want %q, %d bytes", i+1, got[i].Key, len(got[i].Response.Body), want[i].Key, len(want[i].Response.Body))
		}
	}
	// One decoded copy per body, shared (and capacity-capped, so an append
	// by one reader cannot write into another's).
	a, b := got[0].Response.Body, got[3].Response.Body
	if &a[0] != &b[0] || cap(a) != len(a) {
		t.Errorf("repeated body not shared as one capped slice")
	}
	// The one-interaction reads resolve references too.
	one, err := s.Interaction("c", 4)
	if err != nil || !bytes.Equal(one.Response.Body, big) {
		t.Fatalf("Interaction(4): %d bytes, %v", len(one.Response.Body), err)
	}
	byKey, err := s.InteractionsByKey("c", "GET https://tool.test/1")
	if err != nil || len(byKey) != 20 || !bytes.Equal(byKey[19].Response.Body, other) {
		t.Fatalf("InteractionsByKey: %d, %v", len(byKey), err)
	}
}

func TestStoredBodyKeepsStreamEvents(t *testing.T) {
	s := openTest(t)
	r := s.NewRecorder(RecorderOptions{})
	var body []byte
	var events []Event
	for i := range 40 {
		e := fmt.Appendf(nil, "data: {\"n\":%d,\"text\":\"%s\"}\n\n", i, strings.Repeat("x", 40))
		events = append(events, Event{OffsetMs: int64(i), Data: e})
		body = append(body, e...)
	}
	in := withBody("https://llm.test/stream", body)
	in.Response.Streamed, in.Response.Events = true, events
	for range 2 {
		if err := r.Record("c", in); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := s.Interactions("c")
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range got {
		if !bytes.Equal(g.Response.Body, body) || len(g.Response.Events) != 40 || !bytes.Equal(g.Response.Events[39].Data, events[39].Data) {
			t.Fatalf("stream did not round-trip: %d bytes, %d events", len(g.Response.Body), len(g.Response.Events))
		}
	}
	if n := storedBodies(t, s, "c"); n != 1 {
		t.Errorf("bodies stored apart: %d, want 1", n)
	}
}

// A body the Recorder believes stored but that is gone (the cassette was
// reset under it, or the commit that carried it failed) is written by the
// next commit that refers to it: a hint never loses a body.
func TestRecorderWritesBodyItWronglyBelievedStored(t *testing.T) {
	s := openTest(t)
	r := s.NewRecorder(RecorderOptions{})
	body := bodyOf(3, 4<<10)
	h := sha256.Sum256(body)
	if r.bodyStored("c", &h) { // first sight: noted as queued, nothing stored
		t.Fatal("fresh recorder claims a stored body")
	}
	if err := r.Record("c", withBody("https://tool.test/a", body)); err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Interactions("c"); err != nil || len(got) != 1 || !bytes.Equal(got[0].Response.Body, body) {
		t.Fatalf("body believed stored: %d interactions, %v", len(got), err)
	}
	// And across a reset: the hints are dropped, the body written again.
	if err := s.ResetCassette("c"); err != nil {
		t.Fatal(err)
	}
	if err := r.Record("c", withBody("https://tool.test/b", body)); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := s.Interactions("c")
	if err != nil || len(got) != 1 || !bytes.Equal(got[0].Response.Body, body) {
		t.Fatalf("after reset: %d interactions, %v", len(got), err)
	}
}

func TestWriteCassetteStoresRepeatedBodiesOnce(t *testing.T) {
	s := openTest(t)
	big := bodyOf(4, 20<<10)
	ins := []Interaction{withBody("https://a.test/", big), withBody("https://a.test/", big), withBody("https://b.test/", bodyOf(5, 2<<10))}
	if err := s.WriteCassette("c", ins, false); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteCassette("c", ins[:1], false); err != nil { // appended: the body is already there
		t.Fatal(err)
	}
	if n := storedBodies(t, s, "c"); n != 2 {
		t.Errorf("bodies stored apart: %d, want 2", n)
	}
	got, err := s.Interactions("c")
	if err != nil || len(got) != 4 || !bytes.Equal(got[3].Response.Body, big) {
		t.Fatalf("%d interactions, %v", len(got), err)
	}
}

// Cassettes written before bodies were kept apart hold them inline; they
// read as before.
func TestInlineBodiesStillRead(t *testing.T) {
	s := openTest(t)
	in := withBody("https://a.test/", bodyOf(6, 30<<10))
	v, err := EncodeInteraction(&in)
	if err != nil {
		t.Fatal(err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		c, err := openCassette(tx, "old", time.Now())
		if err != nil {
			return err
		}
		h := sha256.Sum256([]byte(in.Key))
		if err := c.put("old", v, &h, nil); err != nil {
			return err
		}
		return c.finish(time.Now())
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Interactions("old")
	if err != nil || len(got) != 1 || !bytes.Equal(got[0].Response.Body, in.Response.Body) {
		t.Fatalf("%d interactions, %v", len(got), err)
	}
}

// A reference to a body that is not there is a clear error naming the
// interaction, never a panic or a wrong body.
func TestMissingStoredBodyIsAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.WriteCassette("c", []Interaction{withBody("https://a.test/", bodyOf(7, 4<<10))}, false); err != nil {
		t.Fatal(err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		return cassetteBucket(tx, "c").DeleteBucket(subBodies)
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Interactions("c")
	if err == nil || !strings.Contains(err.Error(), `cassette "c" interaction 1`) || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("got %v, want a missing-body error naming the interaction", err)
	}
	if _, err := DecodeInteraction(mustValue(t, s)); err == nil || !strings.Contains(err.Error(), "stored apart") {
		t.Fatalf("DecodeInteraction of a reference: %v", err)
	}
}

func mustValue(t *testing.T, s *Store) []byte {
	t.Helper()
	var v []byte
	if err := s.db.View(func(tx *bolt.Tx) error {
		v = bytes.Clone(cassetteBucket(tx, "c").Bucket(subInteractions).Get(be64(1)))
		return nil
	}); err != nil || v == nil {
		t.Fatalf("value 1: %v", err)
	}
	return v
}

// bodySums answers the SHA-256 of exactly the bytes it is given, even when a
// caller reuses its buffer for other bytes after a call.
func TestBodySumsIsTheSHA256(t *testing.T) {
	sums := newBodySums()
	buf := bodyOf(8, 4<<10)
	for round := range 3 {
		for _, b := range [][]byte{buf, bodyOf(9, 4<<10), bytes.Repeat([]byte("z"), 3<<20), nil} {
			if got, want := sums.sum(b), sha256.Sum256(b); got != want {
				t.Fatalf("round %d: sum of %d bytes is not their SHA-256", round, len(b))
			}
		}
		buf[100]++ // the caller changes its buffer
	}
	var nilSums *bodySums
	if nilSums.sum(buf) != sha256.Sum256(buf) {
		t.Fatal("nil bodySums")
	}
}
