// Command h2bench measures replay over HTTP/2 — many concurrent streams on
// one connection — against HTTP/1.1 replay, with nghttp2's h2load as the
// client (Debian: nghttp2-client).
//
// h2load cannot speak to a proxy: it has no CONNECT. So h2bench puts a
// CONNECT forwarder in front of the proxy: each connection h2load opens to
// the forwarder (h2load --connect-to) becomes a CONNECT tunnel to the URL's
// authority through cassetteproxy, and h2load's TLS handshake, ALPN (h2 or
// http/1.1) and requests then run inside the tunnel against the proxy's
// MITM, exactly as an HTTPS_PROXY client's would. The forwarder only
// splices bytes; it parses nothing after the CONNECT answer.
//
// It records one answer from a local TLS upstream (cassetteproxy serve
// --mode record), stops the upstream, serves the cassette with --mode
// replay, and runs h2load over the tunnel in each shape, in rounds,
// alternating the order. Usage (bench/h2.sh builds both binaries):
//
//	h2bench -bin bin/cassetteproxy [-n 100000] [-rounds 3] [-size 1024]
package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	bin := flag.String("bin", "bin/cassetteproxy", "the cassetteproxy binary")
	n := flag.Int("n", 100000, "requests per h2load run")
	rounds := flag.Int("rounds", 3, "rounds; each runs every shape once, the order alternating")
	size := flag.Int("size", 1024, "bytes of the recorded JSON answer")
	h2load := flag.String("h2load", "h2load", "the h2load binary")
	flag.Parse()
	if err := run(*bin, *h2load, *n, *rounds, *size); err != nil {
		fmt.Fprintln(os.Stderr, "h2bench:", err)
		os.Exit(1)
	}
}

// shape is one h2load run: its flags and what the table calls it.
type shape struct {
	name string
	args []string
}

func run(bin, h2load string, n, rounds, size int) error {
	if _, err := exec.LookPath(h2load); err != nil {
		return fmt.Errorf("%s not found: apt-get install nghttp2-client", h2load)
	}
	dir, err := os.MkdirTemp("", "h2bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	env := append(os.Environ(), "CASSETTEPROXY_HOME="+filepath.Join(dir, "home"), "CASSETTEPROXY_DB="+filepath.Join(dir, "c.db"))

	// Record one answer.
	body := `{"id":"chatcmpl-1","object":"chat.completion","choices":[{"message":{"role":"assistant","content":"` +
		strings.Repeat("x", max(0, size-100)) + `"}}]}`
	up := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, body)
	}))
	upCA := filepath.Join(dir, "upstream.pem")
	if err := os.WriteFile(upCA, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: up.Certificate().Raw}), 0o600); err != nil {
		return err
	}
	target := up.URL + "/v1/chat/completions"
	authority := strings.TrimPrefix(up.URL, "https://")
	rec, err := serve(bin, env, dir, "--mode", "record", "--cassette", "h2", "--upstream-ca", upCA)
	if err != nil {
		return err
	}
	if err := recordOne(rec, filepath.Join(dir, "home", "ca.pem"), target, body); err != nil {
		rec.stop()
		return err
	}
	if err := rec.stop(); err != nil {
		return err
	}
	up.Close() // replay never needs it

	rep, err := serve(bin, env, dir, "--mode", "replay", "--cassette", "h2")
	if err != nil {
		return err
	}
	defer rep.stop()
	fwd, err := forwarder(rep.addr, authority)
	if err != nil {
		return err
	}
	defer fwd.Close()

	base := []string{"-n", strconv.Itoa(n), "--connect-to=" + fwd.Addr().String()}
	shapes := []shape{
		{"HTTP/2, 1 connection × 100 streams", []string{"-c", "1", "-m", "100"}},
		{"HTTP/2, 4 connections × 25 streams", []string{"-c", "4", "-m", "25"}},
		{"HTTP/1.1, 100 connections", []string{"--h1", "-c", "100"}},
		{"HTTP/1.1, 16 connections", []string{"--h1", "-c", "16"}},
	}
	results := make([][]result, len(shapes))
	for r := range rounds {
		order := make([]int, len(shapes))
		for i := range order {
			order[i] = i
		}
		if r%2 == 1 {
			slices.Reverse(order)
		}
		for _, i := range order {
			args := append(append(append([]string{}, base...), shapes[i].args...), "https://"+authority+"/v1/chat/completions")
			before, fwdBefore := cpuTicks(rep.cmd.Process.Pid), cpuTicks(os.Getpid())
			res, err := h2loadRun(h2load, args)
			if err != nil {
				return fmt.Errorf("%s: %w", shapes[i].name, err)
			}
			perReq := func(ticks int64) float64 { return float64(ticks) / 100 * 1e6 / float64(n) } // USER_HZ is 100 on Linux
			res.cpuPerReq = perReq(cpuTicks(rep.cmd.Process.Pid) - before)
			res.fwdPerReq = perReq(cpuTicks(os.Getpid()) - fwdBefore)
			fmt.Fprintf(os.Stderr, "round %d  %-36s %9.0f req/s  %s  mean %s  %d failed  cpu %.0fµs/req (forwarder %.0f)\n",
				r+1, shapes[i].name, res.rps, res.proto, res.mean, res.failed, res.cpuPerReq, res.fwdPerReq)
			results[i] = append(results[i], res)
		}
	}
	fmt.Printf("Machine: %d CPUs, %s/%s; h2load %s; %d requests per run, %d rounds (req/s, latency and CPU the median round's; the ratio the median of each round's); answer %d B JSON, replayed through a CONNECT tunnel (TLS, the proxy's MITM).\n\n",
		runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, h2loadVersion(h2load), n, rounds, len(body))
	fmt.Println("| client shape | protocol | req/s | vs HTTP/1.1 × 100 | mean latency | failed | proxy CPU µs/req | forwarder CPU µs/req |")
	fmt.Println("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
	const ref = 2 // HTTP/1.1, 100 connections: as many requests in flight as the h2 shapes
	for i, s := range shapes {
		m := median(results[i])
		failed := 0
		ratios := make([]float64, len(results[i]))
		for r, res := range results[i] {
			failed += res.failed
			ratios[r] = res.rps / results[ref][r].rps // the same round: the same machine
		}
		slices.Sort(ratios)
		fmt.Printf("| %s | %s | %.0f | %.2f× | %s | %d | %.0f | %.0f |\n", s.name, m.proto, m.rps, ratios[len(ratios)/2], m.mean, failed, m.cpuPerReq, m.fwdPerReq)
	}
	return nil
}

type result struct {
	rps       float64
	failed    int
	proto     string
	mean      string
	cpuPerReq float64 // the proxy's
	fwdPerReq float64 // the forwarder's (this process)
}

func median(rs []result) result {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b result) int {
		switch {
		case a.rps < b.rps:
			return -1
		case a.rps > b.rps:
			return 1
		}
		return 0
	})
	return s[len(s)/2]
}

var (
	rpsRE      = regexp.MustCompile(`finished in [^,]+, ([0-9.]+) req/s`)
	requestsRE = regexp.MustCompile(`requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored`)
	statusRE   = regexp.MustCompile(`status codes: (\d+) 2xx`)
	protoRE    = regexp.MustCompile(`Application protocol: (\S+)`)
	latencyRE  = regexp.MustCompile(`time for request:\s+\S+\s+\S+\s+(\S+)`)
)

// h2loadRun runs h2load and reads its summary. Every request must have
// been answered 2xx: a replay that blocked something measures nothing.
func h2loadRun(h2load string, args []string) (result, error) {
	out, err := exec.Command(h2load, args...).CombinedOutput()
	text := string(out)
	if err != nil {
		return result{}, fmt.Errorf("h2load %s: %v\n%s", strings.Join(args, " "), err, text)
	}
	m := rpsRE.FindStringSubmatch(text)
	req := requestsRE.FindStringSubmatch(text)
	st := statusRE.FindStringSubmatch(text)
	if m == nil || req == nil || st == nil {
		return result{}, fmt.Errorf("h2load's output not understood:\n%s", text)
	}
	var r result
	r.rps, _ = strconv.ParseFloat(m[1], 64)
	failed, _ := strconv.Atoi(req[2])
	errored, _ := strconv.Atoi(req[3])
	ok, _ := strconv.Atoi(req[1])
	twoxx, _ := strconv.Atoi(st[1])
	r.failed = failed + errored + (ok - twoxx)
	if p := protoRE.FindStringSubmatch(text); p != nil {
		r.proto = p[1]
	}
	if l := latencyRE.FindStringSubmatch(text); l != nil {
		r.mean = l[1]
	}
	if twoxx == 0 {
		return r, fmt.Errorf("no request answered 2xx:\n%s", text)
	}
	return r, nil
}

func h2loadVersion(h2load string) string {
	out, _ := exec.Command(h2load, "--version").Output()
	return strings.TrimSpace(strings.TrimPrefix(string(out), "h2load "))
}

// cpuTicks is a process's user+system time in clock ticks (/proc/PID/stat).
func cpuTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(fields) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(fields[11], 10, 64)
	sys, _ := strconv.ParseInt(fields[12], 10, 64)
	return u + sys
}

// forwarder accepts connections and turns each into a CONNECT tunnel to
// authority through the proxy at proxyAddr, then splices bytes both ways.
func forwarder(proxyAddr, authority string) (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go tunnel(c, proxyAddr, authority)
		}
	}()
	return ln, nil
}

func tunnel(c net.Conn, proxyAddr, authority string) {
	defer c.Close()
	p, err := net.Dial("tcp", proxyAddr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "forwarder:", err)
		return
	}
	defer p.Close()
	fmt.Fprintf(p, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", authority, authority)
	br := bufio.NewReader(p)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil || resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, "forwarder: CONNECT:", resp, err)
		return
	}
	done := make(chan struct{})
	go func() {
		io.Copy(p, c)
		if tc, ok := p.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		close(done)
	}()
	io.Copy(c, br) // br: whatever the proxy sent right after its answer too
	<-done
}

// proc is a running cassetteproxy serve.
type proc struct {
	cmd    *exec.Cmd
	addr   string
	exited chan error
	once   sync.Once
	err    error
}

func serve(bin string, env []string, dir string, args ...string) (*proc, error) {
	ready := filepath.Join(dir, "ready")
	os.Remove(ready)
	log, err := os.Create(filepath.Join(dir, "serve.log"))
	if err != nil {
		return nil, err
	}
	defer log.Close()
	cmd := exec.Command(bin, append([]string{"serve", "--listen", "127.0.0.1:0", "--ready-file", ready}, args...)...)
	cmd.Env, cmd.Stderr = env, log
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, exited: make(chan error, 1)}
	go func() { p.exited <- cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(ready); err == nil && len(b) > 0 {
			p.addr = strings.TrimSpace(string(b))
			return p, nil
		}
		select {
		case err := <-p.exited:
			b, _ := os.ReadFile(log.Name())
			return nil, fmt.Errorf("serve %v exited: %v\n%s", args, err, b)
		case <-time.After(10 * time.Millisecond): // polling the ready file, the readiness signal serve documents
		}
	}
	cmd.Process.Kill()
	return nil, fmt.Errorf("serve %v: not ready after 30s", args)
}

// stop is Ctrl-C: the recording is committed before serve exits. A second
// stop returns the first one's answer.
func (p *proc) stop() error {
	p.once.Do(func() {
		p.cmd.Process.Signal(syscall.SIGINT)
		if err := <-p.exited; err != nil {
			p.err = fmt.Errorf("serve: %w", err)
		}
	})
	return p.err
}

func recordOne(p *proc, caFile, target, want string) error {
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	proxyURL, _ := url.Parse("http://" + p.addr)
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL), TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Get(target)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(got) != want {
		return fmt.Errorf("recording: %d %.100s", resp.StatusCode, got)
	}
	return nil
}
