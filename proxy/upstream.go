package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"time"
)

// Timeouts for talking to upstreams. There is no overall response timeout:
// an LLM stream may legitimately run for minutes.
const (
	dialTimeout           = 10 * time.Second
	tlsHandshakeTimeout   = 10 * time.Second
	idleConnTimeout       = 90 * time.Second
	responseHeaderTimeout = 5 * time.Minute
)

// newUpstreamTransport builds the transport record and live modes forward
// with. Compression is left to the client (the proxy passes exact bytes and
// decodes only its own copy); proxy variables from the environment are not
// read, so a proxy started with HTTPS_PROXY set never loops to itself.
func newUpstreamTransport(roots *x509.CertPool) *http.Transport {
	dialer := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:       nil,
		DialContext: dialer.DialContext,
		// A new connection to an upstream that gave a session ticket
		// resumes that session: no certificate chain to verify again.
		TLSClientConfig:       &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12, ClientSessionCache: tls.NewLRUClientSessionCache(0)},
		TLSHandshakeTimeout:   tlsHandshakeTimeout,
		IdleConnTimeout:       idleConnTimeout,
		ResponseHeaderTimeout: responseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		MaxIdleConns:          512,
		MaxIdleConnsPerHost:   64,
		DisableCompression:    true,
		ForceAttemptHTTP2:     true,
	}
}

// errNoUpstream is what any attempt to leave the machine gets in replay and
// strict modes.
var errNoUpstream = errors.New("replay mode never contacts upstream")

// noUpstream is the only upstream replay and strict modes are given: it holds
// no dialer at all, so no code path, however it is reached, can open an
// outbound connection.
type noUpstream struct{}

func (noUpstream) RoundTrip(*http.Request) (*http.Response, error) { return nil, errNoUpstream }

func refuseDial(context.Context, string, string) (net.Conn, error) { return nil, errNoUpstream }
