package isolate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// initArg is argv[0] of a namespace's first process.
const initArg = "cassetteproxy-isolated-init"

// setupTimeout bounds how long the first process may take to make the
// namespace ready (it takes a few milliseconds).
const setupTimeout = 10 * time.Second

// message is one packet on the control socket.
type message struct {
	Ready      bool   `json:"ready,omitempty"`       // init → host: the listener rides along
	Error      string `json:"error,omitempty"`       // init → host: the namespace could not be set up
	Started    bool   `json:"started,omitempty"`     // init → host: the command runs
	StartError string `json:"start_error,omitempty"` // init → host: it could not start (Code)
	Exited     bool   `json:"exited,omitempty"`      // init → host: it ended (Code, Signal)
	Code       int    `json:"code,omitempty"`
	Signal     int    `json:"signal,omitempty"` // host → init: send it to the command; with Exited: what killed it
}

// Check reports whether this process can run commands isolated: nil, or
// an *Unavailable saying why not and what to change. It finds out once,
// by making a namespace the way Start does (a few milliseconds).
func Check() error { return checkOnce() }

var checkOnce = sync.OnceValue(func() error {
	cmd := &exec.Cmd{Args: []string{"true"}, Env: []string{}, SysProcAttr: &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}}
	n, err := wrap(cmd, "127.0.0.1:0", "probe")
	if err != nil {
		return err
	}
	ln, err := n.start()
	if err != nil {
		return err
	}
	ln.Close()
	_ = n.cmd.Wait()
	n.ctl.Close()
	return nil
})

// Namespace is the host side of one isolated command.
type Namespace struct {
	cmd   *exec.Cmd
	ctl   *net.UnixConn // ours; init holds the other end
	child *os.File      // init's end, closed here once it started
	kind  string
	exit  message       // what init said last (Exited), once readDone is closed
	done  chan struct{} // closed when init's end is closed
}

// Wrap turns cmd, ready to start as it is (Path resolved, Args, Env, Dir,
// stdio, SysProcAttr with Setpgid and Pdeathsig as for a plain run), into
// the start of the same command in a namespace of its own, where the proxy
// is expected at listen (see InsideAddr). Start it with Start, not
// cmd.Start.
func Wrap(cmd *exec.Cmd, listen string) (*Namespace, error) {
	return wrap(cmd, listen, "run")
}

func wrap(cmd *exec.Cmd, listen, kind string) (*Namespace, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("network isolation: control socket: %w", err)
	}
	ours := os.NewFile(uintptr(fds[0]), "isolate-control")
	theirs := os.NewFile(uintptr(fds[1]), "isolate-control-init")
	c, err := net.FileConn(ours)
	ours.Close()
	if err != nil {
		theirs.Close()
		return nil, fmt.Errorf("network isolation: control socket: %w", err)
	}
	argv := cmd.Args
	if len(argv) == 0 {
		argv = []string{cmd.Path}
	}
	fd := 3 + len(cmd.ExtraFiles)
	cmd.ExtraFiles = append(cmd.ExtraFiles, theirs)
	cmd.Args = append([]string{initArg, kind, strconv.Itoa(fd), listen, cmd.Path}, argv...)
	cmd.Path = "/proc/self/exe"
	attr := &syscall.SysProcAttr{}
	if cmd.SysProcAttr != nil {
		*attr = *cmd.SysProcAttr
	}
	attr.Cloneflags |= syscall.CLONE_NEWNET | syscall.CLONE_NEWNS | syscall.CLONE_NEWPID
	if uid, gid := os.Geteuid(), os.Getegid(); uid != 0 {
		// Not root: a user namespace of our own, where the command keeps
		// its uid and gid, and init keeps just the capabilities it needs
		// (ambient, so they survive its exec: interfaces, mounts, a port
		// below 1024 for a proxy there) and drops them before starting
		// the command.
		attr.Cloneflags |= syscall.CLONE_NEWUSER
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: uid, HostID: uid, Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: gid, HostID: gid, Size: 1}}
		attr.GidMappingsEnableSetgroups = false
		attr.AmbientCaps = []uintptr{unix.CAP_NET_ADMIN, unix.CAP_SYS_ADMIN, unix.CAP_NET_BIND_SERVICE}
	}
	cmd.SysProcAttr = attr
	return &Namespace{cmd: cmd, ctl: c.(*net.UnixConn), child: theirs, kind: kind}, nil
}

// Start makes the namespace and starts the command in it. It returns the
// listening socket at the proxy's address inside the namespace: serve the
// proxy on it (connections the command makes before then wait in its
// backlog). A *CommandError means the namespace was made but the command
// could not start; any other error (an *Unavailable) that the namespace
// could not be made. On error, nothing is left running.
func (n *Namespace) Start() (net.Listener, error) { return n.start() }

func (n *Namespace) start() (net.Listener, error) {
	err := n.cmd.Start()
	n.child.Close()
	if err != nil {
		n.ctl.Close()
		var pe *os.PathError
		if errors.As(err, &pe) && pe.Op == "chdir" { // the working folder, not the namespace
			code := 126
			if errors.Is(err, os.ErrNotExist) {
				code = 127
			}
			return nil, &CommandError{Err: err.Error(), Code: code}
		}
		return nil, refused(err)
	}
	fail := func(err error) (net.Listener, error) {
		_ = n.cmd.Process.Kill()
		_ = n.cmd.Wait()
		n.ctl.Close()
		return nil, err
	}
	_ = n.ctl.SetReadDeadline(time.Now().Add(setupTimeout))
	m, fd, err := n.read()
	if err != nil {
		return fail(&Unavailable{Why: "the namespace's first process did not get ready: " + err.Error(), Fix: fix()})
	}
	if m.Error != "" || !m.Ready || fd < 0 {
		if fd >= 0 {
			unix.Close(fd)
		}
		why := m.Error
		if why == "" {
			why = "the namespace's first process sent no listener"
		}
		return fail(&Unavailable{Why: why, Fix: fix()})
	}
	f := os.NewFile(uintptr(fd), "isolated-listener")
	ln, err := net.FileListener(f)
	f.Close()
	if err != nil {
		return fail(&Unavailable{Why: "the listener inside the namespace: " + err.Error(), Fix: fix()})
	}
	if n.kind == "probe" {
		return ln, nil
	}
	m, _, err = n.read()
	switch {
	case err != nil:
		ln.Close()
		return fail(&Unavailable{Why: "the namespace's first process ended before starting the command: " + err.Error(), Fix: fix()})
	case m.StartError != "":
		ln.Close()
		_ = n.cmd.Wait()
		n.ctl.Close()
		return nil, &CommandError{Err: m.StartError, Code: m.Code}
	}
	_ = n.ctl.SetReadDeadline(time.Time{})
	n.done = make(chan struct{})
	go n.readExit()
	return ln, nil
}

// read reads one message, and the file descriptor sent with it (-1: none).
func (n *Namespace) read() (message, int, error) {
	var m message
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	nb, noob, _, _, err := n.ctl.ReadMsgUnix(buf, oob)
	if err == nil && nb == 0 {
		err = io.EOF // init ended
	}
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = fmt.Errorf("no answer within %s", setupTimeout)
		}
		return m, -1, err
	}
	fd := -1
	if noob > 0 {
		if cms, err := unix.ParseSocketControlMessage(oob[:noob]); err == nil && len(cms) == 1 {
			if fds, err := unix.ParseUnixRights(&cms[0]); err == nil && len(fds) == 1 {
				fd = fds[0]
			}
		}
	}
	if err := json.Unmarshal(buf[:nb], &m); err != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		return m, -1, fmt.Errorf("bad control message: %w", err)
	}
	return m, fd, nil
}

// readExit keeps what init says until it ends.
func (n *Namespace) readExit() {
	defer close(n.done)
	for {
		m, fd, err := n.read()
		if fd >= 0 {
			unix.Close(fd)
		}
		if err != nil {
			return
		}
		if m.Exited {
			n.exit = m
		}
	}
}

// Signal sends sig to the command inside. SIGKILL kills the namespace's
// first process, and with it every process in the namespace.
func (n *Namespace) Signal(sig syscall.Signal) error {
	if sig == syscall.SIGKILL {
		return n.cmd.Process.Kill()
	}
	b, _ := json.Marshal(message{Signal: int(sig)})
	_, _, err := n.ctl.WriteMsgUnix(b, nil, nil)
	return err
}

// Exit is how the command ended; call it once the process started by
// Start (cmd) has been waited for. ok is false when the namespace was
// killed before the command ended (SIGKILL): its own wait status says how.
func (n *Namespace) Exit() (code int, sig syscall.Signal, ok bool) {
	if n.done == nil {
		return 0, 0, false
	}
	<-n.done
	n.ctl.Close()
	if !n.exit.Exited {
		return 0, 0, false
	}
	return n.exit.Code, syscall.Signal(n.exit.Signal), true
}

// refused explains a namespace the kernel would not make.
func refused(err error) error {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return &Unavailable{Why: err.Error(), Fix: fix()}
	}
	switch errno {
	case syscall.ENOSPC, syscall.EUSERS:
		return &Unavailable{Why: fmt.Sprintf("the limit on namespaces is reached (clone: %v)", errno),
			Fix: "raise sysctl user.max_net_namespaces (and user.max_user_namespaces when not root)"}
	case syscall.EPERM, syscall.EINVAL:
		what := "network namespaces"
		if os.Geteuid() != 0 {
			what = "user namespaces to a user other than root"
		}
		return &Unavailable{Why: fmt.Sprintf("the kernel refuses %s (clone: %v)", what, errno), Fix: fix()}
	}
	return &Unavailable{Why: err.Error(), Fix: fix()}
}

// fix is what to change so isolation works.
func fix() string {
	if os.Geteuid() != 0 {
		return "allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1 and user.max_user_namespaces above 0; on Ubuntu 23.10+ also kernel.apparmor_restrict_unprivileged_userns=0) or run as root"
	}
	return "run as root with CAP_SYS_ADMIN (a container needs --cap-add SYS_ADMIN or --privileged) and a kernel with network namespaces"
}
