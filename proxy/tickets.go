package proxy

import (
	"crypto/rand"
	"crypto/tls"
	"sync"
	"time"

	"github.com/elazarl/goproxy"
)

// mitmTLSConfig is goproxy's TLS configuration for an intercepted tunnel
// (leaf from the CA, through the server's leaf cache) with session ticket
// keys shared by every tunnel, so that a client which kept a TLS session
// resumes it on its next connection, with no certificate chain to verify
// (the proxy's own cost is about the same either way: a TLS 1.3 resumption
// still does the key exchange; BenchmarkMITMHandshake). goproxy's own
// configuration is a fresh clone per tunnel, which makes up ticket keys of
// its own each time: every ticket it issued was one no later tunnel could
// read. Go issues tickets only to clients that say they can resume.
func mitmTLSConfig(ca *tls.Certificate) func(host string, ctx *goproxy.ProxyCtx) (*tls.Config, error) {
	leaf := goproxy.TLSConfigFromCA(ca)
	keys := &ticketKeys{}
	return func(host string, ctx *goproxy.ProxyCtx) (*tls.Config, error) {
		c, err := leaf(host, ctx)
		if err != nil {
			return nil, err
		}
		c.SetSessionTicketKeys(keys.get(time.Now()))
		return c, nil
	}
}

// ticketRotate is how long a ticket key issues tickets; the one before it
// still opens them for as long again (Go's own automatic keys rotate daily
// too). Keys live in memory only and die with the process.
const ticketRotate = 24 * time.Hour

// ticketKeys is the current session ticket key, first, and the previous one.
type ticketKeys struct {
	mu   sync.Mutex
	keys [][32]byte
	made time.Time
}

func (k *ticketKeys) get(now time.Time) [][32]byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.keys == nil || now.Sub(k.made) >= ticketRotate {
		var key [32]byte
		rand.Read(key[:]) // never fails (crypto/rand)
		k.keys = append([][32]byte{key}, k.keys[:min(len(k.keys), 1)]...)
		k.made = now
	}
	return k.keys
}
