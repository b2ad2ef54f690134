package config

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/herald-ws/herald/internal/apps"
	"github.com/herald-ws/herald/internal/envfile"
)

// Load builds and validates the configuration from opts.
func Load(opts Options) (*Config, error) {
	cfg := Default()
	cfg.origin = map[string]string{}
	var errs []error
	fileApps := false
	if opts.File != "" {
		var ferrs []error
		fileApps, ferrs = readFile(opts.File, cfg)
		errs = append(errs, ferrs...)
		if fileApps {
			cfg.DefaultApp = false
		}
	}
	vars, verrs := collectVars(opts)
	errs = append(errs, verrs...)
	ov := overridesFromVars(vars)
	mergeFlags(&ov, opts.Flags)
	errs = append(errs, ov.apply(cfg, fileApps)...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Server.Path = strings.TrimSuffix(cfg.Server.Path, "/")
	return cfg, nil
}

// setting is one value from the environment, a .env file or a flag, with
// the label of its source.
type setting struct {
	value, source string
}

// envNames are the variables Herald reads, Reverb's names.
var envNames = []string{
	"REVERB_SERVER_HOST", "REVERB_SERVER_PORT", "REVERB_SERVER_PATH",
	"REVERB_APP_ID", "REVERB_APP_KEY", "REVERB_APP_SECRET",
	"REVERB_APP_PING_INTERVAL", "REVERB_APP_ACTIVITY_TIMEOUT", "REVERB_APP_MAX_MESSAGE_SIZE",
	"REVERB_APP_MAX_CONNECTIONS", "REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM", "REVERB_ALLOWED_ORIGINS",
	"REVERB_MAX_REQUEST_SIZE",
}

// collectVars reads Herald's variables from the .env file, then the
// environment (which wins, as in Laravel). Empty values count as unset.
func collectVars(opts Options) (map[string]setting, []error) {
	environ := map[string]string{}
	for _, kv := range opts.Environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			environ[k] = v
		}
	}
	vars := map[string]setting{}
	if opts.EnvFile != "" {
		f, err := envfile.ParseFile(opts.EnvFile)
		if err != nil {
			if os.IsNotExist(err) {
				err = fmt.Errorf(".env file: %w", err)
			}
			return nil, []error{err}
		}
		resolved := f.Resolve(func(k string) (string, bool) { v, ok := environ[k]; return v, ok })
		for _, name := range envNames {
			if e, ok := f.Lookup(name); ok && resolved[name] != "" {
				vars[name] = setting{resolved[name], fmt.Sprintf("%s:%d", f.Path, e.Line)}
			}
		}
	}
	for _, name := range envNames {
		if v := environ[name]; v != "" {
			vars[name] = setting{v, "environment"}
		}
	}
	return vars, nil
}

// overrides are the settings above the config file, by config path.
type overrides map[string]setting

var envToPath = map[string]string{
	"REVERB_SERVER_HOST":                   "server.host",
	"REVERB_SERVER_PORT":                   "server.port",
	"REVERB_SERVER_PATH":                   "server.path",
	"REVERB_APP_ID":                        "app.id",
	"REVERB_APP_KEY":                       "app.key",
	"REVERB_APP_SECRET":                    "app.secret",
	"REVERB_APP_PING_INTERVAL":             "app.ping_interval",
	"REVERB_APP_ACTIVITY_TIMEOUT":          "app.activity_timeout",
	"REVERB_APP_MAX_MESSAGE_SIZE":          "app.max_message_bytes",
	"REVERB_APP_MAX_CONNECTIONS":           "app.max_connections",
	"REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM": "app.client_events",
	"REVERB_ALLOWED_ORIGINS":               "app.allowed_origins",
	"REVERB_MAX_REQUEST_SIZE":              "app.limits.max_request_bytes",
}

func overridesFromVars(vars map[string]setting) overrides {
	ov := overrides{}
	for name, s := range vars {
		s.source += ": " + name
		ov[envToPath[name]] = s
	}
	return ov
}

func mergeFlags(ov *overrides, f Overrides) {
	str := func(path, flag string, v *string) {
		if v != nil {
			(*ov)[path] = setting{*v, "flag --" + flag}
		}
	}
	str("server.host", "host", f.Host)
	if f.Port != nil {
		(*ov)["server.port"] = setting{strconv.Itoa(*f.Port), "flag --port"}
	}
	str("server.path", "path", f.Path)
	str("app.id", "app-id", f.AppID)
	str("app.key", "app-key", f.AppKey)
	str("app.secret", "app-secret", f.AppSecret)
	str("log.level", "log-level", f.LogLevel)
	str("log.format", "log-format", f.LogFormat)
	str("server.transport", "transport", f.Transport)
}

// apply sets the overrides on cfg. App settings go to the first app; when
// the file defined no apps, credentials given here define it.
func (ov overrides) apply(cfg *Config, fileApps bool) []error {
	var errs []error
	bad := func(s setting, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", s.source, fmt.Sprintf(format, args...)))
	}
	if !fileApps {
		var given, missing []string
		for _, k := range []string{"app.id", "app.key", "app.secret"} {
			if _, ok := ov[k]; ok {
				given = append(given, k)
			} else {
				missing = append(missing, k)
			}
		}
		if len(given) > 0 {
			if len(missing) > 0 {
				errs = append(errs, fmt.Errorf("app credentials are incomplete: %s given (%s) but %s missing; set REVERB_APP_ID, REVERB_APP_KEY and REVERB_APP_SECRET together",
					strings.Join(given, ", "), ov[given[0]].source, strings.Join(missing, ", ")))
			}
			cfg.Apps = []*apps.App{NewApp()}
			cfg.DefaultApp = false
		}
	}
	a := cfg.Apps[0]
	paths := make([]string, 0, len(ov))
	for p := range ov {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		s := ov[p]
		cfg.origin[strings.Replace(p, "app.", "apps[0].", 1)] = s.source
		if err := set(cfg, a, p, s.value); err != nil {
			bad(s, "%v", err)
		}
	}
	return errs
}

func set(cfg *Config, a *apps.App, path, v string) error {
	switch path {
	case "server.host":
		cfg.Server.Host = v
	case "server.port":
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("must be a port number 1-65535 (got %q)", v)
		}
		cfg.Server.Port = n
	case "server.path":
		cfg.Server.Path = v
	case "server.transport":
		cfg.Server.Transport = v
	case "log.level":
		cfg.Log.Level = v
	case "log.format":
		cfg.Log.Format = v
	case "app.id":
		a.ID = v
	case "app.key":
		a.Key = v
	case "app.secret":
		a.Secret = v
	case "app.ping_interval":
		return seconds(v, &a.PingInterval)
	case "app.activity_timeout":
		return seconds(v, &a.ActivityTimeout)
	case "app.max_message_bytes":
		return positive(v, &a.MaxMessageBytes)
	case "app.max_connections":
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fmt.Errorf("must be a number of connections, 0 or more (got %q)", v)
		}
		a.MaxConnections = n
	case "app.client_events":
		a.ClientEvents = v
		if !oneOf(v, apps.ClientEventsMembers, apps.ClientEventsAll, apps.ClientEventsNone) {
			return fmt.Errorf("must be one of members, all, none (got %q)", v)
		}
	case "app.allowed_origins":
		var list []string
		for _, o := range strings.Split(v, ",") {
			if o = strings.TrimSpace(o); o != "" {
				list = append(list, o)
			}
		}
		a.AllowedOrigins = list
	case "app.limits.max_request_bytes":
		return positive(v, &a.Limits.MaxRequestBytes)
	}
	return nil
}

func seconds(v string, dst *time.Duration) error {
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return fmt.Errorf("must be a positive number of seconds (got %q)", v)
	}
	*dst = time.Duration(n) * time.Second
	return nil
}

func positive(v string, dst *int) error {
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return fmt.Errorf("must be a positive number (got %q)", v)
	}
	*dst = n
	return nil
}
