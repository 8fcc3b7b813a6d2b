// Package pgtest starts a real PostgreSQL server for tests: initdb into a
// temporary folder, the server on a free loopback port with its unix socket
// in that folder, password authentication over TCP. As root the server runs
// as the postgres user (initdb refuses root). One server is meant to be
// shared by a test package (start it in TestMain, or lazily with Shared).
package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lib/pq"
)

// Password is the superuser's password (user postgres); tests check that
// it never reaches a file or a log.
const Password = "pgtest-Sup3r-secret-pw"

// ErrNoPostgres is returned by Start when no PostgreSQL binaries are found.
var ErrNoPostgres = errors.New("PostgreSQL binaries (initdb, postgres) not found: install them (Debian: apt-get install postgresql)")

// Server is a running PostgreSQL.
type Server struct {
	Port int
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
	n    atomic.Int64
	log  string
}

// BinDir finds the folder of initdb and postgres: the newest
// /usr/lib/postgresql/*/bin, else the PATH's.
func BinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		d := filepath.Dir(p)
		if isExec(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", ErrNoPostgres
}

func version(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// Start initializes and starts a server, and waits until it accepts
// connections (or fails, or ready passes).
func Start(ready time.Duration) (*Server, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "cassetteproxy-pg")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, done: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(dir)
		}
	}()
	cred, err := credential()
	if err != nil {
		return nil, err
	}
	data, sock := filepath.Join(dir, "data"), filepath.Join(dir, "sock")
	pwfile := filepath.Join(dir, "pw")
	for _, d := range []string{data, sock} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(pwfile, []byte(Password+"\n"), 0o600); err != nil {
		return nil, err
	}
	if cred != nil { // the server's user must reach and own its folders
		if err := os.Chmod(dir, 0o711); err != nil {
			return nil, err
		}
		for _, p := range []string{data, sock, pwfile} {
			if err := os.Chown(p, int(cred.Uid), int(cred.Gid)); err != nil {
				return nil, err
			}
		}
	}
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--pwfile", pwfile,
		"--auth-local", "trust", "--auth-host", "scram-sha-256", "-E", "UTF8", "--locale", "C", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	initdb.Dir = dir
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	os.Remove(pwfile)
	s.log = filepath.Join(dir, "postgres.log")
	logf, err := os.Create(s.log)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s.Port = port
	s.cmd = exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-p", strconv.Itoa(port), "-k", sock,
		"-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200")
	s.cmd.Dir = dir
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	// The server dies with the test process, however it ends.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT, Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	go func() { s.cmd.Wait(); close(s.done) }()
	if err := s.waitReady(ready); err != nil {
		s.Stop()
		return nil, err
	}
	ok = true
	return s, nil
}

// credential is who the server runs as: nil (ourselves) unless we are
// root, then the postgres user.
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, and initdb refuses root: no postgres user to run the server as (%v)", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitReady polls a connection until one succeeds, the server exits, or
// the deadline passes.
func (s *Server) waitReady(within time.Duration) error {
	deadline := time.Now().Add(within)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			b, _ := os.ReadFile(s.log)
			return fmt.Errorf("postgres exited while starting:\n%s", b)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		db, err := open(s.DSN("postgres"))
		if err == nil {
			err = db.PingContext(ctx)
			db.Close()
		}
		cancel()
		if err == nil {
			return nil
		}
		last = err
		select {
		case <-s.done:
		case <-time.After(20 * time.Millisecond): // the next attempt
		}
	}
	b, _ := os.ReadFile(s.log)
	return fmt.Errorf("postgres not accepting connections after %s: %v\n%s", within, last, b)
}

// DSN is the URL of database db as the superuser, password included.
func (s *Server) DSN(db string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword("postgres", Password),
		Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)), Path: "/" + db, RawQuery: "sslmode=disable"}
	return u.String()
}

// CreateDB creates a fresh, empty database named after prefix and returns
// its DSN.
func (s *Server) CreateDB(prefix string) (string, error) {
	name := fmt.Sprintf("%s_%d_%d", sanitize(prefix), os.Getpid(), s.n.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	db, err := open(s.DSN("postgres"))
	if err != nil {
		return "", err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+pq.QuoteIdentifier(name)); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return s.DSN(name), nil
}

// open is a one-connection pool to dsn (connecting on first use).
func open(dsn string) (*sql.DB, error) {
	c, err := pq.NewConnector(dsn)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(c)
	db.SetMaxOpenConns(1)
	return db, nil
}

func sanitize(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	if b.Len() > 40 {
		return b.String()[:40]
	}
	return b.String()
}

// Stop shuts the server down (fast shutdown, then a kill if it lingers)
// and removes its folder.
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-s.done:
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			<-s.done
		}
	}
	os.RemoveAll(s.dir)
}

// Shared is one server started on first use and stopped by Stop; Get from
// many tests of one package.
type Shared struct {
	once sync.Once
	srv  *Server
	err  error
}

// Get starts the server on first use.
func (sh *Shared) Get() (*Server, error) {
	sh.once.Do(func() { sh.srv, sh.err = Start(2 * time.Minute) })
	return sh.srv, sh.err
}

// Stop stops the server if it was started.
func (sh *Shared) Stop() {
	sh.once.Do(func() {}) // a later Get starts nothing
	if sh.srv != nil {
		sh.srv.Stop()
	}
}

// DB returns the DSN of a fresh database on the shared server. Without
// PostgreSQL installed the test is skipped, unless require (CI sets
// CASSETTEPROXY_REQUIRE_PG) makes that a failure.
func (sh *Shared) DB(t testing.TB, require bool) string {
	t.Helper()
	srv, err := sh.Get()
	if errors.Is(err, ErrNoPostgres) && !require {
		t.Skip(err.Error() + "; set CASSETTEPROXY_REQUIRE_PG=1 to make this a failure")
	}
	if err != nil {
		t.Fatal(err)
	}
	dsn, err := srv.CreateDB(t.Name())
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}
