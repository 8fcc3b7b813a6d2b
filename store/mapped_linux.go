package store

import "syscall"

// releasePages drops the process's mappings of size bytes of the store's
// memory map at addr (MADV_DONTNEED on a shared, read-only file mapping):
// the pages leave the process's RSS but stay in the page cache, and a later
// read maps them again with a minor fault. The data is not touched.
func releasePages(addr uintptr, size int) {
	if addr == 0 || size <= 0 {
		return
	}
	_, _, _ = syscall.Syscall(syscall.SYS_MADVISE, addr, uintptr(size), syscall.MADV_DONTNEED)
}
