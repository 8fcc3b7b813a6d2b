package store

import (
	"errors"
	"os"
	"syscall"
)

// reserveSize is the room a writable store keeps on its disk for closing
// run records: a run record, the branch and root pages above it, bbolt's
// freelist and meta, rewritten once.
const reserveSize = 128 << 10

// reservePath is the reserve file kept next to the store file.
func reservePath(path string) string { return path + ".reserve" }

// makeReserve writes the reserve file when it is missing (or short), best
// effort: on a disk without room for it there is none, and a later Open
// tries again. Its bytes are written, not a hole, so the disk holds them.
func makeReserve(path string) {
	rp := reservePath(path)
	if fi, err := os.Stat(rp); err == nil && fi.Size() >= reserveSize {
		return
	}
	f, err := os.OpenFile(rp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return
	}
	_, err = f.Write(make([]byte, reserveSize))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(rp)
	}
}

// releaseReserve removes the reserve file to make room on a full disk.
// false: there was none to remove.
func releaseReserve(path string) bool {
	return os.Remove(reservePath(path)) == nil
}

// isNoSpace: err is a full disk (or a quota).
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
