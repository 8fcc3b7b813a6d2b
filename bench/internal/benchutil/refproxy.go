package benchutil

import (
	"io"
	"log"
	"net/http"
	"time"

	"github.com/elazarl/goproxy"
)

// RefProxy is what the reference proxies share: a goproxy that logs
// nothing and intercepts every CONNECT with a fresh CA named name (never
// goproxy.GoproxyCa), whose certificate is written to caOut when given.
// The caller adds what it does with requests, then calls Serve.
func RefProxy(name, caOut string) (*goproxy.ProxyHttpServer, error) {
	ca, err := NewCA(name)
	if err != nil {
		return nil, err
	}
	if caOut != "" {
		if err := WriteFileAtomic(caOut, ca.CertPEM); err != nil {
			return nil, err
		}
	}
	gp := goproxy.NewProxyHttpServer()
	gp.Logger = log.New(io.Discard, "", 0)
	gp.CertStore = &LeafCache{}
	mitm := &goproxy.ConnectAction{Action: goproxy.ConnectMitm, TLSConfig: goproxy.TLSConfigFromCA(&ca.TLS)}
	gp.OnRequest().HandleConnectFunc(func(host string, _ *goproxy.ProxyCtx) (*goproxy.ConnectAction, string) {
		return mitm, host
	})
	return gp, nil
}

// Serve serves h on addr, announcing the address in readyFile once it
// accepts connections.
func Serve(h http.Handler, addr, readyFile string) error {
	ln, err := Listen(addr, readyFile)
	if err != nil {
		return err
	}
	return (&http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second}).Serve(ln)
}
