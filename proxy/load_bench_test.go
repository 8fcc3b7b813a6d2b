package proxy_test

// In-process load benchmarks: a real proxy.Server on loopback, keep-alive
// clients, run with -cpuprofile to see where a request's time goes. The
// harness in bench/ measures the same paths as separate processes.
//
//	go test -run '^$' -bench 'Serve' -cpuprofile cpu.out ./proxy/
//	go test -run '^$' -bench 'ReplayCassette' -benchtime 20000x ./proxy/

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/elazarl/goproxy"

	"github.com/cassetteproxy/cassetteproxy/internal/textlog"
	"github.com/cassetteproxy/cassetteproxy/match"
	"github.com/cassetteproxy/cassetteproxy/proxy"
	"github.com/cassetteproxy/cassetteproxy/redact"
	"github.com/cassetteproxy/cassetteproxy/store"
)

var benchWords = strings.Fields(`the model returned a tool call with arguments for search and the agent read
results from the index then summarized each document into a short answer citing sources where the query
matched titles and abstracts of papers about retrieval augmented generation latency budgets caching`)

// llmBody is a chat-completion-shaped JSON body of exactly size bytes.
func llmBody(seed uint64, size int) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	head := `{"id":"chatcmpl-bench","object":"chat.completion","model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"`
	tail := `"},"finish_reason":"stop"}],"usage":{"prompt_tokens":812,"completion_tokens":256}}`
	var sb strings.Builder
	for sb.Len() < size-len(head)-len(tail) {
		sb.WriteString(benchWords[rng.IntN(len(benchWords))])
		sb.WriteByte(' ')
	}
	return []byte(head + sb.String()[:size-len(head)-len(tail)] + tail)
}

// logToFile makes benchmark proxies log to a file, the way `serve 2>file` does.
var logToFile bool

func benchLog(b *testing.B) io.Writer {
	if !logToFile {
		return io.Discard
	}
	f, err := os.Create(filepath.Join(b.TempDir(), "proxy.log"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	return f
}

// BenchmarkServeReplayLogFile is BenchmarkServeReplay with the request log
// going to a file.
func BenchmarkServeReplayLogFile(b *testing.B) {
	logToFile = true
	defer func() { logToFile = false }()
	BenchmarkServeReplay(b)
}

type benchProxy struct {
	srv  *proxy.Server
	addr string
	ca   *x509.CertPool
}

// startBenchProxy runs a proxy.Server on loopback.
func startBenchProxy(b *testing.B, mode proxy.Mode, ins []store.Interaction, rec *store.Recorder, upstreamRoots *x509.CertPool) *benchProxy {
	b.Helper()
	ca, err := proxy.LoadOrCreateCA(filepath.Join(b.TempDir(), "home"))
	if err != nil {
		b.Fatal(err)
	}
	red, err := redact.New(redact.Config{Secret: []byte("bench-secret-0123456789abcdef012")})
	if err != nil {
		b.Fatal(err)
	}
	s, err := proxy.New(proxy.Config{Mode: mode, Cassette: "bench", Interactions: ins, Recorder: rec,
		Rules: match.DefaultRules(), Redactor: red, CA: ca, UpstreamRoots: upstreamRoots,
		// The CLI logs one line per request; so does the benchmark, with
		// serve's text handler, to nowhere (benchLog: to a file, as serve does).
		Logger: slog.New(textlog.New(benchLog(b), nil))})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go s.Serve(ln)
	b.Cleanup(func() { s.Shutdown(b.Context()) })
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return &benchProxy{srv: s, addr: ln.Addr().String(), ca: pool}
}

func (p *benchProxy) transport() *http.Transport {
	pu, _ := url.Parse("http://" + p.addr)
	return &http.Transport{Proxy: http.ProxyURL(pu), TLSClientConfig: &tls.Config{RootCAs: p.ca},
		MaxIdleConnsPerHost: 64, DisableCompression: true}
}

// drive runs b.N GETs from 16 keep-alive clients, checking every body, and
// reports req/s.
func drive(b *testing.B, tr *http.Transport, urls []string, want func(i int) []byte) {
	b.Helper()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	defer tr.CloseIdleConnections()
	var next atomic.Int64
	b.SetParallelism(max(1, 16/runtime.GOMAXPROCS(0))) // 16 clients
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		var buf bytes.Buffer
		for pb.Next() {
			i := int(next.Add(1)) % len(urls)
			resp, err := c.Get(urls[i])
			if err != nil {
				b.Error(err)
				return
			}
			buf.Reset()
			_, err = buf.ReadFrom(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 || !bytes.Equal(buf.Bytes(), want(i)) {
				b.Errorf("%s: status %d, %d bytes, err %v", urls[i], resp.StatusCode, buf.Len(), err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
	// Process CPU per request (clients, upstream and proxy together): less
	// sensitive than req/s to other work on a shared machine.
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// replayCassette records n interactions of bodySize-byte JSON answers over
// plain HTTP into a store, and loads them back the way the CLI does.
func replayCassette(b *testing.B, n, bodySize int, scheme string) (ins []store.Interaction, urls []string, bodies [][]byte, dbBytes int64) {
	b.Helper()
	dir := b.TempDir()
	st, err := store.Open(filepath.Join(dir, "c.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	rec := st.NewRecorder(store.RecorderOptions{MaxBatch: 1024})
	rules := match.DefaultRules()
	distinct := min(n, 64) // bodies repeat every 64 interactions (as tools' answers do), URLs never
	for i := range distinct {
		bodies = append(bodies, llmBody(uint64(i), bodySize))
	}
	for i := range n {
		u := fmt.Sprintf("%s://tool%d.bench.test/v1/items/%d?page=%d", scheme, i%8, i, i%5)
		in := store.Interaction{RecordedAt: time.Now(), Request: store.Request{Method: "GET", URL: u,
			Header: http.Header{"Accept": {"application/json"}, "User-Agent": {"bench/1"}}},
			Response: store.Response{Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: bodies[i%distinct]}}
		in.Key = rules.Key(&in.Request)
		if err := rec.Record("bench", in); err != nil {
			b.Fatal(err)
		}
		urls = append(urls, u)
	}
	if err := rec.Close(); err != nil {
		b.Fatal(err)
	}
	if ins, err = st.Interactions("bench"); err != nil || len(ins) != n {
		b.Fatalf("loaded %d of %d: %v", len(ins), n, err)
	}
	fi, err := os.Stat(filepath.Join(dir, "c.db"))
	if err != nil {
		b.Fatal(err)
	}
	return ins, urls, bodies, fi.Size()
}

// BenchmarkReplayCassette: replay req/s and store size as the cassette grows
// (1 KB JSON answers, every request a different interaction).
func BenchmarkReplayCassette(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 100_000} {
		b.Run(fmt.Sprintf("%dk", n/1000), func(b *testing.B) {
			ins, urls, bodies, size := replayCassette(b, n, 1024, "http")
			p := startBenchProxy(b, proxy.ModeReplay, ins, nil, nil)
			drive(b, p.transport(), urls, func(i int) []byte { return bodies[i%len(bodies)] })
			b.ReportMetric(float64(size), "store-B")
			b.ReportMetric(float64(size)/float64(n), "store-B/interaction")
		})
	}
}

// BenchmarkServeReplay: one URL per workload, replayed (the harness's cells).
func BenchmarkServeReplay(b *testing.B) {
	for _, c := range []struct {
		name   string
		scheme string
		size   int
	}{{"HTTP1K", "http", 1024}, {"HTTP50K", "http", 50 << 10}, {"HTTPS1K", "https", 1024}} {
		b.Run(c.name, func(b *testing.B) {
			ins, urls, bodies, _ := replayCassette(b, 1, c.size, c.scheme)
			p := startBenchProxy(b, proxy.ModeReplay, ins, nil, nil)
			drive(b, p.transport(), urls, func(int) []byte { return bodies[0] })
		})
	}
}

// BenchmarkServeMemoryRef is the reference for BenchmarkServeReplay: a bare
// goproxy answering from a map, in process, the same clients.
func BenchmarkServeMemoryRef(b *testing.B) {
	for _, c := range []struct {
		name   string
		scheme string
		size   int
	}{{"HTTP1K", "http", 1024}, {"HTTP50K", "http", 50 << 10}, {"HTTPS1K", "https", 1024}} {
		b.Run(c.name, func(b *testing.B) {
			body := llmBody(0, c.size)
			ca, err := proxy.LoadOrCreateCA(filepath.Join(b.TempDir(), "home"))
			if err != nil {
				b.Fatal(err)
			}
			gp := goproxy.NewProxyHttpServer()
			gp.Logger = log.New(io.Discard, "", 0)
			mitm := &goproxy.ConnectAction{Action: goproxy.ConnectMitm, TLSConfig: goproxy.TLSConfigFromCA(&ca.TLS)}
			gp.OnRequest().HandleConnectFunc(func(host string, _ *goproxy.ProxyCtx) (*goproxy.ConnectAction, string) { return mitm, host })
			gp.OnRequest().DoFunc(func(req *http.Request, _ *goproxy.ProxyCtx) (*http.Request, *http.Response) {
				return req, &http.Response{StatusCode: 200, ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{"Content-Type": {"application/json"}},
					Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)), Request: req}
			})
			srv := httptest.NewServer(gp)
			defer srv.Close()
			pool := x509.NewCertPool()
			pool.AddCert(ca.Cert)
			p := &benchProxy{addr: strings.TrimPrefix(srv.URL, "http://"), ca: pool}
			drive(b, p.transport(), []string{c.scheme + "://tool.bench.test/v1/a"}, func(int) []byte { return body })
		})
	}
}

// recordCases are the workloads of the record benchmarks and their
// reference. A unique case answers every request with a different body (an
// LLM's answers), so nothing is remembered from one answer to the next.
var recordCases = []struct {
	name   string
	tls    bool
	size   int
	unique bool
}{{"HTTP1K", false, 1024, false}, {"HTTP50K", false, 50 << 10, false}, {"HTTPS1K", true, 1024, false}, {"HTTPS50K", true, 50 << 10, false},
	{"HTTP50KUnique", false, 50 << 10, true}}

// stampBody is body with n written over its first id characters: a
// different, still valid, JSON document for every n.
func stampBody(body []byte, n int) []byte {
	out := bytes.Clone(body)
	copy(out[7:15], fmt.Sprintf("%08d", n%100_000_000))
	return out
}

// jsonUpstream serves an LLM-style JSON body of size bytes over TLS when
// asked (roots then trusts it, nil otherwise). It returns the URLs to ask
// and the body each answers: one URL, or for unique many, each its own body.
func jsonUpstream(b *testing.B, tlsOn bool, size int, unique bool) (roots *x509.CertPool, urls []string, want func(int) []byte) {
	body := llmBody(0, size)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out := body
		if unique {
			n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/v1/"))
			out = stampBody(body, n)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", fmt.Sprint(len(out)))
		w.Write(out)
	})
	var up *httptest.Server
	if tlsOn {
		up = httptest.NewUnstartedServer(h)
		up.StartTLS()
		roots = x509.NewCertPool()
		roots.AddCert(up.Certificate())
	} else {
		up = httptest.NewServer(h)
	}
	b.Cleanup(up.Close)
	if !unique {
		return roots, []string{up.URL + "/v1/a"}, func(int) []byte { return body }
	}
	urls = make([]string, max(b.N, 1))
	for i := range urls {
		urls[i] = fmt.Sprintf("%s/v1/%d", up.URL, i)
	}
	return roots, urls, func(i int) []byte { return stampBody(body, i) }
}

// BenchmarkServeRecord: record mode against a local upstream, store,
// compression and redaction on.
func BenchmarkServeRecord(b *testing.B) {
	for _, c := range recordCases {
		b.Run(c.name, func(b *testing.B) {
			roots, urls, want := jsonUpstream(b, c.tls, c.size, c.unique)
			st, err := store.Open(filepath.Join(b.TempDir(), "c.db"), store.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			rec := st.NewRecorder(store.RecorderOptions{})
			defer rec.Close()
			p := startBenchProxy(b, proxy.ModeRecord, nil, rec, roots)
			drive(b, p.transport(), urls, want)
		})
	}
}

// BenchmarkServeForwardRef is the reference for BenchmarkServeRecord: a bare
// goproxy forwarding upstream (same transport settings), in process.
func BenchmarkServeForwardRef(b *testing.B) {
	for _, c := range recordCases {
		b.Run(c.name, func(b *testing.B) {
			roots, urls, want := jsonUpstream(b, c.tls, c.size, c.unique)
			ca, err := proxy.LoadOrCreateCA(filepath.Join(b.TempDir(), "home"))
			if err != nil {
				b.Fatal(err)
			}
			gp := goproxy.NewProxyHttpServer()
			gp.Logger = log.New(io.Discard, "", 0)
			gp.Tr = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, MaxIdleConns: 512, MaxIdleConnsPerHost: 64, DisableCompression: true}
			mitm := &goproxy.ConnectAction{Action: goproxy.ConnectMitm, TLSConfig: goproxy.TLSConfigFromCA(&ca.TLS)}
			gp.OnRequest().HandleConnectFunc(func(host string, _ *goproxy.ProxyCtx) (*goproxy.ConnectAction, string) { return mitm, host })
			srv := httptest.NewServer(gp)
			defer srv.Close()
			pool := x509.NewCertPool()
			pool.AddCert(ca.Cert)
			p := &benchProxy{addr: strings.TrimPrefix(srv.URL, "http://"), ca: pool}
			drive(b, p.transport(), urls, want)
		})
	}
}

// BenchmarkDripFirstByte measures time to the first byte of a body of
// known length that drips (one byte every millisecond, 8 bytes), straight
// to the upstream and through record mode, plain and inside a tunnel, in
// the same run. ttfb-µs is the mean from sending the request to holding
// the body's first byte; the upstream sends its head at once and the first
// byte 1 ms later, so direct is ~1,000 µs plus the round trip.
//
//	go test -run '^$' -bench DripFirstByte -benchtime 200x ./proxy/
func BenchmarkDripFirstByte(b *testing.B) {
	const n = 8
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(n))
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		for range n {
			time.Sleep(time.Millisecond)
			w.Write([]byte{'*'})
			w.(http.Flusher).Flush()
		}
	})
	for _, tlsOn := range []bool{false, true} {
		up := httptest.NewUnstartedServer(h)
		var roots *x509.CertPool
		if tlsOn {
			up.StartTLS()
			roots = x509.NewCertPool()
			roots.AddCert(up.Certificate())
		} else {
			up.Start()
		}
		b.Cleanup(up.Close)
		st, err := store.Open(filepath.Join(b.TempDir(), "c.db"), store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { st.Close() })
		rec := st.NewRecorder(store.RecorderOptions{})
		p := startBenchProxy(b, proxy.ModeRecord, nil, rec, roots)
		direct := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}
		scheme := map[bool]string{false: "http", true: "https"}[tlsOn]
		for _, c := range []struct {
			name string
			tr   *http.Transport
		}{{"direct", direct}, {"record", p.transport()}} {
			b.Run(scheme+"/"+c.name, func(b *testing.B) {
				client := &http.Client{Transport: c.tr, Timeout: 10 * time.Second}
				defer c.tr.CloseIdleConnections()
				var total time.Duration
				one := make([]byte, 1)
				for range b.N {
					start := time.Now()
					resp, err := client.Get(up.URL + "/drip")
					if err != nil {
						b.Fatal(err)
					}
					if _, err := io.ReadFull(resp.Body, one); err != nil {
						b.Fatal(err)
					}
					total += time.Since(start)
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				b.ReportMetric(float64(total.Microseconds())/float64(b.N), "ttfb-µs")
			})
		}
	}
}
