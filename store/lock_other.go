//go:build !linux

package store

// lockHolders is only implemented on Linux (/proc/locks); elsewhere the
// locked error names no pid.
func lockHolders(path string) []int { return nil }
