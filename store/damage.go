package store

// A damaged store file (a torn page, a truncated copy, flipped bits) must
// never crash a command: bbolt trusts its file and panics, or faults on its
// memory map, when a page is not what it expects. Three layers keep that
// behind the store's edge:
//
//  1. Open reads the file's meta pages, its root page and its freelist with
//     plain reads before bbolt maps it (preflight): a file shorter than its
//     pages, meta pages that fail their checksum, or a root or freelist page
//     of the wrong kind is refused without bbolt ever touching it.
//  2. Every transaction runs under guard (Store.view, Store.update): faults on the memory map become
//     panics (debug.SetPanicOnFault), and any panic inside bbolt becomes a
//     DamagedError. The store then refuses every later call.
//  3. `store check` and `store compact` walk the file with plain reads
//     (pagewalk.go), bounds-checked and cycle-proof, before bbolt's own
//     check is allowed near it.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ErrDamaged is matched (errors.Is) by every DamagedError.
var ErrDamaged = errors.New("store file is damaged")

// DamagedError says a store file cannot be read as it is, and what to run.
// Its message is one line naming the file and the two commands that
// diagnose and salvage it.
type DamagedError struct {
	Path   string
	Detail string // what was found, e.g. "truncated: 20000 bytes, its pages need 131072"
}

func (e *DamagedError) Error() string {
	q := shellQuote(e.Path)
	return fmt.Sprintf("store %s is damaged (%s); see what is wrong: cassetteproxy store check --db %s; save what is readable: cassetteproxy store compact --db %s --out NEW",
		e.Path, e.Detail, q, q)
}

func (e *DamagedError) Unwrap() error { return ErrDamaged }

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+:=,@%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// bbolt's on-disk layout (go.etcd.io/bbolt/internal/common), native byte order.
const (
	pageHeaderSize = 16 // id u64, flags u16, count u16, overflow u32
	elemSize       = 16 // a branch element (pos, ksize u32, pgid u64) or a leaf element (flags, pos, ksize, vsize u32)
	inBucketSize   = 16 // a bucket value's header: root pgid u64, sequence u64

	flagBranch   = 0x01
	flagLeaf     = 0x02
	flagMeta     = 0x04
	flagFreelist = 0x10
	leafBucket   = 0x01

	boltMagic    = 0xED0CDAED
	boltVersion  = 2
	noFreelist   = ^uint64(0)
	metaSumBytes = 56 // the meta fields the checksum covers: everything before it
)

var ne = binary.NativeEndian

// boltMeta is one decoded meta page.
type boltMeta struct {
	pageSize uint32
	root     uint64 // the root bucket's page
	freelist uint64
	pgid     uint64 // the high water mark: pages [0, pgid) are in use or free
	txid     uint64
}

// readMeta decodes the meta page at off, or says why it is not valid.
func readMeta(r io.ReaderAt, off int64) (boltMeta, error) {
	var b [pageHeaderSize + 64]byte
	if n, err := r.ReadAt(b[:], off); n < len(b) {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return boltMeta{}, fmt.Errorf("meta page at byte %d: %w", off, err)
	}
	m := b[pageHeaderSize:]
	switch {
	case ne.Uint32(m[0:]) != boltMagic:
		return boltMeta{}, fmt.Errorf("meta page at byte %d: no bbolt magic", off)
	case ne.Uint32(m[4:]) != boltVersion:
		return boltMeta{}, fmt.Errorf("meta page at byte %d: bbolt version %d, want %d", off, ne.Uint32(m[4:]), boltVersion)
	}
	h := fnv.New64a()
	h.Write(m[:metaSumBytes])
	if h.Sum64() != ne.Uint64(m[metaSumBytes:]) {
		return boltMeta{}, fmt.Errorf("meta page at byte %d: checksum mismatch", off)
	}
	bm := boltMeta{pageSize: ne.Uint32(m[8:]), root: ne.Uint64(m[16:]), freelist: ne.Uint64(m[32:]), pgid: ne.Uint64(m[40:]), txid: ne.Uint64(m[48:])}
	if bm.pageSize < 512 || bm.pageSize > 1<<24 || bm.pageSize&(bm.pageSize-1) != 0 {
		return boltMeta{}, fmt.Errorf("meta page at byte %d: page size %d is not a power of two", off, bm.pageSize)
	}
	return bm, nil
}

// hasMagic reports whether a bbolt meta page's magic is at off.
func hasMagic(r io.ReaderAt, off int64) bool {
	var b [pageHeaderSize + 4]byte
	n, _ := r.ReadAt(b[:], off)
	return n == len(b) && ne.Uint32(b[pageHeaderSize:]) == boltMagic
}

// fileMeta finds the meta bbolt would use: the valid one of the two with the
// highest transaction id. It returns ErrNotStore (wrapped) for a file with
// no bbolt magic anywhere, and the meta pages' problems otherwise.
func fileMeta(r io.ReaderAt, size int64) (boltMeta, error) {
	m0, err0 := readMeta(r, 0)
	if err0 == nil {
		m1, err1 := readMeta(r, int64(m0.pageSize))
		if err1 == nil && m1.pageSize == m0.pageSize && m1.txid > m0.txid {
			return m1, nil
		}
		return m0, nil
	}
	// Page 0 is unreadable: look for page 1 at every page size bbolt allows.
	magic := hasMagic(r, 0)
	var errs []error
	for i := 0; i <= 14; i++ {
		off := int64(1024) << i
		if off+pageHeaderSize+64 > size {
			break
		}
		if !hasMagic(r, off) {
			continue
		}
		magic = true
		m1, err := readMeta(r, off)
		if err == nil && int64(m1.pageSize) == off {
			return m1, nil
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if !magic {
		return boltMeta{}, fmt.Errorf("%w (no bbolt header)", ErrNotStore)
	}
	return boltMeta{}, fmt.Errorf("both meta pages are unusable: %v; %v", err0, errors.Join(errs...))
}

// pageHeader is a page's 16-byte header.
type pageHeader struct {
	id       uint64
	flags    uint16
	count    uint16
	overflow uint32
}

func readPageHeader(r io.ReaderAt, m boltMeta, id uint64) (pageHeader, error) {
	var b [pageHeaderSize]byte
	if n, _ := r.ReadAt(b[:], int64(id)*int64(m.pageSize)); n < len(b) {
		return pageHeader{}, fmt.Errorf("page %d: past the end of the file", id)
	}
	h := pageHeader{id: ne.Uint64(b[0:]), flags: ne.Uint16(b[8:]), count: ne.Uint16(b[10:]), overflow: ne.Uint32(b[12:])}
	if h.id != id {
		return h, fmt.Errorf("page %d: its header says page %d (torn or overwritten)", id, h.id)
	}
	return h, nil
}

// preflight checks what bbolt reads on open, with plain reads: the meta
// pages, that the file holds every page below the high water mark, the root
// bucket's page and the freelist. A file that fails gets a DamagedError (or
// ErrNotStore for a file that is no bbolt file at all).
func preflight(path string, f *os.File, size int64) error {
	m, err := fileMeta(f, size)
	if errors.Is(err, ErrNotStore) {
		return err
	}
	if err != nil {
		return &DamagedError{Path: path, Detail: err.Error()}
	}
	if problem := checkLayout(f, size, m); problem != "" {
		return &DamagedError{Path: path, Detail: problem}
	}
	return nil
}

// checkLayout returns the first problem with the file's size, root page or
// freelist for meta m, or "".
func checkLayout(r io.ReaderAt, size int64, m boltMeta) string {
	ps := int64(m.pageSize)
	if m.pgid < 4 || m.pgid > uint64(1<<62)/uint64(ps) {
		return fmt.Sprintf("meta page: high water mark %d is impossible", m.pgid)
	}
	if need := int64(m.pgid) * ps; size < need {
		return fmt.Sprintf("truncated: the file has %d bytes, its %d pages need %d", size, m.pgid, need)
	}
	if m.root < 2 || m.root >= m.pgid {
		return fmt.Sprintf("meta page: root page %d is out of range", m.root)
	}
	h, err := readPageHeader(r, m, m.root)
	if err != nil {
		return "root bucket: " + err.Error()
	}
	if h.flags != flagBranch && h.flags != flagLeaf {
		return fmt.Sprintf("root bucket: page %d is not a branch or leaf page (flags %#x)", m.root, h.flags)
	}
	if m.freelist == noFreelist {
		return ""
	}
	if m.freelist < 2 || m.freelist >= m.pgid {
		return fmt.Sprintf("meta page: freelist page %d is out of range", m.freelist)
	}
	if _, err := readFreelist(r, m); err != nil {
		return "freelist: " + err.Error()
	}
	return ""
}

// readFreelist reads and bounds-checks the freelist's page ids.
func readFreelist(r io.ReaderAt, m boltMeta) ([]uint64, error) {
	h, err := readPageHeader(r, m, m.freelist)
	if err != nil {
		return nil, err
	}
	if h.flags != flagFreelist {
		return nil, fmt.Errorf("page %d is not a freelist page (flags %#x)", m.freelist, h.flags)
	}
	if m.freelist+uint64(h.overflow) >= m.pgid {
		return nil, fmt.Errorf("page %d: %d overflow pages run past the high water mark %d", m.freelist, h.overflow, m.pgid)
	}
	buf := make([]byte, int64(h.overflow+1)*int64(m.pageSize))
	if n, _ := r.ReadAt(buf, int64(m.freelist)*int64(m.pageSize)); n < len(buf) {
		return nil, fmt.Errorf("page %d: past the end of the file", m.freelist)
	}
	body := buf[pageHeaderSize:]
	count := uint64(h.count)
	if count == 0xFFFF { // the real count is the first element
		count = ne.Uint64(body)
		body = body[8:]
	}
	if count > uint64(len(body))/8 {
		return nil, fmt.Errorf("page %d: %d free page ids do not fit in the page", m.freelist, count)
	}
	ids := make([]uint64, count)
	for i := range ids {
		ids[i] = ne.Uint64(body[i*8:])
		if ids[i] < 2 || ids[i] >= m.pgid {
			return nil, fmt.Errorf("page %d: free page id %d is out of range [2, %d)", m.freelist, ids[i], m.pgid)
		}
	}
	return ids, nil
}

// faultError is a panic (or a memory-map fault made one) caught in a
// goroutine of the store's own while it read the file; guard turns it into
// a DamagedError.
type faultError struct{ p any }

func (e *faultError) Error() string { return fmt.Sprint(e.p) }

// guarded runs f with faults on the memory map turned into panics, and any
// panic into a *faultError. Use it for goroutines that read mapped values.
func guarded(f func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			err = &faultError{p}
		}
	}()
	return f()
}

// guard runs one bbolt call of the store's. A panic inside it (bbolt's
// assertions on a page that is not what it should be, a fault on the
// memory map) marks the store damaged: it answers every later call with
// the same DamagedError and no longer calls into bbolt.
func (s *Store) guard(f func() error) error {
	if d := s.damage.Load(); d != nil {
		return d
	}
	err := guarded(f)
	var fe *faultError
	if errors.As(err, &fe) {
		return s.markDamaged(fe.p)
	}
	return err
}

func (s *Store) markDamaged(p any) error {
	d := &DamagedError{Path: s.path, Detail: "bbolt: " + firstLine(fmt.Sprint(p))}
	if s.damage.CompareAndSwap(nil, d) {
		return d
	}
	return s.damage.Load()
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// closeDamaged closes bbolt after a panic inside it, without waiting for
// ever: a panic may have left one of bbolt's locks held. The process is
// about to report the damage and exit; the file is only ever read here.
func closeDamaged(db *bolt.DB) {
	done := make(chan struct{})
	go func() {
		defer func() { _ = recover() }()
		_ = db.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
	}
}
