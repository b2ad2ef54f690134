package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// The client-address settings come from the file and HERALD_TRUSTED_PROXIES,
// and are checked with the key named.
func TestLoadPeers(t *testing.T) {
	inDir(t, map[string]string{"herald.yaml": "server:\n  trusted_proxies: [127.0.0.1, 10.0.0.0/8]\n  max_connections_per_ip: 50\n  max_new_connections_per_ip: 5\n  max_pending_handshakes: 300\n  header_timeout: 3s\n"})
	c := load(t, Options{File: "herald.yaml"})
	s := c.Server
	if !slices.Equal(s.TrustedProxies, []string{"127.0.0.1", "10.0.0.0/8"}) || s.MaxConnectionsPerIP != 50 || s.MaxNewConnectionsPerIP != 5 || s.MaxPendingHandshakes != 300 || s.HeaderTimeout != 3*time.Second {
		t.Fatalf("file: %+v", s)
	}
	c = load(t, Options{Environ: []string{"HERALD_TRUSTED_PROXIES=10.1.0.0/16, 192.168.0.1"}})
	if !slices.Equal(c.Server.TrustedProxies, []string{"10.1.0.0/16", "192.168.0.1"}) || len(c.Warnings) != 0 {
		t.Fatalf("environment: %q %v", c.Server.TrustedProxies, c.Warnings)
	}
	for _, tc := range []struct {
		edit func(*Server)
		want string
	}{
		{func(s *Server) { s.TrustedProxies = []string{"nginx"} }, `server.trusted_proxies: trusted proxy "nginx" is neither`},
		{func(s *Server) { s.MaxConnectionsPerIP = -1 }, "server.max_connections_per_ip: must be 0 (no limit) or more"},
		{func(s *Server) { s.HeaderTimeout = -time.Second }, "server.header_timeout: must be 0"},
	} {
		c := Default()
		tc.edit(&c.Server)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate() = %v; want %q", err, tc.want)
		}
	}
}
