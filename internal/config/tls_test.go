package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

// selfSigned returns a PEM certificate and its PEM private key.
func selfSigned(t *testing.T) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
}

// TLS settings come from the file, Herald's variables, Reverb's common
// .env names and the flags, in that rising order.
func TestTLSSources(t *testing.T) {
	cert, key := selfSigned(t)
	_, otherKey := selfSigned(t)
	inDir(t, map[string]string{"c.pem": cert, "k.pem": key, "k2.pem": otherKey, "c2.pem": cert,
		"herald.yaml": "server:\n  tls_cert: c2.pem\n  tls_key: k2.pem\n",
		".env":        "REVERB_TLS_CERT_PATH=c.pem\nREVERB_TLS_KEY_PATH=k.pem\n",
	})
	c := load(t, Options{EnvFile: ".env"})
	if c.Server.TLSCert != "c.pem" || c.Server.TLSKey != "k.pem" || !c.Server.TLSOn() {
		t.Errorf(".env: %q %q", c.Server.TLSCert, c.Server.TLSKey)
	}
	c = load(t, Options{EnvFile: ".env", Environ: []string{"HERALD_TLS_CERT=c2.pem", "HERALD_TLS_KEY=k.pem"}})
	if c.Server.TLSCert != "c2.pem" {
		t.Errorf("environment: %q", c.Server.TLSCert)
	}
	c = load(t, Options{EnvFile: ".env", Flags: Overrides{TLSCert: ptr("c.pem"), TLSKey: ptr("k.pem")}})
	if c.Server.TLSCert != "c.pem" || c.Server.TLSKey != "k.pem" {
		t.Errorf("flags: %q %q", c.Server.TLSCert, c.Server.TLSKey)
	}
	// The file's pair does not match: the error names the file's line.
	_, err := Load(Options{File: "herald.yaml"})
	if err == nil || !strings.Contains(err.Error(), "herald.yaml:2: server.tls_cert: c2.pem with key k2.pem: tls: private key does not match public key") {
		t.Errorf("mismatched pair: %v", err)
	}
	c = load(t, Options{Flags: Overrides{PIDFile: ptr("/run/h.pid")}})
	if c.Server.PIDFile != "/run/h.pid" {
		t.Errorf("pid file %q", c.Server.PIDFile)
	}
}

func TestTLSValidate(t *testing.T) {
	cert, key := selfSigned(t)
	inDir(t, map[string]string{"c.pem": cert, "k.pem": key, "junk.pem": "not pem\n"})
	for _, c := range []struct {
		name, cert, key, want string
	}{
		{"both", "c.pem", "k.pem", ""},
		{"cert only", "c.pem", "", "flag --tls-cert: is set without server.tls_key"},
		{"key only", "", "k.pem", "flag --tls-key: is set without server.tls_cert"},
		{"missing cert", "nope.pem", "k.pem", "flag --tls-cert: nope.pem: no such file"},
		{"missing key", "c.pem", "nope.pem", "flag --tls-key: nope.pem: no such file"},
		{"not PEM", "junk.pem", "k.pem", "flag --tls-cert: junk.pem is not a PEM file"},
		{"swapped", "k.pem", "c.pem", "flag --tls-cert: k.pem with key c.pem: tls:"},
	} {
		var o Overrides
		if c.cert != "" {
			o.TLSCert = ptr(c.cert)
		}
		if c.key != "" {
			o.TLSKey = ptr(c.key)
		}
		_, err := Load(Options{Flags: o})
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		}
	}
}

func TestDrainWindow(t *testing.T) {
	inDir(t, map[string]string{
		"short.yaml":    "server:\n  shutdown_timeout: 2s\n",
		"given.yaml":    "server:\n  shutdown_timeout: 5s\n  drain_window: 1500ms\n",
		"toolong.yaml":  "server:\n  shutdown_timeout: 2s\n  drain_window: 2s\n",
		"off.yaml":      "server:\n  drain_window: 0\n",
		"negative.yaml": "server:\n  drain_window: -1s\n",
	})
	for _, c := range []struct {
		file string
		want time.Duration
		err  string
	}{
		{"short.yaml", time.Second, ""}, // the default, clamped to half the timeout
		{"given.yaml", 1500 * time.Millisecond, ""},
		{"off.yaml", 0, ""},
		{"toolong.yaml", 0, "short.yaml"},
		{"negative.yaml", 0, "negative.yaml:2: server.drain_window: must be 0 (close all at once) or positive (got -1s)"},
	} {
		if c.file == "toolong.yaml" {
			c.err = "toolong.yaml:3: server.drain_window: must be shorter than server.shutdown_timeout (2s), which bounds the whole stop (got 2s)"
		}
		cfg, err := Load(Options{File: c.file})
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: got %v, want %q", c.file, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		if cfg.Server.DrainWindow != c.want {
			t.Errorf("%s: drain window %s, want %s", c.file, cfg.Server.DrainWindow, c.want)
		}
	}
	if d := Default().Server.DrainWindow; d != DefaultDrainWindow {
		t.Errorf("default drain window %s", d)
	}
}

// Open origins draw a warning in a production-like setup only.
func TestOpenOriginsWarning(t *testing.T) {
	cert, key := selfSigned(t)
	creds := "REVERB_APP_ID=a\nREVERB_APP_KEY=k\nREVERB_APP_SECRET=s\n"
	inDir(t, map[string]string{"c.pem": cert, "k.pem": key,
		"prod.env":   creds + "APP_ENV=production\n",
		"closed.env": creds + "APP_ENV=production\nREVERB_ALLOWED_ORIGINS=app.example.com\n",
		"local.env":  creds + "APP_ENV=local\n",
	})
	warned := func(c *Config) bool {
		for _, w := range c.Warnings {
			if strings.Contains(w, "allows any origin") {
				return true
			}
		}
		return false
	}
	tlsFlags := Overrides{TLSCert: ptr("c.pem"), TLSKey: ptr("k.pem")}
	for _, c := range []struct {
		name string
		opts Options
		want string // "" for no warning
	}{
		{"production", Options{EnvFile: "prod.env"}, "apps[0].allowed_origins: app a allows any origin (\"*\") with prod.env:4: APP_ENV=production"},
		{"production, origins listed", Options{EnvFile: "closed.env"}, ""},
		{"local", Options{EnvFile: "local.env"}, ""},
		{"TLS on all interfaces", Options{EnvFile: "local.env", Flags: tlsFlags}, "with TLS on the non-loopback address 0.0.0.0"},
		{"TLS on loopback", Options{EnvFile: "local.env", Flags: Overrides{TLSCert: tlsFlags.TLSCert, TLSKey: tlsFlags.TLSKey, Host: ptr("127.0.0.1")}}, ""},
	} {
		cfg := load(t, c.opts)
		if c.want == "" {
			if warned(cfg) {
				t.Errorf("%s: unexpected warning %q", c.name, cfg.Warnings)
			}
			continue
		}
		if !warned(cfg) || !strings.Contains(strings.Join(cfg.Warnings, "\n"), c.want) {
			t.Errorf("%s: warnings %q, want one with %q", c.name, cfg.Warnings, c.want)
		}
	}
}
