// Command forward is the reference forward proxy: a minimal goproxy that
// forwards every request upstream and intercepts every CONNECT with its own
// CA (never goproxy.GoproxyCa). It is the ceiling cassetteproxy record mode
// is measured against: same library, no recording.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/elazarl/goproxy"

	"github.com/cassetteproxy/cassetteproxy/bench/internal/benchutil"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	ready := flag.String("ready-file", "", "write the listening address here once accepting")
	caOut := flag.String("ca-out", "", "write the MITM CA certificate (PEM) here")
	upstreamCA := flag.String("upstream-ca", "", "PEM file of roots for verifying upstream TLS")
	flag.Parse()
	if err := run(*listen, *ready, *caOut, *upstreamCA); err != nil {
		fmt.Fprintln(os.Stderr, "forward:", err)
		os.Exit(1)
	}
}

func run(listen, ready, caOut, upstreamCA string) error {
	ca, err := benchutil.NewCA("bench forward ref CA")
	if err != nil {
		return err
	}
	if caOut != "" {
		if err := benchutil.WriteFileAtomic(caOut, ca.CertPEM); err != nil {
			return err
		}
	}
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	if upstreamCA != "" {
		pem, err := os.ReadFile(upstreamCA)
		if err != nil {
			return err
		}
		roots.AppendCertsFromPEM(pem)
	}
	gp := goproxy.NewProxyHttpServer()
	gp.Logger = log.New(nilWriter{}, "", 0)
	gp.CertStore = &benchutil.LeafCache{}
	// The same transport settings cassetteproxy uses, so the comparison is
	// about the proxy and not about connection reuse.
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	gp.Tr = &http.Transport{
		DialContext:         dialer.DialContext,
		TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: 10 * time.Second,
		IdleConnTimeout:     90 * time.Second,
		MaxIdleConns:        512,
		MaxIdleConnsPerHost: 64,
		DisableCompression:  true,
	}
	mitm := &goproxy.ConnectAction{Action: goproxy.ConnectMitm, TLSConfig: goproxy.TLSConfigFromCA(&ca.TLS)}
	gp.OnRequest().HandleConnectFunc(func(host string, _ *goproxy.ProxyCtx) (*goproxy.ConnectAction, string) {
		return mitm, host
	})
	ln, err := benchutil.Listen(listen, ready)
	if err != nil {
		return err
	}
	return (&http.Server{Handler: gp, ReadHeaderTimeout: 30 * time.Second}).Serve(ln)
}

type nilWriter struct{}

func (nilWriter) Write(p []byte) (int, error) { return len(p), nil }
