package config

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/herald-ws/herald/internal/apps"
	"github.com/herald-ws/herald/internal/envfile"
)

// Load builds the configuration from opts — defaults, then the config
// file, the .env file, the environment and the flags, each overriding the
// ones before — and validates it. It returns every problem found, joined,
// and no configuration when there is any.
func Load(opts Options) (*Config, error) {
	cfg := Default()
	cfg.origin = map[string]source{}
	var errs []error
	fileApps := false
	if opts.File != "" {
		var ferrs []error
		fileApps, ferrs = readFile(opts.File, cfg)
		errs = append(errs, ferrs...)
	}
	g, serrs := collect(opts)
	reverbCluster(g)
	errs = append(errs, serrs...)
	errs = append(errs, applyText(cfg, g, fileApps)...)
	cfg.defaultHost()
	cfg.defaultDrain()
	errs = append(errs, cfg.problems()...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	cfg.Warnings = append(g.warnings(), cfg.openOrigins(g)...)
	return cfg, nil
}

// A textSetting is a setting that the .env file, the environment or a
// flag gives as text.
type textSetting struct {
	env  string // Reverb's variable name, "" when there is none
	flag string // the flag's name, "" when there is none
	path string // the setting: "server.port", "apps[0].ping_interval"
	// set parses v into cfg (a is cfg's first app); it leaves cfg alone
	// and explains the problem when v is not valid.
	set func(cfg *Config, a *apps.App, v string) error
}

// overridable are the settings above the config file, in the order their
// problems are reported. App settings apply to the first app.
var overridable = []textSetting{
	{"REVERB_SERVER_HOST", "host", "server.host", func(c *Config, _ *apps.App, v string) error { c.Server.Host = v; return nil }},
	{"REVERB_SERVER_PORT", "port", "server.port", func(c *Config, _ *apps.App, v string) error { return setPort(&c.Server.Port, v) }},
	{"REVERB_SERVER_PATH", "path", "server.path", func(c *Config, _ *apps.App, v string) error { c.Server.Path = normalizePath(v); return nil }},
	{"", "transport", "server.transport", func(c *Config, _ *apps.App, v string) error { c.Server.Transport = v; return nil }},
	{"", "debug-addr", "server.debug_addr", func(c *Config, _ *apps.App, v string) error { c.Server.DebugAddr = v; return nil }},
	{"HERALD_METRICS_ADDR", "metrics-addr", "server.metrics_addr", func(c *Config, _ *apps.App, v string) error { c.Server.MetricsAddr = v; return nil }},
	{"HERALD_METRICS_TOKEN", "", "server.metrics_token", func(c *Config, _ *apps.App, v string) error { c.Server.MetricsToken = v; return nil }},
	{"HERALD_TRUSTED_PROXIES", "", "server.trusted_proxies", func(c *Config, _ *apps.App, v string) error {
		c.Server.TrustedProxies = strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' })
		return nil
	}},
	{"HERALD_DASHBOARD_TOKEN", "", "server.dashboard_token", func(c *Config, _ *apps.App, v string) error { c.Server.DashboardToken = v; return nil }},
	{"HERALD_DASHBOARD_USER", "", "server.dashboard_user", func(c *Config, _ *apps.App, v string) error { c.Server.DashboardUser = v; return nil }},
	{"HERALD_DASHBOARD_PASSWORD", "", "server.dashboard_password", func(c *Config, _ *apps.App, v string) error { c.Server.DashboardPassword = v; return nil }},
	// Reverb reads no TLS variable itself (its config/reverb.php takes
	// options.tls.local_cert and local_pk); these are the names Laravel
	// apps commonly wire there, read below Herald's own.
	{"REVERB_TLS_CERT_PATH", "", "server.tls_cert", func(c *Config, _ *apps.App, v string) error { c.Server.TLSCert = v; return nil }},
	{"REVERB_TLS_KEY_PATH", "", "server.tls_key", func(c *Config, _ *apps.App, v string) error { c.Server.TLSKey = v; return nil }},
	{"HERALD_TLS_CERT", "tls-cert", "server.tls_cert", func(c *Config, _ *apps.App, v string) error { c.Server.TLSCert = v; return nil }},
	{"HERALD_TLS_KEY", "tls-key", "server.tls_key", func(c *Config, _ *apps.App, v string) error { c.Server.TLSKey = v; return nil }},
	// The cluster engine: Reverb's REVERB_SCALING_ENABLED with REDIS_*
	// comes in as cluster.url too (reverbCluster), below Herald's own.
	{"HERALD_CLUSTER_URL", "cluster", "cluster.url", func(c *Config, _ *apps.App, v string) error { c.Cluster.URL = v; return nil }},
	{"REVERB_SCALING_CHANNEL", "", "cluster.prefix", func(c *Config, _ *apps.App, v string) error { c.Cluster.Prefix = v; return nil }},
	{"HERALD_CLUSTER_PREFIX", "", "cluster.prefix", func(c *Config, _ *apps.App, v string) error { c.Cluster.Prefix = v; return nil }},
	{"", "pid-file", "server.pid_file", func(c *Config, _ *apps.App, v string) error { c.Server.PIDFile = v; return nil }},
	{"", "log-level", "log.level", func(c *Config, _ *apps.App, v string) error { c.Log.Level = v; return nil }},
	{"", "log-format", "log.format", func(c *Config, _ *apps.App, v string) error { c.Log.Format = v; return nil }},
	{"", "debug", "log.debug", func(c *Config, _ *apps.App, v string) error { return setBool(&c.Log.Debug, v) }},
	{"REVERB_APP_ID", "app-id", "apps[0].id", func(_ *Config, a *apps.App, v string) error { a.ID = v; return nil }},
	{"REVERB_APP_KEY", "app-key", "apps[0].key", func(_ *Config, a *apps.App, v string) error { a.Key = v; return nil }},
	{"REVERB_APP_SECRET", "app-secret", "apps[0].secret", func(_ *Config, a *apps.App, v string) error { a.Secret = v; return nil }},
	{"REVERB_APP_PING_INTERVAL", "", "apps[0].ping_interval", func(_ *Config, a *apps.App, v string) error { return setSeconds(&a.PingInterval, v) }},
	{"REVERB_APP_ACTIVITY_TIMEOUT", "", "apps[0].activity_timeout", func(_ *Config, a *apps.App, v string) error { return setSeconds(&a.ActivityTimeout, v) }},
	{"REVERB_APP_MAX_MESSAGE_SIZE", "", "apps[0].max_message_bytes", func(_ *Config, a *apps.App, v string) error { return setBytes(&a.MaxMessageBytes, v) }},
	{"REVERB_APP_MAX_CONNECTIONS", "", "apps[0].max_connections", func(_ *Config, a *apps.App, v string) error { return setConnections(&a.MaxConnections, v) }},
	{"REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM", "", "apps[0].client_events", func(_ *Config, a *apps.App, v string) error { a.ClientEvents = v; return nil }},
	{"REVERB_ALLOWED_ORIGINS", "", "apps[0].allowed_origins", func(_ *Config, a *apps.App, v string) error { return setOrigins(&a.AllowedOrigins, v) }},
	{"REVERB_MAX_REQUEST_SIZE", "", "apps[0].limits.max_request_bytes", func(_ *Config, a *apps.App, v string) error { return setBytes(&a.Limits.MaxRequestBytes, v) }},
	{"HERALD_BROADCAST_TOKEN", "", "apps[0].broadcast_token", func(_ *Config, a *apps.App, v string) error { a.BroadcastToken = v; return nil }},
	{"HERALD_WEBHOOK_URL", "", "apps[0].webhooks", func(_ *Config, a *apps.App, v string) error {
		a.Webhooks = []apps.Webhook{{URL: v}}
		return nil
	}},
	{"HERALD_WEBHOOK_EVENTS", "", "apps[0].webhooks[0].events", func(_ *Config, a *apps.App, v string) error {
		if len(a.Webhooks) == 0 {
			return fmt.Errorf("HERALD_WEBHOOK_EVENTS needs HERALD_WEBHOOK_URL")
		}
		var events []string
		for _, e := range strings.Split(v, ",") {
			if e = strings.TrimSpace(e); e != "" {
				events = append(events, e)
			}
		}
		a.Webhooks[0].Events = events
		return nil
	}},
}

// given is a setting's text and where it came from.
type given struct {
	value string
	src   source
}

// gathered is what the .env file, the environment and the flags give.
type gathered struct {
	set  map[string]given // the settings, by path
	vars map[string]given // every variable of the .env file and the environment, by name (for hints)
}

// collect gathers the settings given by the .env file, the
// environment and the flags, keyed by path; a later source replaces an
// earlier one. Empty variables count as unset: a Laravel .env often has
// REVERB_APP_MAX_CONNECTIONS= to mean "the default".
func collect(opts Options) (*gathered, []error) {
	environ := map[string]string{}
	for _, kv := range opts.Environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			environ[k] = v
		}
	}
	g := &gathered{set: map[string]given{}, vars: map[string]given{}}
	out := g.set
	var errs []error
	if opts.EnvFile != "" {
		if err := fromEnvFile(opts.EnvFile, environ, g); err != nil {
			errs = append(errs, err)
		}
	}
	for k, v := range environ {
		g.vars[k] = given{v, source{at: "environment", key: k}}
	}
	for _, s := range overridable {
		if v := environ[s.env]; s.env != "" && v != "" {
			out[s.path] = given{v, source{at: "environment", key: s.env}}
		}
	}
	for name, v := range flagValues(opts.Flags) {
		for _, s := range overridable {
			if s.flag == name {
				out[s.path] = given{v, source{at: "flag --" + name}}
			}
		}
	}
	return g, errs
}

// fromEnvFile adds the Reverb variables of a Laravel .env file, as Laravel
// reads them: the last definition of a name wins and ${NAME} is
// interpolated, from the environment first.
func fromEnvFile(path string, environ map[string]string, g *gathered) error {
	f, err := envfile.ParseFile(path)
	if err != nil {
		var syntax *envfile.SyntaxError
		if errors.As(err, &syntax) {
			return err // already "path:LINE: …"
		}
		return fmt.Errorf(".env file: %w", err)
	}
	values := f.Resolve(func(k string) (string, bool) { v, ok := environ[k]; return v, ok })
	for _, s := range overridable {
		if e, ok := f.Lookup(s.env); ok && s.env != "" && values[s.env] != "" {
			g.set[s.path] = given{values[s.env], source{at: fmt.Sprintf("%s:%d", f.Path, e.Line), key: s.env}}
		}
	}
	for _, e := range f.Entries { // the last definition wins
		g.vars[e.Key] = given{values[e.Key], source{at: fmt.Sprintf("%s:%d", f.Path, e.Line), key: e.Key}}
	}
	return nil
}

// flagValues returns the given flags as text, by flag name.
func flagValues(f Overrides) map[string]string {
	out := map[string]string{}
	for name, v := range map[string]*string{
		"host": f.Host, "path": f.Path, "app-id": f.AppID, "app-key": f.AppKey, "app-secret": f.AppSecret,
		"log-level": f.LogLevel, "log-format": f.LogFormat, "transport": f.Transport, "debug-addr": f.DebugAddr,
		"metrics-addr": f.MetricsAddr, "tls-cert": f.TLSCert, "tls-key": f.TLSKey, "pid-file": f.PIDFile,
		"cluster": f.Cluster,
	} {
		if v != nil {
			out[name] = *v
		}
	}
	if f.Port != nil {
		out["port"] = strconv.Itoa(*f.Port)
	}
	if f.Debug != nil {
		out["debug"] = strconv.FormatBool(*f.Debug)
	}
	return out
}

// applyText applies the settings given as text to cfg. When the config
// file lists no apps, credentials given here define the first app, and
// then all three are required.
func applyText(cfg *Config, g *gathered, fileApps bool) []error {
	var errs []error
	set := g.set
	incomplete := false
	if !fileApps {
		if err := credentialsApp(cfg, g); err != nil {
			errs, incomplete = append(errs, err), true
			for _, p := range credentialPaths {
				cfg.refuse(p)
			}
		}
	}
	for _, s := range overridable {
		g, ok := set[s.path]
		if !ok || incomplete && slices.Contains(credentialPaths, s.path) {
			continue
		}
		if err := s.set(cfg, cfg.Apps[0], g.value); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", g.src, err))
			cfg.refuse(s.path)
			continue
		}
		cfg.note(s.path, g.src)
	}
	return errs
}

var credentialPaths = []string{"apps[0].id", "apps[0].key", "apps[0].secret"}

// credentialsApp replaces the development app with a new one when id, key
// or secret are given, and reports which are missing.
func credentialsApp(cfg *Config, g *gathered) error {
	var have []given
	var missing []string
	for _, s := range overridable {
		if !slices.Contains(credentialPaths, s.path) {
			continue
		}
		if v, ok := g.set[s.path]; ok {
			have = append(have, v)
		} else {
			missing = append(missing, fmt.Sprintf("%s (--%s)%s", s.env, s.flag, g.misspelledHint(s.env)))
		}
	}
	switch {
	case len(have) == 0:
		return nil
	case len(missing) > 0:
		return fmt.Errorf("%s: app credentials are incomplete: %s missing; with no apps in a config file, id, key and secret together define the app",
			have[0].src, strings.Join(missing, " and "))
	}
	cfg.Apps, cfg.DefaultApp = []*apps.App{NewApp()}, false
	return nil
}

func setBool(dst *bool, v string) error {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return fmt.Errorf("must be true or false (got %q)", v)
	}
	*dst = b
	return nil
}

func setPort(dst *int, v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("must be a port number 1-65535 (got %q)", v)
	}
	*dst = n
	return nil
}

// setSeconds reads whole seconds, as Reverb's variables are.
func setSeconds(dst *time.Duration, v string) error {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 || n > math.MaxInt64/int64(time.Second) {
		return fmt.Errorf("must be a positive number of seconds (got %q)", v)
	}
	*dst = time.Duration(n) * time.Second
	return nil
}

func setBytes(dst *int, v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return fmt.Errorf("must be a positive number of bytes (got %q)", v)
	}
	*dst = n
	return nil
}

func setConnections(dst *int, v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return fmt.Errorf("must be a number of connections, 0 (unlimited) or more (got %q)", v)
	}
	*dst = n
	return nil
}

// setOrigins reads a comma-separated list, as Reverb's
// REVERB_ALLOWED_ORIGINS.
// ParseOrigins splits a comma-separated REVERB_ALLOWED_ORIGINS value, as
// Herald reads it; "*" in the list allows any origin.
func ParseOrigins(v string) []string {
	var list []string
	for _, o := range strings.Split(v, ",") {
		if o = strings.TrimSpace(o); o != "" {
			list = append(list, o)
		}
	}
	return list
}

func setOrigins(dst *[]string, v string) error {
	list := ParseOrigins(v)
	if len(list) == 0 {
		return fmt.Errorf("must list at least one origin, comma-separated (\"*\" for any) (got %q)", v)
	}
	*dst = list
	return nil
}
