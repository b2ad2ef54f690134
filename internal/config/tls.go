package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"slices"
	"strings"
	"time"
)

// DefaultDrainWindow is how long a graceful stop spreads its 4200 closes
// over when server.drain_window is not given (at most half the shutdown
// timeout, see defaultDrain).
const DefaultDrainWindow = 3 * time.Second

// PIDFileOff as server.pid_file writes no pid file.
const PIDFileOff = "off"

// TLSOn reports whether the main listener serves TLS.
func (s Server) TLSOn() bool { return s.TLSCert != "" || s.TLSKey != "" }

// defaultDrain keeps a drain window nobody gave inside the shutdown
// timeout: 3 s, but at most half of it, so that a short shutdown_timeout
// (tests, a supervisor's short stop timeout) needs no drain_window too.
// A drain_window given explicitly is checked by Validate instead.
func (c *Config) defaultDrain() {
	if _, given := c.origin["server.drain_window"]; given {
		return
	}
	if t := c.Server.ShutdownTimeout; t > 0 && c.Server.DrainWindow > t/2 {
		c.Server.DrainWindow = t / 2
	}
}

// drain checks that the drain window fits in the shutdown timeout, with
// time left for the last clients to answer their close.
func (v *validator) drain() {
	s := v.c.Server
	switch {
	case s.DrainWindow < 0:
		v.bad("server.drain_window", "must be 0 (close all at once) or positive (got %s)", s.DrainWindow)
	case s.ShutdownTimeout > 0 && s.DrainWindow >= s.ShutdownTimeout:
		v.bad("server.drain_window", "must be shorter than server.shutdown_timeout (%s), which bounds the whole stop (got %s)", s.ShutdownTimeout, s.DrainWindow)
	}
}

// tls checks that certificate and key come together and load as a pair,
// so that a typo in a path stops Herald at start rather than at the first
// handshake.
func (v *validator) tls() {
	s := v.c.Server
	switch {
	case s.TLSCert == "" && s.TLSKey == "":
		return
	case s.TLSKey == "":
		v.bad("server.tls_cert", "is set without server.tls_key: TLS needs both the certificate and its private key")
		return
	case s.TLSCert == "":
		v.bad("server.tls_key", "is set without server.tls_cert: TLS needs both the certificate and its private key")
		return
	}
	certOK := v.readable("server.tls_cert", s.TLSCert)
	keyOK := v.readable("server.tls_key", s.TLSKey)
	if !certOK || !keyOK {
		return
	}
	if _, err := tls.LoadX509KeyPair(s.TLSCert, s.TLSKey); err != nil {
		v.bad("server.tls_cert", "%s with key %s: %v", s.TLSCert, s.TLSKey, err)
	}
}

// readable reports whether file can be read, reporting a problem with the
// setting at path when not.
func (v *validator) readable(path, file string) bool {
	b, err := os.ReadFile(file)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		v.bad(path, "%s: no such file", file)
	case errors.Is(err, fs.ErrPermission):
		v.bad(path, "%s: permission denied (Herald runs as a user that cannot read it)", file)
	case err != nil:
		v.bad(path, "cannot read %s: %v", file, err)
	case !strings.Contains(string(b), "-----BEGIN "):
		v.bad(path, "%s is not a PEM file (no -----BEGIN line)", file)
	default:
		return true
	}
	return false
}

// openOrigins warns about apps that accept any origin in a setup that
// looks like production: APP_ENV=production in the .env or environment,
// or TLS served on an address other machines can reach. Any web page can
// then open sockets to the app with its public key.
func (c *Config) openOrigins(g *gathered) []string {
	why := ""
	if v, ok := g.vars["APP_ENV"]; ok && strings.EqualFold(v.value, "production") {
		why = fmt.Sprintf("%s=%s", v.src, v.value)
	} else if c.Server.TLSOn() && !loopback(c.Server.Host) {
		why = fmt.Sprintf("TLS on the non-loopback address %s", c.Server.Host)
	}
	if why == "" {
		return nil
	}
	var out []string
	for i, a := range c.Apps {
		if slices.Contains(a.AllowedOrigins, "*") {
			out = append(out, fmt.Sprintf("%s: app %s allows any origin (\"*\") with %s: any web page can connect with its key; "+
				"list your site's hosts in REVERB_ALLOWED_ORIGINS or apps[%d].allowed_origins", c.label(fmt.Sprintf("apps[%d].allowed_origins", i)), a.ID, why, i))
		}
	}
	return out
}

// loopback reports whether host is reachable from this machine only.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
