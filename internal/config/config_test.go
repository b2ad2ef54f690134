package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func write(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func ptr[T any](v T) *T { return &v }

func TestDefault(t *testing.T) {
	c, err := Load(Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := c.Apps[0]
	if !c.DefaultApp || a.ID != DefaultAppID || a.Key != DefaultAppKey || c.Server.Host != "0.0.0.0" || c.Server.Port != 8080 {
		t.Fatalf("default config %+v %+v", c, a)
	}
	if a.ActivityTimeout != 30*time.Second || a.PingInterval != 60*time.Second || a.MaxMessageBytes != 10000 || a.ClientEvents != "members" {
		t.Fatalf("default app %+v", a)
	}
}

const fileYAML = `server:
  host: 127.0.0.1
  port: 9000
  path: /ws
log:
  level: debug
apps:
  - id: 12345
    key: file-key
    secret: file-secret
    client_events: all
    ping_interval: 1.5s
    pong_timeout: 2
    authorized_connections_timeout: 500ms
    allowed_origins: [app.example.com, "*.example.org"]
    limits:
      max_batch_events: 5
  - id: second
    key: second-key
    secret: second-secret
    enabled: false
`

func TestFile(t *testing.T) {
	c, err := Load(Options{File: write(t, "herald.yaml", fileYAML)})
	if err != nil {
		t.Fatal(err)
	}
	a := c.Apps[0]
	if c.DefaultApp || len(c.Apps) != 2 || a.ID != "12345" || a.ClientEvents != "all" || a.PingInterval != 1500*time.Millisecond ||
		a.PongTimeout != 2*time.Second || a.AuthorizedConnectionsTimeout != 500*time.Millisecond || a.Limits.MaxBatchEvents != 5 ||
		a.Limits.MaxChannelsPerEvent != 100 || len(a.AllowedOrigins) != 2 || c.Apps[1].Enabled || c.Server.Path != "/ws" || c.Log.Level != "debug" {
		t.Fatalf("loaded %+v %+v", c, a)
	}
}

func TestPriority(t *testing.T) {
	file := write(t, "herald.yaml", fileYAML)
	env := write(t, ".env", "REVERB_SERVER_PORT=9100\nREVERB_APP_KEY=dotenv-key\nREVERB_APP_PING_INTERVAL=7\nREVERB_APP_MAX_CONNECTIONS=\n")
	c, err := Load(Options{File: file, EnvFile: env})
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.Port != 9100 || c.Apps[0].Key != "dotenv-key" || c.Apps[0].PingInterval != 7*time.Second || c.Apps[0].MaxConnections != 0 {
		t.Fatalf(".env over file: %+v %+v", c.Server, c.Apps[0])
	}
	c, err = Load(Options{File: file, EnvFile: env, Environ: []string{"REVERB_SERVER_PORT=9200", "REVERB_APP_KEY=env-key"}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.Port != 9200 || c.Apps[0].Key != "env-key" {
		t.Fatalf("environment over .env: %+v %+v", c.Server, c.Apps[0])
	}
	c, err = Load(Options{File: file, EnvFile: env, Environ: []string{"REVERB_SERVER_PORT=9200"}, Flags: Overrides{Port: ptr(9300), AppKey: ptr("flag-key")}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.Port != 9300 || c.Apps[0].Key != "flag-key" || c.Apps[1].Key != "second-key" {
		t.Fatalf("flags over everything: %+v %+v", c.Server, c.Apps)
	}
}

func TestLaravelEnv(t *testing.T) {
	env := write(t, ".env", `APP_NAME="Marketplace"
BROADCAST_CONNECTION=reverb
REVERB_APP_ID=884213
REVERB_APP_KEY=mkt-key-123
REVERB_APP_SECRET="mkt-secret-456"
REVERB_HOST="localhost"
REVERB_PORT=8080
REVERB_SCHEME=http
REVERB_SERVER_PORT=${REVERB_PORT}
VITE_REVERB_APP_KEY="${REVERB_APP_KEY}"
`)
	c, err := Load(Options{EnvFile: env})
	if err != nil {
		t.Fatal(err)
	}
	a := c.Apps[0]
	if c.DefaultApp || a.ID != "884213" || a.Key != "mkt-key-123" || a.Secret != "mkt-secret-456" || c.Server.Port != 8080 {
		t.Fatalf("%+v %+v", c, a)
	}
}

func TestErrorsAreLocated(t *testing.T) {
	cases := []struct {
		name string
		opts func(t *testing.T) Options
		want []string
	}{
		{"bad enum in file", func(t *testing.T) Options {
			return Options{File: write(t, "herald.yaml", "apps:\n  - id: a\n    key: k\n    secret: s\n    client_events: some\n")}
		}, []string{`herald.yaml:5: apps[0].client_events: must be one of members, all, none (got "some")`}},
		{"unknown key", func(t *testing.T) Options {
			return Options{File: write(t, "herald.yaml", "server:\n  host: x\n  prot: 1\n")}
		}, []string{`herald.yaml:3: server.prot: unknown key`}},
		{"wrong type", func(t *testing.T) Options {
			return Options{File: write(t, "herald.yaml", "server:\n  port: eighty\n")}
		}, []string{`herald.yaml:2: server.port: must be an integer (got "eighty")`}},
		{"syntax", func(t *testing.T) Options {
			return Options{File: write(t, "herald.yaml", "server:\n  host: a\n   port: 1\n")}
		}, []string{`herald.yaml:3: mapping values are not allowed in this context`}},
		{"duplicate key", func(t *testing.T) Options {
			return Options{File: write(t, "herald.yaml", "apps:\n  - id: a\n    key: k\n    secret: s\n  - id: b\n    key: k\n    secret: s\n")}
		}, []string{`herald.yaml:6: apps[1].key: duplicate of apps[0].key`}},
		{"zero limit", func(t *testing.T) Options {
			return Options{File: write(t, "herald.yaml", "apps:\n  - id: a\n    key: k\n    secret: s\n    limits:\n      max_batch_events: 0\n")}
		}, []string{`herald.yaml:6: apps[0].limits.max_batch_events: must be positive (got 0)`}},
		{"environment", func(t *testing.T) Options {
			return Options{Environ: []string{"REVERB_SERVER_PORT=abc"}}
		}, []string{`environment: REVERB_SERVER_PORT: must be a port number 1-65535 (got "abc")`}},
		{".env", func(t *testing.T) Options {
			return Options{EnvFile: write(t, ".env", "A=1\nREVERB_APP_PING_INTERVAL=x\n")}
		}, []string{`.env:2: REVERB_APP_PING_INTERVAL: must be a positive number of seconds (got "x")`}},
		{"flag", func(t *testing.T) Options {
			return Options{Flags: Overrides{LogLevel: ptr("loud")}}
		}, []string{`flag --log-level: log.level: must be one of debug, info, warn, error (got "loud")`}},
		{"incomplete credentials", func(t *testing.T) Options {
			return Options{Environ: []string{"REVERB_APP_KEY=k"}}
		}, []string{`app credentials are incomplete: app.key given (environment: REVERB_APP_KEY) but app.id, app.secret missing`}},
		{"several problems at once", func(t *testing.T) Options {
			return Options{File: write(t, "herald.yaml", "server:\n  port: 70000\napps:\n  - id: a\n    key: k\n    secret: s\n    max_connections: -1\n")}
		}, []string{`herald.yaml:2: server.port: must be a port number 1-65535 (got 70000)`, `herald.yaml:7: apps[0].max_connections: must be 0 (unlimited) or more (got -1)`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := c.opts(t)
			cfg, err := Load(o)
			if err == nil || cfg != nil {
				t.Fatalf("Load succeeded: %+v", cfg)
			}
			msg := err.Error()
			dir := filepath.Dir(o.File) + "/"
			if o.EnvFile != "" {
				dir = filepath.Dir(o.EnvFile) + "/"
			}
			msg = strings.ReplaceAll(msg, dir, "")
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error\n%s\ndoes not contain\n%s", msg, w)
				}
			}
		})
	}
}

func TestValidateTable(t *testing.T) {
	cases := []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) {}, ""},
		{func(c *Config) { c.Apps[0].Secret = "" }, "apps[0].secret: is required"},
		{func(c *Config) { c.Apps[0].Key = "a/b" }, "apps[0].key: must not contain"},
		{func(c *Config) { c.Apps[0].ActivityTimeout = 1500 * time.Millisecond }, "apps[0].activity_timeout: must be a whole number of seconds"},
		{func(c *Config) { c.Apps[0].PongTimeout = 0 }, "apps[0].pong_timeout: must be positive"},
		{func(c *Config) { c.Apps[0].AllowedOrigins = nil }, "apps[0].allowed_origins: must list at least one origin"},
		{func(c *Config) { c.Server.Path = "ws" }, "server.path: must start with /"},
		{func(c *Config) { c.Log.Format = "xml" }, "log.format: must be one of text, json"},
		{func(c *Config) { c.Apps = nil }, "no apps configured"},
	}
	for _, c := range cases {
		cfg := Default()
		c.edit(cfg)
		err := cfg.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("unexpected error %v", err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("got %v, want %q", err, c.want)
		}
	}
}

func FuzzLoadYAML(f *testing.F) {
	f.Add(fileYAML)
	f.Add("apps:\n  - id: a\n    key: k\n    secret: s\n")
	f.Add("server: 5\n")
	f.Add("apps: [1, 2]\n")
	f.Add("log: {level: debug}\n")
	f.Fuzz(func(t *testing.T, s string) {
		p := filepath.Join(t.TempDir(), "f.yaml")
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(Options{File: p})
		if (cfg == nil) == (err == nil) {
			t.Fatalf("want exactly one of config and error: %v %v", cfg, err)
		}
		if cfg != nil && cfg.Validate() != nil {
			t.Fatalf("Load returned an invalid config: %v", cfg.Validate())
		}
	})
}
