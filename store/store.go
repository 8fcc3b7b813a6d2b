package store

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// ErrNoCassette is returned (wrapped) when a named cassette does not exist.
var ErrNoCassette = errors.New("no such cassette")

// ErrNoInteraction is returned (wrapped) by Interaction for an unknown Seq.
var ErrNoInteraction = errors.New("no such interaction")

// ErrLocked is returned (wrapped) by Open when another process holds the
// store's file lock beyond Options.LockTimeout.
var ErrLocked = errors.New("locked by another process")

// ErrNotStore is returned (wrapped) by Open for a file that is not a
// cassetteproxy store. The file is left untouched.
var ErrNotStore = errors.New("not a cassetteproxy store")

// ErrClosed is returned (wrapped) by a Recorder used after Close, and by a
// Recorder created on a closed store.
var ErrClosed = errors.New("closed")

// ErrReadOnly is returned (wrapped) for writes to a store opened ReadOnly.
var ErrReadOnly = errors.New("store opened read-only")

// Options tune Open.
type Options struct {
	ReadOnly    bool
	LockTimeout time.Duration // 0 means 1s
	// Reserve keeps a reserve file next to a writable store (PATH.reserve)
	// that PutRun removes to close a run record on a full disk.
	Reserve bool
}

// CassetteInfo summarizes one cassette for `cassettes ls`.
type CassetteInfo struct {
	Name         string    `json:"name"`
	Interactions int       `json:"interactions"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// Bucket and key names of the schema (see the package comment).
var (
	bucketMeta      = []byte("meta")
	bucketCassettes = []byte("cassettes")

	subMeta         = []byte("meta")
	subInteractions = []byte("interactions")
	subIndex        = []byte("index")
	subBodies       = []byte("bodies")

	keySchema    = []byte("schema")
	keyCreatedAt = []byte("created_at")
	keyUpdatedAt = []byte("updated_at")
	keyCount     = []byte("count")

	secretPrefix = "secret/"
)

const (
	schemaV1      = "cassetteproxy/1"
	maxNameLen    = 1024
	maxSecretSize = 4096
)

// Store is one bbolt file holding cassettes (and, later, run records).
// Its methods are safe for concurrent use.
type Store struct {
	path     string
	readOnly bool
	timeout  time.Duration // of the file locks, for reopen too

	// dbMu guards db: every use of it holds dbMu shared (view, update),
	// reopen holds it alone.
	dbMu sync.RWMutex
	db   *bolt.DB
	held *os.File // holdFile's lock, kept across reopens; nil where there is none

	mu        sync.Mutex
	closed    bool
	recorders map[*Recorder]struct{}
	staging   map[string]bool // the staging copies of this process's CassetteWriters

	damage atomic.Pointer[DamagedError] // set by guard: bbolt panicked on this file
}

// Open opens or creates the store file. A missing file (and its parent
// folder) is created unless opts.ReadOnly; a 0-byte file is initialized as a
// new store. Open never modifies a file that is not a bbolt file. Errors name
// the path: "open store PATH: locked by another process (pid N)",
// "open store PATH: not a cassetteproxy store (...)".
func Open(path string, opts Options) (*Store, error) {
	fail := func(err error) error { return fmt.Errorf("open store %s: %w", path, err) }
	if path == "" {
		return nil, errors.New("open store: empty path")
	}
	timeout := opts.LockTimeout
	if timeout <= 0 {
		timeout = time.Second
	}

	fi, err := os.Stat(path)
	switch {
	case err == nil:
		if !fi.Mode().IsRegular() {
			return nil, fail(fmt.Errorf("%w (not a regular file)", ErrNotStore))
		}
		if fi.Size() == 0 && opts.ReadOnly {
			return nil, fail(fmt.Errorf("%w (empty file)", ErrNotStore))
		}
		if fi.Size() > 0 {
			if err := checkFile(path, timeout); err != nil {
				var d *DamagedError
				if errors.As(err, &d) {
					return nil, d // one line of its own, naming the file
				}
				return nil, fail(err)
			}
		}
	case errors.Is(err, fs.ErrNotExist):
		if opts.ReadOnly {
			return nil, fail(err)
		}
		if dir := filepath.Dir(path); dir != "" {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, fail(err)
			}
		}
	default:
		return nil, fail(err)
	}

	held, err := holdFile(path, opts.ReadOnly, timeout)
	if err != nil {
		if errors.Is(err, errLockBusy) {
			err = lockedError(path)
		}
		return nil, fail(err)
	}
	var db *bolt.DB
	err = guarded(func() (err error) {
		db, err = bolt.Open(path, 0o600, boltOptions(opts.ReadOnly, timeout))
		return err
	})
	if err != nil {
		if held != nil {
			held.Close()
		}
		var fe *faultError
		switch {
		case errors.As(err, &fe):
			return nil, &DamagedError{Path: path, Detail: "bbolt: " + firstLine(fe.Error())}
		case errors.Is(err, berrors.ErrTimeout):
			return nil, fail(lockedError(path))
		case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrVersionMismatch):
			return nil, fail(fmt.Errorf("%w (bbolt: %v)", ErrNotStore, err))
		case errors.Is(err, berrors.ErrChecksum):
			return nil, &DamagedError{Path: path, Detail: "bbolt: " + err.Error()}
		}
		return nil, fail(err)
	}
	s := &Store{path: path, db: db, readOnly: opts.ReadOnly, timeout: timeout, held: held, recorders: map[*Recorder]struct{}{}}
	if err := s.initSchema(); err != nil {
		var d *DamagedError
		if errors.As(err, &d) {
			closeDamaged(db)
		} else {
			_ = db.Close()
		}
		if held != nil {
			held.Close()
		}
		if d != nil {
			return nil, d
		}
		return nil, fail(err)
	}
	if opts.Reserve && !opts.ReadOnly {
		makeReserve(path)
	}
	return s, nil
}

// reopenGap, when set, is called by reopen while bbolt's handle is closed
// (for tests).
var reopenGap func()

// errLockBusy: holdFile's timeout passed.
var errLockBusy = errors.New("file lock busy")

func boltOptions(readOnly bool, timeout time.Duration) *bolt.Options {
	return &bolt.Options{Timeout: timeout, ReadOnly: readOnly}
}

// view and update run fn in a bbolt read or write transaction, under
// guard (damage.go): a damaged page costs an error, never the process.
func (s *Store) view(fn func(*bolt.Tx) error) error {
	return s.guard(func() error {
		s.dbMu.RLock()
		defer s.dbMu.RUnlock()
		return s.db.View(fn)
	})
}

func (s *Store) update(fn func(*bolt.Tx) error) error {
	return s.guard(func() error {
		s.dbMu.RLock()
		defer s.dbMu.RUnlock()
		return s.db.Update(fn)
	})
}

// reopen closes bbolt's handle on the file and opens it again: all that
// bbolt keeps in memory for an open file starts afresh. That bounds two
// things that otherwise grow for as long as a store is open, and that
// bbolt's API offers no other way to let go of:
//
//   - bbolt's freelist remembers, for every page it hands out again, which
//     transaction took it, and forgets only when that page is freed again;
//     the pages a recording fills never are (2-9 MiB of heap per million
//     interactions);
//   - bbolt reads through a memory map, and every page a commit or a load
//     reads stays in the process's RSS (with the kernel's fault-around, up
//     to 64 KiB around each): tens to hundreds of MiB over a long
//     recording, the whole cassette after a load. Closing unmaps it (the
//     page cache keeps the pages).
//
// The Recorder reopens every reopenEvery while it commits, and Interactions
// after a load. Only where canReopen: holdFile's lock keeps other
// cassetteproxy processes out while bbolt's flock is let go. The measurements
// are in docs/performance.md ("Long recordings without reaching into bbolt").
// If the file cannot be opened again, every use of the store fails with
// bbolt's "database not open" until a later reopen succeeds (a recording
// Recorder tries again every reopenEvery).
func (s *Store) reopen() error {
	if !canReopen {
		return nil
	}
	s.dbMu.Lock()
	defer s.dbMu.Unlock()
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed || s.damage.Load() != nil { // a damaged store calls into bbolt no more (guard)
		return nil
	}
	// Only the file this store opened: if the path now names another file
	// (moved, replaced, removed), go on with the handle there is.
	was, err := s.held.Stat()
	if err != nil {
		return fmt.Errorf("reopen: %w", err)
	}
	if now, err := os.Stat(s.path); err != nil || !os.SameFile(was, now) {
		return nil
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("reopen: %w", err)
	}
	if reopenGap != nil {
		reopenGap()
	}
	var db *bolt.DB
	err = guarded(func() (err error) {
		db, err = bolt.Open(s.path, 0o600, boltOptions(s.readOnly, s.timeout))
		return err
	})
	var fe *faultError
	if errors.As(err, &fe) {
		return s.markDamaged(fe.p)
	}
	if err != nil {
		return fmt.Errorf("reopen: %w", err)
	}
	s.db = db
	return nil
}

// checkFile runs preflight on the file at path under a shared lock, so a
// writer in another process is never caught half-way through a commit.
func checkFile(path string, timeout time.Duration) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close() // releases the lock
	ok, err := lockShared(f, timeout)
	switch {
	case err != nil:
		return err
	case !ok:
		return lockedError(path)
	}
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	return preflight(path, f, fi.Size())
}

// lockedError builds "locked by another process (pid N)" from /proc/locks.
func lockedError(path string) error {
	pids := lockHolders(path)
	if len(pids) == 0 {
		return ErrLocked
	}
	parts := make([]string, len(pids))
	for i, p := range pids {
		parts[i] = strconv.Itoa(p)
		if p == os.Getpid() {
			parts[i] += ", this process"
		}
	}
	word := "pid"
	if len(pids) > 1 {
		word = "pids"
	}
	return fmt.Errorf("%w (%s %s)", ErrLocked, word, strings.Join(parts, "; "))
}

// initSchema creates the top-level buckets of a new store and refuses a bbolt
// file that belongs to another program.
func (s *Store) initSchema() error {
	var schema []byte
	var hasCassettes, empty bool
	err := s.view(func(tx *bolt.Tx) error {
		if m := tx.Bucket(bucketMeta); m != nil {
			schema = bytes.Clone(m.Get(keySchema))
		}
		hasCassettes = tx.Bucket(bucketCassettes) != nil
		empty = true
		// Reading each top-level bucket's first key touches its root page
		// and one path down: damage there is found now, by every command,
		// rather than half-way through one.
		return tx.ForEach(func(_ []byte, b *bolt.Bucket) error {
			empty = false
			if b != nil {
				b.Cursor().First()
			}
			return nil
		})
	})
	switch {
	case err != nil:
		return err
	case schema != nil && string(schema) != schemaV1:
		return fmt.Errorf("unsupported store schema %q (this build reads %q)", schema, schemaV1)
	case schema == nil && !empty:
		return fmt.Errorf("%w (a bbolt file without the cassetteproxy schema)", ErrNotStore)
	case schema != nil && hasCassettes, s.readOnly:
		return nil // a read-only brand-new store simply has no cassettes
	}
	return s.update(func(tx *bolt.Tx) error {
		m, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		if err := m.Put(keySchema, []byte(schemaV1)); err != nil {
			return err
		}
		_, err = tx.CreateBucketIfNotExists(bucketCassettes)
		return err
	})
}

// Close closes every Recorder still open on the store (each flushes what it
// has queued), then the file. It is idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	recs := make([]*Recorder, 0, len(s.recorders))
	for r := range s.recorders {
		recs = append(recs, r)
	}
	s.mu.Unlock()
	var errs []error
	for _, r := range recs {
		errs = append(errs, r.Close())
	}
	s.dbMu.Lock()
	damaged := s.damage.Load()
	if damaged != nil {
		closeDamaged(s.db)
	} else {
		errs = append(errs, s.db.Close())
	}
	s.dbMu.Unlock()
	if s.held != nil {
		errs = append(errs, s.held.Close())
	}
	if damaged != nil {
		return errors.Join(append(errs, damaged)...)
	}
	return s.wrap(errors.Join(errs...))
}

// Path returns the path the store was opened with.
func (s *Store) Path() string { return s.path }

// ReadOnly reports whether the store was opened read-only.
func (s *Store) ReadOnly() bool { return s.readOnly }

func (s *Store) wrap(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("store %s: %w", s.path, err)
}

// notFoundError reads `cassette "x" not found` and matches ErrNoCassette.
type notFoundError struct{ name string }

func (e *notFoundError) Error() string { return fmt.Sprintf("cassette %q not found", e.name) }
func (e *notFoundError) Unwrap() error { return ErrNoCassette }

func validName(name string) error {
	if name == "" {
		return errors.New("empty cassette name")
	}
	if len(name) > maxNameLen {
		return fmt.Errorf("cassette name longer than %d bytes", maxNameLen)
	}
	return nil
}

// cassetteBucket returns the named cassette's bucket, or nil.
func cassetteBucket(tx *bolt.Tx, name string) *bolt.Bucket {
	root := tx.Bucket(bucketCassettes)
	if root == nil {
		return nil
	}
	return root.Bucket([]byte(name))
}

// interactionsOf finds a cassette for a read: its bucket and the bucket of
// its stored interactions (nil while it has none). A missing cassette is a
// wrapped ErrNoCassette, so every reader reports it the same way.
func interactionsOf(tx *bolt.Tx, name string) (c, items *bolt.Bucket, err error) {
	c = cassetteBucket(tx, name)
	if c == nil {
		return nil, nil, &notFoundError{name}
	}
	return c, c.Bucket(subInteractions), nil
}

// storedValue finds the stored value of one interaction for a read, with
// its cassette's bucket (where bodies stored apart are): a missing
// cassette is a wrapped ErrNoCassette, a missing Seq ErrNoInteraction.
func storedValue(tx *bolt.Tx, name string, seq uint64) (c *bolt.Bucket, raw []byte, err error) {
	c, items, err := interactionsOf(tx, name)
	if err != nil {
		return nil, nil, err
	}
	if items != nil {
		raw = items.Get(be64(seq))
	}
	if raw == nil {
		return nil, nil, fmt.Errorf("cassette %q interaction %d: %w", name, seq, ErrNoInteraction)
	}
	return c, raw, nil
}

// cassetteTx holds one cassette's buckets inside a write transaction.
type cassetteTx struct {
	meta, items, index, bodies *bolt.Bucket
	added                      uint64
	// present holds the bodies this transaction found or put, so a body
	// answered again within one batch is not looked up again.
	present map[[32]byte]struct{}
}

// put appends one encoded interaction under the next Seq, with its index
// entry and, first, its body when it is stored apart and not there yet.
func (c *cassetteTx) put(name string, value []byte, keyHash *[32]byte, body *storedBody) error {
	if body != nil && !c.bodyPresent(&body.hash) {
		packed := body.packed
		if packed == nil { // the recorder thought it stored; it is gone (reset, failed commit)
			var err error
			if packed, err = packValue(body.body); err != nil {
				return fmt.Errorf("cassette %q body: %w", name, err)
			}
		}
		if err := c.bodies.Put(body.hash[:], packed); err != nil {
			return fmt.Errorf("cassette %q body: %w", name, err)
		}
		c.present[body.hash] = struct{}{}
	}
	seq, err := c.items.NextSequence()
	if err != nil {
		return err
	}
	if err := c.items.Put(be64(seq), value); err != nil {
		return fmt.Errorf("cassette %q seq %d: %w", name, seq, err)
	}
	if err := c.index.Put(indexKey(keyHash, seq), []byte{}); err != nil {
		return err
	}
	c.added++
	return nil
}

// bodyPresent reports whether the body is stored, remembering it when it is.
func (c *cassetteTx) bodyPresent(hash *[32]byte) bool {
	if c.present == nil {
		c.present = map[[32]byte]struct{}{}
	}
	if _, ok := c.present[*hash]; ok {
		return true
	}
	if c.bodies.Get(hash[:]) == nil {
		return false
	}
	c.present[*hash] = struct{}{}
	return true
}

// finish updates the cassette's count and updated_at after puts.
func (c *cassetteTx) finish(now time.Time) error {
	if err := c.meta.Put(keyCount, be64(getUint(c.meta.Get(keyCount))+c.added)); err != nil {
		return err
	}
	return c.meta.Put(keyUpdatedAt, putTime(now))
}

// WriteCassette writes ins into the cassette in order, in one transaction:
// in place of what it held when replace is set, else after it. Either all
// of ins lands, or (on any error) the cassette stays exactly as it was:
// an import that fails midway never leaves half a cassette. Seq is
// assigned by the store; Key must be set.
func (s *Store) WriteCassette(name string, ins []Interaction, replace bool) error {
	if err := validName(name); err != nil {
		return s.wrap(err)
	}
	if err := s.writable(); err != nil {
		return s.wrap(err)
	}
	values := make([][]byte, len(ins))
	bodies := make([]*storedBody, len(ins))
	hashes := make([][32]byte, len(ins))
	packed := map[[32]byte]bool{} // bodies already packed by this call
	known := func(h *[32]byte) bool { seen := packed[*h]; packed[*h] = true; return seen }
	for i := range ins {
		v, b, err := encodeForStore(&ins[i], nil, known)
		if err != nil {
			return s.wrap(fmt.Errorf("interaction %d: %w", i+1, err))
		}
		values[i], bodies[i], hashes[i] = v, b, sha256.Sum256([]byte(ins[i].Key))
	}
	if replace {
		s.forgetBodies(name)
	}
	now := time.Now()
	return s.wrap(s.update(func(tx *bolt.Tx) error {
		if root := tx.Bucket(bucketCassettes); replace && root != nil && root.Bucket([]byte(name)) != nil {
			if err := root.DeleteBucket([]byte(name)); err != nil {
				return err
			}
		}
		c, err := openCassette(tx, name, now)
		if err != nil {
			return err
		}
		for i := range values {
			if err := c.put(name, values[i], &hashes[i], bodies[i]); err != nil {
				return err
			}
		}
		return c.finish(now)
	}))
}

// forgetBodies tells every open Recorder that the cassette's stored bodies
// are gone (it is being reset, replaced or deleted).
func (s *Store) forgetBodies(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for r := range s.recorders {
		r.forgetBodies(name)
	}
}

// openCassette creates the cassette (and its sub-buckets and meta) if needed.
func openCassette(tx *bolt.Tx, name string, now time.Time) (*cassetteTx, error) {
	root := tx.Bucket(bucketCassettes)
	if root == nil {
		return nil, errors.New("store has no cassettes bucket")
	}
	return openCassetteIn(root, name, now)
}

// openCassetteIn is openCassette under another parent than the cassettes
// bucket (a CassetteWriter's staging copy).
func openCassetteIn(root *bolt.Bucket, name string, now time.Time) (*cassetteTx, error) {
	c, err := root.CreateBucketIfNotExists([]byte(name))
	if err != nil {
		return nil, fmt.Errorf("cassette %q: %w", name, err)
	}
	ct := &cassetteTx{}
	if ct.meta, err = c.CreateBucketIfNotExists(subMeta); err != nil {
		return nil, err
	}
	if ct.items, err = c.CreateBucketIfNotExists(subInteractions); err != nil {
		return nil, err
	}
	if ct.index, err = c.CreateBucketIfNotExists(subIndex); err != nil {
		return nil, err
	}
	if ct.bodies, err = c.CreateBucketIfNotExists(subBodies); err != nil {
		return nil, err
	}
	ct.items.FillPercent = 0.9 // Seq keys only ever grow
	if ct.meta.Get(keyCreatedAt) == nil {
		for _, kv := range [][2][]byte{
			{keyCreatedAt, putTime(now)},
			{keyUpdatedAt, putTime(now)},
			{keyCount, be64(0)},
		} {
			if err := ct.meta.Put(kv[0], kv[1]); err != nil {
				return nil, err
			}
		}
	}
	return ct, nil
}

func (s *Store) writable() error {
	if s.readOnly {
		return ErrReadOnly
	}
	return nil
}

func info(name string, c *bolt.Bucket) CassetteInfo {
	ci := CassetteInfo{Name: name}
	if m := c.Bucket(subMeta); m != nil {
		ci.Interactions = int(getUint(m.Get(keyCount)))
		ci.CreatedAt = getTime(m.Get(keyCreatedAt))
		ci.UpdatedAt = getTime(m.Get(keyUpdatedAt))
	}
	return ci
}

// ListCassettes returns every cassette, sorted by name.
func (s *Store) ListCassettes() ([]CassetteInfo, error) {
	out := []CassetteInfo{}
	err := s.view(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketCassettes)
		if root == nil {
			return nil
		}
		return root.ForEachBucket(func(k []byte) error {
			out = append(out, info(string(k), root.Bucket(k)))
			return nil
		})
	})
	if err != nil {
		return nil, s.wrap(err)
	}
	// bbolt orders keys bytewise, which is Go's string order; sort anyway so
	// the contract does not depend on it.
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Cassette returns the summary of one cassette (wrapped ErrNoCassette if missing).
func (s *Store) Cassette(name string) (CassetteInfo, error) {
	var ci CassetteInfo
	err := s.view(func(tx *bolt.Tx) error {
		c := cassetteBucket(tx, name)
		if c == nil {
			return &notFoundError{name}
		}
		ci = info(name, c)
		return nil
	})
	return ci, s.wrap(err)
}

// HasCassette reports whether the cassette exists.
func (s *Store) HasCassette(name string) (bool, error) {
	var ok bool
	err := s.view(func(tx *bolt.Tx) error {
		ok = cassetteBucket(tx, name) != nil
		return nil
	})
	return ok, s.wrap(err)
}

// CreateCassette creates an empty cassette; it is a no-op if it exists.
func (s *Store) CreateCassette(name string) error {
	if err := validName(name); err != nil {
		return s.wrap(err)
	}
	if err := s.writable(); err != nil {
		return s.wrap(err)
	}
	now := time.Now()
	return s.wrap(s.update(func(tx *bolt.Tx) error {
		_, err := openCassette(tx, name, now)
		return err
	}))
}

// ResetCassette deletes the cassette if it exists and creates it again,
// empty: Seq restarts at 1. Records still queued in a Recorder for it land in
// the new cassette.
func (s *Store) ResetCassette(name string) error {
	if err := validName(name); err != nil {
		return s.wrap(err)
	}
	if err := s.writable(); err != nil {
		return s.wrap(err)
	}
	s.forgetBodies(name)
	now := time.Now()
	return s.wrap(s.update(func(tx *bolt.Tx) error {
		if root := tx.Bucket(bucketCassettes); root != nil && root.Bucket([]byte(name)) != nil {
			if err := root.DeleteBucket([]byte(name)); err != nil {
				return err
			}
		}
		_, err := openCassette(tx, name, now)
		return err
	}))
}

// DeleteCassette removes the cassette (wrapped ErrNoCassette if missing).
func (s *Store) DeleteCassette(name string) error {
	if err := s.writable(); err != nil {
		return s.wrap(err)
	}
	s.forgetBodies(name)
	return s.wrap(s.update(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketCassettes)
		if root == nil || root.Bucket([]byte(name)) == nil {
			return &notFoundError{name}
		}
		return root.DeleteBucket([]byte(name))
	}))
}

// rawValue is a stored value, read inside its transaction.
type rawValue struct {
	seq uint64
	val []byte
}

// Interactions returns every interaction of the cassette in Seq order,
// decoded and independent of the store (wrapped ErrNoCassette if missing).
func (s *Store) Interactions(name string) ([]Interaction, error) {
	var out []Interaction
	err := s.view(func(tx *bolt.Tx) error {
		c, items, err := interactionsOf(tx, name)
		if err != nil || items == nil {
			return err
		}
		var raws []rawValue
		if m := c.Bucket(subMeta); m != nil {
			raws = make([]rawValue, 0, getUint(m.Get(keyCount)))
		}
		cur := items.Cursor()
		for k, v := cur.First(); k != nil; k, v = cur.Next() {
			if len(k) != 8 || v == nil {
				continue
			}
			raws = append(raws, rawValue{binary.BigEndian.Uint64(k), v})
		}
		out, err = decodeRaw(name, raws, newBodyCache(c))
		return err
	})
	if err == nil {
		// The whole cassette was read through the map and is now decoded.
		// What was decoded stands; a reopen that failed shows in the next use.
		_ = s.reopen()
	}
	return out, s.wrap(err)
}

// decodeRaw decodes values, in parallel when there are many. It runs inside
// the transaction the values and bodies were read in; what it returns does
// not alias it.
func decodeRaw(name string, raws []rawValue, bodies *bodyCache) ([]Interaction, error) {
	out := make([]Interaction, len(raws))
	dec := func(lo, hi int) error {
		for i := lo; i < hi; i++ {
			in, err := decodeValue(raws[i].val, bodies.body)
			if err != nil {
				return fmt.Errorf("cassette %q interaction %d: %w", name, raws[i].seq, err)
			}
			in.Seq = raws[i].seq
			out[i] = in
		}
		return nil
	}
	workers := min(runtime.GOMAXPROCS(0), len(raws)/128)
	if workers <= 1 {
		return out, dec(0, len(raws))
	}
	errs := make([]error, workers)
	var wg sync.WaitGroup
	chunk := (len(raws) + workers - 1) / workers
	for w := range workers {
		lo, hi := w*chunk, min((w+1)*chunk, len(raws))
		wg.Go(func() { errs[w] = guarded(func() error { return dec(lo, hi) }) }) // values are read from the memory map
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// indexKey is sha256(key) followed by the big-endian seq.
func indexKey(h *[32]byte, seq uint64) []byte {
	k := make([]byte, 40)
	copy(k, h[:])
	binary.BigEndian.PutUint64(k[32:], seq)
	return k
}

// seqsTx lists the index entries of key in Seq order.
func seqsTx(c *bolt.Bucket, key string) []uint64 {
	idx := c.Bucket(subIndex)
	if idx == nil {
		return nil
	}
	h := sha256.Sum256([]byte(key))
	var seqs []uint64
	cur := idx.Cursor()
	for k, _ := cur.Seek(h[:]); k != nil && bytes.HasPrefix(k, h[:]); k, _ = cur.Next() {
		if len(k) == 40 {
			seqs = append(seqs, binary.BigEndian.Uint64(k[32:]))
		}
	}
	return seqs
}

// Interaction returns one interaction by Seq (wrapped ErrNoCassette or
// ErrNoInteraction if missing).
func (s *Store) Interaction(cassette string, seq uint64) (Interaction, error) {
	var in Interaction
	err := s.view(func(tx *bolt.Tx) error {
		c, raw, err := storedValue(tx, cassette, seq)
		if err != nil {
			return err
		}
		if in, err = decodeValue(raw, newBodyCache(c).body); err != nil {
			return fmt.Errorf("cassette %q interaction %d: %w", cassette, seq, err)
		}
		return nil
	})
	if err != nil {
		return Interaction{}, s.wrap(err)
	}
	in.Seq = seq
	return in, nil
}

// Secret returns the store-wide random key called name, creating it with
// size random bytes on first use. It is stable across reopen; asking for an
// existing name with another size is an error.
func (s *Store) Secret(name string, size int) ([]byte, error) {
	if name == "" || size <= 0 || size > maxSecretSize {
		return nil, s.wrap(fmt.Errorf("secret %q: invalid name or size %d", name, size))
	}
	key := []byte(secretPrefix + name)
	var out []byte
	err := s.view(func(tx *bolt.Tx) error {
		if m := tx.Bucket(bucketMeta); m != nil {
			out = bytes.Clone(m.Get(key))
		}
		return nil
	})
	if err != nil {
		return nil, s.wrap(err)
	}
	if out == nil {
		if s.readOnly {
			return nil, s.wrap(fmt.Errorf("secret %q does not exist yet: %w", name, ErrReadOnly))
		}
		err = s.update(func(tx *bolt.Tx) error {
			m := tx.Bucket(bucketMeta)
			if m == nil {
				return errors.New("store has no meta bucket")
			}
			if v := m.Get(key); v != nil { // created meanwhile
				out = bytes.Clone(v)
				return nil
			}
			fresh := make([]byte, size)
			if _, err := rand.Read(fresh); err != nil {
				return err
			}
			out = fresh
			return m.Put(key, bytes.Clone(fresh))
		})
		if err != nil {
			return nil, s.wrap(err)
		}
	}
	if len(out) != size {
		return nil, s.wrap(fmt.Errorf("secret %q has %d bytes, asked for %d", name, len(out), size))
	}
	return out, nil
}

// Check checks the store's file like CheckFile (every page with plain
// reads, then bbolt's tx.Check and the decoding of every value) and returns
// every problem found, joined. Call it with no write under way.
func (s *Store) Check() error {
	f, err := os.Open(s.path)
	if err != nil {
		return s.wrap(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return s.wrap(err)
	}
	m, err := fileMeta(f, fi.Size())
	if err != nil {
		return s.wrap(err)
	}
	problems := structureProblems(f, fi.Size(), m, nil)
	if len(problems) == 0 {
		err := s.view(func(tx *bolt.Tx) error {
			for e := range tx.Check() {
				problems = append(problems, Problem{What: "bbolt: " + e.Error()})
			}
			if len(problems) == 0 {
				problems = checkSchema(tx)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	errs := make([]error, len(problems))
	for i, p := range problems {
		errs[i] = errors.New(p.String())
	}
	return s.wrap(errors.Join(errs...))
}
