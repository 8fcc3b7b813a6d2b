//go:build linux

package store

import (
	"os"
	"syscall"
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
