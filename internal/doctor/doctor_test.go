package doctor

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/herald-ws/herald/internal/config"
	"github.com/herald-ws/herald/internal/envfile"
)

// base is a clean local .env; cases edit it.
const base = `APP_ENV=local
APP_URL=http://localhost
QUEUE_CONNECTION=sync
BROADCAST_CONNECTION=reverb
REVERB_APP_ID=731942
REVERB_APP_KEY=f3a9c1e7b5d2a8c4e6f0
REVERB_APP_SECRET=9b7d5f3a1c8e6b4d2f0a7c5e3b1d9f8a
REVERB_HOST=localhost
REVERB_PORT=8080
REVERB_SCHEME=http
REVERB_SERVER_PORT=8080
VITE_REVERB_APP_KEY="${REVERB_APP_KEY}"
VITE_REVERB_HOST="${REVERB_HOST}"
VITE_REVERB_PORT="${REVERB_PORT}"
VITE_REVERB_SCHEME="${REVERB_SCHEME}"
`

// edit replaces KEY=… lines (or appends), "-KEY" deletes.
func edit(env string, changes ...string) string {
	lines := strings.Split(strings.TrimSuffix(env, "\n"), "\n")
	for _, ch := range changes {
		if k, ok := strings.CutPrefix(ch, "-"); ok {
			for i, l := range lines {
				if strings.HasPrefix(l, k+"=") {
					lines = append(lines[:i], lines[i+1:]...)
					break
				}
			}
			continue
		}
		k, _, _ := strings.Cut(ch, "=")
		replaced := false
		for i, l := range lines {
			if strings.HasPrefix(l, k+"=") {
				lines[i], replaced = ch, true
				break
			}
		}
		if !replaced {
			lines = append(lines, ch)
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

func check(t *testing.T, env string, cfg *config.Config, url string) *Report {
	t.Helper()
	f, err := envfile.Parse(".env", strings.NewReader(env))
	if err != nil {
		t.Fatal(err)
	}
	return Check(Options{Env: f, Config: cfg, AppURL: url})
}

// summary is "severity check line" per finding, sorted.
func summary(r *Report) []string {
	var out []string
	for _, f := range r.Findings {
		out = append(out, fmt.Sprintf("%s %s %d", f.Severity, f.Check, f.Line))
	}
	sort.Strings(out)
	return out
}

func TestCleanHasNoFindings(t *testing.T) {
	if r := check(t, base, nil, ""); len(r.Findings) != 0 || !r.OK || r.Verdict != "no problems found" {
		t.Fatalf("findings %v verdict %q", summary(r), r.Verdict)
	}
}

// A variable set in the environment wins for the key and for the values
// that interpolate it alike, as in Laravel: no false mismatch between
// REVERB_PORT and VITE_REVERB_PORT="${REVERB_PORT}".
func TestEnvironmentOverridesConsistently(t *testing.T) {
	f, err := envfile.Parse(".env", strings.NewReader(base))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"REVERB_PORT": "9999", "REVERB_SERVER_PORT": "9999"}
	r := Check(Options{Env: f, Environ: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	if len(r.Findings) != 0 {
		t.Fatalf("findings %v", summary(r))
	}
}

func TestSeedCase(t *testing.T) {
	f, err := envfile.ParseFile("testdata/seed.env")
	if err != nil {
		t.Fatal(err)
	}
	r := Check(Options{Env: f})
	got := summary(r)
	want := []string{"error duplicate-key 85", "error localhost 89", "warning broadcast-driver 98"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("seed findings %v, want %v", got, want)
	}
	dup := r.Findings[0]
	if dup.Check != "duplicate-key" || len(dup.Lines) != 2 || !strings.HasPrefix(dup.Lines[0], "40: BROADCAST_CONNECTION=redis") ||
		!strings.HasPrefix(dup.Lines[1], "85: BROADCAST_CONNECTION=reverb") {
		t.Fatalf("duplicate finding %+v", dup)
	}
	if r.OK || !strings.HasPrefix(r.Verdict, "2 errors, 1 warning") {
		t.Fatalf("verdict %q ok=%v", r.Verdict, r.OK)
	}
}

func TestEachFinding(t *testing.T) {
	cfg := config.Default()
	cfg.Apps[0].ID, cfg.Apps[0].Key, cfg.Apps[0].Secret = "731942", "f3a9c1e7b5d2a8c4e6f0", "other-secret-value-123456"
	cfg.DefaultApp = false // as loaded from a config file that lists the app
	cases := []struct {
		name string
		env  string
		cfg  *config.Config
		url  string
		want []string
	}{
		{"duplicate non-broadcast key", edit(base, "APP_ENV=local"+"\nAPP_ENV=local"), nil, "", []string{"warning duplicate-key 2"}},
		{"driver without connection", edit(base, "-BROADCAST_CONNECTION", "BROADCAST_DRIVER=pusher"), nil, "", []string{"error broadcast-driver 15"}},
		{"connection missing", edit(base, "-BROADCAST_CONNECTION"), nil, "", []string{"error broadcast-connection 0"}},
		{"connection null", edit(base, "BROADCAST_CONNECTION=null"), nil, "", []string{"error broadcast-connection 4"}},
		{"connection log", edit(base, "BROADCAST_CONNECTION=log"), nil, "", []string{"error broadcast-connection 4"}},
		{"empty key", edit(base, "REVERB_APP_KEY=", "VITE_REVERB_APP_KEY="), nil, "", []string{"error credentials 6"}},
		{"short secret", edit(base, "REVERB_APP_SECRET=abc123"), nil, "", []string{"warning credentials 7"}},
		{"example secret", edit(base, "REVERB_APP_SECRET=app-secret"), nil, "", []string{"warning credentials 7"}},
		{"example secret in production", edit(base, "APP_ENV=production", "QUEUE_CONNECTION=redis", "REVERB_HOST=ws.example.com", "REVERB_ALLOWED_ORIGINS=app.example.com", "REVERB_APP_SECRET=app-secret"), nil, "",
			[]string{"error credentials 7", "info queue 3"}},
		{"connection misspelled", edit(base, "BROADCAST_CONNECTION=rever"), nil, "", []string{"error broadcast-connection 4"}},
		{"connection capitalised", edit(base, "BROADCAST_CONNECTION=Reverb"), nil, "", []string{"error broadcast-connection 4"}},
		{"connection of its own", edit(base, "BROADCAST_CONNECTION=soketi"), nil, "", []string{"warning broadcast-connection 4"}},
		{"secret misspelled", edit(base, "-REVERB_APP_SECRET", "REVERB_APP_SECRT=9b7d5f3a1c8e6b4d2f0a7c5e3b1d9f8a"), nil, "", []string{"error typo 15"}},
		{"app id misspelled", edit(base, "-REVERB_APP_ID", "REVERB_APP_DI=731942"), nil, "", []string{"error typo 15"}},
		{"connection name misspelled", edit(base, "-BROADCAST_CONNECTION", "BROADCAST_CONECTION=reverb"), nil, "", []string{"error typo 15"}},
		{"vite host misspelled", edit(base, "-VITE_REVERB_HOST", `VITE_REVERB_HOTS="${REVERB_HOST}"`), nil, "", []string{"error typo 15"}},
		{"server port misspelled", edit(base, "-REVERB_SERVER_PORT", "REVERB_SERVR_PORT=8080"), nil, "", []string{"warning typo 15"}},
		{"misspelled next to the real one", edit(base, "REVERB_SERVR_PORT=9000"), nil, "", []string{"warning typo 16"}},
		{"scaling enabled", edit(base, "REVERB_SCALING_ENABLED=true"), nil, "", []string{"warning scaling 16"}},
		{"scaling disabled", edit(base, "REVERB_SCALING_ENABLED=false"), nil, "", nil},
		{"scaling on redis", edit(base, "REVERB_SCALING_ENABLED=true", "REDIS_URL=redis://10.0.0.9:6379/0"), nil, "", nil},
		{"scaling on a redis host", edit(base, "REVERB_SCALING_ENABLED=true", "REDIS_HOST=10.0.0.9"), nil, "", nil},
		{"vite missing", edit(base, "-VITE_REVERB_HOST"), nil, "", []string{"error vite 0"}},
		{"vite literal differs", edit(base, "VITE_REVERB_PORT=6001"), nil, "", []string{"error vite 14"}},
		{"vite pusher missing", edit(base, "BROADCAST_CONNECTION=pusher", "PUSHER_APP_KEY=f3a9c1e7b5d2a8c4e6f0", "PUSHER_APP_SECRET=9b7d5f3a1c8e6b4d2f0a7c5e3b1d9f8a", "PUSHER_HOST=localhost"), nil, "",
			[]string{"error vite 0", "error vite 0"}},
		{"https on 8080", edit(base, "REVERB_SCHEME=https"), nil, "", []string{"warning tls-port 9"}},
		{"port mismatch", edit(base, "REVERB_PORT=6001"), nil, "", []string{"warning port-mismatch 9"}},
		{"localhost in production", edit(base, "APP_ENV=production", "QUEUE_CONNECTION=redis", "REVERB_ALLOWED_ORIGINS=app.example.com"), nil, "",
			[]string{"error localhost 8", "info queue 3"}},
		{"localhost with public url flag", base, nil, "https://app.example.com", []string{"error localhost 8"}},
		{"mixed content", edit(base, "REVERB_HOST=ws.example.com", "APP_URL=https://app.example.com"), nil, "", []string{"error mixed-content 10"}},
		{"queue needs worker", edit(base, "QUEUE_CONNECTION=database"), nil, "", []string{"info queue 3"}},
		{"sync in production", edit(base, "APP_ENV=production", "APP_URL=http://localhost", "REVERB_HOST=ws.example.com", "REVERB_ALLOWED_ORIGINS=app.example.com"), nil, "",
			[]string{"warning queue 3"}},
		{"open origins in production", edit(base, "APP_ENV=production", "QUEUE_CONNECTION=redis", "REVERB_HOST=ws.example.com", "APP_URL=http://localhost"), nil, "",
			[]string{"info queue 3", "warning origins 0"}},
		{"any origin in a list in production", edit(base, "APP_ENV=production", "QUEUE_CONNECTION=redis", "REVERB_HOST=ws.example.com", "APP_URL=http://localhost", "REVERB_ALLOWED_ORIGINS=app.example.com,*"), nil, "",
			[]string{"info queue 3", "warning origins 16"}},
		{"herald config without apps", base, config.Default(), "", []string{"info config-mismatch 0"}},
		{"secret differs from herald config", base, cfg, "", []string{"error config-mismatch 7"}},
		{"app id unknown to herald", edit(base, "REVERB_APP_ID=999"), cfg, "", []string{"error config-mismatch 5"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := check(t, c.env, c.cfg, c.url)
			got := summary(r)
			sort.Strings(c.want)
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Fatalf("findings %v, want %v", got, c.want)
			}
			for _, f := range r.Findings {
				if f.Title == "" || f.Why == "" || f.Fix == "" {
					t.Fatalf("incomplete finding %+v", f)
				}
			}
		})
	}
}

// A misspelled name is reported once, on its own line, with the name
// meant — not as the meant name missing.
func TestTypoFinding(t *testing.T) {
	r := check(t, edit(base, "-REVERB_APP_SECRET", "REVERB_APP_SECRT=9b7d5f3a1c8e6b4d2f0a7c5e3b1d9f8a"), nil, "")
	if len(r.Findings) != 1 {
		t.Fatalf("findings %v", summary(r))
	}
	f := r.Findings[0]
	if f.Title != "REVERB_APP_SECRET is not set, but line 15 sets REVERB_APP_SECRT: did you mean REVERB_APP_SECRET?" ||
		f.Fix != "Rename REVERB_APP_SECRT to REVERB_APP_SECRET." || r.OK {
		t.Fatalf("finding %+v ok=%v", f, r.OK)
	}
	r = check(t, edit(base, "BROADCAST_CONNECTION=rever"), nil, "")
	if f := r.Findings[0]; f.Title != "BROADCAST_CONNECTION=rever is not a broadcast connection: did you mean reverb?" || f.Fix != "Set BROADCAST_CONNECTION=reverb." {
		t.Fatalf("finding %+v", f)
	}
}

// Warnings never fail a setup: OK means no errors, Clean no warnings either.
func TestWarningsKeepOK(t *testing.T) {
	r := check(t, edit(base, "REVERB_APP_SECRET=abc123"), nil, "")
	if !r.OK || r.Clean || r.Verdict != "1 warning, 0 notes: broadcasting should work; fix the warnings before production" {
		t.Fatalf("ok=%v clean=%v verdict %q", r.OK, r.Clean, r.Verdict)
	}
	if r := check(t, base, nil, ""); !r.OK || !r.Clean {
		t.Fatalf("clean: ok=%v clean=%v", r.OK, r.Clean)
	}
}
