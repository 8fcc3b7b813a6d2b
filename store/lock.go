package store

import (
	"bufio"
	"bytes"
	"strconv"
	"strings"
)

// parseProcLocks returns the pids of the /proc/locks lines that lock the file
// with device dev and inode ino. Lines look like
// `1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF`: the third-from-last
// field is major:minor:inode in hex:hex:decimal, the one before it the pid.
// Waiters (`->`) and pid-less OFD locks are skipped. If no line matches device
// and inode, lines matching the inode alone are used (overlay filesystems may
// report another device).
func parseProcLocks(data []byte, dev, ino uint64) []int {
	major := (dev>>8)&0xfff | (dev>>32)&^uint64(0xfff)
	minor := dev&0xff | (dev>>12)&^uint64(0xff)
	var exact, inodeOnly []int
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 || f[1] == "->" {
			continue
		}
		n := len(f)
		parts := strings.Split(f[n-3], ":")
		if len(parts) != 3 {
			continue
		}
		pid, err := strconv.Atoi(f[n-4])
		if err != nil || pid <= 0 {
			continue
		}
		i, err1 := strconv.ParseUint(parts[2], 10, 64)
		ma, err2 := strconv.ParseUint(parts[0], 16, 64)
		mi, err3 := strconv.ParseUint(parts[1], 16, 64)
		if err1 != nil || i != ino {
			continue
		}
		if err2 == nil && err3 == nil && ma == major && mi == minor {
			exact = appendUnique(exact, pid)
		} else {
			inodeOnly = appendUnique(inodeOnly, pid)
		}
	}
	if len(exact) > 0 {
		return exact
	}
	return inodeOnly
}

func appendUnique(s []int, v int) []int {
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}
