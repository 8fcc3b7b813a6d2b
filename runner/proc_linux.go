package runner

import "syscall"

// sysProcAttr: the child dies with cassetteproxy (Pdeathsig), so a killed
// cassetteproxy does not leave an unproxied agent behind.
func sysProcAttr(group bool) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: group, Pdeathsig: syscall.SIGKILL}
}
