package isolate

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// A binary that links this package becomes a namespace's first process
// when Wrap starts it again under initArg: this takes over before main (or
// a test binary's TestMain) runs, so no binary can forget to.
func init() {
	if len(os.Args) > 0 && os.Args[0] == initArg {
		// Exit at once: init buffers nothing, and os.Exit's exit-time work
		// (a second's pause in a race-detector build) would count against
		// the command's timeout.
		syscall.Exit(initMain(os.Args[1:]))
	}
}

// initMain: args are kind (run or probe), the control socket's fd, the
// address to listen on, the command's path and its argv.
func initMain(args []string) int {
	// Signals first. Init is PID 1 of its namespace: the kernel delivers
	// it only the signals it handles, and Go's default handling would end
	// it (and the namespace) on SIGTERM or SIGINT. Signals meant for the
	// command reach it directly (its process group) or as control
	// messages; init itself takes none, but keeps what was ignored
	// ignored, so the command inherits that as it would without init.
	var ignored []os.Signal
	for _, s := range []os.Signal{syscall.SIGHUP, syscall.SIGINT} {
		if signal.Ignored(s) {
			ignored = append(ignored, s)
		}
	}
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs)
	if len(ignored) > 0 {
		signal.Ignore(ignored...)
	}
	go func() {
		for range sigs {
		}
	}()

	if len(args) < 5 || os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "cassetteproxy: "+initArg+" is started by cassetteproxy itself, as the first process of a new namespace")
		return 2
	}
	kind, listen, path, argv := args[0], args[2], args[3], args[4:]
	fd, err := strconv.Atoi(args[1])
	if err != nil || fd < 3 {
		fmt.Fprintln(os.Stderr, "cassetteproxy: "+initArg+": bad control descriptor "+strconv.Quote(args[1]))
		return 2
	}
	f := os.NewFile(uintptr(fd), "isolate-control")
	c, err := net.FileConn(f) // a close-on-exec copy: the command never sees it
	f.Close()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cassetteproxy: "+initArg+": control socket: "+err.Error())
		return 2
	}
	ctl := c.(*net.UnixConn)
	send := func(m message, rights []byte) {
		b, _ := json.Marshal(m)
		_, _, _ = ctl.WriteMsgUnix(b, rights, nil)
	}

	lfd, err := setup(listen)
	if err != nil {
		send(message{Error: err.Error()}, nil)
		return 1
	}
	send(message{Ready: true}, unix.UnixRights(lfd))
	unix.Close(lfd) // the proxy holds it now
	if kind == "probe" {
		return 0
	}

	// The command is started from a thread that holds no capability the
	// command should not have: in a user namespace of our own, init kept
	// a few to set up; the command gets none, as without isolation. As
	// root nothing is dropped.
	runtime.LockOSThread()
	if os.Getuid() != 0 {
		if err := dropCapabilities(); err != nil {
			send(message{StartError: "drop the set-up capabilities: " + err.Error(), Code: 126}, nil)
			return 126
		}
	}
	proc, err := os.StartProcess(path, argv, &os.ProcAttr{Env: os.Environ(), Files: []*os.File{os.Stdin, os.Stdout, os.Stderr}})
	if err != nil {
		code := 126
		if errors.Is(err, os.ErrNotExist) {
			code = 127
		}
		send(message{StartError: err.Error(), Code: code}, nil)
		return code
	}
	send(message{Started: true}, nil)

	go func() { // signals the host asks to pass on
		buf := make([]byte, 512)
		for {
			nb, _, _, _, err := ctl.ReadMsgUnix(buf, nil)
			if err != nil || nb == 0 {
				return
			}
			var m message
			if json.Unmarshal(buf[:nb], &m) == nil && m.Signal > 0 {
				_ = syscall.Kill(proc.Pid, syscall.Signal(m.Signal))
			}
		}
	}()

	// Reap every child (orphans are ours as PID 1) until the command ends.
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			send(message{Exited: true, Code: 1}, nil)
			return 1
		}
		if pid != proc.Pid {
			continue
		}
		if ws.Signaled() {
			send(message{Exited: true, Code: 128 + int(ws.Signal()), Signal: int(ws.Signal())}, nil)
			return 128 + int(ws.Signal())
		}
		send(message{Exited: true, Code: ws.ExitStatus()}, nil)
		return ws.ExitStatus() // returning ends the namespace: what is left in it is killed
	}
}

// setup makes the namespace what the command sees: loopback up, resolver
// files that know only localhost, and the proxy's listening socket.
func setup(listen string) (int, error) {
	if err := loopbackUp(); err != nil {
		return -1, fmt.Errorf("bring up the loopback interface: %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return -1, fmt.Errorf("make the namespace's mounts private: %w", err)
	}
	if err := resolverFiles(); err != nil {
		return -1, err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return -1, fmt.Errorf("listen on %s inside the namespace: %w", listen, err)
	}
	f, err := ln.(*net.TCPListener).File()
	ln.Close() // only this process's copy: f keeps the socket listening
	if err != nil {
		return -1, fmt.Errorf("listen on %s inside the namespace: %w", listen, err)
	}
	fd, err := unix.Dup(int(f.Fd()))
	f.Close()
	return fd, err
}

func loopbackUp() error {
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(s)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(s, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(s, unix.SIOCSIFFLAGS, ifr)
}

var hostsLine = regexp.MustCompile(`(?m)^[ \t]*hosts[ \t]*:.*$`)

// resolverFiles replaces, in this mount namespace only, the files name
// resolution reads: /etc/hosts knows localhost (and this machine's name,
// as loopback), /etc/nsswitch.conf looks names up in files only (no DNS,
// no mDNS, no systemd-resolved over its socket), /etc/resolv.conf names a
// server at 127.0.0.1, which inside answers at once with "refused" (for
// resolvers that read it directly), and nscd's socket folder is emptied
// (glibc would ask nscd, outside, first). Files that do not exist are left
// alone. The new files live on a small tmpfs mounted over /tmp while they
// are bound in place, then detached: nothing is written to disk and /tmp
// is the host's again before the command starts.
func resolverFiles() error {
	hostname, _ := os.Hostname()
	hosts := "# cassetteproxy: an isolated network namespace resolves only localhost\n127.0.0.1\tlocalhost"
	if hostname != "" && hostname != "localhost" {
		hosts += " " + hostname
	}
	hosts += "\n::1\tlocalhost ip6-localhost ip6-loopback\n"
	files := []struct {
		target  string
		content string
	}{
		{"/etc/hosts", hosts},
		{"/etc/resolv.conf", "# cassetteproxy: no name server in an isolated network namespace\nnameserver 127.0.0.1\noptions attempts:1 timeout:1\n"},
	}
	if ns, err := os.ReadFile("/etc/nsswitch.conf"); err == nil {
		s := string(ns)
		if hostsLine.MatchString(s) {
			s = hostsLine.ReplaceAllLiteralString(s, "hosts: files")
		} else {
			s += "\nhosts: files\n"
		}
		files = append(files, struct{ target, content string }{"/etc/nsswitch.conf", s})
	}
	scratch := "/tmp"
	if fi, err := os.Stat(scratch); err != nil || !fi.IsDir() {
		scratch = "/dev"
	}
	if err := unix.Mount("tmpfs", scratch, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=64k,mode=0755"); err != nil {
		return fmt.Errorf("mount a tmpfs for the resolver files: %w", err)
	}
	for i, fl := range files {
		if _, err := os.Stat(fl.target); err != nil {
			continue
		}
		src := filepath.Join(scratch, strconv.Itoa(i))
		if err := os.WriteFile(src, []byte(fl.content), 0o644); err != nil {
			return fmt.Errorf("write the namespace's %s: %w", fl.target, err)
		}
		if err := unix.Mount(src, fl.target, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind the namespace's %s: %w", fl.target, err)
		}
	}
	if err := unix.Unmount(scratch, unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach the resolver files' tmpfs: %w", err)
	}
	seen := map[string]bool{}
	for _, d := range []string{"/run/nscd", "/var/run/nscd"} {
		real, err := filepath.EvalSymlinks(d)
		if err != nil || seen[real] {
			continue
		}
		seen[real] = true
		if fi, err := os.Stat(real); err == nil && fi.IsDir() {
			if err := unix.Mount("tmpfs", real, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC|unix.MS_RDONLY, "size=4k,mode=0755"); err != nil {
				return fmt.Errorf("hide nscd's socket: %w", err)
			}
		}
	}
	return nil
}

// dropCapabilities empties this thread's capability sets (ambient ones go
// with the inheritable set); the command, started from this thread, then
// starts with none.
func dropCapabilities() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	return unix.Capset(&hdr, &data[0])
}
