package config

import (
	"strings"
	"testing"
)

const metricsTok = "metrics-token-0123456789"

// server.metrics_addr and server.metrics_token come from the file, from
// HERALD_METRICS_ADDR and HERALD_METRICS_TOKEN, and the address from
// --metrics-addr; both are off by default.
func TestLoadMetrics(t *testing.T) {
	if s := Default().Server; s.MetricsAddr != "" || s.MetricsToken != "" {
		t.Fatalf("default metrics settings %q %q: want both off", s.MetricsAddr, s.MetricsToken)
	}
	inDir(t, map[string]string{"herald.yaml": "server:\n  metrics_addr: 127.0.0.1:9100\n  metrics_token: " + metricsTok + "\n"})
	c := load(t, Options{File: "herald.yaml"})
	if c.Server.MetricsAddr != "127.0.0.1:9100" || c.Server.MetricsToken != metricsTok {
		t.Fatalf("file: %q %q", c.Server.MetricsAddr, c.Server.MetricsToken)
	}
	c = load(t, Options{File: "herald.yaml", Environ: []string{"HERALD_METRICS_ADDR=127.0.0.1:9101", "HERALD_METRICS_TOKEN=env-metrics-token-0123"}})
	if c.Server.MetricsAddr != "127.0.0.1:9101" || c.Server.MetricsToken != "env-metrics-token-0123" {
		t.Fatalf("environment: %q %q", c.Server.MetricsAddr, c.Server.MetricsToken)
	}
	c = load(t, Options{Environ: []string{"HERALD_METRICS_ADDR=127.0.0.1:9101"}, Flags: Overrides{MetricsAddr: ptr(":9102")}})
	if c.Server.MetricsAddr != ":9102" {
		t.Fatalf("flag: %q", c.Server.MetricsAddr)
	}
	if len(c.Warnings) != 0 {
		t.Fatalf("warnings %v: HERALD_METRICS_* are known names", c.Warnings)
	}
}

func TestValidateMetrics(t *testing.T) {
	cases := []struct {
		name        string
		addr, token string
		want        string // "": valid
	}{
		{"off", "", "", ""},
		{"address", "127.0.0.1:9100", "", ""},
		{"any host", ":9100", "", ""},
		{"ipv6", "[::1]:9100", "", ""},
		{"token", "", metricsTok, ""},
		{"no port", "127.0.0.1", "", `server.metrics_addr: must be a listen address host:port, like 127.0.0.1:9100 (got "127.0.0.1")`},
		{"bad port", "127.0.0.1:http", "", `server.metrics_addr: must be a listen address host:port, like 127.0.0.1:9100 (got "127.0.0.1:http")`},
		{"short token", "", "short", "server.metrics_token: must be at least 16 characters (got 5)"},
		{"token with a space", "", "metrics token 0123456789", "server.metrics_token: must be printable ASCII without spaces"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			c.Server.MetricsAddr, c.Server.MetricsToken = tc.addr, tc.token
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate() = %v; want valid", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Validate() = %v; want %q", err, tc.want)
			}
		})
	}
}
