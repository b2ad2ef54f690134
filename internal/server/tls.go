package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"
)

// certificate is the serving certificate. Every handshake reads the
// current one through GetCertificate, and ReloadTLS swaps it: connections
// made after a reload get the new certificate, established ones keep
// theirs (their handshake is done), and nothing is dropped.
//
// Concurrency: cur is read by handshakes and written by ReloadTLS, both
// through the atomic pointer; the file names never change.
type certificate struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
}

// expiryWarning is how close to its expiry a certificate draws a warning
// at load.
const expiryWarning = 14 * 24 * time.Hour

func newCertificate(certFile, keyFile string) (*certificate, error) {
	c := &certificate{certFile: certFile, keyFile: keyFile}
	pair, err := c.load()
	if err != nil {
		return nil, err
	}
	c.cur.Store(pair)
	return c, nil
}

func (c *certificate) load() (*tls.Certificate, error) {
	pair, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate %s with key %s: %w", c.certFile, c.keyFile, err)
	}
	if pair.Leaf == nil { // filled in by LoadX509KeyPair since Go 1.23
		if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, fmt.Errorf("parse TLS certificate %s: %w", c.certFile, err)
		}
	}
	return &pair, nil
}

// tlsConfig is the main listener's TLS configuration: TLS 1.2 and up
// with Go's cipher suites and curves (forward-secret AEADs only), and
// HTTP/1.1 only, because a WebSocket upgrade takes over the connection,
// which HTTP/2 does not allow (pusher-js and browsers then use HTTP/1.1
// for the socket anyway).
func (c *certificate) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return c.cur.Load(), nil
		},
	}
}

// errNoTLS is what ReloadTLS returns on a server without TLS.
var errNoTLS = errors.New("TLS is not configured")

// ReloadTLS re-reads the certificate and key files (serve calls it on
// SIGHUP, after a renewal). New connections get the new certificate;
// established ones stay open. A pair that does not load is returned and
// the current certificate stays.
func (s *Server) ReloadTLS() error {
	if s.cert == nil {
		return errNoTLS
	}
	pair, err := s.cert.load()
	if err != nil {
		return err
	}
	s.cert.cur.Store(pair)
	logCertificate(s.log, "TLS certificate reloaded", pair.Leaf)
	return nil
}

// TLS reports whether the main listener serves TLS.
func (s *Server) TLS() bool { return s.cert != nil }

// logCertificate logs what a certificate covers and until when, warning
// when it has expired or expires soon.
func logCertificate(log *slog.Logger, msg string, leaf *x509.Certificate) {
	names := leaf.DNSNames
	for _, ip := range leaf.IPAddresses {
		names = append(names, ip.String())
	}
	attrs := []any{"subject", leaf.Subject.CommonName, "names", strings.Join(names, ","),
		"serial", leaf.SerialNumber.String(), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339)}
	switch left := time.Until(leaf.NotAfter); {
	case left <= 0:
		log.Warn(msg+": the certificate has EXPIRED; clients will refuse it", attrs...)
	case left < expiryWarning:
		log.Warn(msg+": the certificate expires soon", append(attrs, "expires_in", left.Round(time.Hour).String())...)
	default:
		log.Info(msg, attrs...)
	}
}

// logTLS logs the serving certificate and what TLS changes about the
// transport.
func (s *Server) logTLS() {
	logCertificate(s.log, "serving TLS", s.cert.cur.Load().Leaf)
	if s.cfg.Server.Transport != "goroutine" {
		// The epoll transport reads and writes the raw socket; TLS needs
		// crypto/tls in between, so each TLS socket gets the goroutine
		// transport's reader and writer goroutines instead.
		s.log.Info("TLS: WebSocket connections use the goroutine transport (terminate TLS in a proxy to keep epoll)")
	}
}
