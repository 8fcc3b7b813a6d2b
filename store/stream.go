package store

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Reading and writing a cassette one interaction at a time, so that
// `cassettes show`, export and import hold one interaction in memory, not
// the cassette (Interactions and WriteCassette hold all of it).

// streamBodyCache bounds what EachInteraction keeps of the bodies it has
// decoded: interactions answered with the same body share one copy while
// the cache holds it, and the cache starts over past this many bytes.
const streamBodyCache = 4 << 20

// streamRelease is about how many bytes of the store's memory map
// EachInteraction brings into RSS before it gives them back (see reopen and
// bodyCache.mapped): a walk over a 300 MB cassette would otherwise end with
// all of it in the process's RSS (its bodies are looked up all over the
// file).
const streamRelease = 8 << 20

// EachInteraction calls fn with every interaction of the cassette in Seq
// order, each decoded when its turn comes: memory holds one interaction
// (and a few MiB of bodies it may share with the ones before it), not the
// cassette. The walk reads in read transactions of about streamRelease
// bytes of the file each, and reopens the store between them so that what
// they mapped is given back; a cassette written to meanwhile may show what
// was added. The interaction handed to fn is independent of the store;
// bodies may be shared between calls and must not be written to. An error
// from fn stops the walk and is returned as it is; a missing cassette is a
// wrapped ErrNoCassette.
func (s *Store) EachInteraction(name string, fn func(Interaction) error) error {
	return s.eachValue(name, func(c *bolt.Bucket) (func(uint64, []byte) error, func() int) {
		bodies := newBodyCache(c)
		bodies.limit = streamBodyCache
		visit := func(seq uint64, v []byte) error {
			in, err := decodeValue(v, bodies.body)
			if err != nil {
				return s.wrap(fmt.Errorf("cassette %q interaction %d: %w", name, seq, err))
			}
			in.Seq = seq
			return fn(in)
		}
		return visit, func() int { return bodies.mapped }
	})
}

// eachValue walks the stored values of the cassette's interactions in Seq
// order, in read transactions of about streamRelease bytes of the file
// each (what visit maps beside them, such as bodies, counted in), and
// reopens the store between them so that what they mapped is given back;
// a cassette written to meanwhile may show what was added. For each
// transaction, perTx is given the cassette's bucket and returns the visit
// for its values and how many bytes the visit has mapped so far (nil:
// none). An error from visit stops the walk and is returned as it is; a
// missing cassette is a wrapped ErrNoCassette.
func (s *Store) eachValue(name string, perTx func(c *bolt.Bucket) (visit func(seq uint64, v []byte) error, mapped func() int)) error {
	var next uint64 // the first Seq not visited yet
	for {
		var visitErr error
		more := false
		err := s.view(func(tx *bolt.Tx) error {
			c, items, err := interactionsOf(tx, name)
			if err != nil || items == nil {
				return err
			}
			visit, mapped := perTx(c)
			read := 0
			cur := items.Cursor()
			for k, v := cur.Seek(be64(next)); k != nil; k, v = cur.Next() {
				if len(k) != 8 || v == nil {
					continue
				}
				beside := 0
				if mapped != nil {
					beside = mapped()
				}
				if read+beside >= streamRelease {
					more = true // on in a fresh transaction, after a reopen
					return nil
				}
				read += len(v)
				seq := binary.BigEndian.Uint64(k)
				next = seq + 1
				if err := visit(seq, v); err != nil {
					visitErr = err
					return err
				}
			}
			return nil
		})
		if visitErr != nil && errors.Is(err, visitErr) {
			return visitErr
		}
		if err != nil {
			return s.wrap(err)
		}
		// What was read through the map is decoded and handed on: give the
		// pages back. A reopen that failed shows in the next use.
		_ = s.reopen()
		if !more {
			return nil
		}
	}
}

// bucketStaging holds cassettes being written by a CassetteWriter, one
// sub-bucket per writer, until Commit moves them in place.
var bucketStaging = []byte("staging")

// writerBatch bounds what a CassetteWriter keeps before it writes a batch
// to the staging cassette: encoded values (and bodies) of this many bytes,
// or writerBatchCount interactions. The count bounds the RSS of a commit:
// the index and the bodies are ordered by hash, so each interaction
// dirties pages of its own, and a commit reads the header of every page it
// replaces, each read mapping up to 64 KiB of the file around it (the
// kernel's fault-around): 128 interactions, ~16 MiB at most.
const (
	writerBatch      = 4 << 20
	writerBatchCount = 128
)

// CassetteWriter writes a cassette one interaction at a time, in batches,
// into a staging copy that Commit puts in place of the cassette (or, when
// appending, of the cassette extended) in one transaction. Until Commit the
// cassette is exactly as it was: a writer that fails, is aborted, or whose
// process dies leaves it untouched (a dead process's staging copy is
// removed by the next writer). Memory holds one batch, not the cassette.
// A CassetteWriter is not safe for concurrent use.
type CassetteWriter struct {
	s      *Store
	name   string
	id     []byte // the staging sub-bucket
	values [][]byte
	hashes [][32]byte
	bodies []*storedBody
	size   int
	packed map[[32]byte]bool // bodies packed by this writer lately (see seen)
	n      int
	done   bool
}

// NewCassetteWriter starts writing the named cassette: in place of what it
// holds when replace is set, else after it (then its interactions are
// copied into the staging copy first, a batch at a time).
func (s *Store) NewCassetteWriter(name string, replace bool) (*CassetteWriter, error) {
	if err := validName(name); err != nil {
		return nil, s.wrap(err)
	}
	if err := s.writable(); err != nil {
		return nil, s.wrap(err)
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, s.wrap(err)
	}
	id = []byte(hex.EncodeToString(id))
	s.mu.Lock()
	if s.staging == nil {
		s.staging = map[string]bool{}
	}
	s.staging[string(id)] = true
	active := make(map[string]bool, len(s.staging))
	for k := range s.staging {
		active[k] = true
	}
	s.mu.Unlock()
	w := &CassetteWriter{s: s, name: name, id: id, packed: map[[32]byte]bool{}}
	now := time.Now()
	var stale [][]byte
	err := s.update(func(tx *bolt.Tx) error {
		root, err := tx.CreateBucketIfNotExists(bucketStaging)
		if err != nil {
			return err
		}
		_ = root.ForEachBucket(func(k []byte) error {
			if !active[string(k)] { // left by a writer whose process died
				stale = append(stale, append([]byte(nil), k...))
			}
			return nil
		})
		b, err := root.CreateBucket(id)
		if err != nil {
			return err
		}
		_, err = openCassetteIn(b, name, now)
		return err
	})
	for _, k := range stale {
		if err == nil {
			err = s.dropStaging(k)
		}
	}
	if err == nil && !replace {
		err = w.copyExisting()
	}
	if err != nil {
		_ = w.Abort()
		return nil, s.wrap(err)
	}
	return w, nil
}

// staged returns the writer's staging cassette inside tx.
func (w *CassetteWriter) staged(tx *bolt.Tx, now time.Time) (*cassetteTx, error) {
	root := tx.Bucket(bucketStaging)
	if root == nil || root.Bucket(w.id) == nil {
		return nil, errors.New("the import's staging copy is gone")
	}
	return openCassetteIn(root.Bucket(w.id), w.name, now)
}

// copyExisting copies the cassette as it is now into the staging copy,
// raw (values, index entries, bodies, sequence, created_at), a batch of
// keys per transaction.
func (w *CassetteWriter) copyExisting() error {
	for _, sub := range [][]byte{subInteractions, subIndex, subBodies} {
		var after []byte
		for {
			var last []byte
			err := w.s.update(func(tx *bolt.Tx) error {
				src := cassetteBucket(tx, w.name)
				if src == nil || src.Bucket(sub) == nil {
					return nil
				}
				dst, err := w.staged(tx, time.Now())
				if err != nil {
					return err
				}
				from := src.Bucket(sub)
				to := map[string]*bolt.Bucket{string(subInteractions): dst.items, string(subIndex): dst.index, string(subBodies): dst.bodies}[string(sub)]
				cur := from.Cursor()
				k, v := cur.First()
				if after != nil {
					if k, v = cur.Seek(after); k != nil && string(k) == string(after) {
						k, v = cur.Next()
					}
				}
				size := 0
				for ; k != nil && size < writerBatch; k, v = cur.Next() {
					if err := to.Put(append([]byte(nil), k...), append([]byte{}, v...)); err != nil {
						return err
					}
					size += len(k) + len(v)
					last = append(last[:0], k...)
				}
				if string(sub) != string(subInteractions) || k != nil {
					return nil
				}
				// The whole of it is copied: the count and sequence follow.
				if err := to.SetSequence(from.Sequence()); err != nil {
					return err
				}
				meta := src.Bucket(subMeta)
				if meta == nil {
					return nil
				}
				for _, key := range [][]byte{keyCreatedAt, keyCount} {
					if v := meta.Get(key); v != nil {
						if err := dst.meta.Put(key, append([]byte(nil), v...)); err != nil {
							return err
						}
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			if last == nil {
				break
			}
			after = last
		}
	}
	return nil
}

// Add queues one interaction (Key must be set; Seq is assigned in order
// after what is there), writing a batch to the staging copy when one is
// full.
func (w *CassetteWriter) Add(in Interaction) error {
	if w.done {
		return w.s.wrap(fmt.Errorf("cassette %q: %w", w.name, ErrClosed))
	}
	v, b, err := encodeForStore(&in, nil, w.seen)
	if err != nil {
		return w.s.wrap(fmt.Errorf("interaction %d: %w", w.n+1, err))
	}
	w.values = append(w.values, v)
	w.hashes = append(w.hashes, sha256.Sum256([]byte(in.Key)))
	w.bodies = append(w.bodies, b)
	w.size += len(v)
	if b != nil {
		w.size += len(b.packed) + len(b.body)
	}
	w.n++
	if w.size >= writerBatch || len(w.values) >= writerBatchCount {
		return w.flush()
	}
	return nil
}

// writerHints bounds the bodies a CassetteWriter remembers packing (~0.5
// MiB of map), so that its memory does not grow with the cassette.
const writerHints = 8192

// seen reports whether this writer has packed the body h lately (then the
// commit writes it only if it finds it missing), and notes it. A hint
// only: a body repeated after writerHints others is packed again, and the
// commit still stores it once.
func (w *CassetteWriter) seen(h *[32]byte) bool {
	if w.packed[*h] {
		return true
	}
	if len(w.packed) >= writerHints {
		clear(w.packed)
	}
	w.packed[*h] = true
	return false
}

// flush writes the queued interactions to the staging copy.
func (w *CassetteWriter) flush() error {
	if len(w.values) == 0 {
		return nil
	}
	now := time.Now()
	err := w.s.update(func(tx *bolt.Tx) error {
		c, err := w.staged(tx, now)
		if err != nil {
			return err
		}
		for i := range w.values {
			if err := c.put(w.name, w.values[i], &w.hashes[i], w.bodies[i]); err != nil {
				return err
			}
		}
		return c.finish(now)
	})
	clear(w.values)
	clear(w.bodies)
	w.values, w.hashes, w.bodies, w.size = w.values[:0], w.hashes[:0], w.bodies[:0], 0
	if err == nil {
		// The index and the bodies are ordered by hash: each put read pages
		// all over the file. Give them back (a failed reopen shows in the
		// next use).
		_ = w.s.reopen()
	}
	return w.s.wrap(err)
}

// Commit writes what is queued and puts the staging copy in place of the
// cassette, in one transaction; the cassette it replaced is then deleted
// a batch at a time. It returns how many interactions were added.
func (w *CassetteWriter) Commit() (int, error) {
	if w.done {
		return 0, w.s.wrap(fmt.Errorf("cassette %q: %w", w.name, ErrClosed))
	}
	if err := w.flush(); err != nil {
		_ = w.Abort()
		return 0, err
	}
	w.s.forgetBodies(w.name)
	err := w.s.update(func(tx *bolt.Tx) error {
		root, staging := tx.Bucket(bucketCassettes), tx.Bucket(bucketStaging)
		if root == nil || staging == nil || staging.Bucket(w.id) == nil {
			return errors.New("the import's staging copy is gone")
		}
		mine := staging.Bucket(w.id)
		if root.Bucket([]byte(w.name)) != nil { // the cassette it replaces goes to the staging copy's place
			old, err := mine.CreateBucket([]byte("replaced"))
			if err != nil {
				return err
			}
			if err := root.MoveBucket([]byte(w.name), old); err != nil {
				return err
			}
		}
		return mine.MoveBucket([]byte(w.name), root)
	})
	if err != nil {
		_ = w.Abort()
		return 0, w.s.wrap(err)
	}
	w.finish()
	return w.n, w.s.wrap(w.s.dropStaging(w.id))
}

// Abort drops the staging copy; the cassette stays as it was.
func (w *CassetteWriter) Abort() error {
	if w.done {
		return nil
	}
	w.finish()
	return w.s.wrap(w.s.dropStaging(w.id))
}

// dropBatch is how many keys dropStaging deletes per transaction: each
// freed page's header is read at commit (see writerBatch), and a body
// bucket's pages hold a few bodies each.
const dropBatch = 1024

// dropStaging deletes a staging sub-bucket a batch of keys per
// transaction, giving mapped pages back in between: bbolt's DeleteBucket
// reads every page of what it deletes in one transaction, which for a
// large cassette is most of the file.
func (s *Store) dropStaging(id []byte) error {
	for {
		done := false
		err := s.update(func(tx *bolt.Tx) error {
			root := tx.Bucket(bucketStaging)
			if root == nil || root.Bucket(id) == nil {
				done = true
				return nil
			}
			budget := dropBatch
			empty, err := drain(root.Bucket(id), &budget)
			if err != nil || !empty {
				return err
			}
			done = true
			return root.DeleteBucket(id)
		})
		if err == nil {
			_ = s.reopen() // what the deletes read goes (a failed reopen shows in the next use)
		}
		if err != nil || done {
			return err
		}
	}
}

// drain deletes up to *budget keys under b, sub-buckets emptied first, and
// reports whether b is empty.
func drain(b *bolt.Bucket, budget *int) (bool, error) {
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.First() {
		if *budget <= 0 {
			return false, nil
		}
		if sub := b.Bucket(k); v == nil && sub != nil {
			empty, err := drain(sub, budget)
			if err != nil || !empty {
				return false, err
			}
			if err := b.DeleteBucket(k); err != nil {
				return false, err
			}
			continue
		}
		if err := c.Delete(); err != nil {
			return false, err
		}
		*budget--
	}
	return true, nil
}

func (w *CassetteWriter) finish() {
	w.done = true
	w.values, w.hashes, w.bodies, w.packed = nil, nil, nil, nil
	w.s.mu.Lock()
	delete(w.s.staging, string(w.id))
	w.s.mu.Unlock()
}
