package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func FuzzLoadYAML(f *testing.F) {
	for _, s := range []string{
		fullYAML, specYAML, "", "~\n", "apps:\n  - id: a\n    key: k\n    secret: s\n", "server: 5\n", "apps: [1, 2]\n",
		"log: {level: debug}\n", "apps:\n  - &a {id: a, key: k, secret: s}\n  - *a\n", "a: &x [*x]\n", "apps: &x [*x]\n",
		"server:\n  port: 99999999999999999999\n", "apps:\n  - {id: a, key: k, secret: s, ping_interval: 9223372037}\n",
		"apps:\n  - {id: a, key: k, secret: s, limits: {max_batch_events: 0}}\n", "? [a]\n: b\n", "a: 1\n---\nb: 2\n",
		"server:\n\tport: 1\n", "apps:\n  -\n", "server: {port: 1, port: 2}\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		path := filepath.Join(t.TempDir(), "f.yaml")
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(Options{File: path})
		if (cfg == nil) == (err == nil) {
			t.Fatalf("want exactly one of a config and an error, got %v and %v", cfg, err)
		}
		if err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, path) {
					t.Fatalf("problem %q does not name the file", line)
				}
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Load returned an invalid config: %v", err)
		}
		if len(cfg.Apps) == 0 || cfg.Apps[0] == nil {
			t.Fatalf("no apps: %+v", cfg)
		}
	})
}
