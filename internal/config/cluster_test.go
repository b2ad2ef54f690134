package config

import (
	"strings"
	"testing"
)

// cluster.url comes from the file, HERALD_CLUSTER_URL, Reverb's scaling
// variables and --cluster, each above the one before; none by default.
func TestLoadCluster(t *testing.T) {
	if c := Default().Cluster; c != (Cluster{}) {
		t.Fatalf("default cluster %+v: a single node must pay nothing", c)
	}
	inDir(t, map[string]string{"herald.yaml": "cluster:\n  url: redis://10.0.0.5:6379/2\n  prefix: prod\n"})
	cases := []struct {
		name    string
		opts    Options
		url     string
		prefix  string
		warning string // a warning that must be there, "" for none at all
	}{
		{"file", Options{File: "herald.yaml"}, "redis://10.0.0.5:6379/2", "prod", ""},
		{"environment over file", Options{File: "herald.yaml", Environ: []string{"HERALD_CLUSTER_URL=rediss://u:p@r.example:6380/1", "HERALD_CLUSTER_PREFIX=x"}}, "rediss://u:p@r.example:6380/1", "x", ""},
		{"flag over environment", Options{Environ: []string{"HERALD_CLUSTER_URL=redis://a:1/0"}, Flags: Overrides{Cluster: ptr("redis://b:2/0")}}, "redis://b:2/0", "", ""},
		{"reverb REDIS_URL", Options{Environ: []string{"REVERB_SCALING_ENABLED=true", "REDIS_URL=redis://cache:6379/3", "REVERB_SCALING_CHANNEL=reverb"}}, "redis://cache:6379/3", "reverb", ""},
		{"reverb REDIS_HOST", Options{Environ: []string{"REVERB_SCALING_ENABLED=true", "REDIS_HOST=cache", "REDIS_PASSWORD=s3cr:t", "REDIS_DB=4"}}, "redis://:s3cr%3At@cache:6379/4", "", ""},
		{"reverb laravel defaults", Options{Environ: []string{"REVERB_SCALING_ENABLED=true", "REDIS_HOST=127.0.0.1", "REDIS_PASSWORD=null", "REDIS_PORT=6380", "REDIS_USERNAME=herald"}}, "redis://herald@127.0.0.1:6380/0", "", ""},
		{"reverb switch off", Options{Environ: []string{"REVERB_SCALING_ENABLED=false", "REDIS_HOST=cache"}}, "", "", ""},
		{"reverb without a redis", Options{Environ: []string{"REVERB_SCALING_ENABLED=true"}}, "", "", "neither REDIS_URL nor REDIS_HOST is set: Herald runs as a single node"},
		{"herald's own over reverb's", Options{Environ: []string{"REVERB_SCALING_ENABLED=true", "REDIS_HOST=cache", "HERALD_CLUSTER_URL=redis://mine:1/0"}}, "redis://mine:1/0", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := load(t, tc.opts)
			if c.Cluster.URL != tc.url || c.Cluster.Prefix != tc.prefix {
				t.Fatalf("cluster %+v, want url %q prefix %q", c.Cluster, tc.url, tc.prefix)
			}
			if w := strings.Join(c.Warnings, "\n"); tc.warning == "" && w != "" || !strings.Contains(w, tc.warning) {
				t.Fatalf("warnings %q, want %q", c.Warnings, tc.warning)
			}
		})
	}
}

func TestValidateCluster(t *testing.T) {
	cases := []struct {
		name, url, prefix string
		want              string // "": valid
	}{
		{"none", "", "", ""},
		{"redis", "redis://127.0.0.1:6379/0", "", ""},
		{"rediss with credentials", "rediss://user:pw@redis.example:6380/15", "herald", ""},
		{"no db", "redis://127.0.0.1:6379", "", ""},
		{"nats", "nats://127.0.0.1:4222", "", "cluster.url: NATS is not supported yet: use a redis:// URL"},
		{"http", "http://127.0.0.1:6379", "", "cluster.url: must be a redis:// or rediss:// URL"},
		{"no host", "redis:///0", "", "cluster.url: names no host"},
		{"bad db", "redis://h:6379/zero", "", "cluster.url: must end in a database number"},
		{"bad port", "redis://h:99999/0", "", "cluster.url: has a bad port"},
		{"password hidden", "http://u:hunter2@h/0", "", "u:xxxxx@h"},
		{"space in prefix", "redis://h:1/0", "a b", "cluster.prefix: must not contain spaces"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			c.Cluster = Cluster{URL: tc.url, Prefix: tc.prefix}
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate() = %v; want valid", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Validate() = %v; want %q", err, tc.want)
			case err != nil && strings.Contains(err.Error(), "hunter2"):
				t.Fatalf("Validate() = %v: shows the password", err)
			}
		})
	}
}

// A bad URL from a Reverb variable or a file names where it came from.
func TestClusterErrorsNameTheirSource(t *testing.T) {
	inDir(t, map[string]string{"herald.yaml": "cluster:\n  url: nats://n:4222\n", ".env": "REVERB_SCALING_ENABLED=true\nREDIS_URL=memcached://x\n"})
	_, err := Load(Options{File: "herald.yaml"})
	if err == nil || !strings.Contains(err.Error(), "herald.yaml:2: cluster.url: NATS is not supported yet") {
		t.Fatalf("file: %v", err)
	}
	_, err = Load(Options{EnvFile: ".env"})
	if err == nil || !strings.Contains(err.Error(), ".env:2: REDIS_URL: must be a redis:// or rediss:// URL") {
		t.Fatalf(".env: %v", err)
	}
	inDir(t, map[string]string{"herald.yaml": "cluster:\n  host: x\n"})
	if _, err := Load(Options{File: "herald.yaml"}); err == nil || !strings.Contains(err.Error(), "herald.yaml:2: cluster.host: unknown key") {
		t.Fatalf("unknown key: %v", err)
	}
}
