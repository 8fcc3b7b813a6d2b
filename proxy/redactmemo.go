package proxy

import (
	"bytes"
	"hash/maphash"
	"sync"

	"github.com/cassetteproxy/cassetteproxy/redact"
	"github.com/cassetteproxy/cassetteproxy/store"
)

// redactMemo remembers what recent response bodies redacted to, so a body
// answered again (a polled tool, tools/list, a model list, a load test) is
// compared byte for byte with the one seen before instead of scanned again:
// on a 50 KB JSON body the comparison costs a few microseconds, the scan
// tens to a hundred. The body's redaction depends only on its bytes and its
// Content-Type, and the memo is keyed on both, so a hit returns exactly what
// the scan would. The raw bodies it holds are copies that live in memory
// only, like the response itself on its way to redaction, and are bounded in
// number and in bytes.
type redactMemo struct {
	seed maphash.Seed

	mu      sync.Mutex
	entries map[uint64]memoEntry
	bytes   int
}

type memoEntry struct {
	contentType string
	raw         []byte // a private copy of the body as it came
	redacted    []byte // what it redacted to; never written to
}

const (
	minMemoBody    = 1024     // below this, scanning is as cheap as comparing
	maxMemoBody    = 1 << 20  // larger bodies are rare repeats and costly to keep
	maxMemoBytes   = 16 << 20 // raw plus redacted, over all entries
	maxMemoEntries = 256
)

func newRedactMemo() *redactMemo {
	return &redactMemo{seed: maphash.MakeSeed(), entries: map[uint64]memoEntry{}}
}

// response redacts resp in place exactly like redactor.Response, reusing the
// redacted body of an identical earlier body. Streams (events) are always
// scanned: their redaction is per event.
func (m *redactMemo) response(redactor *redact.Redactor, resp *store.Response) {
	body := resp.Body
	if len(resp.Events) > 0 || len(body) < minMemoBody || len(body) > maxMemoBody {
		redactor.Response(resp)
		return
	}
	ct := resp.Header.Get("Content-Type")
	h := maphash.Bytes(m.seed, body)
	if redacted, ok := m.lookup(h, ct, body); ok {
		resp.Body = nil // the headers are scrubbed as usual; the body is known
		redactor.Response(resp)
		resp.Body = redacted
		return
	}
	raw := bytes.Clone(body) // before the scan, which owns body from here
	redactor.Response(resp)
	m.store(h, ct, raw, body, resp.Body)
}

func (m *redactMemo) lookup(h uint64, ct string, body []byte) ([]byte, bool) {
	m.mu.Lock()
	e, ok := m.entries[h]
	m.mu.Unlock()
	if !ok || e.contentType != ct || !bytes.Equal(e.raw, body) {
		return nil, false
	}
	return e.redacted, true
}

// store remembers that raw (a private copy of body) redacted to redacted.
func (m *redactMemo) store(h uint64, ct string, raw, body, redacted []byte) {
	e := memoEntry{contentType: ct, raw: raw, redacted: redacted}
	if len(redacted) > 0 && &body[0] == &redacted[0] { // the scan answered with body itself
		if bytes.Equal(redacted, raw) {
			e.redacted = raw // nothing redacted
		} else {
			e.redacted = bytes.Clone(redacted) // body belongs to the caller
		}
	}
	size := memoSize(e)
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.entries[h]; ok {
		m.bytes -= memoSize(old)
	}
	if len(m.entries) >= maxMemoEntries || m.bytes+size > maxMemoBytes {
		clear(m.entries) // crude, but repeats refill it within a few requests
		m.bytes = 0
	}
	m.entries[h] = e
	m.bytes += size
}

func memoSize(e memoEntry) int {
	if len(e.raw) > 0 && len(e.redacted) > 0 && &e.raw[0] == &e.redacted[0] {
		return len(e.raw)
	}
	return len(e.raw) + len(e.redacted)
}
