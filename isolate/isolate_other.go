//go:build !linux

package isolate

import (
	"net"
	"os/exec"
	"runtime"
	"syscall"
)

// Check: network namespaces are Linux's; elsewhere isolation is never
// possible.
func Check() error {
	return &Unavailable{Why: "network namespaces exist on Linux only (this is " + runtime.GOOS + ")", Fix: "run on Linux"}
}

// Namespace is never made outside Linux.
type Namespace struct{}

// Wrap fails outside Linux.
func Wrap(cmd *exec.Cmd, listen string) (*Namespace, error) { return nil, Check() }

// Start fails outside Linux.
func (n *Namespace) Start() (net.Listener, error) { return nil, Check() }

// Signal fails outside Linux.
func (n *Namespace) Signal(sig syscall.Signal) error { return Check() }

// Exit knows nothing outside Linux.
func (n *Namespace) Exit() (code int, sig syscall.Signal, ok bool) { return 0, 0, false }
