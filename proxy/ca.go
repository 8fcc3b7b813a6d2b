package proxy

import (
	"github.com/cassetteproxy/cassetteproxy/internal/fsutil"

	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// CA file names inside the home folder.
const (
	CACertFile   = "ca.pem"
	CAKeyFile    = "ca-key.pem"
	CABundleFile = "ca-bundle.pem"
)

// CA is the local certificate authority that signs leaf certificates for
// intercepted hosts. Its key never leaves the home folder.
type CA struct {
	Cert     *x509.Certificate
	TLS      tls.Certificate // the CA as a tls.Certificate (cert + key), for goproxy
	CertPath string
	Home     string
}

// LoadOrCreateCA reads the CA from home, creating it (ECDSA P-256, ten years)
// on first use. The folder is kept 0700 and the key 0600; a key readable by
// others is refused rather than silently used.
func LoadOrCreateCA(home string) (*CA, error) {
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, fmt.Errorf("create home %s: %w", home, err)
	}
	if hi, err := os.Stat(home); err != nil {
		return nil, fmt.Errorf("home %s: %w", home, err)
	} else if hi.Mode().Perm()&0o022 != 0 {
		// Whoever can write the folder can replace the CA every client of
		// this proxy trusts, and read what it intercepts.
		return nil, fmt.Errorf("home %s is writable by group or others (mode %04o), so anyone could replace its CA; fix it with: chmod 700 %s",
			home, hi.Mode().Perm(), quoteArg(home))
	}
	certPath := filepath.Join(home, CACertFile)
	keyPath := filepath.Join(home, CAKeyFile)
	if _, err := os.Stat(keyPath); errors.Is(err, os.ErrNotExist) {
		if err := createCA(certPath, keyPath); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("read CA key %s: %w", keyPath, err)
	}
	info, err := os.Stat(keyPath)
	if err != nil {
		return nil, fmt.Errorf("read CA key %s: %w", keyPath, err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("CA key %s is readable by others (mode %04o); fix it with: chmod 600 %s",
			keyPath, info.Mode().Perm(), quoteArg(keyPath))
	}
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return nil, fmt.Errorf("load CA from %s: %w (remove %s and %s to create a new CA)", home, err, certPath, keyPath)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("parse CA certificate %s: %w", certPath, err)
	}
	pair.Leaf = leaf
	return &CA{Cert: leaf, TLS: pair, CertPath: certPath, Home: home}, nil
}

func createCA(certPath, keyPath string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate CA key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		return fmt.Errorf("generate CA serial: %w", err)
	}
	host, _ := os.Hostname()
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "cassetteproxy CA (" + host + ")", Organization: []string{"cassetteproxy"}},
		NotBefore:             now.Add(-24 * time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("create CA certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encode CA key: %w", err)
	}
	// Key first, 0600 from the moment it exists; the certificate is public.
	if err := fsutil.WriteFileAtomic(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return fmt.Errorf("write CA key %s: %w", keyPath, err)
	}
	if err := fsutil.WriteFileAtomic(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return fmt.Errorf("write CA certificate %s: %w", certPath, err)
	}
	return nil
}

// WriteBundle writes (and returns the path of) a PEM file holding the
// system roots plus this CA, for clients whose SSL_CERT_FILE replaces the
// trust store rather than adding to it.
func (ca *CA) WriteBundle() (string, error) {
	path := filepath.Join(ca.Home, CABundleFile)
	own, err := os.ReadFile(ca.CertPath)
	if err != nil {
		return "", fmt.Errorf("read CA certificate %s: %w", ca.CertPath, err)
	}
	var bundle []byte
	for _, f := range systemRootFiles {
		if b, err := os.ReadFile(f); err == nil {
			bundle = append(bundle, b...)
			if len(b) > 0 && b[len(b)-1] != '\n' {
				bundle = append(bundle, '\n')
			}
			break
		}
	}
	bundle = append(bundle, own...)
	if old, err := os.ReadFile(path); err == nil && string(old) == string(bundle) {
		return path, nil
	}
	if err := fsutil.WriteFileAtomic(path, bundle, 0o644); err != nil {
		return "", fmt.Errorf("write CA bundle %s: %w", path, err)
	}
	return path, nil
}

// systemRootFiles are where Linux distributions keep their root bundle
// (the same list Go's crypto/x509 searches).
var systemRootFiles = []string{
	"/etc/ssl/certs/ca-certificates.crt",
	"/etc/pki/tls/certs/ca-bundle.crt",
	"/etc/ssl/ca-bundle.pem",
	"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
	"/etc/ssl/cert.pem",
}

// leafCache signs one ECDSA leaf per host and reuses it; concurrent first
// connections to the same host wait for one signature (per-host singleflight).
type leafCache struct {
	mu    sync.Mutex
	certs map[string]*leafEntry
}

type leafEntry struct {
	done chan struct{}
	cert *tls.Certificate
	err  error
}

// Fetch implements goproxy.CertStorage.
func (c *leafCache) Fetch(host string, gen func() (*tls.Certificate, error)) (*tls.Certificate, error) {
	c.mu.Lock()
	if c.certs == nil {
		c.certs = make(map[string]*leafEntry)
	}
	e, ok := c.certs[host]
	if !ok {
		e = &leafEntry{done: make(chan struct{})}
		c.certs[host] = e
		c.mu.Unlock()
		e.cert, e.err = gen()
		if e.err != nil {
			c.mu.Lock()
			delete(c.certs, host) // let the next connection try again
			c.mu.Unlock()
		}
		close(e.done)
		return e.cert, e.err
	}
	c.mu.Unlock()
	<-e.done
	return e.cert, e.err
}

// quoteArg quotes a path for a POSIX shell when it needs it, so a command
// in an error message can be pasted as it is.
func quoteArg(s string) string {
	if s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+:=,@%", r))
	}) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
