package server_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/herald-ws/herald/internal/config"
	"github.com/herald-ws/herald/internal/server/servertest"
	"github.com/herald-ws/herald/internal/signature"
)

const wsPath = "/app/" + config.DefaultAppKey + "?protocol=7&client=go&version=1"

// startTLS runs a server with transport kind serving the certificate
// issued for leaf by ca.
func startTLS(t *testing.T, ca *servertest.CA, kind string, leaf servertest.Leaf) (s *servertest.Server, certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = ca.Issue(t, t.TempDir(), leaf)
	cfg := config.Default()
	cfg.Server.Transport = kind
	cfg.Server.TLSCert, cfg.Server.TLSKey = certFile, keyFile
	cfg.Server.DrainWindow = 0 // the test's cleanup stops at once
	return servertest.Start(t, cfg), certFile, keyFile
}

// transports runs f for each WebSocket transport: with TLS the epoll
// transport hands each socket to the goroutine transport, and both must
// work.
func transports(t *testing.T, f func(t *testing.T, kind string)) {
	for _, kind := range []string{"epoll", "goroutine"} {
		t.Run(kind, func(t *testing.T) { f(t, kind) })
	}
}

// wss:// gets connection_established and events published through the
// HTTP API over https:// on the same port.
func TestTLSServesWebSocketAndAPI(t *testing.T) {
	transports(t, func(t *testing.T, kind string) {
		ca := servertest.NewCA(t)
		s, _, _ := startTLS(t, ca, kind, servertest.Leaf{Serial: 1})
		c, err := s.DialTLS(t, wsPath, ca.TLSConfig())
		if err != nil {
			t.Fatalf("wss dial: %v", err)
		}
		c.Expect("pusher:connection_established")
		c.Send(`{"event":"pusher:subscribe","data":{"channel":"orders"}}`)
		c.Expect("pusher_internal:subscription_succeeded")

		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: ca.TLSConfig()}, Timeout: 5 * time.Second}
		defer hc.CloseIdleConnections()
		body := []byte(`{"name":"order.shipped","channel":"orders","data":"{\"id\":7}"}`)
		path := "/apps/" + config.DefaultAppID + "/events"
		q := signature.SignRequest(config.DefaultAppKey, config.DefaultAppSecret, "POST", path, nil, body, time.Now())
		resp, err := hc.Post("https://"+s.Addr+path+"?"+q.Encode(), "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatalf("https publish: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 || resp.TLS.NegotiatedProtocol == "h2" {
			t.Fatalf("publish: %d %s (tls %+v)", resp.StatusCode, b, resp.TLS)
		}
		if m := c.Expect("order.shipped"); m.DataString() != `{"id":7}` {
			t.Errorf("event data %s", m.Raw)
		}
	})
}

// TLS 1.0 and 1.1 are refused, and a plain-HTTP request on the TLS port
// is told what went wrong.
func TestTLSRefusesOldVersionsAndPlainHTTP(t *testing.T) {
	ca := servertest.NewCA(t)
	s, _, _ := startTLS(t, ca, "", servertest.Leaf{Serial: 1})
	old := ca.TLSConfig()
	old.MinVersion, old.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	if _, err := s.DialTLS(t, wsPath, old); err == nil || !strings.Contains(err.Error(), "protocol version") {
		t.Errorf("TLS 1.1 client: %v, want a protocol version alert", err)
	}
	resp, err := http.Get("http://" + s.Addr + "/up")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "HTTPS") {
		t.Errorf("plain HTTP: %d %q", resp.StatusCode, b)
	}
}

// A verifying client refuses an expired certificate and one issued for
// another host.
func TestTLSBadCertificatesRefusedByClients(t *testing.T) {
	ca := servertest.NewCA(t)
	for _, c := range []struct {
		name string
		leaf servertest.Leaf
		want func(error) bool
	}{
		{"expired", servertest.Leaf{Serial: 2, NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)}, func(err error) bool {
			ce, ok := errors.AsType[x509.CertificateInvalidError](err)
			return ok && ce.Reason == x509.Expired
		}},
		{"wrong host", servertest.Leaf{Serial: 3, Hosts: []string{"ws.example.com"}}, func(err error) bool {
			_, ok := errors.AsType[x509.HostnameError](err)
			return ok
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, _, _ := startTLS(t, ca, "", c.leaf)
			_, err := s.DialTLS(t, wsPath, ca.TLSConfig())
			if err == nil || !c.want(err) {
				t.Fatalf("wss dial: %v", err)
			}
			hc := &http.Client{Transport: &http.Transport{TLSClientConfig: ca.TLSConfig()}, Timeout: 5 * time.Second}
			if _, err := hc.Get("https://" + s.Addr + "/up"); err == nil || !c.want(err) {
				t.Fatalf("https: %v", err)
			}
		})
	}
}

// A reload (what SIGHUP does) serves the new certificate to new
// connections, while an established one stays open and keeps receiving;
// a bad new pair is refused and the current certificate stays.
func TestTLSReload(t *testing.T) {
	transports(t, func(t *testing.T, kind string) {
		ca := servertest.NewCA(t)
		s, certFile, _ := startTLS(t, ca, kind, servertest.Leaf{Serial: 100})
		old, err := s.DialTLS(t, wsPath, ca.TLSConfig())
		if err != nil {
			t.Fatal(err)
		}
		old.Expect("pusher:connection_established")
		old.Send(`{"event":"pusher:subscribe","data":{"channel":"news"}}`)
		old.Expect("pusher_internal:subscription_succeeded")
		if n := old.PeerCertificate().SerialNumber.Int64(); n != 100 {
			t.Fatalf("serial %d, want 100", n)
		}

		ca.Issue(t, dirOf(certFile), servertest.Leaf{Serial: 101}) // the renewal, in place
		if err := s.ReloadTLS(); err != nil {
			t.Fatalf("reload: %v", err)
		}
		fresh, err := s.DialTLS(t, wsPath, ca.TLSConfig())
		if err != nil {
			t.Fatal(err)
		}
		fresh.Expect("pusher:connection_established")
		if n := fresh.PeerCertificate().SerialNumber.Int64(); n != 101 {
			t.Fatalf("new connection got serial %d, want 101", n)
		}
		app := s.Node().AppByKey(config.DefaultAppKey)
		if err := s.Node().Publish(t.Context(), app, []string{"news"}, "after-reload", `{}`, ""); err != nil {
			t.Fatal(err)
		}
		old.Expect("after-reload") // the established socket is still open

		// A broken renewal: the reload fails, the current one stays.
		if err := os.WriteFile(certFile, []byte("-----BEGIN CERTIFICATE-----\nbroken\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := s.ReloadTLS(); err == nil {
			t.Fatal("reload of a broken certificate succeeded")
		}
		again, err := s.DialTLS(t, wsPath, ca.TLSConfig())
		if err != nil {
			t.Fatal(err)
		}
		if n := again.PeerCertificate().SerialNumber.Int64(); n != 101 {
			t.Fatalf("after a failed reload: serial %d, want 101", n)
		}
	})
}

func dirOf(path string) string {
	i := strings.LastIndexByte(path, os.PathSeparator)
	return path[:i]
}

// A server without TLS says so when asked to reload.
func TestReloadWithoutTLS(t *testing.T) {
	s := start(t, nil)
	if err := s.ReloadTLS(); err == nil || s.TLS() {
		t.Fatalf("ReloadTLS without TLS: %v", err)
	}
}
