package e2e

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cassetteproxy/cassetteproxy/store"
)

// growthCassette writes a cassette of n interactions straight through the
// store: one model API's POSTs, each with a body of its own, answered with
// ~2 KB of JSON; one answer in ten repeats an earlier body (a polled tool, a
// retried call), which the store keeps once. Request i is growthRequest(i).
func growthCassette(t *testing.T, db, name string, n int) {
	t.Helper()
	st, err := store.Open(db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// Transactions of 10,000 interactions: a million take a minute, not the
	// ten that CassetteWriter's small batches (made for bounded memory) do.
	const chunk = 10_000
	batch := make([]store.Interaction, 0, chunk)
	flush := func(first bool) {
		if err := st.WriteCassette(name, batch, first); err != nil {
			t.Fatal(err)
		}
		batch = batch[:0]
	}
	words := strings.Fields("the agent asked the search tool for open issues and the tool answered with titles labels and authors of each one")
	rng := rand.New(rand.NewPCG(3, 4))
	at := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	var shared [][]byte
	for i := range n {
		var body []byte
		if i%10 == 9 && len(shared) > 0 {
			body = shared[rng.IntN(len(shared))]
		} else {
			var b bytes.Buffer
			fmt.Fprintf(&b, `{"id":"chatcmpl-%08d","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"`, i)
			for b.Len() < 1980 {
				b.WriteString(words[rng.IntN(len(words))])
				b.WriteByte(' ')
			}
			fmt.Fprintf(&b, `"}}],"usage":{"prompt_tokens":%d}}`, rng.IntN(4000))
			body = b.Bytes()
			if len(shared) < 100 {
				shared = append(shared, body)
			}
		}
		url, reqBody := growthRequest(i)
		req := store.Request{Method: "POST", URL: url, Header: http.Header{"Content-Type": {"application/json"}}, Body: reqBody}
		in := store.Interaction{Key: "POST " + url, RecordedAt: at.Add(time.Duration(i) * time.Millisecond), DurationMs: 40, Request: req,
			Response: store.Response{Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: body}}
		if batch = append(batch, in); len(batch) == chunk {
			flush(i < chunk)
		}
	}
	if len(batch) > 0 || n == 0 {
		flush(n <= chunk)
	}
}

// growthRequest is the ith request of a growth cassette: one host and
// path, a JSON body of its own.
func growthRequest(i int) (string, []byte) {
	return "http://api.example.test/v1/chat/completions",
		fmt.Appendf(nil, `{"model":"m-1","messages":[{"role":"user","content":"step %d of the task"}]}`, i)
}

// procMiB reads fields of /proc/PID/status, in MiB.
func procMiB(t *testing.T, pid int, fields ...string) []float64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float64, len(fields))
	for _, line := range strings.Split(string(b), "\n") {
		for i, f := range fields {
			if rest, ok := strings.CutPrefix(line, f+":"); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
				out[i] = kb / 1024
			}
		}
	}
	return out
}

// procCPU is the user and system time a process has used (/proc/PID/stat,
// in clock ticks of 10 ms).
func procCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The fields after the command's closing parenthesis; utime and stime
	// are the 14th and 15th of the line.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		t.Fatalf("/proc/%d/stat: %q", pid, b)
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * 10 * time.Millisecond
}

// TestCassetteGrowth measures what replaying a cassette costs as it grows
// (CASSETTEPROXY_E2E_GROWTH=1000,10000,100000,1000000; skipped without):
// for each size it builds a growth cassette, starts `serve --mode replay`
// and logs the time until the ready file appears, the resident memory at
// idle, under load (16 clients, each interaction asked once in a random
// order, every answer checked) and after it, and the time per request of
// one client asking one at a time. CASSETTEPROXY_E2E_GROWTH_BIN=PATH
// measures another build (a main-built binary, for before and after);
// CASSETTEPROXY_E2E_GROWTH_DIR=DIR keeps the cassettes there, built once. It
// asserts nothing about time or memory: the numbers are in
// docs/performance.md.
func TestCassetteGrowth(t *testing.T) {
	spec := os.Getenv("CASSETTEPROXY_E2E_GROWTH")
	if spec == "" {
		t.Skip("set CASSETTEPROXY_E2E_GROWTH=1000,10000,... to measure")
	}
	for _, f := range strings.Split(spec, ",") {
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			t.Fatalf("CASSETTEPROXY_E2E_GROWTH: %q is not a count", f)
		}
		t.Run(f, func(t *testing.T) { measureGrowth(t, n) })
	}
}

func measureGrowth(t *testing.T, n int) {
	e := newEnv(t)
	e.bin = os.Getenv("CASSETTEPROXY_E2E_GROWTH_BIN")
	e.readyWithin = 10 * time.Minute
	if dir := os.Getenv("CASSETTEPROXY_E2E_GROWTH_DIR"); dir != "" {
		e.db = filepath.Join(dir, fmt.Sprintf("growth-%d.db", n)) // kept: built once for every build measured
	}
	if _, err := os.Stat(e.db); err != nil {
		start := time.Now()
		growthCassette(t, e.db, "g", n)
		t.Logf("n=%d: built in %v", n, time.Since(start).Round(time.Millisecond))
	}
	fi, _ := os.Stat(e.db)
	t.Logf("n=%d: store %.1f MiB", n, float64(fi.Size())/(1<<20))

	start := time.Now()
	p := e.serve("--mode", "replay", "--cassette", "g")
	ready := time.Since(start)
	pid := p.cmd.Process.Pid
	idle := procMiB(t, pid, "VmRSS", "VmHWM", "RssAnon", "RssFile")
	t.Logf("n=%d: ready after %v (CPU %v); idle VmRSS %.1f MiB (anon %.1f, file %.1f), start-up peak VmHWM %.1f MiB",
		n, ready.Round(time.Millisecond), procCPU(t, pid), idle[0], idle[2], idle[3], idle[1])

	client := e.client(p)
	ask := func(i int) error {
		url, body := growthRequest(i)
		resp, err := client.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			return err
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode != 200 || len(got) < 1900 || !bytes.HasPrefix(got, []byte(`{"id":"chatcmpl-`)) {
			return fmt.Errorf("request %d: status %d, %d bytes: %.200s", i, resp.StatusCode, len(got), got)
		}
		return nil
	}

	// One client, one request at a time: a lookup's cost end to end.
	const single = 2000
	rng := rand.New(rand.NewPCG(5, 6))
	lat := make([]time.Duration, single)
	for k := range single {
		s := time.Now()
		if err := ask(rng.IntN(n)); err != nil {
			t.Fatal(err)
		}
		lat[k] = time.Since(s)
	}
	slices.Sort(lat)
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	t.Logf("n=%d: one client, %d random requests: mean %v, p50 %v, p99 %v", n, single, (sum / single).Round(time.Microsecond), lat[single/2].Round(time.Microsecond), lat[single*99/100].Round(time.Microsecond))

	// 16 clients over every interaction (at most 200,000), in a random order.
	total := min(n, 200_000)
	order := rng.Perm(n)[:total]
	var next sync.Mutex
	k := 0
	var wg sync.WaitGroup
	var peak []float64
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				if m := procMiB(t, pid, "VmRSS", "RssAnon", "RssFile"); len(peak) == 0 || m[0] > peak[0] {
					peak = m
				}
			}
		}
	}()
	start = time.Now()
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			for {
				next.Lock()
				if k == total {
					next.Unlock()
					return
				}
				i := order[k]
				k++
				next.Unlock()
				if err := ask(i); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	close(done)
	<-sampled
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(peak) == 0 {
		peak = []float64{0, 0, 0}
	}
	after := procMiB(t, pid, "VmRSS", "VmHWM")
	t.Logf("n=%d: 16 clients, %d requests in %v (%.0f req/s); under load VmRSS peak %.1f MiB (anon %.1f, file %.1f); VmHWM %.1f MiB; at the end %.1f MiB",
		n, total, took.Round(time.Millisecond), float64(total)/took.Seconds(), peak[0], peak[1], peak[2], after[1], after[0])
	client.CloseIdleConnections()
	// What is given back: the resident memory a while after the load.
	for _, wait := range []time.Duration{time.Second, 2 * time.Second} {
		time.Sleep(wait) // a measurement's interval, not a synchronization: nothing waits on it
		m := procMiB(t, pid, "VmRSS", "RssAnon", "RssFile")
		t.Logf("n=%d: idle again (+%v): VmRSS %.1f MiB (anon %.1f, file %.1f)", n, wait, m[0], m[1], m[2])
	}
	p.stop()
}
