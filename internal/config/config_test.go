package config

import (
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/herald-ws/herald/internal/apps"
)

// inDir runs the rest of the test in a new directory holding files, so
// that paths appear in messages exactly as given ("herald.yaml:12: …").
func inDir(t *testing.T, files map[string]string) {
	t.Helper()
	t.Chdir(t.TempDir())
	for name, content := range files {
		writeFile(t, name, content)
	}
}

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }

func load(t *testing.T, opts Options) *Config {
	t.Helper()
	c, err := Load(opts)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c
}

// devApp is the built-in development app.
func devApp() *apps.App {
	return &apps.App{
		ID: DefaultAppID, Key: DefaultAppKey, Secret: DefaultAppSecret,
		Enabled: true, AllowedOrigins: []string{"*"}, ClientEvents: "members", UserAuthentication: true,
		ActivityTimeout: 30 * time.Second, PingInterval: 60 * time.Second, PongTimeout: 30 * time.Second,
		MaxMessageBytes: 10000, Limits: apps.DefaultLimits, History: DefaultHistory(),
	}
}

func sameApp(t *testing.T, got, want *apps.App) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("app\n got %+v\nwant %+v", *got, *want)
	}
}

func TestLoadNothing(t *testing.T) {
	c := load(t, Options{})
	if !c.DefaultApp || len(c.Apps) != 1 {
		t.Fatalf("DefaultApp %v, %d apps", c.DefaultApp, len(c.Apps))
	}
	sameApp(t, c.Apps[0], devApp())
	want := Server{Host: "127.0.0.1", Port: 8080, Path: "", ShutdownTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, CoalesceWindow: 5 * time.Millisecond, DrainWindow: DefaultDrainWindow}
	if !reflect.DeepEqual(c.Server, want) || c.Log != (Log{Level: "info", Format: "text"}) {
		t.Errorf("server %+v log %+v", c.Server, c.Log)
	}
	d := Default()
	if !reflect.DeepEqual(d.Server, c.Server) || !reflect.DeepEqual(d.Apps, c.Apps) || !d.DefaultApp {
		t.Errorf("Default() %+v differs from Load(Options{})", d)
	}
	if err := d.Validate(); err != nil {
		t.Errorf("Default().Validate() = %v", err)
	}
}

const fullYAML = `server:
  host: 127.0.0.1
  port: 9000
  path: /ws/
  shutdown_timeout: 2m
  coalesce_window: 0
  transport: goroutine
  debug_addr: 127.0.0.1:6060
  xhr_session_timeout: 3s
log:
  level: debug
  format: json
  debug: true
history:
  max_bytes: 1048576
  max_readers: 500
apps:
  - id: 884213
    key: file-key
    secret: "0123secret"
    enabled: false
    allowed_origins: [app.example.com, "*.example.org"]
    max_connections: 500
    client_events: all
    user_authentication: false
    authorized_connections_timeout: 500ms
    activity_timeout: 45
    ping_interval: 1.5s
    pong_timeout: 10
    max_message_bytes: 20000
    limits:
      max_batch_events: 5
      max_request_bytes: 0x40000
    history: {channels: ["orders.*", chat], max_events: 50, ttl: 2m}
  - id: second
    key: second-key
    secret: second-secret
`

func TestLoadFile(t *testing.T) {
	inDir(t, map[string]string{"herald.yaml": fullYAML})
	c := load(t, Options{File: "herald.yaml"})
	wantServer := Server{Host: "127.0.0.1", Port: 9000, Path: "/ws", ShutdownTimeout: 2 * time.Minute, Transport: "goroutine", DebugAddr: "127.0.0.1:6060", WriteTimeout: 10 * time.Second, CoalesceWindow: 0, XHRSessionTimeout: 3 * time.Second, DrainWindow: DefaultDrainWindow}
	if c.DefaultApp || !reflect.DeepEqual(c.Server, wantServer) || c.Log != (Log{Level: "debug", Format: "json", Debug: true}) || len(c.Apps) != 2 {
		t.Fatalf("loaded %+v", c)
	}
	limits := apps.DefaultLimits
	limits.MaxBatchEvents, limits.MaxRequestBytes = 5, 0x40000
	sameApp(t, c.Apps[0], &apps.App{
		ID: "884213", Key: "file-key", Secret: "0123secret", Enabled: false,
		AllowedOrigins: []string{"app.example.com", "*.example.org"}, MaxConnections: 500, ClientEvents: "all",
		UserAuthentication: false, AuthorizedConnectionsTimeout: 500 * time.Millisecond, ActivityTimeout: 45 * time.Second,
		PingInterval: 1500 * time.Millisecond, PongTimeout: 10 * time.Second, MaxMessageBytes: 20000, Limits: limits,
		History: apps.History{Enabled: true, Channels: []string{"orders.*", "chat"}, MaxEvents: 50, TTL: 2 * time.Minute},
	})
	if c.History.MaxReaders != 500 {
		t.Errorf("history.max_readers = %d", c.History.MaxReaders)
	}
	if c.History.MaxBytes != 1048576 {
		t.Errorf("history.max_bytes = %d", c.History.MaxBytes)
	}
	second := devApp()
	second.ID, second.Key, second.Secret = "second", "second-key", "second-secret"
	sameApp(t, c.Apps[1], second)
}

func TestLoadFileWithoutApps(t *testing.T) {
	for name, content := range map[string]string{
		"empty":                "",
		"comments":             "# nothing yet\n",
		"empty list":           "apps: []\n",
		"commented-out apps":   "server:\n  port: 9000\napps:\n#  - id: x\n",
		"null sections":        "server:\nlog:\napps:\n",
		"explicit null doc":    "~\n",
		"document marker only": "---\n",
	} {
		t.Run(name, func(t *testing.T) {
			inDir(t, map[string]string{"herald.yaml": content})
			c := load(t, Options{File: "herald.yaml"})
			if !c.DefaultApp || len(c.Apps) != 1 || c.Apps[0].ID != DefaultAppID {
				t.Errorf("DefaultApp %v apps %+v", c.DefaultApp, c.Apps)
			}
		})
	}
}

func TestLoadFileAliases(t *testing.T) {
	inDir(t, map[string]string{"herald.yaml": `apps:
  - id: a
    key: ka
    secret: s
    allowed_origins: &origins [one.example.com, two.example.com]
    limits: &limits {max_batch_events: 3}
  - id: b
    key: kb
    secret: s
    allowed_origins: *origins
    limits: *limits
`})
	c := load(t, Options{File: "herald.yaml"})
	if b := c.Apps[1]; len(b.AllowedOrigins) != 2 || b.Limits.MaxBatchEvents != 3 {
		t.Errorf("aliases not followed: %+v", b)
	}
}

// seedDotEnv has the shape of a Laravel app's .env, as `php artisan
// install:broadcasting` leaves it.
const seedDotEnv = `APP_NAME="Marketplace"
APP_ENV=local
APP_URL=https://marketplace.example.com

BROADCAST_CONNECTION=reverb

REVERB_APP_ID=884213
REVERB_APP_KEY=q8w3n5v7x2c4b6m9z1
REVERB_APP_SECRET="k3j5h7g9f2d4s6a8p0o1i3u5"
REVERB_HOST="localhost"
REVERB_PORT=8080
REVERB_SCHEME=http
REVERB_SERVER_PORT="${REVERB_PORT}"
REVERB_APP_MAX_CONNECTIONS=
REVERB_ALLOWED_ORIGINS="marketplace.example.com, *.marketplace.example.com" # the storefronts
export REVERB_APP_PING_INTERVAL=25
REVERB_MAX_REQUEST_SIZE=${REQUEST_LIMIT}

VITE_REVERB_APP_KEY="${REVERB_APP_KEY}"
VITE_REVERB_HOST="${REVERB_HOST}"
VITE_REVERB_PORT="${REVERB_PORT}"
VITE_REVERB_SCHEME="${REVERB_SCHEME}"
`

func TestLoadLaravelEnv(t *testing.T) {
	inDir(t, map[string]string{".env": seedDotEnv})
	c := load(t, Options{EnvFile: ".env", Environ: []string{"REQUEST_LIMIT=200000", "PATH=/usr/bin"}})
	if c.DefaultApp || len(c.Apps) != 1 || c.Server.Port != 8080 {
		t.Fatalf("DefaultApp %v, port %d, apps %d", c.DefaultApp, c.Server.Port, len(c.Apps))
	}
	want := devApp()
	want.ID, want.Key, want.Secret = "884213", "q8w3n5v7x2c4b6m9z1", "k3j5h7g9f2d4s6a8p0o1i3u5"
	want.AllowedOrigins = []string{"marketplace.example.com", "*.marketplace.example.com"}
	want.PingInterval = 25 * time.Second
	want.Limits.MaxRequestBytes = 200000
	sameApp(t, c.Apps[0], want)
}

func TestLoadEnviron(t *testing.T) {
	c := load(t, Options{Environ: []string{
		"REVERB_SERVER_HOST=127.0.0.1", "REVERB_SERVER_PORT=9001", "REVERB_SERVER_PATH=reverb",
		"REVERB_APP_ID=env-id", "REVERB_APP_KEY=env-key", "REVERB_APP_SECRET=env=secret",
		"REVERB_APP_PING_INTERVAL=15", "REVERB_APP_ACTIVITY_TIMEOUT=120", "REVERB_APP_MAX_MESSAGE_SIZE=65536",
		"REVERB_APP_MAX_CONNECTIONS=1000", "REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM=none",
		"REVERB_ALLOWED_ORIGINS=a.example.com,b.example.com", "REVERB_MAX_REQUEST_SIZE=10000",
		"UNRELATED=1", "MALFORMED",
	}})
	if c.DefaultApp || c.Server.Host != "127.0.0.1" || c.Server.Port != 9001 || c.Server.Path != "/reverb" {
		t.Fatalf("%+v", c)
	}
	want := devApp()
	want.ID, want.Key, want.Secret = "env-id", "env-key", "env=secret"
	want.PingInterval, want.ActivityTimeout, want.MaxMessageBytes = 15*time.Second, 120*time.Second, 65536
	want.MaxConnections, want.ClientEvents = 1000, "none"
	want.AllowedOrigins = []string{"a.example.com", "b.example.com"}
	want.Limits.MaxRequestBytes = 10000
	sameApp(t, c.Apps[0], want)
}

func TestLoadFlags(t *testing.T) {
	c := load(t, Options{Flags: Overrides{
		Host: ptr("::1"), Port: ptr(7000), Path: ptr("/p"), AppID: ptr("fid"), AppKey: ptr("fkey"), AppSecret: ptr("fsecret"),
		LogLevel: ptr("warn"), LogFormat: ptr("json"), Transport: ptr("epoll"), DebugAddr: ptr("127.0.0.1:6061"), Debug: ptr(true),
	}})
	wantServer := Server{Host: "::1", Port: 7000, Path: "/p", ShutdownTimeout: 10 * time.Second, Transport: "epoll", DebugAddr: "127.0.0.1:6061", WriteTimeout: 10 * time.Second, CoalesceWindow: 5 * time.Millisecond, DrainWindow: DefaultDrainWindow}
	if c.DefaultApp || !reflect.DeepEqual(c.Server, wantServer) || c.Log != (Log{Level: "warn", Format: "json", Debug: true}) {
		t.Fatalf("%+v", c)
	}
	want := devApp()
	want.ID, want.Key, want.Secret = "fid", "fkey", "fsecret"
	sameApp(t, c.Apps[0], want)
}

// A file's log.debug is turned off by --debug=false.
func TestDebugFlagOverridesFile(t *testing.T) {
	inDir(t, map[string]string{"herald.yaml": "log:\n  debug: true\n"})
	if c := load(t, Options{File: "herald.yaml"}); !c.Log.Debug {
		t.Fatal("log.debug: true not read")
	}
	if c := load(t, Options{File: "herald.yaml", Flags: Overrides{Debug: ptr(false)}}); c.Log.Debug {
		t.Fatal("--debug=false did not override the file")
	}
}

// TestPriority gives the port and the first app's key in every source and
// checks that the highest one present wins: file < .env < environment < flags.
func TestPriority(t *testing.T) {
	const file = "apps:\n  - {id: a, key: file-key, secret: s, ping_interval: 5}\n  - {id: b, key: second, secret: s}\nserver:\n  port: 9000\n"
	const dotenv = "REVERB_SERVER_PORT=9100\nREVERB_APP_KEY=dotenv-key\n"
	environ := []string{"REVERB_SERVER_PORT=9200", "REVERB_APP_KEY=env-key"}
	flags := Overrides{Port: ptr(9300), AppKey: ptr("flag-key")}
	cases := []struct {
		name                     string
		file, env, environ, flag bool
		port                     int
		key                      string
	}{
		{"file", true, false, false, false, 9000, "file-key"},
		{".env over file", true, true, false, false, 9100, "dotenv-key"},
		{"environment over .env", true, true, true, false, 9200, "env-key"},
		{"flags over everything", true, true, true, true, 9300, "flag-key"},
		{"environment over file", true, false, true, false, 9200, "env-key"},
		{"flags over .env", true, true, false, true, 9300, "flag-key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			inDir(t, map[string]string{"herald.yaml": file, ".env": dotenv})
			var o Options
			if c.file {
				o.File = "herald.yaml"
			}
			if c.env {
				o.EnvFile = ".env"
			}
			if c.environ {
				o.Environ = environ
			}
			if c.flag {
				o.Flags = flags
			}
			cfg := load(t, o)
			if cfg.Server.Port != c.port || cfg.Apps[0].Key != c.key {
				t.Errorf("port %d key %q, want %d %q", cfg.Server.Port, cfg.Apps[0].Key, c.port, c.key)
			}
			if a := cfg.Apps[0]; a.ID != "a" || a.PingInterval != 5*time.Second || cfg.Apps[1].Key != "second" || cfg.DefaultApp {
				t.Errorf("settings that were not overridden changed: %+v %+v", a, cfg.Apps[1])
			}
		})
	}
}

func TestEmptyVariablesAreUnset(t *testing.T) {
	inDir(t, map[string]string{".env": "REVERB_SERVER_PORT=9100\nREVERB_APP_MAX_CONNECTIONS=\nREVERB_APP_ID=\nREVERB_APP_KEY=''\n"})
	c := load(t, Options{EnvFile: ".env", Environ: []string{"REVERB_SERVER_PORT=", "REVERB_APP_SECRET=", "REVERB_ALLOWED_ORIGINS="}})
	if c.Server.Port != 9100 || !c.DefaultApp {
		t.Fatalf("port %d DefaultApp %v", c.Server.Port, c.DefaultApp)
	}
	sameApp(t, c.Apps[0], devApp())
}

func TestInterpolationUsesEnviron(t *testing.T) {
	inDir(t, map[string]string{".env": "REVERB_APP_ID=id\nREVERB_APP_KEY=\"${VAULT_KEY}\"\nREVERB_APP_SECRET=${VAULT_SECRET}\n"})
	c := load(t, Options{EnvFile: ".env", Environ: []string{"VAULT_KEY=from-vault", "VAULT_SECRET=s3"}})
	if a := c.Apps[0]; a.Key != "from-vault" || a.Secret != "s3" {
		t.Errorf("key %q secret %q", a.Key, a.Secret)
	}
}

func TestEnvironmentAppliesToFileApp(t *testing.T) {
	inDir(t, map[string]string{"herald.yaml": "apps:\n  - id: a\n    key: k\n    secret: s\n"})
	c := load(t, Options{File: "herald.yaml", Environ: []string{"REVERB_APP_SECRET=rotated"}})
	if a := c.Apps[0]; a.ID != "a" || a.Key != "k" || a.Secret != "rotated" || c.DefaultApp {
		t.Errorf("%+v", a)
	}
}
