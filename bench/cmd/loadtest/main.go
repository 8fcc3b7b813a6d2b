// Command loadtest is cassetteproxy's load harness. In one run it measures
// the same workloads through: no proxy (direct); the reference goproxy
// forward proxy; cassetteproxy record; the reference goproxy that answers
// from memory; cassetteproxy replay with the upstream stopped. Every
// response body is checked byte for byte. It prints a Markdown table.
//
// The upstream is nginx when it is on PATH (and -nginx is not "off"), else a
// Go server (this same binary, re-executed with -serve-upstream). Every
// server and proxy runs as its own process, so each proxy's CPU time and peak
// RSS come from /proc. Nothing here asserts on timings: it reports.
//
// Usage (see bench/run.sh, which builds the binaries first):
//
//	loadtest -bin DIR [-quick] [-out FILE]
package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cassetteproxy/cassetteproxy/bench/internal/benchutil"
)

type options struct {
	bin      string
	work     string
	quick    bool
	warmup   time.Duration
	duration time.Duration
	bad      time.Duration
	concs    []int
	rounds   int
	nginx    string
	out      string
	keep     bool
	works    map[string]bool // workload keys to run (nil: all)
	phases   map[string]bool // "record", "replay" (nil: both)

	streams      int           // concurrent SSE streams (0: no streams scenario)
	streamEvents int           // events per stream
	streamGap    time.Duration // time between a stream's events
}

func main() {
	var o options
	var concs string
	upstream := flag.Bool("serve-upstream", false, "internal: run the Go upstream server")
	upDir := flag.String("up-dir", "", "internal: folder of bodies for -serve-upstream")
	upReady := flag.String("up-ready", "", "internal: ready file for -serve-upstream (http addr, https addr)")
	flag.StringVar(&o.bin, "bin", "bin", "folder with cassetteproxy, ref-forward and ref-memory binaries")
	flag.StringVar(&o.work, "work", "", "scratch folder (default: a new temporary folder, removed at the end)")
	flag.BoolVar(&o.quick, "quick", false, "short runs (CI): under two minutes")
	flag.DurationVar(&o.warmup, "warmup", 0, "warm-up per cell (default 0.25s quick, 1s full)")
	flag.DurationVar(&o.duration, "duration", 0, "measured time per cell (default 0.8s quick, 4s full)")
	flag.DurationVar(&o.bad, "bad-duration", 0, "measured time per bad-input run (default 1s quick, 4s full)")
	flag.StringVar(&concs, "c", "16,64", "concurrency levels")
	flag.IntVar(&o.rounds, "rounds", 0, "rounds over every cell: best req/s kept, ratios and p99 the median over rounds (default 1 quick, 5 full)")
	flag.StringVar(&o.nginx, "nginx", "auto", "upstream: auto (nginx if on PATH), off (Go server)")
	flag.StringVar(&o.out, "out", "", "also write the Markdown report to this file")
	flag.BoolVar(&o.keep, "keep", false, "keep the scratch folder")
	works := flag.String("works", "", "only these workloads, comma-separated: http1k,http50k,https1k,https50k (default: these four); opt-in, a new connection per request: http1k-newconn,https1k-newconn,https1k-resume (TLS session resumed)")
	flag.IntVar(&o.streams, "streams", 0, "also run the many-streams scenario with this many concurrent SSE streams (0: off; e.g. 500)")
	flag.IntVar(&o.streamEvents, "stream-events", 100, "events per stream in the many-streams scenario")
	flag.DurationVar(&o.streamGap, "stream-gap", 100*time.Millisecond, "time between a stream's events")
	serveStream := flag.Bool("serve-stream", false, "internal: run the streaming (SSE) upstream")
	phases := flag.String("phases", "", "only these phases, comma-separated: record (direct, forward ref, record), replay (memory ref, replay), streams (with -streams) (default all)")
	flag.Parse()
	o.works, o.phases = commaSet(*works), commaSet(*phases)

	if *serveStream {
		if err := serveStreams(*upDir, *upReady, o.streamEvents, o.streamGap); err != nil {
			fmt.Fprintln(os.Stderr, "stream upstream:", err)
			os.Exit(1)
		}
		return
	}
	if *upstream {
		if err := serveUpstream(*upDir, *upReady); err != nil {
			fmt.Fprintln(os.Stderr, "upstream:", err)
			os.Exit(1)
		}
		return
	}
	if o.warmup == 0 {
		o.warmup = pick(o.quick, 250*time.Millisecond, time.Second)
	}
	if o.duration == 0 {
		o.duration = pick(o.quick, 800*time.Millisecond, 4*time.Second)
	}
	if o.rounds <= 0 {
		o.rounds = pick(o.quick, 1, 5)
	}
	if o.bad == 0 {
		o.bad = pick(o.quick, time.Second, 4*time.Second)
	}
	for _, f := range strings.Split(concs, ",") {
		var c int
		if _, err := fmt.Sscan(strings.TrimSpace(f), &c); err != nil || c < 1 || c > 1024 {
			fmt.Fprintf(os.Stderr, "loadtest: bad -c %q\n", concs)
			os.Exit(2)
		}
		o.concs = append(o.concs, c)
	}
	h := &harness{opt: o}
	// Children are always stopped: on return, on a signal, and by a
	// watchdog that bounds the whole run.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sigs
		fmt.Fprintln(os.Stderr, "loadtest: stopping on", s)
		h.stopAll()
		os.Exit(1)
	}()
	limit := pick(o.quick, 5*time.Minute, 30*time.Minute)
	go func() {
		time.Sleep(limit)
		fmt.Fprintln(os.Stderr, "loadtest: watchdog: run exceeded", limit)
		h.stopAll()
		os.Exit(1)
	}()
	err := h.run()
	h.stopAll()
	if !o.keep && h.ownWork {
		os.RemoveAll(h.opt.work)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

// commaSet is the set of a comma-separated list; nil for "".
func commaSet(list string) map[string]bool {
	if strings.TrimSpace(list) == "" {
		return nil
	}
	set := map[string]bool{}
	for _, f := range strings.Split(list, ",") {
		set[strings.TrimSpace(f)] = true
	}
	return set
}

func pick[T any](quick bool, q, full T) T {
	if quick {
		return q
	}
	return full
}

// workload is one URL and the exact body it must answer.
type workload struct {
	key   string // for -works
	name  string
	https bool
	file  string
	body  []byte
	url   string
	// newConn: every request opens its own connection (for HTTPS through
	// a proxy: CONNECT and a TLS handshake each time); resume: the client
	// offers the TLS session it was last given. Opt-in (-works).
	newConn, resume bool
}

type harness struct {
	opt     options
	ownWork bool
	bodies  string
	upCA    string
	upKind  string
	upHTTP  string
	upHTTPS string
	works   []*workload

	mu    sync.Mutex
	procs []*proc
}

func (h *harness) log(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "loadtest: "+format+"\n", args...)
}

func (h *harness) run() error {
	started := time.Now()
	if h.opt.work == "" {
		d, err := os.MkdirTemp("", "cassetteproxy-bench-")
		if err != nil {
			return err
		}
		h.opt.work, h.ownWork = d, true
	}
	if err := os.MkdirAll(h.opt.work, 0o755); err != nil {
		return err
	}
	os.Chmod(h.opt.work, 0o755) // nginx workers (user nobody) read the bodies
	for _, b := range []string{"cassetteproxy", "ref-forward", "ref-memory"} {
		if _, err := os.Stat(filepath.Join(h.opt.bin, b)); err != nil {
			return fmt.Errorf("%s not found in -bin %s: build it first (bench/run.sh does)", b, h.opt.bin)
		}
	}
	if err := h.writeBodies(); err != nil {
		return err
	}
	if err := h.startUpstream(); err != nil {
		return err
	}
	for _, w := range []*workload{
		{key: "http1k", name: "HTTP 1 KB", file: "1k.json"},
		{key: "http50k", name: "HTTP 50 KB", file: "50k.json"},
		{key: "https1k", name: "HTTPS 1 KB", https: true, file: "1k.json"},
		{key: "https50k", name: "HTTPS 50 KB", https: true, file: "50k.json"},
		// Opt-in: a connection per request (handshakes per second).
		{key: "http1k-newconn", name: "HTTP 1 KB, new conn", file: "1k.json", newConn: true},
		{key: "https1k-newconn", name: "HTTPS 1 KB, new conn", https: true, file: "1k.json", newConn: true},
		{key: "https1k-resume", name: "HTTPS 1 KB, new conn, resumed", https: true, file: "1k.json", newConn: true, resume: true},
	} {
		if h.opt.works == nil && !w.newConn || h.opt.works[w.key] {
			h.works = append(h.works, w)
		}
	}
	if len(h.works) == 0 && h.opt.streams == 0 {
		return errors.New("-works names no workload (http1k, http50k, https1k, https50k, http1k-newconn, https1k-newconn, https1k-resume)")
	}
	for _, w := range h.works {
		b, err := os.ReadFile(filepath.Join(h.bodies, w.file))
		if err != nil {
			return err
		}
		w.body = b
		if w.https {
			w.url = "https://" + h.upHTTPS + "/" + w.file
		} else {
			w.url = "http://" + h.upHTTP + "/" + w.file
		}
	}
	rep := &report{opt: h.opt, upstream: h.upKind, works: h.works}

	if len(h.works) > 0 && (h.opt.phases == nil || h.opt.phases["record"]) {
		if err := h.recordPhase(rep); err != nil {
			return err
		}
	}
	if h.opt.streams > 0 && (h.opt.phases == nil || h.opt.phases["streams"]) {
		if err := h.streamsPhase(rep); err != nil {
			return err
		}
	}
	if len(h.works) > 0 && (h.opt.phases == nil || h.opt.phases["replay"]) {
		if err := h.replayPhase(rep); err != nil {
			return err
		}
	}
	rep.elapsed = time.Since(started)
	md := rep.markdown()
	fmt.Print(md)
	if h.opt.out != "" {
		if err := os.WriteFile(h.opt.out, []byte(md), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// recordPhase, upstream up: direct, forward ref and record, interleaved per
// cell so that the ratios compare runs seconds apart.
func (h *harness) recordPhase(rep *report) error {
	direct := &target{name: "direct", rootsFile: h.upCA}
	fwd, err := h.startRef("forward", "ref-forward", "-upstream-ca", h.upCA)
	if err != nil {
		return err
	}
	rec, err := h.startCassette("record", "record", filepath.Join(h.opt.work, "record.db"), "bench")
	if err != nil {
		return err
	}
	// One request per workload first: leaf certificates and upstream
	// connections exist before anything is measured.
	for _, t := range []*target{direct, fwd, rec} {
		if err := h.prime(t); err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
	}
	for round := range h.opt.rounds {
		for _, w := range h.works {
			for _, c := range h.opt.concs {
				for _, t := range append([]*target{direct}, pairOrder(round, fwd, rec)...) {
					rep.add(h.cell(t, w, c))
				}
			}
		}
	}
	if bad := h.badWork(); bad != nil {
		rep.badRecord = h.badInput(rec, bad)
		rep.badForward = h.badInput(fwd, bad)
	}
	rep.recordRSS, rep.forwardRSS = rec.p.peakRSS(), fwd.p.peakRSS()
	rep.recordAnon, rep.recordFile = rec.p.rssParts()
	h.stop(rec.p)
	h.stop(fwd.p)
	rep.recordDB = dbStats(filepath.Join(h.opt.work, "record.db"), h.opt.bin, h.opt.work, "bench")
	return nil
}

// replayPhase records the replay cassette, stops the upstream, then
// measures the memory ref and replay, interleaved.
func (h *harness) replayPhase(rep *report) error {
	// The replay cassette: one recording of each URL, made by cassetteproxy
	// itself, in its own store.
	replayDB := filepath.Join(h.opt.work, "replay.db")
	mk, err := h.startCassette("record", "record-for-replay", replayDB, "replay")
	if err != nil {
		return err
	}
	if err := h.prime(mk); err != nil {
		return fmt.Errorf("recording the replay cassette: %w", err)
	}
	h.stop(mk.p)

	// Upstream stopped: memory ref and replay, interleaved.
	h.stopUpstream()
	mem, err := h.startRef("memory", "ref-memory", "-bodies", h.bodies)
	if err != nil {
		return err
	}
	rep2, err := h.startCassette("replay", "replay", replayDB, "replay")
	if err != nil {
		return err
	}
	for _, t := range []*target{mem, rep2} {
		if err := h.prime(t); err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
	}
	for round := range h.opt.rounds {
		for _, w := range h.works {
			for _, c := range h.opt.concs {
				for _, t := range pairOrder(round, mem, rep2) {
					rep.add(h.cell(t, w, c))
				}
			}
		}
	}
	if bad := h.badWork(); bad != nil {
		rep.badReplay = h.badInput(rep2, bad)
		rep.badMemory = h.badInput(mem, bad)
	}
	rep.replayRSS, rep.memoryRSS = rep2.p.peakRSS(), mem.p.peakRSS()
	rep.replayAnon, rep.replayFile = rep2.p.rssParts()
	return nil
}

// pairOrder is the order a round measures a reference and cassetteproxy
// in: the reference first in even rounds, second in odd ones, so a machine
// that speeds up or slows down within a round favours neither.
func pairOrder(round int, ref, ours *target) []*target {
	if round%2 == 1 {
		return []*target{ours, ref}
	}
	return []*target{ref, ours}
}

// badWork is the workload the bad-input run uses (HTTP 1 KB), nil when
// -works left it out.
func (h *harness) badWork() *workload {
	for _, w := range h.works {
		if w.key == "http1k" {
			return w
		}
	}
	return nil
}

// prime sends one request per workload through t and checks the answer.
func (h *harness) prime(t *target) error {
	for _, w := range h.works {
		var lastErr error
		for try := 0; try < 3; try++ {
			c := t.client(w)
			lastErr = fetch(c, w)
			c.CloseIdleConnections()
			if lastErr == nil {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if lastErr != nil {
			return fmt.Errorf("%s: %w", w.name, lastErr)
		}
	}
	return nil
}

// writeBodies writes the two LLM-style JSON answers and the upstream's TLS
// material.
func (h *harness) writeBodies() error {
	h.bodies = filepath.Join(h.opt.work, "bodies")
	if err := os.MkdirAll(h.bodies, 0o755); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(7, 11))
	for name, size := range map[string]int{"1k.json": 1024, "50k.json": 50 * 1024} {
		if err := os.WriteFile(filepath.Join(h.bodies, name), llmJSON(rng, size), 0o644); err != nil {
			return err
		}
	}
	ca, err := benchutil.NewCA("bench upstream CA")
	if err != nil {
		return err
	}
	certPEM, keyPEM, _, err := ca.ServerCert()
	if err != nil {
		return err
	}
	h.upCA = filepath.Join(h.opt.work, "upstream-ca.pem")
	if err := os.WriteFile(h.upCA, ca.CertPEM, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(h.opt.work, "server.pem"), certPEM, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(h.opt.work, "server-key.pem"), keyPEM, 0o644)
}

var words = strings.Fields(`the model returned a tool call with arguments for search and the agent read
results from the index then summarized each document into a short answer citing sources where the query
matched titles and abstracts of papers about retrieval augmented generation latency budgets caching and
evaluation of large language models on benchmarks with careful analysis of errors failures retries timeouts`)

// llmJSON is a chat-completion-shaped JSON document of exactly size bytes.
func llmJSON(rng *rand.Rand, size int) []byte {
	head := `{"id":"chatcmpl-9xYzBench0001","object":"chat.completion","created":1718000000,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"`
	tail := `"},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":812,"completion_tokens":%5d,"total_tokens":%5d},"system_fingerprint":"fp_bench"}`
	tail = fmt.Sprintf(tail, size/4, size/4+812) // fixed width, space-padded: valid JSON at any size
	n := size - len(head) - len(tail)
	var sb strings.Builder
	for sb.Len() < n {
		w := words[rng.IntN(len(words))]
		if sb.Len() > 0 {
			if rng.IntN(12) == 0 {
				sb.WriteString(". ")
			} else {
				sb.WriteByte(' ')
			}
		}
		sb.WriteString(w)
	}
	content := sb.String()[:n]
	return []byte(head + content + tail)
}

// ---- processes ----

type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func (h *harness) spawn(name string, argv []string, logName string) (*proc, error) {
	logf, err := os.Create(filepath.Join(h.opt.work, logName))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// No proxy variables may reach a proxy: it would proxy to itself.
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !strings.HasSuffix(strings.ToLower(k), "_proxy") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); logf.Close(); close(p.done) }()
	h.mu.Lock()
	h.procs = append(h.procs, p)
	h.mu.Unlock()
	return p, nil
}

// stop ends one child with SIGTERM (a proxy flushes its recordings), then
// SIGKILL after 10 s.
func (h *harness) stop(p *proc) {
	if p == nil || !p.alive() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (h *harness) stopAll() {
	h.mu.Lock()
	ps := append([]*proc(nil), h.procs...)
	h.mu.Unlock()
	for i := len(ps) - 1; i >= 0; i-- {
		h.stop(ps[i])
	}
}

// waitReady waits for a ready file (bounded) and returns its first line.
func waitReady(p *proc, file string) (string, error) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(file); err == nil && len(strings.TrimSpace(string(b))) > 0 {
			return strings.TrimSpace(string(b)), nil
		}
		if !p.alive() {
			return "", fmt.Errorf("%s exited: %v (see its log)", p.name, p.err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "", fmt.Errorf("%s not ready after 30s", p.name)
}

func (h *harness) startRef(name, binName string, extra ...string) (*target, error) {
	ready := filepath.Join(h.opt.work, name+".ready")
	caOut := filepath.Join(h.opt.work, name+"-ca.pem")
	argv := append([]string{filepath.Join(h.opt.bin, binName), "-listen", "127.0.0.1:0", "-ready-file", ready, "-ca-out", caOut}, extra...)
	p, err := h.spawn(name, argv, name+".log")
	if err != nil {
		return nil, err
	}
	addr, err := waitReady(p, ready)
	if err != nil {
		return nil, err
	}
	return newTarget(name+" ref", addr, p, caOut)
}

func (h *harness) startCassette(mode, name, db, cassette string, extra ...string) (*target, error) {
	ready := filepath.Join(h.opt.work, name+".ready")
	home := filepath.Join(h.opt.work, "home")
	argv := []string{filepath.Join(h.opt.bin, "cassetteproxy"), "--db", db, "--home", home,
		"serve", "--mode", mode, "--cassette", cassette, "--listen", "127.0.0.1:0", "--ready-file", ready}
	if mode != "replay" {
		argv = append(argv, "--upstream-ca", h.upCA)
	}
	argv = append(argv, extra...)
	p, err := h.spawn(name, argv, name+".log")
	if err != nil {
		return nil, err
	}
	addr, err := waitReady(p, ready)
	if err != nil {
		return nil, err
	}
	return newTarget("cassetteproxy "+mode, addr, p, filepath.Join(home, "ca.pem"))
}

// ---- upstream ----

func (h *harness) startUpstream() error {
	if h.opt.nginx != "off" {
		if path, err := exec.LookPath("nginx"); err == nil {
			if err := h.startNginx(path); err == nil {
				return nil
			} else {
				h.log("nginx failed (%v); using the Go upstream", err)
			}
		}
	}
	ready := filepath.Join(h.opt.work, "upstream.ready")
	self, err := os.Executable()
	if err != nil {
		return err
	}
	p, err := h.spawn("upstream", []string{self, "-serve-upstream", "-up-dir", h.opt.work, "-up-ready", ready}, "upstream.log")
	if err != nil {
		return err
	}
	if _, err := waitReady(p, ready); err != nil {
		return err
	}
	b, _ := os.ReadFile(ready)
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return fmt.Errorf("upstream ready file %q", b)
	}
	h.upHTTP, h.upHTTPS, h.upKind = f[0], f[1], "Go net/http server (nginx not found)"
	return nil
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func (h *harness) startNginx(path string) error {
	prefix := filepath.Join(h.opt.work, "nginx")
	if err := os.MkdirAll(filepath.Join(prefix, "tmp"), 0o755); err != nil {
		return err
	}
	a1, err := freePort()
	if err != nil {
		return err
	}
	a2, err := freePort()
	if err != nil {
		return err
	}
	conf := fmt.Sprintf(`worker_processes auto;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  default_type application/json;
  keepalive_requests 10000000;
  keepalive_timeout 120s;
  client_body_temp_path %[1]s/tmp/body;
  proxy_temp_path %[1]s/tmp/proxy;
  fastcgi_temp_path %[1]s/tmp/fastcgi;
  uwsgi_temp_path %[1]s/tmp/uwsgi;
  scgi_temp_path %[1]s/tmp/scgi;
  server {
    listen %[2]s;
    listen %[3]s ssl;
    ssl_certificate %[4]s/server.pem;
    ssl_certificate_key %[4]s/server-key.pem;
    root %[5]s;
  }
}
`, prefix, a1, a2, h.opt.work, h.bodies)
	cf := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		return err
	}
	p, err := h.spawn("nginx", []string{path, "-p", prefix, "-e", filepath.Join(prefix, "error.log"), "-c", cf, "-g", "daemon off;"}, "nginx.log")
	if err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, a := range []string{a1, a2} {
		for {
			c, err := net.DialTimeout("tcp", a, time.Second)
			if err == nil {
				c.Close()
				break
			}
			if !p.alive() || time.Now().After(deadline) {
				h.stop(p)
				eb, _ := os.ReadFile(filepath.Join(prefix, "error.log"))
				return fmt.Errorf("nginx did not start: %s", strings.TrimSpace(string(eb)))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	out, _ := exec.Command(path, "-v").CombinedOutput()
	h.upHTTP, h.upHTTPS, h.upKind = a1, a2, strings.TrimSpace(strings.TrimPrefix(string(out), "nginx version: "))
	return nil
}

func (h *harness) stopUpstream() {
	h.mu.Lock()
	ps := append([]*proc(nil), h.procs...)
	h.mu.Unlock()
	for _, p := range ps {
		if p.name == "upstream" || p.name == "nginx" {
			h.stop(p)
		}
	}
	// The upstream must really be gone: replay is measured without it.
	for _, a := range []string{h.upHTTP, h.upHTTPS} {
		for i := 0; i < 100; i++ {
			c, err := net.DialTimeout("tcp", a, 100*time.Millisecond)
			if err != nil {
				break
			}
			c.Close()
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// serveUpstream is the Go fallback upstream: the same files as nginx, from
// memory, over HTTP and HTTPS, keep-alive.
func serveUpstream(dir, ready string) error {
	bodies := map[string][]byte{}
	files, _ := filepath.Glob(filepath.Join(dir, "bodies", "*"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		bodies["/"+filepath.Base(f)] = b
	}
	if len(bodies) == 0 {
		return errors.New("no bodies in " + dir)
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := bodies[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", fmt.Sprint(len(b)))
		w.Write(b)
	})
	return listenUpstreams(handler, dir, ready)
}

// listenUpstreams serves handler over HTTP and HTTPS (HTTP/1.1 only, like
// nginx without "http2": every proxy then talks HTTP/1.1 upstream, whatever
// its transport would negotiate) on two loopback ports, written to ready
// as "HTTPADDR HTTPSADDR" once both listen.
func listenUpstreams(handler http.Handler, dir, ready string) error {
	ln1, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv1 := &http.Server{Handler: handler, ReadHeaderTimeout: 30 * time.Second}
	srv2 := &http.Server{Handler: handler, ReadHeaderTimeout: 30 * time.Second, TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){}}
	errc := make(chan error, 2)
	go func() { errc <- srv1.Serve(ln1) }()
	go func() {
		errc <- srv2.ServeTLS(ln2, filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem"))
	}()
	if err := benchutil.WriteFileAtomic(ready, []byte(ln1.Addr().String()+" "+ln2.Addr().String()+"\n")); err != nil {
		return err
	}
	return <-errc
}
