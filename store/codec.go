package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Value layout constants (see the package comment).
const (
	valueVersion1 byte = 1

	compNone byte = 0
	compZstd byte = 1

	// maxDecodedValue bounds what one value may decompress to.
	maxDecodedValue = 1 << 30
)

// ErrCorrupt is returned (wrapped) when a stored value cannot be decoded.
var ErrCorrupt = errors.New("corrupt value")

var (
	zstdEnc     *zstd.Encoder
	zstdDec     *zstd.Decoder
	zstdErr     error
	zstdInitOne sync.Once
)

// codecs returns the process-wide zstd encoder and decoder. Both are safe for
// concurrent EncodeAll / DecodeAll.
func codecs() (*zstd.Encoder, *zstd.Decoder, error) {
	zstdInitOne.Do(func() {
		// SpeedFastest: on 50 KB LLM-style JSON it compresses ~2.4× faster
		// than SpeedDefault (437 vs 180 MB/s on our 2-core machine) for a
		// ratio of 4.9× instead of 5.1× (BenchmarkRecordLLMJSON); EncodeAll
		// runs on every recorded response's path. Any level decodes alike.
		// WithLowerEncoderMem: each encoder grows its buffers to the
		// bodies it meets instead of starting at 128 KiB blocks: 1.4 -> 0.7
		// MiB live for the process's encoders, the same speed within noise
		// (BenchmarkRecordLLMJSON), the same output.
		zstdEnc, zstdErr = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithLowerEncoderMem(true))
		if zstdErr != nil {
			return
		}
		zstdDec, zstdErr = zstd.NewReader(nil,
			zstd.WithDecoderMaxMemory(maxDecodedValue),
			zstd.WithDecoderConcurrency(0))
	})
	return zstdEnc, zstdDec, zstdErr
}

// minCompressed is the smallest payload worth compressing: below it zstd's
// per-call setup costs more CPU than the few bytes it saves. (At 2 KiB the
// record path gained ~7% CPU on 1 KB bodies but the store grew 2–3× for
// them: disk won.)
const minCompressed = 512

var payloadPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// EncodeInteraction returns the stored form of in with its body inline:
// version byte, compression byte, and the (usually zstd-compressed) binary
// encoding. in.Seq is not encoded: the store keys values by Seq. (The store
// itself writes large response bodies apart, once each: see encodeForStore.)
func EncodeInteraction(in *Interaction) ([]byte, error) {
	return encodeValue(in, nil)
}

// encodeValue encodes in, with the response body replaced by a reference to
// the stored body blob when bodyRef is set.
func encodeValue(in *Interaction, bodyRef *[32]byte) ([]byte, error) {
	bp := payloadPool.Get().(*[]byte)
	payload, err := appendInteraction((*bp)[:0], in, bodyRef)
	if err != nil {
		payloadPool.Put(bp)
		return nil, err
	}
	out, err := packValue(payload)
	if cap(payload) <= 1<<20 { // don't keep huge buffers around
		*bp = payload[:0]
		payloadPool.Put(bp)
	}
	return out, err
}

// packValue returns payload behind the version and compression bytes,
// zstd-compressed unless that would not make it smaller. The result does not
// alias payload.
func packValue(payload []byte) ([]byte, error) {
	enc, _, err := codecs()
	if err != nil {
		return nil, err
	}
	if len(payload) > maxDecodedValue {
		return nil, fmt.Errorf("interaction encodes to %d bytes, over the %d limit", len(payload), maxDecodedValue)
	}
	var out []byte
	if len(payload) >= minCompressed {
		out = make([]byte, 2, 2+len(payload)/3+64)
		out[0], out[1] = valueVersion1, compZstd
		out = enc.EncodeAll(payload, out)
	}
	if out == nil || len(out)-2 >= len(payload) {
		out = append(append(make([]byte, 0, 2+len(payload)), valueVersion1, compNone), payload...)
	}
	return out, nil
}

// unpackValue undoes packValue. The result does not alias value.
func unpackValue(value []byte) ([]byte, error) {
	if len(value) < 2 {
		return nil, fmt.Errorf("%w: %d bytes", ErrCorrupt, len(value))
	}
	if value[0] != valueVersion1 {
		return nil, fmt.Errorf("%w: unknown format version %d", ErrCorrupt, value[0])
	}
	switch value[1] {
	case compNone:
		return slices.Clone(value[2:]), nil
	case compZstd:
		_, dec, err := codecs()
		if err != nil {
			return nil, err
		}
		payload, err := dec.DecodeAll(value[2:], nil)
		if err != nil {
			return nil, fmt.Errorf("%w: zstd: %v", ErrCorrupt, err)
		}
		return payload, nil
	}
	return nil, fmt.Errorf("%w: unknown compression %d", ErrCorrupt, value[1])
}

// DecodeInteraction decodes a value written by EncodeInteraction. The result
// does not alias value. Seq is left zero. A value whose body is stored apart
// cannot be decoded on its own: the store decodes those (decodeValue).
func DecodeInteraction(value []byte) (Interaction, error) {
	return decodeValue(value, nil)
}

// decodeValue decodes a stored value; body returns the body stored under a
// reference (nil: references are an error).
func decodeValue(value []byte, body func(ref []byte) ([]byte, error)) (Interaction, error) {
	var in Interaction
	payload, err := unpackValue(value)
	if err != nil {
		return in, err
	}
	r := reader{b: payload, body: body}
	r.interaction(&in)
	if r.err == nil && r.off != len(r.b) {
		r.err = fmt.Errorf("%d trailing bytes", len(r.b)-r.off)
	}
	if r.err != nil {
		return Interaction{}, fmt.Errorf("%w: %v", ErrCorrupt, r.err)
	}
	return in, nil
}

// decodeHead decodes a stored value's key, times, run and request (its
// store policy marker included, which follows the response), and leaves
// the response empty: no body stored apart is looked up. The result does
// not alias value.
func decodeHead(value []byte) (Interaction, error) {
	var in Interaction
	payload, err := unpackValue(value)
	if err != nil {
		return in, err
	}
	r := reader{b: payload, skipBodies: true}
	r.interaction(&in)
	if r.err == nil && r.off != len(r.b) {
		r.err = fmt.Errorf("%d trailing bytes", len(r.b)-r.off)
	}
	if r.err != nil {
		return Interaction{}, fmt.Errorf("%w: %v", ErrCorrupt, r.err)
	}
	in.Response = Response{}
	return in, nil
}

// ---- v1 binary encoding ----
//
// Integers are varints (signed) or uvarints (lengths). A "nullable" length is
// 0 for nil and n+1 for a value of length n. Header keys are written sorted.

const (
	flagStreamed   = 1 << 0
	flagIncomplete = 1 << 1
	flagUpgrade    = 1 << 2
	flagMarker     = 1 << 3
	// flagEventsInBody: the events are the body cut in pieces (as the
	// proxy records every stream), so only their offsets and lengths are
	// stored, not their bytes a second time.
	flagEventsInBody = 1 << 4
	// flagBodyRef: the response body field holds the SHA-256 of the body,
	// which is stored in the cassette's bodies bucket (see encodeForStore).
	flagBodyRef = 1 << 5
	// flagMessages: the events are WebSocket messages, each with a byte
	// after its offset: eventFromClient and eventBinary.
	flagMessages = 1 << 6
	// flagLength: the announced length of a body cut short follows the
	// marker (Response.ContentLength).
	flagLength = 1 << 7
)

// A WebSocket message's byte (flagMessages).
const (
	eventFromClient = 1 << 0
	eventBinary     = 1 << 1
)

func appendInteraction(b []byte, in *Interaction, bodyRef *[32]byte) ([]byte, error) {
	b = appendString(b, in.Key)
	t, err := in.RecordedAt.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("encode recorded_at: %w", err)
	}
	b = appendBytes(b, t)
	b = binary.AppendVarint(b, in.DurationMs)
	b = appendString(b, in.RunID)

	q := &in.Request
	b = appendString(b, q.Method)
	b = appendString(b, q.URL)
	b = appendHeader(b, q.Header)
	b = appendNullBytes(b, q.Body)
	b = appendString(b, q.ContentEncoding)

	p := &in.Response
	b = binary.AppendVarint(b, int64(p.Status))
	b = appendHeader(b, p.Header)
	if bodyRef != nil {
		b = appendNullBytes(b, bodyRef[:])
	} else {
		b = appendNullBytes(b, p.Body)
	}
	b = appendString(b, p.ContentEncoding)
	var flags byte
	if bodyRef != nil {
		flags |= flagBodyRef
	}
	if p.Streamed {
		flags |= flagStreamed
	}
	if p.Incomplete {
		flags |= flagIncomplete
	}
	if p.Upgrade {
		flags |= flagUpgrade
	}
	if p.NotRecorded != nil {
		flags |= flagMarker
	}
	if p.ContentLength != 0 {
		flags |= flagLength
	}
	messages := hasMessages(p.Events)
	inBody := !messages && eventsCutFromBody(p)
	if inBody {
		flags |= flagEventsInBody
	}
	if messages {
		flags |= flagMessages
	}
	b = append(b, flags)
	if p.Events == nil {
		b = append(b, 0)
	} else {
		b = binary.AppendUvarint(b, uint64(len(p.Events))+1)
		for i := range p.Events {
			b = binary.AppendVarint(b, p.Events[i].OffsetMs)
			if messages {
				b = append(b, messageByte(&p.Events[i]))
			}
			if inBody {
				b = binary.AppendUvarint(b, uint64(len(p.Events[i].Data)))
			} else {
				b = appendNullBytes(b, p.Events[i].Data)
			}
		}
	}
	if m := p.NotRecorded; m != nil {
		b = binary.AppendVarint(b, m.Size)
		b = appendString(b, m.SHA256)
		b = appendString(b, m.Reason)
	}
	if p.ContentLength != 0 {
		b = binary.AppendVarint(b, p.ContentLength)
	}
	return appendPolicy(b, q.NotRecorded, p.NotRecorded), nil
}

// extPolicy begins the part of a value that only interactions stored under
// a store policy have (BodyMarker's Policy, Fields and Match, and the
// request's marker), after everything else: values without it are
// unchanged, and a reader that does not know it refuses it as trailing
// bytes rather than misreading it.
const extPolicy byte = 1

func hasPolicy(m *BodyMarker) bool {
	return m != nil && (m.Policy != "" || m.Fields != nil || m.Match != "")
}

func appendPolicy(b []byte, req, resp *BodyMarker) []byte {
	if req == nil && !hasPolicy(resp) {
		return b
	}
	b = append(b, extPolicy)
	if req == nil {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		b = binary.AppendVarint(b, req.Size)
		b = appendString(b, req.SHA256)
		b = appendString(b, req.Reason)
		b = appendMarkerPolicy(b, req)
	}
	if resp != nil {
		b = appendMarkerPolicy(b, resp)
	}
	return b
}

func appendMarkerPolicy(b []byte, m *BodyMarker) []byte {
	b = appendString(b, m.Policy)
	b = appendNullBytes(b, m.Fields)
	return appendString(b, m.Match)
}

// policy reads what appendPolicy wrote, if anything is left.
func (r *reader) policy(in *Interaction) {
	if r.err != nil || r.off == len(r.b) {
		return
	}
	if tag := r.byte1("extension"); tag != extPolicy {
		r.err = fmt.Errorf("unknown extension %d at offset %d", tag, r.off-1)
		return
	}
	switch r.byte1("request marker") {
	case 0:
	case 1:
		m := &BodyMarker{}
		m.Size = r.varint("request marker size")
		m.SHA256 = r.str("request marker sha256")
		m.Reason = r.str("request marker reason")
		r.markerPolicy(m)
		in.Request.NotRecorded = m
	default:
		r.fail("request marker")
	}
	if m := in.Response.NotRecorded; m != nil {
		r.markerPolicy(m)
	}
}

func (r *reader) markerPolicy(m *BodyMarker) {
	m.Policy = r.str("marker policy")
	if f := r.nullBytes("marker fields"); f != nil {
		m.Fields = f
	}
	m.Match = r.str("marker match")
}

// hasMessages reports events that are WebSocket messages.
func hasMessages(events []Event) bool {
	for i := range events {
		if events[i].Dir != "" || events[i].Binary {
			return true
		}
	}
	return false
}

func messageByte(e *Event) byte {
	var b byte
	if e.Dir == DirClient {
		b |= eventFromClient
	}
	if e.Binary {
		b |= eventBinary
	}
	return b
}

// eventsCutFromBody reports events whose bytes, in order, are exactly the
// body (none of them nil, so the cut can be undone to the same values).
func eventsCutFromBody(p *Response) bool {
	if len(p.Events) == 0 {
		return false
	}
	rest := p.Body
	for _, e := range p.Events {
		if e.Data == nil || len(e.Data) > len(rest) || !bytes.Equal(e.Data, rest[:len(e.Data)]) {
			return false
		}
		rest = rest[len(e.Data):]
	}
	return len(rest) == 0
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func appendNullBytes(b, v []byte) []byte {
	if v == nil {
		return append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(v))+1)
	return append(b, v...)
}

func appendHeader(b []byte, h http.Header) []byte {
	if h == nil {
		return append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(h))+1)
	// Sorted by name, so equal headers encode alike. Most headers have a
	// few names: their pairs are gathered on the stack, each looked up once.
	var small [16]headerField
	fields := small[:0]
	for k, vs := range h {
		fields = append(fields, headerField{k, vs})
	}
	slices.SortFunc(fields, func(x, y headerField) int { return strings.Compare(x.name, y.name) })
	for _, f := range fields {
		b = appendString(b, f.name)
		if f.values == nil {
			b = append(b, 0)
			continue
		}
		b = binary.AppendUvarint(b, uint64(len(f.values))+1)
		for _, v := range f.values {
			b = appendString(b, v)
		}
	}
	return b
}

type headerField struct {
	name   string
	values []string
}

// reader decodes the v1 encoding. Errors are sticky; byte slices it returns
// alias r.b (a buffer owned by the decoder) and are capacity-capped.
type reader struct {
	b    []byte
	off  int
	err  error
	body func(ref []byte) ([]byte, error) // resolves flagBodyRef; nil: refused
	// skipBodies: a body stored apart is not looked up and stays nil, and
	// so do the events cut from it (decodeHead).
	skipBodies bool
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("truncated or invalid %s at offset %d", what, r.off)
	}
}

func (r *reader) uvarint(what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.off += n
	return v
}

func (r *reader) varint(what string) int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b[r.off:])
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.off += n
	return v
}

func (r *reader) byte1(what string) byte {
	if r.err != nil {
		return 0
	}
	if r.off >= len(r.b) {
		r.fail(what)
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

// take returns the next n bytes.
func (r *reader) take(n uint64, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)-r.off) {
		r.fail(what)
		return nil
	}
	s := r.b[r.off : r.off+int(n) : r.off+int(n)]
	r.off += int(n)
	return s
}

func (r *reader) str(what string) string {
	return string(r.take(r.uvarint(what), what))
}

func (r *reader) bytes(what string) []byte {
	return r.take(r.uvarint(what), what)
}

func (r *reader) nullBytes(what string) []byte {
	n := r.uvarint(what)
	if n == 0 || r.err != nil {
		return nil
	}
	return r.take(n-1, what)
}

// count reads a nullable count of items that each take at least one byte.
func (r *reader) count(what string) (n int, isNil bool) {
	c := r.uvarint(what)
	if c == 0 || r.err != nil {
		return 0, true
	}
	if c-1 > uint64(len(r.b)-r.off) {
		r.fail(what)
		return 0, true
	}
	return int(c - 1), false
}

func (r *reader) header(what string) http.Header {
	n, isNil := r.count(what)
	if isNil {
		return nil
	}
	h := make(http.Header, n)
	for range n {
		k := r.str(what)
		m, vnil := r.count(what)
		if r.err != nil {
			return nil
		}
		if vnil {
			h[k] = nil
			continue
		}
		vs := make([]string, m)
		for j := range vs {
			vs[j] = r.str(what)
		}
		h[k] = vs
	}
	return h
}

func (r *reader) interaction(in *Interaction) {
	r.head(in)
	r.response(&in.Response)
	r.policy(in)
	if r.err != nil {
		*in = Interaction{}
	}
}

// head reads what comes before the response: the key, times, run and the
// request.
func (r *reader) head(in *Interaction) {
	in.Key = r.str("key")
	if t := r.bytes("recorded_at"); r.err == nil {
		if err := in.RecordedAt.UnmarshalBinary(t); err != nil {
			r.err = fmt.Errorf("recorded_at: %v", err)
		}
	}
	in.DurationMs = r.varint("duration_ms")
	in.RunID = r.str("run_id")

	q := &in.Request
	q.Method = r.str("request method")
	q.URL = r.str("request url")
	q.Header = r.header("request header")
	q.Body = r.nullBytes("request body")
	q.ContentEncoding = r.str("request content_encoding")
}

func (r *reader) response(p *Response) {
	st := r.varint("status")
	if st < math.MinInt32 || st > math.MaxInt32 {
		r.fail("status")
	}
	p.Status = int(st)
	p.Header = r.header("response header")
	p.Body = r.nullBytes("response body")
	p.ContentEncoding = r.str("response content_encoding")
	flags := r.byte1("flags")
	p.Streamed = flags&flagStreamed != 0
	p.Incomplete = flags&flagIncomplete != 0
	p.Upgrade = flags&flagUpgrade != 0
	if flags&flagBodyRef != 0 && r.err == nil {
		switch {
		case r.skipBodies && len(p.Body) == sha256.Size:
			p.Body = nil // not looked up (decodeHead)
		case r.body == nil:
			r.err = errors.New("body stored apart (decode it through the store)")
		case len(p.Body) != sha256.Size:
			r.fail("body reference")
		default:
			body, err := r.body(p.Body)
			if err != nil {
				r.err = err
			}
			p.Body = body[:len(body):len(body)]
		}
	}
	if n, isNil := r.count("events"); !isNil {
		p.Events = make([]Event, n)
		rest := p.Body
		for i := range p.Events {
			p.Events[i].OffsetMs = r.varint("event offset")
			if flags&flagMessages != 0 {
				m := r.byte1("message kind")
				p.Events[i].Dir, p.Events[i].Binary = DirServer, m&eventBinary != 0
				if m&eventFromClient != 0 {
					p.Events[i].Dir = DirClient
				}
			}
			if flags&flagEventsInBody == 0 {
				p.Events[i].Data = r.nullBytes("event data")
				continue
			}
			size := r.uvarint("event length")
			if r.skipBodies && rest == nil {
				continue // the body was not looked up (decodeHead)
			}
			if size > uint64(len(rest)) {
				r.fail("event length")
				break
			}
			p.Events[i].Data = rest[:size:size]
			rest = rest[size:]
		}
	}
	if flags&flagMarker != 0 {
		m := &BodyMarker{}
		m.Size = r.varint("marker size")
		m.SHA256 = r.str("marker sha256")
		m.Reason = r.str("marker reason")
		p.NotRecorded = m
	}
	if flags&flagLength != 0 {
		p.ContentLength = r.varint("content length")
	}
	if flags&^(flagStreamed|flagIncomplete|flagUpgrade|flagMarker|flagEventsInBody|flagBodyRef|flagMessages|flagLength) != 0 && r.err == nil {
		r.err = fmt.Errorf("unknown flags %#x", flags)
	}
}

// be64 is the big-endian form of a Seq, used as a key.
func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), v) }

func putTime(t time.Time) []byte { return be64(uint64(t.UnixNano())) }

func getTime(b []byte) time.Time {
	if len(b) != 8 {
		return time.Time{}
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(b)))
}

func getUint(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}
