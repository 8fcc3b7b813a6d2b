package e2e

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cassetteproxy/cassetteproxy/store"
)

// bigCassette writes a cassette of n distinct interactions straight
// through the store (a recording of n requests would take minutes): LLM-
// style JSON, a 1-2 KB answer each, no two bodies alike, as a long agent
// run leaves.
func bigCassette(t *testing.T, db, name string, n int) {
	t.Helper()
	st, err := store.Open(db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	w, err := st.NewCassetteWriter(name, true)
	if err != nil {
		t.Fatal(err)
	}
	words := strings.Fields("the agent asked the search tool for open issues and the tool answered with titles labels and authors of each one")
	rng := rand.New(rand.NewPCG(1, 2))
	at := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	for i := range n {
		var b strings.Builder
		fmt.Fprintf(&b, `{"id":"chatcmpl-%08d","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"`, i)
		for range 150 + rng.IntN(150) {
			b.WriteString(words[rng.IntN(len(words))])
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, `"}}],"usage":{"prompt_tokens":%d,"completion_tokens":%d}}`, rng.IntN(4000), rng.IntN(800))
		req := store.Request{Method: "POST", URL: fmt.Sprintf("https://api.example.test/v1/chat/completions?turn=%d", i),
			Header: http.Header{"Content-Type": {"application/json"}},
			Body:   fmt.Appendf(nil, `{"model":"m-1","messages":[{"role":"user","content":"step %d"}]}`, i)}
		in := store.Interaction{Key: req.Method + " " + req.URL, RecordedAt: at.Add(time.Duration(i) * time.Millisecond), DurationMs: 40, Request: req,
			Response: store.Response{Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(b.String())}}
		if err := w.Add(in); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Commit(); err != nil {
		t.Fatal(err)
	}
}

// The test binary doubles as a launcher that reports a command's peak RSS:
// with CASSETTEPROXY_E2E_MAXRSS=FILE it runs its arguments as a command
// (stdio passed through), writes the command's ru_maxrss (KiB) to FILE and
// exits with its code. The command must be started from a small process:
// Linux carries a process's peak RSS across exec, so a command started
// straight from the test process (which built the cassette) would report
// the test's peak, not its own.
func init() {
	out := os.Getenv("CASSETTEPROXY_E2E_MAXRSS")
	if out == "" || len(os.Args) < 2 {
		return
	}
	os.Unsetenv("CASSETTEPROXY_E2E_MAXRSS")
	cmd := exec.Command(os.Args[1], os.Args[2:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := cmd.Run()
	if cmd.ProcessState == nil {
		fmt.Fprintln(os.Stderr, "launcher:", err)
		os.Exit(2)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	if err := os.WriteFile(out, fmt.Appendf(nil, "%d %d", ru.Maxrss, cpu), 0o644); err != nil {
		os.Exit(2)
	}
	os.Exit(cmd.ProcessState.ExitCode())
}

// measured is one command's run: its peak RSS (the kernel's ru_maxrss,
// which is the process's VmHWM), when its first output byte came, and how
// much it wrote.
type measured struct {
	peakMiB   float64
	cpu       time.Duration
	firstByte time.Duration
	total     time.Duration
	out       int64
}

func (e *env) measure(args ...string) measured {
	e.t.Helper()
	report := filepath.Join(e.t.TempDir(), "maxrss")
	self, err := os.Executable()
	if err != nil {
		e.t.Fatal(err)
	}
	cmd := exec.Command(self, append([]string{binary}, args...)...)
	cmd.Env = append(os.Environ(), "CASSETTEPROXY_DB="+e.db, "CASSETTEPROXY_HOME="+e.home, "CASSETTEPROXY_E2E_MAXRSS="+report)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	var first atomic.Int64
	var n int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		br := bufio.NewReaderSize(stdout, 64<<10)
		if _, err := br.Peek(1); err == nil {
			first.Store(int64(time.Since(start)))
		}
		n, _ = io.Copy(io.Discard, br)
	}()
	<-done
	if err := cmd.Wait(); err != nil {
		e.t.Fatalf("%v: %v\n%s", args, err, stderr.String())
	}
	var kib, cpu int64
	if b, err := os.ReadFile(report); err != nil {
		e.t.Fatal(err)
	} else if _, err := fmt.Sscan(string(b), &kib, &cpu); err != nil {
		e.t.Fatalf("launcher report %q: %v", b, err)
	}
	return measured{peakMiB: float64(kib) / 1024, cpu: time.Duration(cpu), firstByte: time.Duration(first.Load()), total: time.Since(start), out: n}
}

// TestBigCassetteStreams: `cassettes show` (table and --json), export
// (fixture and HAR) and import of a 10,000-interaction cassette (16 MiB
// store; CASSETTEPROXY_E2E_BIG=N for another size) run in memory bounded
// by one interaction, not by the cassette: each command's peak RSS (code
// and the store's mapped pages included) stays under 80 MiB whatever N,
// where reading the whole cassette first took several times that, and
// output starts within 2 s (a generous bound: it takes milliseconds).
// docs/performance.md has the 100,000-interaction measurements.
func TestBigCassetteStreams(t *testing.T) {
	n := 10_000
	if v, err := strconv.Atoi(os.Getenv("CASSETTEPROXY_E2E_BIG")); err == nil && v > 0 {
		n = v // CASSETTEPROXY_E2E_BIG=100000 for the measurement in docs/performance.md
	}
	const boundMiB = 80
	e := newEnv(t)
	start := time.Now()
	bigCassette(t, e.db, "big", n)
	fi, _ := os.Stat(e.db)
	t.Logf("built %d interactions in %v, store %.1f MiB", n, time.Since(start).Round(time.Millisecond), float64(fi.Size())/(1<<20))

	fx, har := filepath.Join(t.TempDir(), "fx"), filepath.Join(t.TempDir(), "big.har")
	for _, c := range []struct {
		name   string
		args   []string
		output bool // the command prints the cassette (time to first byte applies)
	}{
		{"show", []string{"cassettes", "show", "big"}, true},
		{"show --json", []string{"cassettes", "show", "big", "--json"}, true},
		{"export fixture", []string{"export", "--cassette", "big", "--out", fx}, false},
		{"export har", []string{"export", "--cassette", "big", "--out", har, "--format", "har"}, false},
		{"import fixture", []string{"import", "--in", fx, "--cassette", "big-fixture"}, false},
		{"import har", []string{"import", "--in", har, "--cassette", "big-har"}, false},
	} {
		m := e.measure(c.args...)
		first := ""
		if c.output {
			first = fmt.Sprintf("first byte %v, %.1f MiB out, ", m.firstByte.Round(time.Millisecond), float64(m.out)/(1<<20))
		}
		t.Logf("%-15s peak RSS %5.1f MiB, %s%v in all (CPU %v)", c.name, m.peakMiB, first, m.total.Round(time.Millisecond), m.cpu.Round(time.Millisecond))
		if m.peakMiB > boundMiB {
			t.Errorf("%s of %d interactions: peak RSS %.1f MiB, want under %d MiB (memory must not grow with the cassette)", c.name, n, m.peakMiB, boundMiB)
		}
		if c.output && m.firstByte > 2*time.Second {
			t.Errorf("%s of %d interactions: first output after %v, want within 2 s", c.name, n, m.firstByte)
		}
	}
	out, _, _ := e.cli("cassettes", "ls")
	for _, name := range []string{"big-fixture", "big-har"} {
		found := false
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			found = found || len(f) > 1 && f[0] == name && f[1] == strconv.Itoa(n)
		}
		if !found {
			t.Errorf("cassette %s does not hold %d interactions:\n%s", name, n, out)
		}
	}
}
