package config

import (
	"path/filepath"
	"strings"
	"testing"
)

// specYAML has the README's three example problems at the lines the
// messages name.
const specYAML = `# herald.yaml
server:
  host: 127.0.0.1
  port: 9000
  path: /ws
  shutdown_timeout: 5s
  prot: 9001
log:
  level: debug
apps:
  - id: "884213"
    client_events: some
    key: mkt-key
    secret: mkt-secret
    ping_interval: 30
    limits:
      max_batch_events: 5
  - id: second
    secret: second-secret
    key: mkt-key
`

// TestLoadErrors asserts the complete error text: every problem, each
// named by its source, in a stable order.
func TestLoadErrors(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
		opts  Options
		want  []string
	}{
		{"the README's examples, all at once", map[string]string{"herald.yaml": specYAML}, Options{File: "herald.yaml"}, []string{
			`herald.yaml:7: server.prot: unknown key`,
			`herald.yaml:12: apps[0].client_events: must be one of members, all, none (got "some")`,
			`herald.yaml:20: apps[1].key: duplicate of apps[0].key`,
		}},
		{"wrong types", map[string]string{"herald.yaml": `server:
  port: eighty
  host: [a, b]
  shutdown_timeout: soon
apps:
  - id: a
    key: k
    secret: s
    enabled: yes
    allowed_origins: "*"
    ping_interval: 1.5
    max_connections: 1e3
    limits: 5
    pong_timeout:
`}, Options{File: "herald.yaml"}, []string{
			`herald.yaml:2: server.port: must be an integer (got "eighty")`,
			`herald.yaml:3: server.host: must be a string (got a list)`,
			`herald.yaml:4: server.shutdown_timeout: must be whole seconds (30) or a duration (500ms, 1.5s, 2m) (got "soon")`,
			`herald.yaml:9: apps[0].enabled: must be true or false (got "yes")`,
			`herald.yaml:10: apps[0].allowed_origins: must be a list of strings, like ["*"] (got "*")`,
			`herald.yaml:11: apps[0].ping_interval: must be whole seconds (30) or a duration (500ms, 1.5s, 2m) (got "1.5")`,
			`herald.yaml:12: apps[0].max_connections: must be an integer (got "1e3")`,
			`herald.yaml:13: apps[0].limits: must be a mapping (got "5")`,
			`herald.yaml:14: apps[0].pong_timeout: must be whole seconds (30) or a duration (500ms, 1.5s, 2m) (got nothing)`,
		}},
		{"unknown keys at every level", map[string]string{"herald.yaml": "sever:\n  port: 1\nlog:\n  colour: true\napps:\n  - id: a\n    key: k\n    secret: s\n    max_conections: 5\n    limits:\n      max_batch: 2\n"}, Options{File: "herald.yaml"}, []string{
			`herald.yaml:1: sever: unknown key`,
			`herald.yaml:4: log.colour: unknown key`,
			`herald.yaml:9: apps[0].max_conections: unknown key`,
			`herald.yaml:11: apps[0].limits.max_batch: unknown key`,
		}},
		{"syntax error", map[string]string{"herald.yaml": "server:\n  host: a\n   port: 1\n"}, Options{File: "herald.yaml"}, []string{
			`herald.yaml:3: mapping values are not allowed in this context`,
		}},
		{"tab indentation", map[string]string{"herald.yaml": "server:\n\thost: a\n"}, Options{File: "herald.yaml"}, []string{
			`herald.yaml:2: found character that cannot start any token (YAML does not allow tabs for indentation)`,
		}},
		{"two documents", map[string]string{"herald.yaml": "log:\n  level: info\n---\nlog:\n  level: debug\n"}, Options{File: "herald.yaml"}, []string{
			`herald.yaml:3: only one YAML document is allowed`,
		}},
		{"not a mapping", map[string]string{"herald.yaml": "- server\n"}, Options{File: "herald.yaml"}, []string{
			`herald.yaml:1: must be a mapping with server, log and apps (got a list)`,
		}},
		{"apps not a list", map[string]string{"herald.yaml": "apps:\n  id: a\n"}, Options{File: "herald.yaml"}, []string{
			`herald.yaml:2: apps: must be a list of apps (got a mapping)`,
		}},
		{"empty app", map[string]string{"herald.yaml": "apps:\n  -\n  - id: b\n    key: k\n    secret: s\n"}, Options{File: "herald.yaml"}, []string{
			`herald.yaml:2: apps[0]: must be a mapping with id, key and secret (got nothing)`,
		}},
		{"key defined twice", map[string]string{"herald.yaml": "server:\n  port: 9000\n  host: x\n  port: 9001\n"}, Options{File: "herald.yaml"}, []string{
			`herald.yaml:4: server.port: defined twice (first at line 2)`,
		}},
		{"missing credentials name the app's line", map[string]string{"herald.yaml": "log:\n  level: info\napps:\n  - id: a\n    key: k\n  - key: k2\n    secret: s\n"}, Options{File: "herald.yaml"}, []string{
			`herald.yaml:4: apps[0].secret: is required`,
			`herald.yaml:6: apps[1].id: is required`,
		}},
		{"values out of range", map[string]string{"herald.yaml": `server:
  port: 70000
  path: /a b
  shutdown_timeout: 0
  coalesce_window: 2s
log:
  format: xml
apps:
  - id: my/app
    key: k
    secret: s
    max_connections: -1
    activity_timeout: 500ms
    pong_timeout: 0
    authorized_connections_timeout: -1s
    max_message_bytes: 0
    allowed_origins: []
    limits:
      max_batch_events: 0
      max_watchlist: -5
`}, Options{File: "herald.yaml"}, []string{
			`herald.yaml:2: server.port: must be a port number 1-65535 (got 70000)`,
			`herald.yaml:3: server.path: must be a URL path like /ws, without '//', '?', '#' or spaces (got "/a b")`,
			`herald.yaml:5: server.coalesce_window: must be between 0 (off) and 1s (got 2s)`,
			`herald.yaml:4: server.shutdown_timeout: must be positive (got 0s)`,
			`herald.yaml:7: log.format: must be one of text, json (got "xml")`,
			`herald.yaml:9: apps[0].id: must not contain spaces, '/', '?', '#' or '%' (got "my/app")`,
			`herald.yaml:17: apps[0].allowed_origins: must list at least one origin ("*" for any)`,
			`herald.yaml:12: apps[0].max_connections: must be 0 (unlimited) or more (got -1)`,
			`herald.yaml:15: apps[0].authorized_connections_timeout: must be 0 (off) or positive (got -1s)`,
			`herald.yaml:13: apps[0].activity_timeout: must be a whole number of seconds, at least 1 (got 500ms)`,
			`herald.yaml:14: apps[0].pong_timeout: must be positive (got 0s)`,
			`herald.yaml:16: apps[0].max_message_bytes: must be positive (got 0)`,
			`herald.yaml:19: apps[0].limits.max_batch_events: must be positive (got 0)`,
			`herald.yaml:20: apps[0].limits.max_watchlist: must be positive (got -5)`,
		}},
		{"config file missing", nil, Options{File: "herald.yaml"}, []string{
			`config file: open herald.yaml: no such file or directory`,
		}},
		{"environment", nil, Options{Environ: []string{"REVERB_SERVER_PORT=abc"}}, []string{
			`environment: REVERB_SERVER_PORT: must be a port number 1-65535 (got "abc")`,
		}},
		{"every environment variable wrong", nil, Options{Environ: []string{
			"REVERB_SERVER_PORT=0", "REVERB_SERVER_PATH=/a?b", "REVERB_APP_PING_INTERVAL=-5", "REVERB_APP_ACTIVITY_TIMEOUT=1.5",
			"REVERB_APP_MAX_MESSAGE_SIZE=10KB", "REVERB_APP_MAX_CONNECTIONS=-1", "REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM=everyone",
			"REVERB_ALLOWED_ORIGINS=,", "REVERB_MAX_REQUEST_SIZE=0",
		}}, []string{
			`environment: REVERB_SERVER_PORT: must be a port number 1-65535 (got "0")`,
			`environment: REVERB_APP_PING_INTERVAL: must be a positive number of seconds (got "-5")`,
			`environment: REVERB_APP_ACTIVITY_TIMEOUT: must be a positive number of seconds (got "1.5")`,
			`environment: REVERB_APP_MAX_MESSAGE_SIZE: must be a positive number of bytes (got "10KB")`,
			`environment: REVERB_APP_MAX_CONNECTIONS: must be a number of connections, 0 (unlimited) or more (got "-1")`,
			`environment: REVERB_ALLOWED_ORIGINS: must list at least one origin, comma-separated ("*" for any) (got ",")`,
			`environment: REVERB_MAX_REQUEST_SIZE: must be a positive number of bytes (got "0")`,
			`environment: REVERB_SERVER_PATH: must be a URL path like /ws, without '//', '?', '#' or spaces (got "/a?b")`,
			`environment: REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM: must be one of members, all, none (got "everyone")`,
		}},
		{".env value", map[string]string{".env": "APP_NAME=x\n\n# Reverb\nREVERB_APP_ID=1\nREVERB_APP_KEY=k\nREVERB_APP_SECRET=s\nREVERB_APP_PING_INTERVAL=x\n"}, Options{EnvFile: ".env"}, []string{
			`.env:7: REVERB_APP_PING_INTERVAL: must be a positive number of seconds (got "x")`,
		}},
		{".env value after interpolation", map[string]string{".env": "PORT=http\nREVERB_SERVER_PORT=${PORT}\n"}, Options{EnvFile: ".env"}, []string{
			`.env:2: REVERB_SERVER_PORT: must be a port number 1-65535 (got "http")`,
		}},
		{".env syntax", map[string]string{".env": "APP_NAME=My App\n"}, Options{EnvFile: ".env"}, []string{
			`.env:1: APP_NAME: unquoted value "My App" contains whitespace; Laravel refuses it: put it in double quotes`,
		}},
		{".env missing", nil, Options{EnvFile: ".env"}, []string{
			`.env file: open .env: no such file or directory`,
		}},
		{"flags", nil, Options{Flags: Overrides{Port: ptr(0), LogLevel: ptr("loud"), LogFormat: ptr("xml"), Transport: ptr("kqueue"), Path: ptr("/a b")}}, []string{
			`flag --port: must be a port number 1-65535 (got "0")`,
			`flag --path: must be a URL path like /ws, without '//', '?', '#' or spaces (got "/a b")`,
			`flag --transport: must be one of epoll, goroutine (got "kqueue")`,
			`flag --log-level: must be one of debug, info, warn, error (got "loud")`,
			`flag --log-format: must be one of text, json (got "xml")`,
		}},
		{"incomplete credentials in the environment", nil, Options{Environ: []string{"REVERB_APP_KEY=k"}}, []string{
			`environment: REVERB_APP_KEY: app credentials are incomplete: REVERB_APP_ID (--app-id) and REVERB_APP_SECRET (--app-secret) missing; with no apps in a config file, id, key and secret together define the app`,
		}},
		{"incomplete credentials across sources", map[string]string{".env": "REVERB_APP_ID=\nREVERB_APP_SECRET=s\n"}, Options{EnvFile: ".env", Flags: Overrides{AppID: ptr("i")}}, []string{
			`flag --app-id: app credentials are incomplete: REVERB_APP_KEY (--app-key) missing; with no apps in a config file, id, key and secret together define the app`,
		}},
		{"flag credential emptied", nil, Options{Flags: Overrides{AppID: ptr(""), AppKey: ptr("k"), AppSecret: ptr("s")}}, []string{
			`flag --app-id: is required`,
		}},
		{"environment duplicates a file app", map[string]string{"herald.yaml": "apps:\n  - id: a\n    key: k1\n    secret: s\n  - id: b\n    key: k2\n    secret: s\n"},
			Options{File: "herald.yaml", Environ: []string{"REVERB_APP_KEY=k2"}}, []string{
				`herald.yaml:6: apps[1].key: duplicate of apps[0].key`,
			}},
		{"every source at once", map[string]string{"herald.yaml": "server:\n  prot: 1\n", ".env": "REVERB_APP_MAX_CONNECTIONS=many\n"},
			Options{File: "herald.yaml", EnvFile: ".env", Environ: []string{"REVERB_SERVER_PORT=x"}, Flags: Overrides{LogLevel: ptr("verbose")}}, []string{
				`herald.yaml:2: server.prot: unknown key`,
				`environment: REVERB_SERVER_PORT: must be a port number 1-65535 (got "x")`,
				`.env:1: REVERB_APP_MAX_CONNECTIONS: must be a number of connections, 0 (unlimited) or more (got "many")`,
				`flag --log-level: must be one of debug, info, warn, error (got "verbose")`,
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			inDir(t, c.files)
			cfg, err := Load(c.opts)
			if err == nil || cfg != nil {
				t.Fatalf("Load succeeded: %+v", cfg)
			}
			if got, want := err.Error(), strings.Join(c.want, "\n"); got != want {
				t.Errorf("error\n got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// A path given absolute appears absolute.
func TestErrorNamesPathAsGiven(t *testing.T) {
	dir := t.TempDir()
	inDir(t, nil)
	env := filepath.Join(dir, ".env")
	writeFile(t, env, "REVERB_APP_ID=1\nREVERB_APP_KEY=k\nREVERB_APP_SECRET=s\n\n\n\nREVERB_APP_PING_INTERVAL=x\n")
	_, err := Load(Options{EnvFile: env})
	want := env + `:7: REVERB_APP_PING_INTERVAL: must be a positive number of seconds (got "x")`
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}
