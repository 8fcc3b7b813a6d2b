// Package benchutil holds what the load harness and its reference programs
// share: a throwaway ECDSA CA, a leaf-certificate cache for goproxy, server
// certificates for the upstream, and the ready-file handshake.
package benchutil

import (
	"github.com/cassetteproxy/cassetteproxy/internal/fsutil"

	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"sync"
	"time"
)

// CA is a freshly generated ECDSA P-256 CA (never goproxy's built-in one).
type CA struct {
	Cert    *x509.Certificate
	TLS     tls.Certificate
	CertPEM []byte
	key     *ecdsa.PrivateKey
}

// NewCA makes a CA valid for a day.
func NewCA(name string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{
		Cert:    cert,
		TLS:     tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert},
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		key:     key,
	}, nil
}

// ServerCert issues a certificate for 127.0.0.1 and localhost, and returns it
// with its key as PEM (for nginx) and as a tls.Certificate (for Go).
func (ca *CA) ServerCert() (certPEM, keyPEM []byte, tc tls.Certificate, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, tc, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano() + 1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, tc, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, tc, err
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	tc, err = tls.X509KeyPair(certPEM, keyPEM)
	return certPEM, keyPEM, tc, err
}

// LeafCache is a goproxy CertStorage: one leaf per host, generated once.
type LeafCache struct {
	mu    sync.Mutex
	certs map[string]*leaf
}

type leaf struct {
	once sync.Once
	cert *tls.Certificate
	err  error
}

// Fetch implements goproxy.CertStorage.
func (c *LeafCache) Fetch(host string, gen func() (*tls.Certificate, error)) (*tls.Certificate, error) {
	c.mu.Lock()
	if c.certs == nil {
		c.certs = make(map[string]*leaf)
	}
	l := c.certs[host]
	if l == nil {
		l = &leaf{}
		c.certs[host] = l
	}
	c.mu.Unlock()
	l.once.Do(func() { l.cert, l.err = gen() })
	return l.cert, l.err
}

// WriteFileAtomic is the project's atomic writer, for ready files and CA copies.
func WriteFileAtomic(path string, data []byte) error {
	return fsutil.WriteFileAtomic(path, data, 0o644)
}

// Listen opens a loopback listener and announces its address in readyFile.
func Listen(addr, readyFile string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if readyFile != "" {
		if err := WriteFileAtomic(readyFile, []byte(ln.Addr().String()+"\n")); err != nil {
			ln.Close()
			return nil, err
		}
	}
	return ln, nil
}
