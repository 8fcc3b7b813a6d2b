//go:build !linux

package store

import (
	"os"
	"time"
)

// lockHolders is only implemented on Linux (/proc/locks); elsewhere the
// locked error names no pid.
func lockHolders(path string) []int { return nil }

// canReopen is false here: without Linux's open-file-description locks the
// store cannot keep other processes out while it reopens bbolt's handle, so
// it never does (bbolt's page bookkeeping and mapped pages then grow with a
// long recording, as in any bbolt program).
const canReopen = false

// holdFile holds nothing here: bbolt's own file lock is the store's lock.
func holdFile(path string, readOnly bool, timeout time.Duration) (*os.File, error) {
	return nil, nil
}
