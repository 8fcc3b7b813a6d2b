package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestCodecRoundTrip(t *testing.T) {
	random := make([]byte, 16<<10)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	big := bytes.Repeat([]byte(`{"role":"assistant","content":"hello"},`), 40000)

	tests := []struct {
		name     string
		in       Interaction
		wantComp byte // expected compression byte
	}{
		{"full", fullInteraction(), compZstd},
		{"zero", Interaction{}, compNone},
		{"empty not nil", Interaction{
			Request: Request{Header: http.Header{}, Body: []byte{}},
			Response: Response{
				Header: http.Header{"A": {}, "B": nil},
				Body:   []byte{},
				Events: []Event{},
			},
		}, compNone},
		{"nil events in stream", Interaction{Response: Response{Streamed: true, Body: []byte("x")}}, compNone},
		{"marker only", Interaction{Response: Response{Status: 200, NotRecorded: &BodyMarker{}}}, compNone},
		{"store hash", Interaction{
			Request:  Request{Method: "POST", NotRecorded: &BodyMarker{Size: 12, SHA256: "ab", Reason: "body_not_recorded", Policy: StoreHash, Match: "json:cd"}},
			Response: Response{Status: 200, NotRecorded: &BodyMarker{Size: 30, SHA256: "ef", Reason: "body_not_recorded", Policy: StoreHash}},
		}, compNone},
		{"store fields", Interaction{
			Request:  Request{Method: "POST", NotRecorded: &BodyMarker{Size: 12, SHA256: "ab", Reason: "body_not_recorded", Policy: StoreFields, Fields: []byte(`{"a":1}`), Match: "raw:00"}},
			Response: Response{Status: 200, NotRecorded: &BodyMarker{Size: 30, SHA256: "ef", Reason: "body_not_recorded", Policy: StoreFields, Fields: []byte(`{}`)}},
		}, compNone},
		{"request marker, response over max-body", Interaction{
			Request:  Request{NotRecorded: &BodyMarker{Size: 1, Policy: StoreHash}},
			Response: Response{NotRecorded: &BodyMarker{Size: 1 << 40, Reason: "body_not_recorded"}},
		}, compNone},
		{"response policy only", Interaction{Response: Response{NotRecorded: &BodyMarker{Size: 3, Policy: StoreHash}}}, compNone},
		{"websocket messages", Interaction{Response: Response{Status: 101, Upgrade: true, Events: []Event{
			{OffsetMs: 1, Data: []byte(`{"op":"sub"}`), Dir: DirClient},
			{OffsetMs: 2, Data: []byte{0, 1, 2}, Dir: DirServer, Binary: true},
			{OffsetMs: 3, Data: []byte("text"), Dir: DirServer},
		}}}, compNone},
		{"cut short", Interaction{Response: Response{Status: 200, Body: []byte("par"), Incomplete: true, ContentLength: 204800}}, compNone},
		{"incompressible body", Interaction{Response: Response{Status: 200, Body: random}}, compNone},
		{"large compressible body", Interaction{Response: Response{Status: 200, Body: big}}, compZstd},
		{"negative values", Interaction{DurationMs: -5, Response: Response{Status: -1}}, compNone},
		{"zoned time", Interaction{RecordedAt: time.Date(2024, 1, 2, 3, 4, 5, 6, time.FixedZone("", 5*3600+1800))}, compNone},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			in.Seq = 77 // not stored
			v, err := EncodeInteraction(&in)
			if err != nil {
				t.Fatal(err)
			}
			if v[0] != valueVersion1 {
				t.Fatalf("version byte %d", v[0])
			}
			if v[1] != tc.wantComp {
				t.Errorf("compression byte %d, want %d (len %d)", v[1], tc.wantComp, len(v))
			}
			got, err := DecodeInteraction(v)
			if err != nil {
				t.Fatal(err)
			}
			want := tc.in
			want.Seq = 0
			// time.Time carries a *Location: compare instant and offset, then the rest.
			if !got.RecordedAt.Equal(want.RecordedAt) {
				t.Fatalf("recorded_at %v, want %v", got.RecordedAt, want.RecordedAt)
			}
			_, go1 := got.RecordedAt.Zone()
			_, wo := want.RecordedAt.Zone()
			if go1 != wo {
				t.Fatalf("zone offset %d, want %d", go1, wo)
			}
			if want.RecordedAt.Location() == time.UTC || want.RecordedAt.IsZero() {
				mustEqual(t, got, want)
			} else {
				got.RecordedAt, want.RecordedAt = time.Time{}, time.Time{}
				mustEqual(t, got, want)
			}
			// Decoded values must not alias the stored bytes.
			if v[1] == compNone && len(got.Response.Body) > 0 {
				for i := range v {
					v[i] = 0
				}
				if !bytes.Equal(got.Response.Body, tc.in.Response.Body) {
					t.Fatal("decoded body aliases the value")
				}
			}
		})
	}
}

func TestCodecNilEmptyAreDistinct(t *testing.T) {
	// Guards the test above: equalInteraction must see nil and empty as
	// different, and so must the codec.
	a := Interaction{Response: Response{Header: http.Header{}, Body: []byte{}}}
	b := Interaction{}
	if equalInteraction(a, b) {
		t.Fatal("equalInteraction does not separate nil and empty")
	}
	va, _ := EncodeInteraction(&a)
	vb, _ := EncodeInteraction(&b)
	if bytes.Equal(va, vb) {
		t.Fatal("nil and empty encode alike")
	}
}

func TestDecodeCorrupt(t *testing.T) {
	full := fullInteraction()
	payload, err := appendInteraction(nil, &full, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw := append([]byte{valueVersion1, compNone}, payload...)
	good, _ := EncodeInteraction(&full)

	cases := map[string][]byte{
		"nil":                    nil,
		"one byte":               {valueVersion1},
		"bad version":            {9, compNone},
		"bad compression":        {valueVersion1, 7, 1, 2, 3},
		"garbage zstd":           {valueVersion1, compZstd, 1, 2, 3, 4, 5},
		"truncated zstd":         good[:len(good)/2],
		"trailing bytes":         append(bytes.Clone(raw), 0),
		"length flag, no length": append(append([]byte{valueVersion1, compNone}, mustPayloadUpToFlags(t)...), 0x80, 0),
		"huge length":            {valueVersion1, compNone, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
		"huge header size":       binary.AppendUvarint(prefixBeforeReqHeader(t), 1<<40),
		"huge body size":         binary.AppendUvarint(append(prefixBeforeReqHeader(t), 0), 1<<40),
	}
	for i := 2; i < len(raw); i += 7 {
		cases[fmt.Sprintf("prefix %d", i)] = raw[:i]
	}
	for name, v := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := DecodeInteraction(v)
			if err == nil {
				t.Fatalf("no error, got %#v", got)
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
		})
	}
}

// mustPayloadUpToFlags encodes an empty interaction up to (excluding) the flags byte.
func mustPayloadUpToFlags(t *testing.T) []byte {
	p, err := appendInteraction(nil, &Interaction{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p[:len(p)-2] // flags byte and events count
}

// prefixBeforeReqHeader is a raw value of an empty interaction up to the
// request header count.
func prefixBeforeReqHeader(t *testing.T) []byte {
	tb, err := time.Time{}.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	b := []byte{valueVersion1, compNone}
	b = appendString(b, "")
	b = appendBytes(b, tb)
	b = binary.AppendVarint(b, 0)
	for range 3 { // run id, method, url
		b = appendString(b, "")
	}
	return b
}

func FuzzDecodeInteraction(f *testing.F) {
	full := fullInteraction()
	v, _ := EncodeInteraction(&full)
	f.Add(v)
	p, _ := appendInteraction(nil, &full, nil)
	f.Add(append([]byte{valueVersion1, compNone}, p...))
	f.Add([]byte{valueVersion1, compNone})
	f.Fuzz(func(t *testing.T, b []byte) {
		in, err := DecodeInteraction(b)
		if err != nil {
			return
		}
		// Whatever decodes must re-encode and decode to the same thing.
		v, err := EncodeInteraction(&in)
		if err != nil {
			return // e.g. a time that cannot be marshalled back
		}
		again, err := DecodeInteraction(v)
		if err != nil {
			t.Fatal(err)
		}
		if !again.RecordedAt.Equal(in.RecordedAt) {
			t.Fatal("time changed")
		}
		again.RecordedAt, in.RecordedAt = time.Time{}, time.Time{}
		if !equalInteraction(again, in) {
			t.Fatalf("re-encode changed the interaction")
		}
	})
}

func TestClone(t *testing.T) {
	orig := fullInteraction()
	orig.Request.Body = []byte("req")
	policyMarker := func() *BodyMarker {
		return &BodyMarker{Size: 3, Policy: StoreFields, Fields: []byte(`{"a":1}`), Match: "json:00"}
	}
	orig.Request.NotRecorded = policyMarker()
	c := orig.Clone()
	mustEqual(t, c, orig)
	c.Request.NotRecorded.Fields[0] = 'X'

	c.Request.Header["X-Multi"][0] = "changed"
	c.Request.Body[0] = 'X'
	c.Response.Events[0].Data[0] = 'X'
	c.Response.NotRecorded.Size = 1
	c.Response.Header.Set("Content-Type", "changed")
	mustEqual(t, orig, func() Interaction {
		f := fullInteraction()
		f.Request.Body, f.Request.NotRecorded = []byte("req"), policyMarker()
		return f
	}())
	if c.Request.Header["X-Nil"] != nil || c.Request.Header["X-Empty"] == nil {
		t.Fatal("Clone lost nil/empty header values")
	}
	var zero Interaction
	mustEqual(t, zero.Clone(), zero)
}

// TestEventsCutFromBodyStoredOnce: a stream whose events are its body in
// pieces stores the bytes once, and decodes to the same events; events that
// are not the body's pieces keep their own bytes.
func TestEventsCutFromBodyStoredOnce(t *testing.T) {
	body := []byte(strings.Repeat("data: {\"delta\":\"token\"}\n\n", 40))
	cut := func(b []byte) []Event {
		var ev []Event
		for i := 0; i < len(b); i += 26 {
			end := min(i+26, len(b))
			ev = append(ev, Event{OffsetMs: int64(i), Data: b[i:end]})
		}
		return ev
	}
	shared := Interaction{Response: Response{Status: 200, Body: body, Streamed: true, Events: cut(body)}}
	other := []byte(strings.Repeat("data: {\"delta\":\"other\"}\n\n", 40))
	separate := Interaction{Response: Response{Status: 200, Body: body, Streamed: true, Events: cut(other)}}
	for name, in := range map[string]Interaction{"cut from body": shared, "separate": separate} {
		v, err := EncodeInteraction(&in)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeInteraction(v)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !equalEvents(got.Response.Events, in.Response.Events) || !bytes.Equal(got.Response.Body, body) {
			t.Fatalf("%s: events or body changed in the round trip", name)
		}
	}
	sharedPayload, _ := appendInteraction(nil, &shared, nil)
	separatePayload, _ := appendInteraction(nil, &separate, nil)
	if len(sharedPayload) > len(separatePayload)-len(body)+200 {
		t.Fatalf("events cut from the body were stored again: %d bytes vs %d with separate events", len(sharedPayload), len(separatePayload))
	}
}
