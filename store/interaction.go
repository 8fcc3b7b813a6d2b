package store

import (
	"encoding/json"
	"net/http"
	"time"
)

// Interaction is one request and its response, normalized and redacted.
// Bodies are stored decoded; the encoding they travelled in is noted beside them.
type Interaction struct {
	Seq        uint64    `json:"seq"`         // assigned by the store: 1-based, recorded order within a cassette
	Key        string    `json:"key"`         // match key (see package match), computed on the redacted request
	RecordedAt time.Time `json:"recorded_at"` // when the response started
	DurationMs int64     `json:"duration_ms"` // request sent to last body byte
	RunID      string    `json:"run_id,omitempty"`
	Request    Request   `json:"request"`
	Response   Response  `json:"response"`
}

// Request is the recorded request. Hop-by-hop and proxy headers are already gone.
type Request struct {
	Method          string      `json:"method"`
	URL             string      `json:"url"` // absolute: scheme://host[:port]/path?query
	Header          http.Header `json:"header,omitempty"`
	Body            []byte      `json:"body,omitempty"`             // decoded
	ContentEncoding string      `json:"content_encoding,omitempty"` // encoding the body arrived in
	// NotRecorded stands for a body the rules file's store policy did not
	// keep (Body is then nil); its Match keeps the request matchable.
	NotRecorded *BodyMarker `json:"body_not_recorded,omitempty"`
}

// Response is the recorded response. Header never carries Content-Length,
// Content-Encoding or Transfer-Encoding: those are derived again when it is served.
type Response struct {
	Status          int         `json:"status"`
	Header          http.Header `json:"header,omitempty"`
	Body            []byte      `json:"body,omitempty"`             // decoded, complete (concatenation of Events when streamed)
	ContentEncoding string      `json:"content_encoding,omitempty"` // original Content-Encoding, noted only
	Streamed        bool        `json:"streamed,omitempty"`         // body arrived as a stream (SSE, NDJSON, chunked flushes)
	Events          []Event     `json:"events,omitempty"`           // the stream as the upstream wrote it, when Streamed
	Incomplete      bool        `json:"incomplete,omitempty"`       // the upstream or client broke the body midway
	// ContentLength is the length the upstream announced for a body that
	// was cut short (Incomplete): replay sends the recorded bytes under it
	// and then breaks the connection. 0 when unknown or not cut short.
	ContentLength int64       `json:"content_length,omitempty"`
	Upgrade       bool        `json:"upgrade,omitempty"` // a protocol upgrade (WebSocket) that was tunnelled, not recorded
	NotRecorded   *BodyMarker `json:"body_not_recorded,omitempty"`
}

// Event is one upstream write of a streamed body, with its offset from the
// response start; or, after a WebSocket upgrade, one message (Dir set).
type Event struct {
	OffsetMs int64  `json:"offset_ms"`
	Data     []byte `json:"data"`
	Dir      string `json:"dir,omitempty"`    // a WebSocket message's sender: DirClient or DirServer
	Binary   bool   `json:"binary,omitempty"` // a binary WebSocket message (else text)
}

// WebSocket message directions (Event.Dir).
const (
	DirClient = "client"
	DirServer = "server"
)

// BodyMarker stands for a body that was passed through but not kept: over
// --max-body, or left out by the rules file's store policy (Policy set).
type BodyMarker struct {
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"` // of the body as it would have been stored (redacted, decoded); "" when unknown
	Reason string `json:"reason"` // "body_not_recorded"
	// Policy is the store policy that left the body out: StoreHash or
	// StoreFields; "" for a body over --max-body.
	Policy string `json:"policy,omitempty"`
	// Fields (StoreFields) is the body reduced to the kept JSON paths, as
	// JSON; nil when the body was not JSON or none of them was there.
	Fields json.RawMessage `json:"fields,omitempty"`
	// Match (requests only) is the body's part of the match key, taken when
	// it was recorded (see package match): the request matches without
	// its body.
	Match string `json:"match,omitempty"`
}

// Store policies (BodyMarker.Policy); "full" keeps the body and has no marker.
const (
	StoreFull   = "full"
	StoreFields = "fields"
	StoreHash   = "hash"
)
