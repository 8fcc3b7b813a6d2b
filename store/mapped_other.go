//go:build !linux

package store

// releasePages is only implemented on Linux; elsewhere mapped pages stay
// until the kernel reclaims them.
func releasePages(addr uintptr, size int) {}
