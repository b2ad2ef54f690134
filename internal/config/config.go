// Package config builds Herald's configuration from, in rising priority:
// built-in defaults, a YAML config file, a Laravel .env file, the process
// environment (Reverb's variable names) and command-line flags. Every bad
// value is reported with its source — file and line, variable, or flag —
// and the key; Load returns all problems at once and never a half-built
// configuration.
package config

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/herald-ws/herald/internal/apps"
)

// The built-in development app, used when no app is configured anywhere.
const (
	DefaultAppID     = "herald-app"
	DefaultAppKey    = "herald-key"
	DefaultAppSecret = "herald-secret"
)

// Config is the whole configuration.
type Config struct {
	Server Server
	Log    Log
	Apps   []*apps.App
	// DefaultApp is true when no app was configured and the built-in
	// development app is used.
	DefaultApp bool

	// origin records where each setting came from ("herald.yaml:12",
	// "environment", "flag --port"), keyed by its path ("apps[0].key").
	origin map[string]string
}

// Server is the listener's configuration.
type Server struct {
	Host            string
	Port            int
	Path            string // "" or "/prefix", no trailing slash
	ShutdownTimeout time.Duration
	// Transport is "epoll" (event-driven, the default on Linux) or
	// "goroutine" (a reader and a writer goroutine per socket).
	Transport string
}

// Log configures logging.
type Log struct {
	Level  string // debug | info | warn | error
	Format string // text | json
}

// Overrides are command-line flags; nil fields were not given.
type Overrides struct {
	Host      *string
	Port      *int
	Path      *string
	AppID     *string
	AppKey    *string
	AppSecret *string
	LogLevel  *string
	LogFormat *string
	Transport *string
}

// Options say where Load reads from.
type Options struct {
	File    string   // YAML config file, "" for none
	EnvFile string   // Laravel .env file, "" for none
	Environ []string // os.Environ()-style KEY=VALUE pairs
	Flags   Overrides
}

// NewApp returns an app with every setting at its default.
func NewApp() *apps.App {
	return &apps.App{
		Enabled:            true,
		AllowedOrigins:     []string{"*"},
		ClientEvents:       apps.ClientEventsMembers,
		UserAuthentication: true,
		ActivityTimeout:    30 * time.Second,
		PingInterval:       60 * time.Second,
		PongTimeout:        30 * time.Second,
		MaxMessageBytes:    10000,
		Limits:             apps.DefaultLimits,
	}
}

func defaultServer() Server {
	return Server{Host: "0.0.0.0", Port: 8080, ShutdownTimeout: 10 * time.Second}
}

// Default is the configuration with nothing configured: the built-in
// development app on 0.0.0.0:8080.
func Default() *Config {
	a := NewApp()
	a.ID, a.Key, a.Secret = DefaultAppID, DefaultAppKey, DefaultAppSecret
	return &Config{Server: defaultServer(), Log: Log{Level: "info", Format: "text"}, Apps: []*apps.App{a}, DefaultApp: true}
}

// where names the source of the setting at path, or "" when unknown.
func (c *Config) where(path string) string {
	if s := c.origin[path]; s != "" {
		return s + ": "
	}
	return ""
}

// Validate checks the whole configuration, naming each bad setting's
// source. It reports every problem, joined.
func (c *Config) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s%s: %s", c.where(path), path, fmt.Sprintf(format, args...)))
	}
	if c.Server.Port < 0 || c.Server.Port > 65535 {
		bad("server.port", "must be a port number 1-65535 (got %d)", c.Server.Port)
	}
	if p := c.Server.Path; p != "" && (!strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/")) {
		bad("server.path", "must start with / and not end with / (got %q)", p)
	}
	if c.Server.Transport != "" && !oneOf(c.Server.Transport, "epoll", "goroutine") {
		bad("server.transport", "must be one of epoll, goroutine (got %q)", c.Server.Transport)
	}
	if c.Server.ShutdownTimeout <= 0 {
		bad("server.shutdown_timeout", "must be positive (got %s)", c.Server.ShutdownTimeout)
	}
	if !oneOf(c.Log.Level, "debug", "info", "warn", "error") {
		bad("log.level", "must be one of debug, info, warn, error (got %q)", c.Log.Level)
	}
	if !oneOf(c.Log.Format, "text", "json") {
		bad("log.format", "must be one of text, json (got %q)", c.Log.Format)
	}
	if len(c.Apps) == 0 {
		errs = append(errs, errors.New("no apps configured"))
	}
	ids, keys := map[string]int{}, map[string]int{}
	for i, a := range c.Apps {
		p := fmt.Sprintf("apps[%d]", i)
		for _, f := range []struct{ name, v string }{{"id", a.ID}, {"key", a.Key}, {"secret", a.Secret}} {
			switch {
			case f.v == "":
				bad(p+"."+f.name, "is required")
			case strings.ContainsAny(f.v, " \t\n/?#"):
				bad(p+"."+f.name, "must not contain spaces, '/', '?' or '#' (got %q)", f.v)
			}
		}
		if j, ok := ids[a.ID]; ok && a.ID != "" {
			bad(p+".id", "duplicate of apps[%d].id", j)
		}
		if j, ok := keys[a.Key]; ok && a.Key != "" {
			bad(p+".key", "duplicate of apps[%d].key", j)
		}
		ids[a.ID], keys[a.Key] = i, i
		validateApp(a, p, bad)
	}
	return errors.Join(errs...)
}

func validateApp(a *apps.App, p string, bad func(path, format string, args ...any)) {
	if len(a.AllowedOrigins) == 0 {
		bad(p+".allowed_origins", "must list at least one origin (\"*\" for any)")
	}
	if a.MaxConnections < 0 {
		bad(p+".max_connections", "must be 0 (unlimited) or more (got %d)", a.MaxConnections)
	}
	if !oneOf(a.ClientEvents, apps.ClientEventsMembers, apps.ClientEventsAll, apps.ClientEventsNone) {
		bad(p+".client_events", "must be one of members, all, none (got %q)", a.ClientEvents)
	}
	if a.AuthorizedConnectionsTimeout < 0 {
		bad(p+".authorized_connections_timeout", "must be 0 (off) or positive (got %s)", a.AuthorizedConnectionsTimeout)
	}
	if a.ActivityTimeout < time.Second || a.ActivityTimeout%time.Second != 0 {
		bad(p+".activity_timeout", "must be a whole number of seconds, at least 1 (got %s)", a.ActivityTimeout)
	}
	for name, d := range map[string]time.Duration{"ping_interval": a.PingInterval, "pong_timeout": a.PongTimeout} {
		if d <= 0 {
			bad(p+"."+name, "must be positive (got %s)", d)
		}
	}
	if a.MaxMessageBytes <= 0 {
		bad(p+".max_message_bytes", "must be positive (got %d)", a.MaxMessageBytes)
	}
	for name, v := range limitFields(&a.Limits) {
		if *v <= 0 {
			bad(p+".limits."+name, "must be positive (got %d)", *v)
		}
	}
}

// limitFields maps each limit's config name to its field.
func limitFields(l *apps.Limits) map[string]*int {
	return map[string]*int{
		"max_event_payload_bytes":     &l.MaxEventPayloadBytes,
		"max_channels_per_event":      &l.MaxChannelsPerEvent,
		"max_batch_events":            &l.MaxBatchEvents,
		"max_channel_name_length":     &l.MaxChannelNameLength,
		"max_event_name_length":       &l.MaxEventNameLength,
		"max_presence_members":        &l.MaxPresenceMembers,
		"max_presence_user_id_length": &l.MaxPresenceUserIDLength,
		"max_presence_info_bytes":     &l.MaxPresenceInfoBytes,
		"max_request_bytes":           &l.MaxRequestBytes,
		"client_events_per_second":    &l.ClientEventsPerSecond,
		"max_watchlist":               &l.MaxWatchlist,
	}
}

func oneOf(v string, options ...string) bool {
	for _, o := range options {
		if v == o {
			return true
		}
	}
	return false
}
