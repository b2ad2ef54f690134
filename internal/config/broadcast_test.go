package config

import (
	"strings"
	"testing"
)

const (
	tokA = "token-of-app-a-0123456789"
	tokB = "token-of-app-b-0123456789"
)

// broadcast_token and broadcast_channel come from the file per app;
// HERALD_BROADCAST_TOKEN from the .env or the environment sets the first
// app's, the environment winning.
func TestLoadBroadcastSettings(t *testing.T) {
	inDir(t, map[string]string{
		"herald.yaml": "apps:\n  - {id: a, key: ka, secret: sa, broadcast_token: " + tokA + ", broadcast_channel: helpdesk}\n" +
			"  - {id: b, key: kb, secret: sb, broadcast_token: " + tokB + "}\n  - {id: c, key: kc, secret: sc}\n",
		".env": "HERALD_BROADCAST_TOKEN=from-the-dotenv-file-0123\n",
	})
	c := load(t, Options{File: "herald.yaml"})
	if a := c.Apps[0]; a.BroadcastToken != tokA || a.BroadcastChannel != "helpdesk" || a.BroadcastChannelOrDefault() != "helpdesk" {
		t.Fatalf("app a: token %q channel %q", a.BroadcastToken, a.BroadcastChannel)
	}
	if b, cc := c.Apps[1], c.Apps[2]; b.BroadcastToken != tokB || b.BroadcastChannelOrDefault() != "broadcast" || cc.BroadcastToken != "" {
		t.Fatalf("app b %+v, app c %+v", b, cc)
	}
	if c := load(t, Options{File: "herald.yaml", EnvFile: ".env"}); c.Apps[0].BroadcastToken != "from-the-dotenv-file-0123" || c.Apps[1].BroadcastToken != tokB {
		t.Fatalf(".env: %q %q", c.Apps[0].BroadcastToken, c.Apps[1].BroadcastToken)
	}
	c = load(t, Options{File: "herald.yaml", EnvFile: ".env", Environ: []string{"HERALD_BROADCAST_TOKEN=from-the-environment-0123"}})
	if c.Apps[0].BroadcastToken != "from-the-environment-0123" {
		t.Fatalf("environment: %q", c.Apps[0].BroadcastToken)
	}
	// The development app takes it too; with none, it has none (serve
	// generates one at start).
	if c := load(t, Options{Environ: []string{"HERALD_BROADCAST_TOKEN=" + tokA}}); !c.DefaultApp || c.Apps[0].BroadcastToken != tokA {
		t.Fatalf("development app: %v %q", c.DefaultApp, c.Apps[0].BroadcastToken)
	}
	if c := load(t, Options{}); c.Apps[0].BroadcastToken != "" {
		t.Fatalf("development app without a token: %q", c.Apps[0].BroadcastToken)
	}
}

// Each bad broadcast setting is refused, naming its source.
func TestBroadcastSettingErrors(t *testing.T) {
	cases := []struct{ name, yaml, want string }{
		{"shared token", "apps:\n  - {id: a, key: ka, secret: sa, broadcast_token: " + tokA + "}\n  - {id: b, key: kb, secret: sb, broadcast_token: " + tokA + "}\n",
			"herald.yaml:3: apps[1].broadcast_token: same as apps[0].broadcast_token"},
		{"short token", "apps:\n  - {id: a, key: ka, secret: sa, broadcast_token: short}\n",
			"herald.yaml:2: apps[0].broadcast_token: must be at least 16 characters (got 5)"},
		{"token with a space", "apps:\n  - {id: a, key: ka, secret: sa, broadcast_token: \"0123456789 abcdefgh\"}\n",
			"apps[0].broadcast_token: must be printable ASCII without spaces"},
		{"token not a string", "apps:\n  - {id: a, key: ka, secret: sa, broadcast_token: [x]}\n",
			"herald.yaml:2: apps[0].broadcast_token: must be a string (got a list)"},
		{"bad channel", "apps:\n  - {id: a, key: ka, secret: sa, broadcast_channel: \"a b\"}\n",
			"herald.yaml:2: apps[0].broadcast_channel: channel name \"a b\" contains ' '"},
		{"encrypted channel", "apps:\n  - {id: a, key: ka, secret: sa, broadcast_channel: private-encrypted-x}\n",
			"apps[0].broadcast_channel: must not be an encrypted channel"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			inDir(t, map[string]string{"herald.yaml": c.yaml})
			_, err := Load(Options{File: "herald.yaml"})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want it to contain %q", err, c.want)
			}
		})
	}
	_, err := Load(Options{Environ: []string{"HERALD_BROADCAST_TOKEN=short"}})
	if err == nil || !strings.Contains(err.Error(), "environment: HERALD_BROADCAST_TOKEN: must be at least 16 characters") {
		t.Fatalf("environment: %v", err)
	}
}
