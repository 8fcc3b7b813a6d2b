package store

import (
	"bytes"
	"fmt"
	"io"
	"strings"
)

// fileWalker reads the B+trees of a bbolt file with plain reads, trusting
// nothing it reads: every page id is checked against the file's high water
// mark and size, every page's header against its id, every element against
// its page's bounds, and a page reached twice (a cycle, or two trees sharing
// a page) is reported and not entered again. It never panics and always
// ends, whatever the bytes: what `store check` runs before bbolt's own check
// and what `store compact` salvages with.
type fileWalker struct {
	r    io.ReaderAt
	size int64
	m    boltMeta
	ps   int64

	seen     map[uint64]string // page → the bucket it was found under
	problems []Problem
}

// Problem is one thing wrong in a store file.
type Problem struct {
	Bucket string // the bucket path the problem was found under ("" = the top level)
	Page   uint64 // the page, when the problem is one page's (0 otherwise)
	What   string
}

func (p Problem) String() string {
	var b strings.Builder
	if p.Page != 0 {
		fmt.Fprintf(&b, "page %d", p.Page)
	}
	if p.Bucket != "" {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "(%s)", p.Bucket)
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	b.WriteString(p.What)
	return b.String()
}

// walkVisitor receives what a walk finds, in key order within each bucket.
// path names the bucket holding the entry (nil: the top level). Keys and
// values alias the walker's buffers: copy what is kept.
type walkVisitor struct {
	bucket func(path [][]byte, name []byte, seq uint64)
	kv     func(path [][]byte, k, v []byte)
}

// maxTreeDepth bounds a B+tree's depth: bbolt's are a handful of levels
// deep; a deeper chain is a corruption.
const maxTreeDepth = 64

func newFileWalker(r io.ReaderAt, size int64, m boltMeta) *fileWalker {
	return &fileWalker{r: r, size: size, m: m, ps: int64(m.pageSize), seen: map[uint64]string{}}
}

func (w *fileWalker) problem(path [][]byte, page uint64, format string, args ...any) {
	w.problems = append(w.problems, Problem{Bucket: pathString(path), Page: page, What: fmt.Sprintf(format, args...)})
}

func pathString(path [][]byte) string {
	parts := make([]string, len(path))
	for i, p := range path {
		parts[i] = printable(p)
	}
	return strings.Join(parts, "/")
}

// printable is a key as text when it is text, else in hex.
func printable(k []byte) string {
	for _, c := range k {
		if c < 0x20 || c > 0x7e {
			return fmt.Sprintf("%x", k)
		}
	}
	return string(k)
}

// walk walks every bucket from the meta's root.
func (w *fileWalker) walk(v walkVisitor) {
	w.walkPage(nil, w.m.root, 0, v)
}

// page reads page id and its overflow pages, or reports why it cannot.
func (w *fileWalker) page(path [][]byte, id uint64) ([]byte, bool) {
	if id < 2 || id >= w.m.pgid {
		w.problem(path, id, "out of range: pages in use are 2 to %d", w.m.pgid-1)
		return nil, false
	}
	if where, ok := w.seen[id]; ok {
		w.problem(path, id, "reached twice (also under %q): a cycle or a shared page", where)
		return nil, false
	}
	h, err := readPageHeader(w.r, w.m, id)
	if err != nil {
		w.problem(path, id, "%s", strings.TrimPrefix(err.Error(), fmt.Sprintf("page %d: ", id)))
		return nil, false
	}
	if id+uint64(h.overflow) >= w.m.pgid {
		w.problem(path, id, "%d overflow pages run past the high water mark %d", h.overflow, w.m.pgid)
		return nil, false
	}
	n := int64(h.overflow+1) * w.ps
	off := int64(id) * w.ps
	if off+n > w.size {
		w.problem(path, id, "its %d bytes run past the end of the file", n)
		return nil, false
	}
	for i := uint64(0); i <= uint64(h.overflow); i++ {
		if where, ok := w.seen[id+i]; ok {
			w.problem(path, id, "overflow page %d reached twice (also under %q)", id+i, where)
			return nil, false
		}
	}
	buf := make([]byte, n)
	if m, _ := w.r.ReadAt(buf, off); int64(m) < n {
		w.problem(path, id, "cannot be read")
		return nil, false
	}
	where := pathString(path)
	for i := uint64(0); i <= uint64(h.overflow); i++ {
		w.seen[id+i] = where
	}
	return buf, true
}

func (w *fileWalker) walkPage(path [][]byte, id uint64, depth int, v walkVisitor) {
	if depth > maxTreeDepth {
		w.problem(path, id, "the tree is deeper than %d levels", maxTreeDepth)
		return
	}
	buf, ok := w.page(path, id)
	if !ok {
		return
	}
	switch flags := ne.Uint16(buf[8:]); flags {
	case flagBranch:
		count := int(ne.Uint16(buf[10:]))
		if count == 0 {
			w.problem(path, id, "a branch page with no elements")
			return
		}
		for i := range count {
			off := pageHeaderSize + i*elemSize
			if off+elemSize > len(buf) {
				w.problem(path, id, "%d elements do not fit in the page", count)
				return
			}
			w.walkPage(path, ne.Uint64(buf[off+8:]), depth+1, v)
		}
	case flagLeaf:
		w.walkLeaf(path, id, buf, v)
	default:
		w.problem(path, id, "not a branch or leaf page (flags %#x)", flags)
	}
}

// walkLeaf walks one leaf page: a page of the file, or a bucket's inline
// page (id 0) inside its parent's value.
func (w *fileWalker) walkLeaf(path [][]byte, id uint64, buf []byte, v walkVisitor) {
	if len(buf) < pageHeaderSize {
		w.problem(path, id, "an inline bucket shorter than a page header")
		return
	}
	if flags := ne.Uint16(buf[8:]); flags != flagLeaf {
		w.problem(path, id, "not a leaf page (flags %#x)", flags)
		return
	}
	count := int(ne.Uint16(buf[10:]))
	var prev []byte
	for i := range count {
		off := pageHeaderSize + i*elemSize
		if off+elemSize > len(buf) {
			w.problem(path, id, "%d elements do not fit in the page", count)
			return
		}
		flags := ne.Uint32(buf[off:])
		start := uint64(off) + uint64(ne.Uint32(buf[off+4:]))
		kEnd := start + uint64(ne.Uint32(buf[off+8:]))
		vEnd := kEnd + uint64(ne.Uint32(buf[off+12:]))
		if vEnd > uint64(len(buf)) {
			w.problem(path, id, "element %d runs past the page", i)
			continue
		}
		k, val := buf[start:kEnd], buf[kEnd:vEnd]
		if i > 0 && bytes.Compare(prev, k) >= 0 {
			w.problem(path, id, "element %d is out of key order", i)
		}
		prev = k
		if flags&leafBucket == 0 {
			if v.kv != nil {
				v.kv(path, k, val)
			}
			continue
		}
		if len(val) < inBucketSize {
			w.problem(path, id, "bucket %q: its header is cut short", printable(k))
			continue
		}
		root, seq := ne.Uint64(val), ne.Uint64(val[8:])
		if v.bucket != nil {
			v.bucket(path, k, seq)
		}
		sub := append(append(make([][]byte, 0, len(path)+1), path...), bytes.Clone(k))
		if root == 0 { // an inline bucket: its page follows the header
			w.walkLeaf(sub, 0, val[inBucketSize:], v)
			continue
		}
		w.walkPage(sub, root, 0, v)
	}
}
