//go:build linux

package store

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// lockHolders returns the pids holding a lock on the file at path, read from
// /proc/locks (see parseProcLocks). It returns nil when nothing is known.
func lockHolders(path string) []int {
	fi, err := os.Stat(path)
	if err != nil {
		return nil
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	data, err := os.ReadFile("/proc/locks")
	if err != nil {
		return nil
	}
	return parseProcLocks(data, uint64(st.Dev), uint64(st.Ino))
}

// canReopen: the store can close and reopen bbolt's handle on its file
// without another cassetteproxy process slipping in between (see holdFile).
const canReopen = true

// holdFile takes an open-file-description lock (fcntl F_OFD_SETLK: a write
// lock, or a read lock for readOnly) on the whole file at path, retrying
// every 50 ms until timeout, and returns the file holding it: the lock lasts
// until that file is closed. Every Store holds one for as long as it is
// open, beside bbolt's flock (Linux keeps the two kinds apart), so another
// cassetteproxy process stays out while the store closes and reopens its
// bbolt handle (Store.reopen), which lets go of the flock for a moment.
// errLockBusy means the timeout passed.
func holdFile(path string, readOnly bool, timeout time.Duration) (*os.File, error) {
	flag, typ := os.O_RDWR|os.O_CREATE, int16(unix.F_WRLCK)
	if readOnly {
		flag, typ = os.O_RDONLY, unix.F_RDLCK
	}
	f, err := os.OpenFile(path, flag, 0o600)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(timeout)
	for {
		lk := unix.Flock_t{Type: typ, Whence: io.SeekStart} // Start 0, Len 0: the whole file
		err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk)
		switch {
		case err == nil:
			return f, nil
		case !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EACCES):
			f.Close()
			return nil, fmt.Errorf("lock: %w", err)
		case time.Now().After(deadline):
			f.Close()
			return nil, errLockBusy
		}
		time.Sleep(50 * time.Millisecond)
	}
}
