// Package isolate runs a command in a network namespace of its own, in
// which the only thing that answers is the proxy: a client that ignores the
// proxy variables (Node's fetch before 24, a raw socket, a gRPC client)
// reaches nothing else, the host's loopback services included, and name
// resolution of anything but localhost fails at once. Linux only.
//
// The namespace's first process is this binary again (this package's init
// takes it over before main), started with new network, mount and PID
// namespaces, and a user namespace when not root. It brings up the
// loopback interface, gives the namespace resolver files that resolve only
// localhost, listens inside at the proxy's address and hands that listening
// socket back over a socket pair, so the proxy serves it directly: no
// forwarder sits between the command and the proxy. Then it starts the
// command, passes on the signals it is asked to, reaps orphans, and exits
// with the command; every process left in the namespace dies with it.
//
// Nothing here reads flags or environment variables; cmd/cassetteproxy
// passes --isolate in.
package isolate

import (
	"errors"
	"fmt"
	"net"
	"strconv"
)

// Mode is --isolate.
type Mode string

// Modes.
const (
	Auto Mode = "auto" // isolate where this machine allows it, else say so once and run without
	On   Mode = "on"   // isolate, or refuse to run
	Off  Mode = "off"  // never isolate
)

// ParseMode reads --isolate; "" is the default of the proxy mode (see For).
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case "", Auto, On, Off:
		return m, nil
	}
	return "", fmt.Errorf("unknown --isolate %q: use auto, on or off", s)
}

// For resolves the default (""): auto for a proxy that never dials
// (replay and strict must never reach the world), off for one that does.
func (m Mode) For(proxyDials bool) Mode {
	if m != "" {
		return m
	}
	if !proxyDials {
		return Auto
	}
	return Off
}

// Unavailable says why this machine cannot isolate a command and what to
// change so it can.
type Unavailable struct {
	Why string // e.g. "the kernel refuses unprivileged user namespaces (clone: operation not permitted)"
	Fix string // e.g. "allow them (sysctl kernel.unprivileged_userns_clone=1) or run as root"
}

func (u *Unavailable) Error() string {
	return "network isolation is not possible here: " + u.Why + "; to isolate, " + u.Fix
}

// Choose decides whether a command runs isolated under mode m (resolved
// with For); unavailable is Check's answer (nil: isolation works here).
// On where isolation is impossible is an error saying why and what to
// change.
func Choose(m Mode, unavailable error) (bool, error) {
	switch {
	case m == Off:
		return false, nil
	case unavailable == nil:
		return true, nil
	case m == On:
		return false, fmt.Errorf("--isolate on: %w (or use --isolate off)", unavailable)
	}
	return false, nil
}

// Notice is the line auto says, once, when it runs commands without
// isolation.
func Notice(unavailable error) string {
	var u *Unavailable
	if errors.As(unavailable, &u) {
		return fmt.Sprintf("network isolation unavailable (%s): the command runs without it and can reach the network around the proxy; to isolate, %s (--isolate off silences this)", u.Why, u.Fix)
	}
	return fmt.Sprintf("network isolation unavailable (%v): the command runs without it and can reach the network around the proxy (--isolate off silences this)", unavailable)
}

// InsideAddr is where the proxy listens inside the namespace for a proxy
// listening at hostAddr: the same loopback address and port, or
// 127.0.0.1:PORT when the proxy listens on another address (only loopback
// exists inside). The command's proxy variables must name this address.
func InsideAddr(hostAddr string) (string, error) {
	host, port, err := net.SplitHostPort(hostAddr)
	if err != nil {
		return "", fmt.Errorf("proxy address %q: %w", hostAddr, err)
	}
	if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
		return "", fmt.Errorf("proxy address %q: no port to listen on inside the namespace", hostAddr)
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return hostAddr, nil
	}
	return net.JoinHostPort("127.0.0.1", port), nil
}

// CommandError is a command that could not start inside the namespace
// (the namespace itself was made): Code is what a shell would exit with,
// 127 not found, 126 not runnable.
type CommandError struct {
	Err  string
	Code int
}

func (e *CommandError) Error() string { return e.Err }
