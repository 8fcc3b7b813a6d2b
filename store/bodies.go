package store

import (
	"crypto/sha256"
	"fmt"
	"sync"

	"github.com/cassetteproxy/cassetteproxy/internal/bytesmemo"
	bolt "go.etcd.io/bbolt"
)

// Response bodies of minBlobBody bytes or more are kept apart from their
// interaction values, once per cassette (see the package comment): this file
// holds the write side (encodeForStore, the Recorder's hints and bodySums)
// and the read side (bodyCache).

// minBlobBody is the smallest response body the store keeps apart from its
// interaction, in the cassette's bodies bucket under its SHA-256, so that a
// body answered again and again (a polled tool, tools/list, a model list, a
// load test) is compressed and stored once. Smaller bodies stay inline: the
// reference and the lookup would cost more than they save.
const minBlobBody = 1024

// storedBody is a response body kept apart from its interaction value.
// packed is its stored form, or nil when the Recorder knew the blob was
// already stored (or about to be): the commit then packs body only if the
// blob turns out to be missing. body is kept only while packed is nil.
type storedBody struct {
	hash   [32]byte
	body   []byte
	packed []byte
}

// encodeForStore encodes in the way the store writes it: a response body of
// minBlobBody bytes or more goes into a storedBody, referenced from the
// value by its SHA-256 (from sums, which may be nil); known reports whether
// that body is already stored (then it is not compressed again). A body
// whose recording was cut (NotRecorded) is never large, and stays inline
// like small ones.
func encodeForStore(in *Interaction, sums *bodySums, known func(*[32]byte) bool) ([]byte, *storedBody, error) {
	body := in.Response.Body
	if len(body) < minBlobBody {
		v, err := encodeValue(in, nil)
		return v, nil, err
	}
	sb := &storedBody{hash: sums.sum(body), body: body}
	value, err := encodeValue(in, &sb.hash)
	if err != nil {
		return nil, nil, err
	}
	if known == nil || !known(&sb.hash) {
		if sb.packed, err = packValue(body); err != nil {
			return nil, nil, err
		}
		sb.body = nil // packed: the caller's bytes are not needed any more
	}
	return value, sb, nil
}

// bodySums remembers the SHA-256 of recent large bodies, so a body seen
// again is compared byte for byte with a kept copy (a memcmp, a few
// microseconds for 50 KB) instead of hashed again (~25 µs). A nil *bodySums
// just hashes.
type bodySums struct{ memo *bytesmemo.Memo[[32]byte] }

func newBodySums() *bodySums { return &bodySums{bytesmemo.New[[32]byte](256, 4<<20)} }

func (s *bodySums) sum(body []byte) [32]byte {
	if s == nil || len(body) > 1<<20 { // too large to keep a copy of
		return sha256.Sum256(body)
	}
	sum, _, ok, again := s.memo.Get("", body)
	if ok {
		return sum
	}
	sum = sha256.Sum256(body)
	if again { // seen before: worth remembering
		// Record's callers never change a body after Record, so the memo
		// keeps the body itself: a caller that hands the same bytes again
		// (the proxy's redaction memo answers with its own copy each time)
		// is then known by address (bytes.Equal of one address returns at
		// once), with no 50 KB comparison.
		s.memo.Put("", body, sum, cap(body)-len(body)) // what it holds, not just its length
	}
	return sum
}

// maxStoredHints bounds the body hashes remembered per cassette (32 B each).
const maxStoredHints = 1 << 16

// bodyStored reports whether the cassette's body h was stored or queued by
// this Recorder, and notes it as queued from now on.
func (r *Recorder) bodyStored(cassette string, h *[32]byte) bool {
	r.storedMu.Lock()
	defer r.storedMu.Unlock()
	set := r.stored[cassette]
	if _, ok := set[*h]; ok {
		return true
	}
	if set == nil || len(set) >= maxStoredHints {
		set = make(map[[32]byte]struct{})
		r.stored[cassette] = set
	}
	set[*h] = struct{}{}
	return false
}

// forgetBodies drops the cassette's hints (it was reset or deleted).
func (r *Recorder) forgetBodies(cassette string) {
	r.storedMu.Lock()
	delete(r.stored, cassette)
	r.storedMu.Unlock()
}

// bodyCache resolves body references inside one read transaction. Every
// interaction answered with the same body shares one decoded copy (read-only,
// capacity-capped slices), so a cassette of a thousand identical 50 KB
// answers holds 50 KB, not 50 MB.
type bodyCache struct {
	bucket *bolt.Bucket // nil in cassettes written before bodies were kept apart
	mu     sync.Mutex
	bodies map[[32]byte][]byte
	size   int // bytes in bodies
	limit  int // when size passes it, the cache starts over (0: never)
	// mapped estimates the bytes of the store's memory map the lookups
	// brought into RSS: the value, and the kernel's fault-around (up to
	// 64 KiB) about each lookup, for the bodies bucket is ordered by hash
	// and every lookup lands somewhere else in the file.
	mapped int
}

func newBodyCache(cassette *bolt.Bucket) *bodyCache {
	return &bodyCache{bucket: cassette.Bucket(subBodies), bodies: map[[32]byte][]byte{}}
}

// body is the decoder's resolver. Safe for concurrent use (decodeRaw's workers).
func (bc *bodyCache) body(ref []byte) ([]byte, error) {
	h := [32]byte(ref)
	bc.mu.Lock()
	defer bc.mu.Unlock()
	if b, ok := bc.bodies[h]; ok {
		return b, nil
	}
	var packed []byte
	if bc.bucket != nil {
		packed = bc.bucket.Get(ref)
		bc.mapped += len(packed) + 64<<10
	}
	if packed == nil {
		return nil, fmt.Errorf("body %x is missing from the cassette", ref[:8])
	}
	b, err := unpackValue(packed)
	if err != nil {
		return nil, fmt.Errorf("body %x: %w", ref[:8], err)
	}
	if bc.limit > 0 && bc.size > bc.limit {
		clear(bc.bodies)
		bc.size = 0
	}
	bc.bodies[h] = b
	bc.size += len(b)
	return b, nil
}
