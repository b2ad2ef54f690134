// Package config builds Herald's configuration from, in rising priority:
// built-in defaults, a YAML config file, a Laravel .env file, the process
// environment (Reverb's variable names) and command-line flags.
//
// Every bad value is reported with its source — "herald.yaml:12:
// apps[0].client_events", "environment: REVERB_SERVER_PORT", "/app/.env:7:
// REVERB_APP_PING_INTERVAL", "flag --port" — and what is wrong with it.
// Load reports every problem at once, joined, and never returns a
// half-built configuration: an operator fixes the whole file in one pass
// and Herald never starts on a default it silently fell back to.
//
// A Config is built once at start and then only read; it is safe to read
// from any goroutine as long as nobody modifies it.
package config

import (
	"time"

	"github.com/herald-ws/herald/internal/apps"
)

// The built-in development app, used when no app is configured anywhere.
// Its credentials are public: development only.
const (
	DefaultAppID     = "herald-app"
	DefaultAppKey    = "herald-key"
	DefaultAppSecret = "herald-secret"
)

// Config is the whole configuration.
type Config struct {
	Server  Server
	Log     Log
	History History
	Cluster Cluster // the scale-out engine (cluster.go); none by default
	Apps    []*apps.App
	// DefaultApp is true when no app was configured anywhere and the
	// built-in development app is used.
	DefaultApp bool
	// Warnings are what Load noticed that does not stop Herald but may not
	// be what the operator meant (a misspelled variable, a Reverb switch
	// Herald does not implement), each naming its source; serve logs them.
	Warnings []string

	// origin records where each setting came from, keyed by its path
	// ("apps[0].key"), so that Validate can name the source of a problem.
	origin map[string]source
	// refused holds the paths whose given value Load already reported as
	// bad; Validate does not report them (or anything under them) again.
	refused map[string]bool
}

// Server is the listener's configuration.
type Server struct {
	Host            string
	Port            int    // 1-65535; 0 (only when built in code, as tests do) picks a free port
	Path            string // "" or "/prefix", no trailing slash
	ShutdownTimeout time.Duration
	// Transport is "epoll" (event-driven, the default on Linux) or
	// "goroutine" (a reader and a writer goroutine per socket); "" picks
	// the platform's default.
	Transport string
	// DebugAddr, when set, serves net/http/pprof there (keep it private:
	// 127.0.0.1:6060).
	DebugAddr string
	// MetricsAddr, when set, serves GET /metrics (Prometheus text format)
	// on a listener of its own there (e.g. 127.0.0.1:9100).
	MetricsAddr string
	// MetricsToken, when set, also serves GET /metrics on the main port to
	// requests with "Authorization: Bearer <token>"; at least
	// MinMetricsTokenLength characters.
	MetricsToken string
	// DashboardToken, or DashboardUser with DashboardPassword, turns on
	// the web dashboard at {path}/dashboard behind that token or those
	// basic-auth credentials; with neither it is off (never open).
	DashboardToken, DashboardUser, DashboardPassword string
	// WriteTimeout is how long a socket may refuse our data before it is
	// dropped (a client that stopped reading).
	WriteTimeout time.Duration
	// CoalesceWindow is how long the flush of a hot socket (events less
	// than two windows apart) waits so that more events share one write;
	// 0 writes every event at once. Epoll transport only.
	CoalesceWindow time.Duration
	// RequestTimeout bounds reading the body of an HTTP request that is not
	// a WebSocket upgrade (the header has its own 10 s); a client slower
	// than that gets 408 and its connection closed. 0 means 10 s.
	RequestTimeout time.Duration
	// XHRSessionTimeout is how long a session of pusher-js's HTTP
	// transports (xhr_streaming, xhr_polling) lives without a receive
	// request before it is closed like a dropped socket; 0 means 10 s.
	XHRSessionTimeout time.Duration
	// TLSCert and TLSKey are PEM files (certificate chain, private key);
	// set together, the main listener serves https:// and wss:// on the
	// one port, and SIGHUP reloads them (tls.go).
	TLSCert, TLSKey string
	// DrainWindow spreads a graceful stop's 4200 closes evenly over this
	// long, in random order, so clients do not all reconnect at once; 0
	// closes them all at once. Shorter than ShutdownTimeout.
	DrainWindow time.Duration
	// PIDFile is where serve writes its process id for herald restart;
	// "" means herald-PORT.pid in $XDG_RUNTIME_DIR or the temp directory,
	// PIDFileOff writes none.
	PIDFile string
	// TrustedProxies are the addresses and CIDR prefixes (a load balancer,
	// nginx) whose X-Forwarded-For names the client; from anyone else the
	// header is ignored. The client address is what per-address limits,
	// logs and HTTP-transport sessions use.
	TrustedProxies []string
	// MaxConnectionsPerIP caps one client address's open connections;
	// MaxNewConnectionsPerIP its new connections per second (bursts of
	// twice that). 0: no limit. Over either, 4100 (reconnect later).
	MaxConnectionsPerIP, MaxNewConnectionsPerIP int
	// MaxPendingHandshakes caps the connections that have not finished
	// sending their first request (a slowloris); past it the oldest such
	// connection is closed. 0 means DefaultMaxPendingHandshakes.
	MaxPendingHandshakes int
	// HeaderTimeout is how long a connection may take to send its first
	// request line and headers (the WebSocket handshake included); 0
	// means 10 s.
	HeaderTimeout time.Duration
}

// DefaultMaxPendingHandshakes is server.max_pending_handshakes' default:
// far above the handshakes in flight on a busy node (each takes
// milliseconds), far below what exhausts memory or file descriptors.
const DefaultMaxPendingHandshakes = 10000

// History is the node-wide channel-history setting (per-app settings are
// in apps.App.History).
type History struct {
	// MaxBytes caps the memory of all apps' history on this node; the
	// oldest events are evicted past it. 0 means 64 MiB.
	MaxBytes int64
	// MaxReaders bounds the HTTP readers held at once on this node
	// (long-polls waiting, SSE streams); past it new ones get 503.
	// 0 means 10,000.
	MaxReaders int
}

// Log configures logging.
type Log struct {
	Level  string // debug | info | warn | error
	Format string // text | json
	// Debug (--debug) logs at debug level and adds every frame in and out
	// of every connection, credentials redacted: for development.
	Debug bool
}

// Overrides are command-line flags; nil fields were not given.
type Overrides struct {
	Host        *string
	Port        *int
	Path        *string
	AppID       *string
	AppKey      *string
	AppSecret   *string
	LogLevel    *string
	LogFormat   *string
	Debug       *bool
	Transport   *string
	DebugAddr   *string
	MetricsAddr *string
	TLSCert     *string
	TLSKey      *string
	PIDFile     *string
	Cluster     *string
}

// Options say where Load reads from.
type Options struct {
	File    string   // YAML config file (--config), "" for none
	EnvFile string   // Laravel .env file (--env), "" for none
	Environ []string // os.Environ()-style KEY=VALUE pairs; nil for none
	Flags   Overrides
}

// Defaults of an app's settings.
const (
	defaultActivityTimeout = 30 * time.Second
	defaultPingInterval    = 60 * time.Second
	defaultPongTimeout     = 30 * time.Second
	defaultMaxMessageBytes = 10000
)

// NewApp returns an app without credentials and with every other setting
// at its default.
func NewApp() *apps.App {
	return &apps.App{
		Enabled:            true,
		AllowedOrigins:     []string{"*"},
		ClientEvents:       apps.ClientEventsMembers,
		UserAuthentication: true,
		ActivityTimeout:    defaultActivityTimeout,
		PingInterval:       defaultPingInterval,
		PongTimeout:        defaultPongTimeout,
		MaxMessageBytes:    defaultMaxMessageBytes,
		Limits:             apps.DefaultLimits,
		History:            DefaultHistory(),
	}
}

// DefaultHistory is an app's history when not configured: every channel,
// its last 100 events, for 5 minutes.
func DefaultHistory() apps.History {
	return apps.History{Enabled: true, Channels: []string{"*"}, MaxEvents: 100, TTL: 5 * time.Minute}
}

// Default is the configuration when nothing is configured: the built-in
// development app on 127.0.0.1:8080 (loopback: its credentials are
// public), logging text at info.
func Default() *Config {
	a := NewApp()
	a.ID, a.Key, a.Secret = DefaultAppID, DefaultAppKey, DefaultAppSecret
	return &Config{
		Server:     Server{Host: LoopbackHost, Port: 8080, ShutdownTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, CoalesceWindow: 5 * time.Millisecond, DrainWindow: DefaultDrainWindow},
		Log:        Log{Level: "info", Format: "text"},
		Apps:       []*apps.App{a},
		DefaultApp: true,
	}
}

// source says where a setting came from.
type source struct {
	at  string // "herald.yaml:12", "environment", "/app/.env:7", "flag --port"
	key string // the name the source uses: "apps[0].key", "REVERB_APP_KEY"; "" for a flag
}

func (s source) String() string {
	if s.key == "" {
		return s.at
	}
	return s.at + ": " + s.key
}

// note records that the setting at path came from s.
func (c *Config) note(path string, s source) {
	if c.origin == nil {
		c.origin = map[string]source{}
	}
	c.origin[path] = s
}

// refuse records that the value given for path was reported as bad.
func (c *Config) refuse(path string) {
	if c.refused == nil {
		c.refused = map[string]bool{}
	}
	c.refused[path] = true
}

// wasRefused reports whether path, or a setting enclosing it, was refused.
func (c *Config) wasRefused(path string) bool {
	for p := path; p != ""; p = parent(p) {
		if c.refused[p] {
			return true
		}
	}
	return false
}

// label names the setting at path for a message: its source when known,
// else the source of the nearest enclosing setting (a key missing from an
// app names the app's line), else the bare path.
func (c *Config) label(path string) string {
	if s, ok := c.origin[path]; ok {
		return s.String()
	}
	for p := parent(path); p != ""; p = parent(p) {
		if s, ok := c.origin[p]; ok && s.key != "" {
			return s.at + ": " + path
		}
	}
	return path
}

// parent returns the enclosing path: "apps[0].limits" for
// "apps[0].limits.max_batch_events", "apps[0]" for "apps[0].id", "apps"
// for "apps[0]".
func parent(path string) string {
	for i := len(path) - 1; i >= 0; i-- {
		if path[i] == '.' || path[i] == '[' {
			return path[:i]
		}
	}
	return ""
}
