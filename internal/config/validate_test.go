package config

import (
	"strings"
	"testing"
	"time"

	"github.com/herald-ws/herald/internal/apps"
)

func TestValidate(t *testing.T) {
	second := func(c *Config) {
		a := NewApp()
		a.ID, a.Key, a.Secret = "second", "second-key", "s"
		c.Apps = append(c.Apps, a)
	}
	cases := []struct {
		name string
		edit func(*Config)
		want []string // nil: valid
	}{
		{"default", func(c *Config) {}, nil},
		{"port 0 picks a free port", func(c *Config) { c.Server.Port = 0 }, nil},
		{"path", func(c *Config) { c.Server.Path = "/ws" }, nil},
		{"transport", func(c *Config) { c.Server.Transport = "goroutine" }, nil},
		{"secret with any characters", func(c *Config) { c.Apps[0].Secret = "a b/c?d#" }, nil},
		{"no activity timeout sent is not allowed", func(c *Config) { c.Apps[0].ActivityTimeout = 0 },
			[]string{"apps[0].activity_timeout: must be a whole number of seconds, at least 1 (got 0s)"}},
		{"several apps", second, nil},
		{"port", func(c *Config) { c.Server.Port = 65536 }, []string{"server.port: must be a port number 1-65535 (got 65536)"}},
		{"path without slash", func(c *Config) { c.Server.Path = "ws" }, []string{`server.path: must start with / and not end with / (got "ws")`}},
		{"path with trailing slash", func(c *Config) { c.Server.Path = "/ws/" }, []string{`server.path: must start with / and not end with / (got "/ws/")`}},
		{"path with //", func(c *Config) { c.Server.Path = "/a//b" }, []string{`server.path: must be a URL path like /ws, without '//', '?', '#' or spaces (got "/a//b")`}},
		{"shutdown", func(c *Config) { c.Server.ShutdownTimeout = -time.Second }, []string{"server.shutdown_timeout: must be positive (got -1s)"}},
		{"unknown transport", func(c *Config) { c.Server.Transport = "iouring" }, []string{`server.transport: must be one of epoll, goroutine (got "iouring")`}},
		{"level", func(c *Config) { c.Log.Level = "" }, []string{`log.level: must be one of debug, info, warn, error (got "")`}},
		{"format", func(c *Config) { c.Log.Format = "xml" }, []string{`log.format: must be one of text, json (got "xml")`}},
		{"no apps", func(c *Config) { c.Apps = nil }, []string{"apps: at least one app is required"}},
		{"nil app", func(c *Config) { c.Apps[0] = nil }, []string{"apps[0]: must not be nil"}},
		{"empty credentials", func(c *Config) { a := c.Apps[0]; a.ID, a.Key, a.Secret = "", "", "" }, []string{
			"apps[0].id: is required", "apps[0].key: is required", "apps[0].secret: is required"}},
		{"key unsafe in a URL", func(c *Config) { c.Apps[0].Key = "a b" }, []string{`apps[0].key: must not contain spaces, '/', '?', '#' or '%' (got "a b")`}},
		{"duplicate id", func(c *Config) { second(c); c.Apps[1].ID = c.Apps[0].ID }, []string{"apps[1].id: duplicate of apps[0].id"}},
		{"duplicate key", func(c *Config) { second(c); c.Apps[1].Key = c.Apps[0].Key }, []string{"apps[1].key: duplicate of apps[0].key"}},
		{"no origins", func(c *Config) { c.Apps[0].AllowedOrigins = nil }, []string{`apps[0].allowed_origins: must list at least one origin ("*" for any)`}},
		{"empty origin", func(c *Config) { c.Apps[0].AllowedOrigins = []string{"a.com", " "} }, []string{"apps[0].allowed_origins: must not contain an empty origin"}},
		{"max connections", func(c *Config) { c.Apps[0].MaxConnections = -1 }, []string{"apps[0].max_connections: must be 0 (unlimited) or more (got -1)"}},
		{"client events", func(c *Config) { c.Apps[0].ClientEvents = "" }, []string{`apps[0].client_events: must be one of members, all, none (got "")`}},
		{"authorized timeout", func(c *Config) { c.Apps[0].AuthorizedConnectionsTimeout = -1 }, []string{"apps[0].authorized_connections_timeout: must be 0 (off) or positive (got -1ns)"}},
		{"activity timeout fraction", func(c *Config) { c.Apps[0].ActivityTimeout = 1500 * time.Millisecond }, []string{
			"apps[0].activity_timeout: must be a whole number of seconds, at least 1 (got 1.5s)"}},
		{"ping interval", func(c *Config) { c.Apps[0].PingInterval = 0 }, []string{"apps[0].ping_interval: must be positive (got 0s)"}},
		{"pong timeout", func(c *Config) { c.Apps[0].PongTimeout = -time.Second }, []string{"apps[0].pong_timeout: must be positive (got -1s)"}},
		{"max message bytes", func(c *Config) { c.Apps[0].MaxMessageBytes = 0 }, []string{"apps[0].max_message_bytes: must be positive (got 0)"}},
		{"limits", func(c *Config) { c.Apps[0].Limits.MaxPresenceMembers, c.Apps[0].Limits.MaxRequestBytes = 0, -1 }, []string{
			"apps[0].limits.max_presence_members: must be positive (got 0)", "apps[0].limits.max_request_bytes: must be positive (got -1)"}},
		{"history off needs nothing else", func(c *Config) { c.Apps[0].History = apps.History{} }, nil},
		{"history", func(c *Config) {
			c.History.MaxBytes, c.History.MaxReaders = -1, -1
			h := &c.Apps[0].History
			h.Enabled, h.Channels, h.MaxEvents, h.TTL = true, []string{"a*b"}, 5000, 0
		}, []string{
			"history.max_bytes: must be 0 (the default, 64 MiB) or more (got -1)",
			"history.max_readers: must be 0 (the default, 10000) or more (got -1)",
			`apps[0].history.channels: must hold channel names, prefixes ending in * or "*" (got "a*b")`,
			"apps[0].history.max_events: must be between 1 and 4000 (got 5000)",
			"apps[0].history.ttl: must be positive (got 0s)",
		}},
		{"problems in order", func(c *Config) { c.Log.Format = ""; c.Server.Port = -1; second(c); c.Apps[1].PongTimeout = 0 }, []string{
			"server.port: must be a port number 1-65535 (got -1)",
			`log.format: must be one of text, json (got "")`,
			"apps[1].pong_timeout: must be positive (got 0s)",
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := Default()
			c.edit(cfg)
			err := cfg.Validate()
			switch {
			case c.want == nil && err != nil:
				t.Errorf("unexpected error: %v", err)
			case c.want != nil && err == nil:
				t.Errorf("valid, want %q", c.want)
			case c.want != nil && err.Error() != strings.Join(c.want, "\n"):
				t.Errorf("error\n got:\n%v\nwant:\n%s", err, strings.Join(c.want, "\n"))
			}
		})
	}
}

// After Load, Validate names where each setting came from.
func TestValidateNamesSources(t *testing.T) {
	inDir(t, map[string]string{"herald.yaml": "apps:\n  - id: a\n    key: k\n    secret: s\n    pong_timeout: 5\n"})
	cfg := load(t, Options{File: "herald.yaml", Environ: []string{"REVERB_APP_PING_INTERVAL=9"}, Flags: Overrides{LogLevel: ptr("debug")}})
	a := cfg.Apps[0]
	a.PongTimeout, a.PingInterval, a.MaxMessageBytes, cfg.Log.Level = 0, 0, 0, "x"
	want := strings.Join([]string{
		`flag --log-level: must be one of debug, info, warn, error (got "x")`,
		"environment: REVERB_APP_PING_INTERVAL: must be positive (got 0s)",
		"herald.yaml:5: apps[0].pong_timeout: must be positive (got 0s)",
		"herald.yaml:2: apps[0].max_message_bytes: must be positive (got 0)",
	}, "\n")
	if err := cfg.Validate(); err == nil || err.Error() != want {
		t.Errorf("got:\n%v\nwant:\n%s", err, want)
	}
}
