package servertest

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// CA is a certificate authority made for one test: it issues server
// certificates, and Pool trusts it.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	Pool *x509.CertPool
	PEM  []byte // the CA certificate (for NODE_EXTRA_CA_CERTS and the like)
}

// NewCA makes a CA valid for a day.
func NewCA(t testing.TB) *CA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Herald test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &CA{cert: cert, key: key, Pool: pool, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// Leaf describes a server certificate to issue.
type Leaf struct {
	Serial    int64
	Hosts     []string  // DNS names and IP addresses; default localhost and 127.0.0.1
	NotBefore time.Time // default an hour ago
	NotAfter  time.Time // default a day from now
}

// Issue signs a server certificate and writes it and its key as PEM
// files in dir (cert.pem, key.pem, replacing them), returning their
// paths.
func (ca *CA) Issue(t testing.TB, dir string, l Leaf) (certFile, keyFile string) {
	t.Helper()
	if l.Hosts == nil {
		l.Hosts = []string{"localhost", "127.0.0.1"}
	}
	if l.NotBefore.IsZero() {
		l.NotBefore = time.Now().Add(-time.Hour)
	}
	if l.NotAfter.IsZero() {
		l.NotAfter = time.Now().Add(24 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(l.Serial), Subject: pkix.Name{CommonName: l.Hosts[0]},
		NotBefore: l.NotBefore, NotAfter: l.NotAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range l.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	key := newKey(t)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "EC PRIVATE KEY", kder)
	return certFile, keyFile
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// writePEM replaces path at once (rename), as a certificate renewal
// should, so that a reload never reads half a file.
func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TLSConfig is a client configuration trusting only the CA.
func (ca *CA) TLSConfig() *tls.Config { return &tls.Config{RootCAs: ca.Pool} }

// DialTLS connects over wss:// to path with the client configuration
// tc; the handshake's error is returned, not fatal, so tests can expect
// a refused certificate.
func (s *Server) DialTLS(t testing.TB, path string, tc *tls.Config) (*Client, error) {
	t.Helper()
	d := ws.Dialer{TLSConfig: tc, Timeout: 5 * time.Second}
	conn, br, _, err := d.Dial(context.Background(), "wss://"+s.Addr+path)
	if err != nil {
		return nil, err
	}
	if br == nil {
		br = bufio.NewReader(conn)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &Client{t: t, conn: conn, br: br}, nil
}

// PeerCertificate is the certificate the server presented to a wss://
// client (nil for a ws:// one).
func (c *Client) PeerCertificate() *x509.Certificate {
	if tc, ok := c.conn.(*tls.Conn); ok {
		if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 {
			return certs[0]
		}
	}
	return nil
}
