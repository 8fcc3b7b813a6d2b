package e2e

import (
	"bufio"
	binenc "encoding/binary"
	"fmt"
	"hash/fnv"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// oneLineError asserts a failed command printed exactly one line naming what
// is wrong, and no stack trace.
func oneLineError(t *testing.T, stderr string, code int, wants ...string) {
	t.Helper()
	if code != 1 {
		t.Errorf("exit code %d, want 1; stderr:\n%s", code, stderr)
	}
	line := strings.TrimRight(stderr, "\n")
	if strings.Contains(line, "\n") || strings.Contains(line, "goroutine") || strings.Contains(line, "panic") {
		t.Errorf("want one line of error, got:\n%s", stderr)
	}
	for _, w := range wants {
		if !strings.Contains(line, w) {
			t.Errorf("error %q does not mention %q", line, w)
		}
	}
}

func TestCAFilesAndPermissions(t *testing.T) {
	e := newEnv(t)
	out, errOut, code := e.cli("ca", "path")
	if code != 0 {
		t.Fatalf("ca path: %d %s", code, errOut)
	}
	certPath := strings.TrimSpace(out)
	if certPath != filepath.Join(e.home, "ca.pem") {
		t.Fatalf("ca path printed %q", certPath)
	}
	for path, want := range map[string]os.FileMode{e.home: 0o700, filepath.Join(e.home, "ca-key.pem"): 0o600} {
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != want {
			t.Errorf("%s has mode %04o, want %04o", path, info.Mode().Perm(), want)
		}
	}
	// The CA is reused, not recreated.
	before, _ := os.ReadFile(certPath)
	e.cli("ca", "path")
	after, _ := os.ReadFile(certPath)
	if string(before) != string(after) {
		t.Fatal("the CA certificate changed on second use")
	}
	out, _, code = e.cli("ca", "bundle")
	bundle, err := os.ReadFile(strings.TrimSpace(out))
	if code != 0 || err != nil || !strings.Contains(string(bundle), strings.TrimSpace(string(before))) {
		t.Fatalf("ca bundle does not contain the CA (exit %d, %v)", code, err)
	}
	if strings.Count(string(bundle), "BEGIN CERTIFICATE") < 2 {
		t.Errorf("ca bundle holds no system roots")
	}
	// A key others can read is refused, with the fix.
	os.Chmod(filepath.Join(e.home, "ca-key.pem"), 0o644)
	_, errOut, code = e.cli("serve", "--mode", "record", "--cassette", "x", "--listen", "127.0.0.1:0")
	oneLineError(t, errOut, code, "ca-key.pem", "chmod 600")
}

func TestBadInput(t *testing.T) {
	t.Run("unknown command or flag", func(t *testing.T) {
		e := newEnv(t)
		for args, wants := range map[string][]string{
			"rewind":                 {`unknown command "rewind"`, "cassetteproxy --help"},
			"cassettes list":         {`unknown command "list"`, "cassetteproxy cassettes --help"},
			"serve --bogus":          {"-bogus", "cassetteproxy serve --help"},
			"cassettes ls --verbose": {"-verbose", "cassetteproxy cassettes ls --help"},
		} {
			_, errOut, code := e.cli(strings.Fields(args)...)
			oneLineError(t, errOut, code, wants...)
		}
	})
	t.Run("unknown mode", func(t *testing.T) {
		e := newEnv(t)
		_, errOut, code := e.cli("serve", "--mode", "rewind", "--cassette", "x", "--listen", "127.0.0.1:0")
		oneLineError(t, errOut, code, `unknown mode "rewind"`, "record, replay, strict or live")
	})
	t.Run("replay of a missing cassette", func(t *testing.T) {
		e := newEnv(t)
		up := newUpstream(t, false, itemsHandler())
		p := e.serve("--mode", "record", "--cassette", "have-this")
		do(t, e.client(p), "GET", up.URL+"/x", "")
		p.stop()
		_, errOut, code := e.cli("serve", "--mode", "replay", "--cassette", "nope", "--listen", "127.0.0.1:0")
		oneLineError(t, errOut, code, `cassette "nope" not found`, "have-this", "--mode record --cassette nope")
	})
	t.Run("store that is not a bbolt file", func(t *testing.T) {
		e := newEnv(t)
		content := []byte("this is my shopping list, not a store\n")
		os.WriteFile(e.db, content, 0o644)
		_, errOut, code := e.cli("serve", "--mode", "record", "--cassette", "x", "--listen", "127.0.0.1:0")
		oneLineError(t, errOut, code, e.db)
		_, errOut, code = e.cli("cassettes", "ls")
		oneLineError(t, errOut, code, e.db)
		if got, _ := os.ReadFile(e.db); string(got) != string(content) {
			t.Fatalf("the file was changed: %q", got)
		}
	})
	t.Run("store locked by a running proxy", func(t *testing.T) {
		e := newEnv(t)
		p := e.serve("--mode", "record", "--cassette", "x")
		_, errOut, code := e.cli("cassettes", "ls")
		oneLineError(t, errOut, code, e.db, fmt.Sprintf("pid %d", p.cmd.Process.Pid))
		_, errOut, code = e.cli("serve", "--mode", "record", "--cassette", "y", "--listen", "127.0.0.1:0")
		oneLineError(t, errOut, code, "locked by another process")
	})
	t.Run("port in use", func(t *testing.T) {
		e := newEnv(t)
		up := newUpstream(t, false, itemsHandler())
		p := e.serve("--mode", "record", "--cassette", "x")
		do(t, e.client(p), "GET", up.URL+"/kept", "")
		p.stop()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		_, errOut, code := e.cli("serve", "--mode", "record", "--cassette", "x", "--listen", ln.Addr().String())
		oneLineError(t, errOut, code, ln.Addr().String(), "address already in use")
		// The failed start must not have started the cassette afresh.
		if out, _, _ := e.cli("cassettes", "show", "x"); !strings.Contains(out, "/kept") {
			t.Fatalf("a record-mode start that could not listen emptied the cassette:\n%s", out)
		}
	})
	t.Run("unusable home", func(t *testing.T) {
		e := newEnv(t)
		os.WriteFile(e.home, []byte("a file, not a folder"), 0o644)
		_, errOut, code := e.cli("serve", "--mode", "record", "--cassette", "x", "--listen", "127.0.0.1:0")
		oneLineError(t, errOut, code, e.home)
	})
	t.Run("global flags after the command", func(t *testing.T) {
		e := newEnv(t)
		other := filepath.Join(e.dir, "other.db")
		_, errOut, code := e.cli("cassettes", "ls", "--db", other)
		oneLineError(t, errOut, code, other)
		_, errOut, code = e.cli("--db", other, "cassettes", "ls")
		oneLineError(t, errOut, code, other)
	})
	t.Run("malformed proxy request", func(t *testing.T) {
		e := newEnv(t)
		up := newUpstream(t, false, itemsHandler())
		p := e.serve("--mode", "record", "--cassette", "x")
		conn, err := net.Dial("tcp", p.addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "THIS IS NOT HTTP\r\n\r\n")
		line, _ := bufio.NewReader(conn).ReadString('\n')
		conn.Close()
		if !strings.Contains(line, "400") {
			t.Fatalf("malformed request got %q, want a 400", line)
		}
		if got := do(t, e.client(p), "GET", up.URL+"/still-serving", ""); got.status != 200 {
			t.Fatalf("proxy stopped serving after a malformed request: %d", got.status)
		}
	})
}

// TestKillDuringRecording: kill -9 while 8 clients record; the store then
// opens, passes bbolt's consistency check, and replays what was committed.
// The kill comes once 200 requests were answered and a transaction was
// committed after the proxy got ready: 200 answers can take less than one
// group-commit delay on a fast machine.
func TestKillDuringRecording(t *testing.T) {
	e := newEnv(t)
	up := newUpstream(t, false, itemsHandler())
	p := e.serve("--mode", "record", "--cassette", "k")
	readyTx := lastTxID(t, e.db)
	committed := func() bool { return lastTxID(t, e.db) > readyTx }
	c := e.client(p)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var kill sync.Once
	answered := 0
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				resp, err := c.Get(fmt.Sprintf("%s/k%d?i=%d", up.URL, w, i))
				if err != nil {
					return // the proxy is gone
				}
				resp.Body.Close()
				mu.Lock()
				answered++
				n := answered
				mu.Unlock()
				if n >= 200 && committed() {
					kill.Do(p.kill)
				}
				if n > 100_000 {
					t.Errorf("no transaction committed after %d answers", n)
					kill.Do(p.kill)
				}
			}
		}(w)
	}
	wg.Wait()

	db, err := bolt.Open(e.db, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("store does not open after kill -9: %v", err)
	}
	err = db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	})
	db.Close()
	if err != nil {
		t.Fatalf("consistency check after kill -9: %v", err)
	}
	out, errOut, code := e.cli("cassettes", "show", "k")
	if code != 0 {
		t.Fatalf("cassettes show after kill -9: %s", errOut)
	}
	var urls []string
	for _, line := range strings.Split(out, "\n")[1:] {
		if f := strings.Fields(line); len(f) > 2 {
			urls = append(urls, f[2])
		}
	}
	if len(urls) == 0 {
		t.Fatalf("nothing was committed before kill -9 (the store file was written: what did it hold?):\n%s", out)
	}
	p = e.serve("--mode", "strict", "--cassette", "k")
	c = e.client(p)
	for _, u := range urls {
		if got := do(t, c, "GET", u, ""); got.status != http.StatusOK {
			t.Fatalf("committed %s not served after kill -9: %d %s", u, got.status, got.body)
		}
	}
}

// lastTxID is the id of the last transaction committed to a bbolt file,
// read from its two meta pages while another process holds the file's
// lock (bbolt.Open would wait for it). A meta page counts when its
// checksum holds: the commit wrote it whole. Layout (bbolt's page and meta
// structs, native byte order): a 16-byte page header, then magic, version,
// page size (4 bytes each), flags (4), root bucket (16), freelist (8),
// high-water page (8), txid (8), and the FNV-64a of the meta before it (8).
func lastTxID(t *testing.T, path string) uint64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Error(err) // called from client goroutines too: no Fatal
		return 0
	}
	defer f.Close()
	var head [80]byte
	if _, err := f.ReadAt(head[:], 0); err != nil {
		t.Error(err)
		return 0
	}
	pageSize := int64(binenc.NativeEndian.Uint32(head[24:28]))
	var last uint64
	for _, off := range []int64{0, pageSize} {
		var m [80]byte
		if _, err := f.ReadAt(m[:], off); err != nil {
			t.Error(err)
			return 0
		}
		sum := fnv.New64a()
		sum.Write(m[16:72])
		if sum.Sum64() == binenc.NativeEndian.Uint64(m[72:80]) {
			last = max(last, binenc.NativeEndian.Uint64(m[64:72]))
		}
	}
	return last
}
