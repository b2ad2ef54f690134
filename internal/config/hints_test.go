package config

import (
	"slices"
	"strings"
	"testing"
)

// The built-in app's credentials are public: with it Herald listens on
// loopback unless a host is given; configured apps keep Reverb's 0.0.0.0.
func TestDefaultHost(t *testing.T) {
	const creds = "REVERB_APP_ID=1\nREVERB_APP_KEY=k\nREVERB_APP_SECRET=s\n"
	cases := []struct {
		name  string
		files map[string]string
		opts  Options
		host  string
	}{
		{"built-in app", nil, Options{}, "127.0.0.1"},
		{"built-in app, flag", nil, Options{Flags: Overrides{Host: ptr("0.0.0.0")}}, "0.0.0.0"},
		{"built-in app, environment", nil, Options{Environ: []string{"REVERB_SERVER_HOST=0.0.0.0"}}, "0.0.0.0"},
		{"built-in app, .env", map[string]string{".env": "REVERB_SERVER_HOST=10.0.0.5\n"}, Options{EnvFile: ".env"}, "10.0.0.5"},
		{"built-in app, config file", map[string]string{"herald.yaml": "server:\n  host: 0.0.0.0\n"}, Options{File: "herald.yaml"}, "0.0.0.0"},
		{"app from the .env", map[string]string{".env": creds}, Options{EnvFile: ".env"}, "0.0.0.0"},
		{"app from the environment", nil, Options{Environ: []string{"REVERB_APP_ID=1", "REVERB_APP_KEY=k", "REVERB_APP_SECRET=s"}}, "0.0.0.0"},
		{"app from the config file", map[string]string{"herald.yaml": "apps:\n  - {id: a, key: k, secret: s}\n"}, Options{File: "herald.yaml"}, "0.0.0.0"},
		{"configured app, explicit loopback", map[string]string{"herald.yaml": "apps:\n  - {id: a, key: k, secret: s}\n"},
			Options{File: "herald.yaml", Flags: Overrides{Host: ptr("127.0.0.1")}}, "127.0.0.1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			inDir(t, c.files)
			cfg := load(t, c.opts)
			if cfg.Server.Host != c.host {
				t.Fatalf("host %q, want %q", cfg.Server.Host, c.host)
			}
		})
	}
	if h := Default().Server.Host; h != "127.0.0.1" {
		t.Fatalf("Default() host %q", h)
	}
}

// A misspelled credential is named in the error that stops serve, instead
// of only "REVERB_APP_SECRET missing" on another variable's line.
func TestMisspelledCredentialHint(t *testing.T) {
	inDir(t, map[string]string{".env": "REVERB_APP_ID=1\nREVERB_APP_KEY=k\nREVERB_APP_SECRT=s\n"})
	_, err := Load(Options{EnvFile: ".env"})
	want := `.env:1: REVERB_APP_ID: app credentials are incomplete: REVERB_APP_SECRET (--app-secret) (.env:3 sets REVERB_APP_SECRT: did you mean REVERB_APP_SECRET?) missing; with no apps in a config file, id, key and secret together define the app`
	if err == nil || err.Error() != want {
		t.Fatalf("error\n got %v\nwant %s", err, want)
	}
	_, err = Load(Options{Environ: []string{"REVERB_APP_ID=1", "reverb_app_key=k", "REVERB_APP_SECRET=s"}})
	if err == nil || !strings.Contains(err.Error(), "REVERB_APP_KEY (--app-key) (environment sets reverb_app_key: did you mean REVERB_APP_KEY?) missing") {
		t.Fatalf("environment: %v", err)
	}
}

func TestWarnings(t *testing.T) {
	inDir(t, map[string]string{".env": "REVERB_APP_ID=1\nREVERB_APP_KEY=k\nREVERB_APP_SECRET=s\nREVERB_SERVR_PORT=9000\nREVERB_SCALING_ENABLED=true\nREVERB_HOTS=x\nPUSHER_APP_KEY=p\n"})
	cfg := load(t, Options{EnvFile: ".env", Environ: []string{"PATH=/bin", "REVERB_APP_PING_INTERVL=5"}})
	want := []string{
		".env:5: REVERB_SCALING_ENABLED=true but neither REDIS_URL nor REDIS_HOST is set: Herald runs as a single node: " +
			"events published to this server reach only the connections of this server; set REDIS_URL (or REDIS_HOST, REDIS_PORT, REDIS_PASSWORD, REDIS_DB) to share them through Redis",
		"environment: REVERB_APP_PING_INTERVL is not a variable Herald reads; did you mean REVERB_APP_PING_INTERVAL?",
		".env:4: REVERB_SERVR_PORT is not a variable Herald reads; did you mean REVERB_SERVER_PORT?",
	}
	// REVERB_HOTS misspells REVERB_HOST, which only Laravel reads: doctor's
	// business, not serve's.
	if !slices.Equal(cfg.Warnings, want) {
		t.Fatalf("warnings\n got %q\nwant %q", cfg.Warnings, want)
	}
	for _, off := range []string{"false", "0", "", "(false)", "null"} {
		inDir(t, map[string]string{".env": "REVERB_SCALING_ENABLED=" + off + "\n"})
		if cfg := load(t, Options{EnvFile: ".env"}); len(cfg.Warnings) != 0 {
			t.Errorf("%q: warnings %q", off, cfg.Warnings)
		}
	}
}

func TestMisspelling(t *testing.T) {
	cases := []struct {
		name, want string
	}{
		{"REVERB_APP_SECRT", "REVERB_APP_SECRET"},
		{"REVERB_APP_SCERET", "REVERB_APP_SECRET"}, // a swap is one edit
		{"reverb_app_secret", "REVERB_APP_SECRET"},
		{"BROADCAST_CONECTION", "BROADCAST_CONNECTION"},
		{"VITE_REVERB_HOTS", "VITE_REVERB_HOST"},
		{"PUSHER_APP_CLUSTR", "PUSHER_APP_CLUSTER"},
		{"REVERB_APP_SECRET", ""}, // correct names are never misspellings
		{"REVERB_PORT", ""},       // two edits from REVERB_HOST, but a name of its own
		{"REDIS_HOST", ""},
		{"APP_KEY", ""},
		{"MIX_PUSHER_APP_KEY", ""},
	}
	for _, c := range cases {
		if got, ok := Misspelling(c.name); got != c.want || ok != (c.want != "") {
			t.Errorf("Misspelling(%q) = %q, %v; want %q", c.name, got, ok, c.want)
		}
	}
}
