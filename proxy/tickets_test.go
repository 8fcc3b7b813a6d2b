package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/elazarl/goproxy"

	"github.com/cassetteproxy/cassetteproxy/store"
)

// TestTunnelResumesTLSSession: a client that kept the session of its first
// tunnel resumes it in the next one (the tickets of every tunnel are
// sealed with the same key), and the leaf it is shown is ECDSA P-256.
func TestTunnelResumesTLSSession(t *testing.T) {
	ins := []store.Interaction{{Request: store.Request{Method: "GET", URL: "https://tool.test/a"},
		Response: store.Response{Status: 200, Body: []byte("ok")}}}
	var ca *CA
	_, c := startTestServer(t, ModeReplay, ins, func(cfg *Config) { ca = cfg.CA })
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	var resumed []bool
	tr := c.Transport.(*http.Transport)
	tr.DisableKeepAlives = true // a new tunnel for every request
	tr.TLSClientConfig = &tls.Config{RootCAs: roots, ClientSessionCache: tls.NewLRUClientSessionCache(4),
		VerifyConnection: func(cs tls.ConnectionState) error {
			resumed = append(resumed, cs.DidResume)
			if k, ok := cs.PeerCertificates[0].PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
				t.Errorf("leaf key %T, want ECDSA P-256", cs.PeerCertificates[0].PublicKey)
			}
			return nil
		}}
	for range 3 {
		resp, err := c.Get("https://tool.test/a")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "ok" {
			t.Fatalf("answer %q", b)
		}
	}
	if len(resumed) != 3 || resumed[0] || !resumed[1] || !resumed[2] {
		t.Errorf("resumed per tunnel: %v, want [false true true]", resumed)
	}
}

func TestTicketKeysRotate(t *testing.T) {
	var k ticketKeys
	t0 := time.Now()
	a := k.get(t0)
	if len(a) != 1 || len(k.get(t0.Add(ticketRotate-time.Second))) != 1 {
		t.Fatalf("one key before the first rotation, got %d", len(a))
	}
	b := k.get(t0.Add(ticketRotate))
	if len(b) != 2 || b[1] != a[0] || b[0] == a[0] {
		t.Fatalf("after a rotation: a new key first, the old one second")
	}
	c := k.get(t0.Add(2 * ticketRotate))
	if len(c) != 2 || c[1] != b[0] {
		t.Fatalf("only the previous key is kept")
	}
}

// TestClientCloseKeepsUpstreamConnection: a client that connects per
// request (Connection: close) does not make the proxy connect upstream per
// request too.
func TestClientCloseKeepsUpstreamConnection(t *testing.T) {
	var conns atomic.Int32
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Close {
			t.Errorf("upstream asked to close its connection")
		}
		io.WriteString(w, "fine")
	}))
	up.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	up.Start()
	defer up.Close()
	_, c := startTestServer(t, ModeRecord, nil)
	c.Transport.(*http.Transport).DisableKeepAlives = true
	for range 4 {
		resp, err := c.Get(up.URL + "/x")
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("upstream saw %d connections for 4 requests, want 1", n)
	}
}

// threadCPU is the calling thread's CPU time so far.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkMITMHandshake is one intercepted tunnel's TLS handshake, client
// and server sides together in this process (no sockets: net.Pipe), with
// the tunnel's own configuration: full, and resumed from a kept session.
// cpu-µs/op is both sides' CPU time, server-cpu-µs/op the proxy's side.
// go test -run '^$' -bench MITMHandshake -cpu 1 ./proxy/
func BenchmarkMITMHandshake(b *testing.B) {
	ca, err := LoadOrCreateCA(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	gp := goproxy.NewProxyHttpServer()
	gp.CertStore = &leafCache{}
	ctx := &goproxy.ProxyCtx{Proxy: gp}
	mitm := mitmTLSConfig(&ca.TLS)
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	for _, resume := range []bool{false, true} {
		name := "full"
		if resume {
			name = "resumed"
		}
		b.Run(name, func(b *testing.B) {
			cc := &tls.Config{RootCAs: roots, ServerName: "tool.test"}
			if resume {
				cc.ClientSessionCache = tls.NewLRUClientSessionCache(4)
			}
			resumed := 0
			var serverCPU time.Duration // written by one handshake at a time
			cpu0 := processCPU()
			for b.Loop() {
				sc, err := mitm("tool.test:443", ctx)
				if err != nil {
					b.Fatal(err)
				}
				c1, c2 := net.Pipe()
				srv := tls.Server(c1, sc)
				done := make(chan error, 1)
				go func() {
					// The server side on a thread of its own, to count its
					// CPU time apart from the client's.
					runtime.LockOSThread()
					defer runtime.UnlockOSThread()
					t0 := threadCPU()
					err := srv.Handshake()
					if err == nil {
						_, err = srv.Write([]byte{1}) // the ticket goes out before this byte
					}
					serverCPU += threadCPU() - t0
					done <- err
				}()
				cl := tls.Client(c2, cc)
				if err := cl.Handshake(); err != nil {
					b.Fatal(err)
				}
				var one [1]byte
				if _, err := io.ReadFull(cl, one[:]); err != nil {
					b.Fatal(err)
				}
				if err := <-done; err != nil {
					b.Fatal(err)
				}
				if cl.ConnectionState().DidResume {
					resumed++
				}
				c1.Close()
				c2.Close()
			}
			b.ReportMetric(float64(resumed)/float64(b.N), "resumed/op")
			// CPU time, not the wall clock: on a shared machine the
			// latter measures the neighbours.
			b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
			b.ReportMetric(float64(serverCPU.Microseconds())/float64(b.N), "server-cpu-µs/op")
		})
	}
}
