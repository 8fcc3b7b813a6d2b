package store

import (
	"fmt"
	"net/http"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// openTest opens a fresh store in a temporary folder; at cleanup it closes the
// store and runs bbolt's consistency check on the file.
func openTest(t testing.TB) *Store {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cassettes.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeAndCheck(t, s) })
	return s
}

// closeAndCheck closes s, reopens its file read-only and runs tx.Check.
func closeAndCheck(t testing.TB, s *Store) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	ro, err := Open(s.Path(), Options{ReadOnly: true})
	if err != nil {
		t.Errorf("reopen for check: %v", err)
		return
	}
	defer ro.Close()
	if err := ro.Check(); err != nil {
		t.Errorf("tx.Check: %v", err)
	}
}

// fullInteraction sets every field, with a binary request body, a streamed
// response with events and a marker.
func fullInteraction() Interaction {
	bin := make([]byte, 512)
	for i := range bin {
		bin[i] = byte(i)
	}
	return Interaction{
		Seq:        0,
		Key:        "POST https://api.example.com/v1/chat?x=1 body:sha256=abc",
		RecordedAt: time.Date(2025, 3, 4, 5, 6, 7, 890123456, time.UTC),
		DurationMs: 1234,
		RunID:      "run-42",
		Request: Request{
			Method: "POST",
			URL:    "https://api.example.com/v1/chat?x=1",
			Header: http.Header{
				"Content-Type": {"application/octet-stream"},
				"X-Multi":      {"a", "b", ""},
				"X-Empty":      {},
				"X-Nil":        nil,
				"X-Bin":        {"\xff\xfe\x00zero"},
			},
			Body:            bin,
			ContentEncoding: "gzip",
		},
		Response: Response{
			Status:          207,
			Header:          http.Header{"Content-Type": {"text/event-stream"}},
			Body:            []byte("data: one\n\ndata: two\n\n"),
			ContentEncoding: "br",
			Streamed:        true,
			Events: []Event{
				{OffsetMs: 0, Data: []byte("data: one\n\n")},
				{OffsetMs: 17, Data: []byte("data: two\n\n")},
				{OffsetMs: -1, Data: []byte{}},
				{OffsetMs: 99, Data: nil},
			},
			Incomplete:    true,
			ContentLength: 1 << 33,
			Upgrade:       true,
			NotRecorded:   &BodyMarker{Size: 1 << 40, SHA256: "e3b0c442", Reason: "body_not_recorded"},
		},
	}
}

// sample is a small interaction identified by writer and index.
func sample(writer, i int, key string) Interaction {
	return Interaction{
		Key:        key,
		RecordedAt: time.Unix(1700000000+int64(i), 0).UTC(),
		DurationMs: int64(i),
		Request: Request{
			Method: "GET",
			URL:    fmt.Sprintf("https://example.com/w%d/i%d", writer, i),
			Header: http.Header{"Accept": {"application/json"}},
		},
		Response: Response{
			Status: 200,
			Header: http.Header{"Content-Type": {"application/json"}},
			Body:   fmt.Appendf(nil, `{"writer":%d,"i":%d}`, writer, i),
		},
	}
}

// deepEqual is the store's tests' one use of reflect: the codecs must give
// back every field exactly, nil and empty apart (TestCodecNilEmptyAreDistinct),
// and reflect.DeepEqual tells them apart and compares a field added later
// without anyone remembering to.
func deepEqual(a, b any) bool { return reflect.DeepEqual(a, b) }

func mustEqual(t testing.TB, got, want Interaction) {
	t.Helper()
	if !deepEqual(got, want) {
		t.Fatalf("interaction mismatch\n got: %#v\nwant: %#v", got, want)
	}
}
