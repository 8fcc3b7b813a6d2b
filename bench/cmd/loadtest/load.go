package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// target is where the clients send their requests: through a proxy, or
// straight to the upstream (proxy nil).
type target struct {
	name      string
	proxy     *url.URL
	roots     *x509.CertPool
	p         *proc
	rootsFile string
}

func newTarget(name, addr string, p *proc, caFiles ...string) (*target, error) {
	u, err := url.Parse("http://" + addr)
	if err != nil {
		return nil, err
	}
	return &target{name: name, proxy: u, p: p, rootsFile: strings.Join(caFiles, ",")}, nil
}

// pool is the trust a client needs for this target: the upstream's CA
// (direct) or the proxy's MITM CA.
func (t *target) pool() *x509.CertPool {
	if t.roots != nil {
		return t.roots
	}
	pool := x509.NewCertPool()
	for _, f := range strings.Split(t.rootsFile, ",") {
		if b, err := os.ReadFile(f); err == nil {
			pool.AppendCertsFromPEM(b)
		}
	}
	t.roots = pool
	return pool
}

// client is one HTTP/1.1 client holding one connection at a time: kept
// alive, or (w.newConn) a new one for every request: through a proxy, its
// own CONNECT and TLS handshake each time. With w.resume the client keeps
// TLS sessions and offers one on every new connection.
func (t *target) client(w *workload) *http.Client {
	tc := &tls.Config{RootCAs: t.pool()}
	if w.resume {
		tc.ClientSessionCache = tls.NewLRUClientSessionCache(4)
	}
	tr := &http.Transport{
		TLSClientConfig:     tc,
		DisableKeepAlives:   w.newConn,
		MaxIdleConnsPerHost: 1,
		MaxConnsPerHost:     1,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
		IdleConnTimeout:     30 * time.Second,
	}
	if t.proxy != nil {
		tr.Proxy = http.ProxyURL(t.proxy)
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// fetch does one GET and checks the body byte for byte.
func fetch(c *http.Client, w *workload) error {
	resp, err := c.Get(w.url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d: %.200s", resp.StatusCode, b)
	}
	if !bytes.Equal(b, w.body) {
		return fmt.Errorf("body differs (%d bytes, want %d)", len(b), len(w.body))
	}
	return nil
}

// result is one cell of the table.
type result struct {
	target    string
	work      string
	conc      int
	reqs      int64
	errs      int64
	firstErr  string
	rps       float64
	p50, p99  time.Duration
	roundP99s []time.Duration // every round's p99, in round order (report.add)
	roundRPS  []float64       // every round's req/s, in round order (report.add)
	cpuPerReq time.Duration   // proxy process user+system time per request; 0 without a process
	sysPerReq time.Duration   // the system part of cpuPerReq
	rss       int64           // VmHWM after the cell, bytes
}

// loadRun is n clients hammering one workload; bad clients (if any) run
// beside them for the same time.
type loadRun struct {
	good, bad       int
	warmup, measure time.Duration
}

// cell runs the standard measurement: conc good clients, no bad ones.
func (h *harness) cell(t *target, w *workload, conc int) result {
	r := runLoad(t, w, loadRun{good: conc, warmup: h.opt.warmup, measure: h.opt.duration}, nil)
	h.log("%-22s %-12s c=%-3d %8.0f req/s p50 %6.2fms p99 %6.2fms cpu %3.0fµs/req (sys %2.0f) errors %d %s", t.name, w.name, conc, r.rps,
		ms(r.p50), ms(r.p99), µs(r.cpuPerReq), µs(r.sysPerReq), r.errs, r.firstErr)
	return r
}

func runLoad(t *target, w *workload, lr loadRun, badFn func(stop *atomic.Bool) int64) result {
	const (
		warming int32 = iota
		measuring
		stopped
	)
	var phase atomic.Int32
	type acc struct {
		lat      []time.Duration
		errs     int64
		firstErr string
	}
	accs := make([]acc, lr.good)
	var wg sync.WaitGroup
	var stopBad atomic.Bool
	var badCount atomic.Int64
	for i := 0; i < lr.bad; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			badCount.Add(badFn(&stopBad))
		}()
	}
	clients := make([]*http.Client, lr.good)
	for i := range lr.good {
		clients[i] = t.client(w)
		wg.Add(1)
		go func(a *acc, c *http.Client) {
			defer wg.Done()
			a.lat = make([]time.Duration, 0, 4096)
			for {
				ph := phase.Load()
				if ph == stopped {
					return
				}
				t0 := time.Now()
				err := fetch(c, w)
				d := time.Since(t0)
				if phase.Load() != measuring || ph != measuring {
					if err != nil {
						time.Sleep(time.Millisecond)
					}
					continue
				}
				if err != nil {
					a.errs++
					if a.firstErr == "" {
						a.firstErr = err.Error()
					}
					time.Sleep(time.Millisecond) // no hot loop against a dead proxy
					continue
				}
				a.lat = append(a.lat, d)
			}
		}(&accs[i], clients[i])
	}
	time.Sleep(lr.warmup)
	user0, sys0 := cpuTime(t.p)
	start := time.Now()
	phase.Store(measuring)
	time.Sleep(lr.measure)
	phase.Store(stopped)
	elapsed := time.Since(start)
	user1, sys1 := cpuTime(t.p)
	stopBad.Store(true)
	wg.Wait()
	for _, c := range clients {
		c.CloseIdleConnections()
	}
	r := result{target: t.name, work: w.name, conc: lr.good}
	var all []time.Duration
	for _, a := range accs {
		all = append(all, a.lat...)
		r.errs += a.errs
		if r.firstErr == "" {
			r.firstErr = a.firstErr
		}
	}
	r.reqs = int64(len(all))
	r.rps = float64(r.reqs) / elapsed.Seconds()
	if len(all) > 0 {
		slices.Sort(all)
		r.p50 = all[len(all)*50/100]
		r.p99 = all[min(len(all)-1, len(all)*99/100)]
	}
	if t.p != nil && r.reqs > 0 && user1 >= user0 && sys1 >= sys0 {
		r.cpuPerReq = (user1 - user0 + sys1 - sys0) / time.Duration(r.reqs)
		r.sysPerReq = (sys1 - sys0) / time.Duration(r.reqs)
	}
	if t.p != nil {
		r.rss = t.p.peakRSS()
	}
	if badFn != nil {
		r.firstErr = strings.TrimSpace(r.firstErr + fmt.Sprintf(" (bad requests sent: %d)", badCount.Load()))
	}
	return r
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// µs is d in microseconds, for the log and the report.
func µs(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 }

// cpuTime is the user and system time of a process from /proc/PID/stat
// (utime, stime: clock ticks of 10 ms, USER_HZ = 100 on Linux).
func cpuTime(p *proc) (user, sys time.Duration) {
	if p == nil || p.cmd.Process == nil {
		return 0, 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0, 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')') // the command name may hold spaces
	if i < 0 {
		return 0, 0
	}
	f := strings.Fields(s[i+1:])
	// Fields after ")": state(3) ... utime is field 14, stime 15 overall.
	if len(f) < 13 {
		return 0, 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut) * 10 * time.Millisecond, time.Duration(st) * 10 * time.Millisecond
}

// peakRSS is VmHWM from /proc/PID/status, in bytes.
func (p *proc) peakRSS() int64 { return p.status("VmHWM:") }

// rssParts is the process's resident memory now: anonymous (heap, stacks)
// and file-backed (for cassetteproxy, mostly the bbolt file's mmap).
func (p *proc) rssParts() (anon, file int64) { return p.status("RssAnon:"), p.status("RssFile:") }

// status reads one kB field of /proc/PID/status, in bytes.
func (p *proc) status(field string) int64 {
	if p == nil || p.cmd.Process == nil {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
