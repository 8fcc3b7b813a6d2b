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
	"net"
	"net/http"
	"os"
	"time"

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
	gp, err := benchutil.RefProxy("bench forward ref CA", caOut)
	if err != nil {
		return err
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
	return benchutil.Serve(gp, listen, ready)
}
