package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// CheckReport is what CheckFile found.
type CheckReport struct {
	Path      string
	PageSize  int
	Pages     uint64 // the high water mark: pages in use or free
	Cassettes int
	Runs      int
	Fixtures  int
	Problems  []Problem // none: the store is sound
}

// CheckFile checks the store file at path without writing it: the meta
// pages, the file's length, the freelist, every page of every bucket (with
// plain reads, bounds-checked and cycle-proof), then, when all of that is
// sound, bbolt's own consistency check (tx.Check) and the decoding of every
// interaction, run record and fixture history. It takes the shared lock a
// reader takes: a store held by a running proxy is reported locked. The
// error is for a file that cannot be checked at all (missing, locked, not a
// bbolt file); problems found are in the report.
func CheckFile(path string, lockTimeout time.Duration) (CheckReport, error) {
	rep := CheckReport{Path: path}
	f, size, err := openLocked(path, lockTimeout)
	if err != nil {
		return rep, err
	}
	defer f.Close()
	m, err := fileMeta(f, size)
	if errors.Is(err, ErrNotStore) {
		return rep, fmt.Errorf("check store %s: %w", path, err)
	}
	if err != nil {
		rep.Problems = append(rep.Problems, Problem{What: err.Error()})
		return rep, nil
	}
	rep.PageSize, rep.Pages = int(m.pageSize), m.pgid
	rep.Problems = structureProblems(f, size, m, &rep)
	if len(rep.Problems) > 0 {
		return rep, nil // bbolt must not read a file with these
	}
	f.Close() // bbolt takes its own shared lock
	rep.Problems = append(rep.Problems, boltCheck(path, lockTimeout)...)
	return rep, nil
}

// structureProblems checks the file's length, its freelist and every page
// reachable from meta m, counting what it finds into rep (when not nil).
func structureProblems(f io.ReaderAt, size int64, m boltMeta, rep *CheckReport) []Problem {
	var out []Problem
	if need := int64(m.pgid) * int64(m.pageSize); size < need {
		out = append(out, Problem{What: fmt.Sprintf("truncated: the file has %d bytes, its %d pages need %d", size, m.pgid, need)})
	}
	if m.freelist != noFreelist {
		if _, err := readFreelist(f, m); err != nil {
			out = append(out, Problem{What: "freelist " + err.Error()})
		}
	}
	if rep == nil {
		rep = &CheckReport{}
	}
	w := newFileWalker(f, size, m)
	w.walk(walkVisitor{bucket: func(path [][]byte, name []byte, _ uint64) {
		if len(path) == 1 && bytes.Equal(path[0], bucketCassettes) {
			rep.Cassettes++
		}
	}, kv: func(path [][]byte, _, _ []byte) {
		switch {
		case len(path) == 1 && bytes.Equal(path[0], bucketRuns):
			rep.Runs++
		case len(path) == 1 && bytes.Equal(path[0], bucketFixtures):
			rep.Fixtures++
		}
	}})
	return append(out, w.problems...)
}

// openLocked opens path for reading under a shared lock.
func openLocked(path string, timeout time.Duration) (*os.File, int64, error) {
	if timeout <= 0 {
		timeout = time.Second
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("open store %s: %w", path, err)
	}
	ok, err := lockShared(f, timeout)
	if err == nil && !ok {
		err = lockedError(path)
	}
	var fi os.FileInfo
	if err == nil {
		fi, err = f.Stat()
	}
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%w (not a regular file)", ErrNotStore)
	}
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("open store %s: %w", path, err)
	}
	return f, fi.Size(), nil
}

// boltCheck runs bbolt's consistency check and decodes every value of the
// schema, on a file the walker found structurally sound.
func boltCheck(path string, timeout time.Duration) []Problem {
	var out []Problem
	var db *bolt.DB
	err := guarded(func() (err error) {
		db, err = bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: timeout})
		return err
	})
	if err != nil {
		return []Problem{{What: "bbolt cannot open it: " + firstLine(err.Error())}}
	}
	defer db.Close()
	err = guarded(func() error {
		return db.View(func(tx *bolt.Tx) error {
			for e := range tx.Check() {
				out = append(out, Problem{What: "bbolt: " + e.Error()})
			}
			if len(out) > 0 {
				return nil
			}
			out = append(out, checkSchema(tx)...)
			return nil
		})
	})
	if err != nil {
		out = append(out, Problem{What: "bbolt: " + firstLine(err.Error())})
	}
	return out
}

// checkSchema decodes every interaction, run record and fixture history.
func checkSchema(tx *bolt.Tx) []Problem {
	var out []Problem
	m := tx.Bucket(bucketMeta)
	switch {
	case m == nil:
		out = append(out, Problem{What: "no meta bucket: not a cassetteproxy store, or its meta bucket was lost"})
	case string(m.Get(keySchema)) != schemaV1:
		out = append(out, Problem{Bucket: "meta", What: fmt.Sprintf("schema %q, want %q", m.Get(keySchema), schemaV1)})
	}
	if root := tx.Bucket(bucketCassettes); root != nil {
		_ = root.ForEachBucket(func(name []byte) error {
			c := root.Bucket(name)
			where := "cassettes/" + printable(name)
			items := c.Bucket(subInteractions)
			if items == nil {
				out = append(out, Problem{Bucket: where, What: "no interactions bucket"})
				return nil
			}
			n := 0
			bodies := newBodyCache(c)
			_ = items.ForEach(func(k, v []byte) error {
				n++
				if _, err := decodeValue(v, bodies.body); err != nil || len(k) != 8 {
					out = append(out, Problem{Bucket: where, What: fmt.Sprintf("interaction %x cannot be decoded: %v", k, err)})
				}
				return nil
			})
			if meta := c.Bucket(subMeta); meta != nil && getUint(meta.Get(keyCount)) != uint64(n) {
				out = append(out, Problem{Bucket: where, What: fmt.Sprintf("its count says %d interactions, it holds %d", getUint(meta.Get(keyCount)), n)})
			}
			return nil
		})
	}
	check := func(bucket []byte, decode func([]byte) error) {
		if b := tx.Bucket(bucket); b != nil {
			_ = b.ForEach(func(k, v []byte) error {
				if err := decode(v); err != nil {
					out = append(out, Problem{Bucket: string(bucket), What: fmt.Sprintf("%s cannot be decoded: %v", printable(k), err)})
				}
				return nil
			})
		}
	}
	check(bucketRuns, func(v []byte) error { var r Run; return decodeRun(v, &r) })
	check(bucketFixtures, func(v []byte) error { var h FixtureHistory; return decodeFixture(v, &h) })
	return out
}

var errNothingReadable = fmt.Errorf("%w: no cassettes, runs or schema mark could be read", ErrNotStore)

// CompactReport is what CompactFile saved and lost.
type CompactReport struct {
	Saved []string // one line per cassette and per kind of record
	Lost  []string // one line per problem met: pages that could not be read, values that could not be decoded
	Notes []string // how the salvage went where it is worth knowing
}

// CompactFile copies what is readable of the store at src into a new store
// at dst, bucket by bucket, and never writes src. Unreadable pages are
// skipped with what was under them; interactions, run records and fixture
// histories that do not decode are left out; each cassette's index and
// count are rebuilt from what was saved. dst must not exist. On a sound
// store it is a plain compaction (the file shrinks to what is in use).
func CompactFile(src, dst string, lockTimeout time.Duration) (CompactReport, error) {
	var rep CompactReport
	if _, err := os.Lstat(dst); err == nil {
		return rep, fmt.Errorf("--out %s already exists: give a new file", dst)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return rep, fmt.Errorf("--out %s: %w", dst, err)
	}
	f, size, err := openLocked(src, lockTimeout)
	if err != nil {
		return rep, err
	}
	defer f.Close()
	metas, err := salvageMetas(f, size)
	if err != nil {
		return rep, fmt.Errorf("store %s: %w: nothing can be salvaged", src, err)
	}
	// The newest transaction whose root page can still be read: when a
	// truncation took the newest root, the one before may still be whole.
	m := metas[0]
	for _, c := range metas {
		if h, err := readPageHeader(f, c, c.root); err == nil && (h.flags == flagBranch || h.flags == flagLeaf) && int64(c.root+1)*int64(c.pageSize) <= size {
			m = c
			break
		}
	}
	if _, err := fileMeta(f, size); err != nil || m.txid != metas[0].txid {
		why := "the newest transaction's root page is unreadable"
		if err != nil {
			why = err.Error()
		}
		rep.Notes = append(rep.Notes, fmt.Sprintf("%s; read the store as of transaction %d", why, m.txid))
	}
	if need := int64(m.pgid) * int64(m.pageSize); size < need {
		rep.Lost = append(rep.Lost, fmt.Sprintf("the file is truncated: %d bytes of %d; what lay past its end is lost", size, need))
	}

	db, err := bolt.Open(dst, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return rep, fmt.Errorf("create %s: %w", dst, err)
	}
	ok := false
	defer func() {
		db.Close()
		if !ok {
			os.Remove(dst)
		}
	}()
	cp := &copier{dst: db}
	w := newFileWalker(f, size, m)
	w.walk(walkVisitor{bucket: cp.bucket, kv: cp.kv})
	if err := cp.finish(); err != nil {
		return rep, fmt.Errorf("write %s: %w", dst, err)
	}
	for _, p := range w.problems {
		rep.Lost = append(rep.Lost, "unreadable "+p.String())
	}
	if err := db.Update(func(tx *bolt.Tx) error { return repairSchema(tx, &rep) }); err != nil {
		if errors.Is(err, errNothingReadable) && len(w.problems) > 0 {
			return rep, fmt.Errorf("nothing in %s can be read (%s); %s was not written", src, w.problems[0], dst)
		}
		return rep, fmt.Errorf("write %s: %w", dst, err)
	}
	ok = true
	return rep, nil
}

// salvageMetas returns the meta pages worth reading from, best first: the
// valid ones (newest first), or, when neither passes its checksum, those
// whose fields still make sense.
func salvageMetas(f *os.File, size int64) ([]boltMeta, error) {
	m, err := fileMeta(f, size)
	if errors.Is(err, ErrNotStore) {
		return nil, err
	}
	var valid, plausible []boltMeta
	if err == nil { // the one bbolt uses, then the other when it is valid too
		valid = append(valid, m)
		for _, off := range []int64{0, int64(m.pageSize)} {
			if other, err := readMeta(f, off); err == nil && other.txid != m.txid && other.pageSize == m.pageSize {
				valid = append(valid, other)
			}
		}
	}
	for _, off := range []int64{0, 1024, 2048, 4096, 8192, 16384, 32768, 65536} {
		var b [pageHeaderSize + 64]byte
		if n, _ := f.ReadAt(b[:], off); n < len(b) || ne.Uint32(b[pageHeaderSize:]) != boltMagic {
			continue
		}
		mm := b[pageHeaderSize:]
		c := boltMeta{pageSize: ne.Uint32(mm[8:]), root: ne.Uint64(mm[16:]), freelist: ne.Uint64(mm[32:]), pgid: ne.Uint64(mm[40:]), txid: ne.Uint64(mm[48:])}
		if c.pageSize < 512 || c.pageSize > 1<<24 || c.pageSize&(c.pageSize-1) != 0 || (off != 0 && int64(c.pageSize) != off) ||
			c.root < 2 || c.root >= c.pgid {
			continue
		}
		plausible = append(plausible, c)
	}
	sort.Slice(plausible, func(i, j int) bool { return plausible[i].txid > plausible[j].txid })
	out := append(valid, plausible...)
	if len(out) == 0 {
		return nil, err
	}
	return out, nil
}

// copier writes what the walker finds into the new store, committing every
// copyTxBytes so a large store never sits in one transaction.
type copier struct {
	dst  *bolt.DB // the new store, not yet a Store
	tx   *bolt.Tx
	size int
	err  error

	curPath [][]byte     // the bucket cur is
	cur     *bolt.Bucket // nil: not looked up yet
}

const copyTxBytes = 32 << 20

func (c *copier) begin() bool {
	if c.err != nil {
		return false
	}
	if c.tx != nil && c.size > copyTxBytes {
		if c.err = c.tx.Commit(); c.err != nil {
			return false
		}
		c.tx, c.cur, c.size = nil, nil, 0
	}
	if c.tx == nil {
		c.tx, c.err = c.dst.Begin(true)
	}
	return c.err == nil
}

// parent returns the bucket at path in the current transaction, or nil when
// a bucket on the way was not copied (its header was unreadable).
func (c *copier) parent(path [][]byte) *bolt.Bucket {
	if c.cur != nil && equalPath(path, c.curPath) {
		return c.cur
	}
	var b *bolt.Bucket
	for i, name := range path {
		if i == 0 {
			b = c.tx.Bucket(name)
		} else {
			b = b.Bucket(name)
		}
		if b == nil {
			return nil
		}
	}
	c.cur, c.curPath = b, path
	return b
}

func equalPath(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

func (c *copier) bucket(path [][]byte, name []byte, seq uint64) {
	if !c.begin() {
		return
	}
	var nb *bolt.Bucket
	var err error
	if len(path) == 0 {
		nb, err = c.tx.CreateBucketIfNotExists(bytes.Clone(name))
	} else if p := c.parent(path); p != nil {
		nb, err = p.CreateBucketIfNotExists(bytes.Clone(name))
	} else {
		return
	}
	if err == nil && seq > nb.Sequence() {
		err = nb.SetSequence(seq)
	}
	if err != nil && !errors.Is(err, bolt.ErrIncompatibleValue) { // a key of that name came first: keep it
		c.err = err
	}
	c.size += len(name) + 64
}

func (c *copier) kv(path [][]byte, k, v []byte) {
	if len(path) == 0 || !c.begin() {
		return // the top level holds only buckets
	}
	p := c.parent(path)
	if p == nil || p.Bucket(k) != nil {
		return
	}
	if err := p.Put(bytes.Clone(k), bytes.Clone(v)); err != nil {
		c.err = err
	}
	c.size += len(k) + len(v)
}

func (c *copier) finish() error {
	if c.err != nil {
		if c.tx != nil {
			_ = c.tx.Rollback()
		}
		return c.err
	}
	if c.tx == nil {
		return nil
	}
	return c.tx.Commit()
}

// repairSchema makes the copied tree a store again: the schema mark, and in
// every cassette only the interactions that decode, with their index and
// count rebuilt; run records and fixture histories that do not decode are
// dropped. What is saved and lost goes into rep.
func repairSchema(tx *bolt.Tx, rep *CompactReport) error {
	m := tx.Bucket(bucketMeta)
	switch {
	case m != nil && m.Get(keySchema) != nil && string(m.Get(keySchema)) != schemaV1:
		return fmt.Errorf("unsupported store schema %q (this build reads %q)", m.Get(keySchema), schemaV1)
	case m == nil || m.Get(keySchema) == nil:
		if tx.Bucket(bucketCassettes) == nil && tx.Bucket(bucketRuns) == nil && tx.Bucket(bucketFixtures) == nil {
			return errNothingReadable
		}
		rep.Lost = append(rep.Lost, "the store's meta bucket (schema mark, redaction key): a new redaction key is made on first use, so fingerprints in new recordings differ from older ones")
		var err error
		if m, err = tx.CreateBucketIfNotExists(bucketMeta); err != nil {
			return err
		}
		if err := m.Put(keySchema, []byte(schemaV1)); err != nil {
			return err
		}
	}
	root, err := tx.CreateBucketIfNotExists(bucketCassettes)
	if err != nil {
		return err
	}
	var names [][]byte
	_ = root.ForEachBucket(func(k []byte) error { names = append(names, bytes.Clone(k)); return nil })
	total, totalLost := 0, 0
	for _, name := range names {
		saved, lost, err := repairCassette(tx, root, name, rep)
		if err != nil {
			return fmt.Errorf("cassette %q: %w", name, err)
		}
		total += saved
		totalLost += lost
	}
	runs, runsLost, err := keepDecodable(tx, bucketRuns, func(v []byte) error { var r Run; return decodeRun(v, &r) }, rep)
	if err != nil {
		return err
	}
	fx, fxLost, err := keepDecodable(tx, bucketFixtures, func(v []byte) error { var h FixtureHistory; return decodeFixture(v, &h) }, rep)
	if err != nil {
		return err
	}
	rep.Saved = append(rep.Saved,
		fmt.Sprintf("%s in %s (%d lost)", plural(total, "interaction"), plural(len(names), "cassette"), totalLost),
		fmt.Sprintf("%s (%d dropped), %s (%d dropped)", plural(runs, "run record"), runsLost, plural(fx, "fixture history"), fxLost))
	return nil
}

// repairCassette keeps the cassette's interactions that decode, and
// rebuilds its index, count and sequence from them.
func repairCassette(tx *bolt.Tx, root *bolt.Bucket, name []byte, rep *CompactReport) (saved, lost int, err error) {
	c := root.Bucket(name)
	var want uint64
	known := false
	if meta := c.Bucket(subMeta); meta != nil && meta.Get(keyCount) != nil {
		want, known = getUint(meta.Get(keyCount)), true
	}
	ct, err := openCassette(tx, string(name), time.Now())
	if err != nil {
		return 0, 0, err
	}
	bodies := newBodyCache(c)
	type kept struct {
		seq uint64
		key [32]byte
	}
	var keep []kept
	var drop [][]byte
	var maxSeq uint64
	cur := ct.items.Cursor()
	for k, v := cur.First(); k != nil; k, v = cur.Next() {
		var in Interaction
		err := guarded(func() (err error) { in, err = decodeValue(v, bodies.body); return err })
		if err != nil || len(k) != 8 || v == nil {
			drop = append(drop, bytes.Clone(k))
			if err == nil {
				err = errors.New("not an interaction")
			}
			rep.Lost = append(rep.Lost, fmt.Sprintf("cassette %s: interaction %x: %v", printable(name), k, err))
			continue
		}
		seq := binary.BigEndian.Uint64(k)
		maxSeq = max(maxSeq, seq)
		keep = append(keep, kept{seq, sha256.Sum256([]byte(in.Key))})
	}
	for _, k := range drop {
		if err := ct.items.Delete(k); err != nil {
			return 0, 0, err
		}
	}
	if maxSeq > ct.items.Sequence() {
		if err := ct.items.SetSequence(maxSeq); err != nil {
			return 0, 0, err
		}
	}
	if err := c.DeleteBucket(subIndex); err != nil {
		return 0, 0, err
	}
	if ct.index, err = c.CreateBucket(subIndex); err != nil {
		return 0, 0, err
	}
	for _, e := range keep {
		if err := ct.index.Put(indexKey(&e.key, e.seq), []byte{}); err != nil {
			return 0, 0, err
		}
	}
	if err := ct.meta.Put(keyCount, be64(uint64(len(keep)))); err != nil {
		return 0, 0, err
	}
	saved = len(keep)
	line := fmt.Sprintf("cassette %s: %s", printable(name), plural(saved, "interaction"))
	switch {
	case known && want > uint64(saved):
		lost = int(want) - saved
		line += fmt.Sprintf(" of %d (%d lost)", want, lost)
	case !known:
		line += " (its count was unreadable: how many were lost is unknown)"
	}
	rep.Saved = append(rep.Saved, line)
	return saved, lost, nil
}

// keepDecodable drops the values of a top-level bucket that do not decode.
func keepDecodable(tx *bolt.Tx, bucket []byte, decode func([]byte) error, rep *CompactReport) (kept, dropped int, err error) {
	b := tx.Bucket(bucket)
	if b == nil {
		return 0, 0, nil
	}
	var drop [][]byte
	_ = b.ForEach(func(k, v []byte) error {
		if v == nil {
			return nil // a bucket where a value belongs
		}
		if err := guarded(func() error { return decode(v) }); err != nil {
			drop = append(drop, bytes.Clone(k))
			rep.Lost = append(rep.Lost, fmt.Sprintf("%s %s: %v", bucket, printable(k), err))
			return nil
		}
		kept++
		return nil
	})
	for _, k := range drop {
		if err := b.Delete(k); err != nil {
			return 0, 0, err
		}
	}
	return kept, len(drop), nil
}

// plural is "1 cassette", "2 cassettes", "2 fixture histories".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	if s, ok := strings.CutSuffix(what, "y"); ok {
		return fmt.Sprintf("%d %sies", n, s)
	}
	return fmt.Sprintf("%d %ss", n, what)
}
