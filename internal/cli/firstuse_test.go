package cli

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/herald-ws/herald/internal/config"
	"github.com/herald-ws/herald/internal/server/servertest"
)

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// readmeLaravelEnv is the .env block of README.md's "Use it from Laravel",
// read from the README so that the two cannot drift apart.
func readmeLaravelEnv(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "## Use it from Laravel")
	_, block, ok2 := strings.Cut(section, "```env\n")
	block, _, ok3 := strings.Cut(block, "```")
	if !ok || !ok2 || !ok3 || !strings.Contains(block, "REVERB_APP_SECRET=") {
		t.Fatal("README.md has no ```env block under \"## Use it from Laravel\"")
	}
	return block
}

// The README's own Laravel .env works with Herald's built-in app, so
// doctor must not fail it; its example credentials are an error only in
// production.
func TestDoctorPassesReadmeEnv(t *testing.T) {
	clearLaravelEnv(t)
	env := readmeLaravelEnv(t)
	code, out, errOut := run("doctor", "--env", writeTemp(t, ".env", env))
	if code != 0 || strings.Contains(out, "✗ error") || !strings.Contains(out, "! warning REVERB_APP_SECRET is an example value") ||
		!strings.Contains(out, "broadcasting should work") {
		t.Fatalf("README .env: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, _ := run("doctor", "--strict", "--env", writeTemp(t, ".env", env)); code != 1 {
		t.Fatalf("--strict with warnings: exit %d", code)
	}
	code, out, _ = run("doctor", "--env", writeTemp(t, ".env", "APP_ENV=production\n"+env))
	if code != 1 || !strings.Contains(out, "✗ error REVERB_APP_SECRET is an example value") || !strings.Contains(out, "✗ error REVERB_APP_KEY is an example value") {
		t.Fatalf("README .env in production: exit %d\n%s", code, out)
	}
}

func TestDoctorTypos(t *testing.T) {
	clearLaravelEnv(t)
	env := strings.Replace(readmeLaravelEnv(t), "BROADCAST_CONNECTION=reverb", "BROADCAST_CONNECTION=rever", 1)
	code, out, _ := run("doctor", "--env", writeTemp(t, ".env", env))
	if code != 1 || !strings.Contains(out, "BROADCAST_CONNECTION=rever is not a broadcast connection: did you mean reverb?") {
		t.Fatalf("rever: exit %d\n%s", code, out)
	}
	env = strings.Replace(readmeLaravelEnv(t), "REVERB_APP_SECRET=", "REVERB_APP_SECRT=", 1)
	code, out, _ = run("doctor", "--env", writeTemp(t, ".env", env))
	if code != 1 || !strings.Contains(out, "REVERB_APP_SECRET is not set, but line 5 sets REVERB_APP_SECRT: did you mean REVERB_APP_SECRET?  ") {
		t.Fatalf("SECRT: exit %d\n%s", code, out)
	}
	code, out, _ = run("doctor", "--env", writeTemp(t, ".env", readmeLaravelEnv(t)+"REVERB_SCALING_ENABLED=true\n"))
	if code != 0 || !strings.Contains(out, "! warning REVERB_SCALING_ENABLED=true but neither REDIS_URL nor REDIS_HOST is set: Herald runs as a single node") {
		t.Fatalf("scaling: exit %d\n%s", code, out)
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"--port", "9000", "--help"}} {
		code, out, errOut := run(args...)
		if code != 0 || !strings.Contains(out+errOut, "herald doctor            check a Laravel .env") || !strings.Contains(out+errOut, "-port int") {
			t.Fatalf("%v: exit %d\n%s%s", args, code, out, errOut)
		}
	}
	if code, out, _ := run("help"); code != 0 || !strings.Contains(out, "herald keygen") || !strings.Contains(out, "-app-secret") {
		t.Fatalf("help: exit %d\n%s", code, out)
	}
	code, _, errOut := run("serve", "--help")
	if code != 0 || !strings.Contains(errOut, "Runs the server.") || !strings.Contains(errOut, "--host 0.0.0.0") || strings.Contains(errOut, "herald doctor") {
		t.Fatalf("serve --help: exit %d\n%s", code, errOut)
	}
	if code, _, errOut := run("keygen", "--help"); code != 0 || !strings.Contains(errOut, "Prints a fresh random app id") {
		t.Fatalf("keygen --help: exit %d\n%s", code, errOut)
	}
}

func TestVersion(t *testing.T) {
	_, a, _ := run("--version")
	code, b, _ := run("version")
	if code != 0 || a != b || !strings.HasPrefix(a, "herald ") || strings.Contains(a, "dev\n") || !strings.HasSuffix(a, " "+runtime.Version()+"\n") {
		t.Fatalf("--version %q, version %q", a, b)
	}
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/herald-ws/herald", Version: "(devel)"},
		Settings: []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "6f276ec6a1b2c3d4e5f60718293a4b5c6d7e8f90"}, {Key: "vcs.modified", Value: "true"}}}
	if got := formatVersion("", bi); got != "herald (devel) rev 6f276ec (modified) go1.26.8" {
		t.Errorf("checkout build: %q", got)
	}
	bi.Main.Version = "v0.0.0-20261130015004-6f276ec6a1b2+dirty" // Go 1.24+ stamps a checkout build so
	if got := formatVersion("", bi); got != "herald (devel) rev 6f276ec (modified) go1.26.8" {
		t.Errorf("checkout build with a pseudo-version: %q", got)
	}
	installed := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.0"}}
	if got := formatVersion("", installed); got != "herald v1.2.0 go1.26.8" {
		t.Errorf("go install: %q", got)
	}
	if got := formatVersion("v9", installed); got != "herald v9 go1.26.8" {
		t.Errorf("ldflags: %q", got)
	}
}

func TestPingAndPublishReadEnvFile(t *testing.T) {
	clearLaravelEnv(t)
	s := servertest.Start(t, config.Default())
	host, port, _ := net.SplitHostPort(s.Addr)
	env := writeTemp(t, ".env", "REVERB_APP_ID="+config.DefaultAppID+"\nREVERB_APP_KEY="+config.DefaultAppKey+"\nREVERB_APP_SECRET="+config.DefaultAppSecret+
		"\nREVERB_HOST="+host+"\nREVERB_PORT="+port+"\nREVERB_SCHEME=http\nREVERB_SERVER_PORT=\"${REVERB_PORT}\"\n")
	if code, out, errOut := run("ping", "--env", env); code != 0 || !strings.Contains(out, "OK") {
		t.Fatalf("ping --env: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := run("publish", "--env", env, "--channel", "c", "--event", "e", "--data", "{}"); code != 0 || !strings.Contains(out, "published") {
		t.Fatalf("publish --env: exit %d\n%s%s", code, out, errOut)
	}
	// The environment wins over the file, as in Laravel.
	t.Setenv("REVERB_APP_KEY", "from-the-environment")
	if code, out, _ := run("ping", "--env", env); code != 1 || !strings.Contains(out, "4001") {
		t.Fatalf("ping with REVERB_APP_KEY in the environment: exit %d\n%s", code, out)
	}
	os.Unsetenv("REVERB_APP_KEY")
	t.Setenv("REVERB_APP_ID", config.DefaultAppID)
	t.Setenv("REVERB_APP_KEY", config.DefaultAppKey)
	t.Setenv("REVERB_APP_SECRET", config.DefaultAppSecret)
	if code, out, errOut := run("ping", "ws://"+s.Addr); code != 0 {
		t.Fatalf("ping with REVERB_* in the environment: exit %d\n%s%s", code, out, errOut)
	}
}

// Past max_presence_members the bench reports the refusals and their
// reason, and never a negative memory figure.
func TestBenchPresenceOverLimit(t *testing.T) {
	cfg := config.Default()
	cfg.Apps[0].Limits.MaxPresenceMembers = 3
	s := servertest.Start(t, cfg)
	code, out, errOut := run("bench", "ws://"+s.Addr, "--app-id", config.DefaultAppID, "--key", config.DefaultAppKey, "--secret", config.DefaultAppSecret,
		"--conns", "5", "--presence", "--dialers", "1")
	if code != 1 || !strings.Contains(out, "connections        3 (2 failed)") ||
		!strings.Contains(out, "refused            2 connections: pusher:error 4009: presence channel presence-bench is full (3 members)") ||
		!strings.Contains(out, "max_presence_members") || regexp.MustCompile(`-\d`).MatchString(out) {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
}

// syncWriter is written by the server's goroutines and read by the test.
type syncWriter struct {
	mu     sync.Mutex
	b      bytes.Buffer
	marker string
	seen   chan struct{}
	once   sync.Once
}

func newSyncWriter(marker string) *syncWriter {
	return &syncWriter{marker: marker, seen: make(chan struct{})}
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.b.Write(p)
	if strings.Contains(w.b.String(), w.marker) {
		w.once.Do(func() { close(w.seen) })
	}
	return n, err
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// serveUntil runs herald serve until stderr shows "herald listening" (or
// serve returns), then stops it and returns its exit code and output.
func serveUntil(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	stdout, stderr := newSyncWriter("\x00"), newSyncWriter("herald listening")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() { done <- serveContext(ctx, args, stdout, stderr, false) }()
	var code int
	select {
	case <-stderr.seen:
		cancel()
		code = <-done
	case code = <-done:
	}
	return code, stdout.String(), stderr.String()
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// With the built-in app (public credentials) serve listens on loopback and
// says how to open it up; it logs what it loaded and serves.
func TestServeBuiltInAppOnLoopback(t *testing.T) {
	clearLaravelEnv(t)
	t.Setenv("REVERB_SCALING_ENABLED", "true")
	port := freePort(t)
	code, out, errOut := serveUntil(t, "--port", port, "--log-level", "info")
	if code != 0 || !strings.Contains(out, "Herald is running on 127.0.0.1:"+port+" with the built-in development app") ||
		!strings.Contains(out, "start it with --host 0.0.0.0") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, want := range []string{
		`msg=configuration config_file=none env_file=none`,
		`msg="serving app" app=herald-app key=herald-key enabled=true built_in=true`,
		`environment: REVERB_SCALING_ENABLED=true but neither REDIS_URL nor REDIS_HOST is set: Herald runs as a single node`,
		`addr=127.0.0.1:` + port,
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("log lacks %q:\n%s", want, errOut)
		}
	}
}

func TestServeConfiguredApp(t *testing.T) {
	clearLaravelEnv(t)
	port := freePort(t)
	env := writeTemp(t, ".env", "REVERB_APP_ID=731942\nREVERB_APP_KEY=f3a9c1e7b5d2a8c4e6f0\nREVERB_APP_SECRET=9b7d5f3a1c8e6b4d2f0a7c5e3b1d9f8a\nREVERB_SERVER_HOST=127.0.0.1\nREVERB_SERVER_PORT="+port+"\n")
	code, out, errOut := serveUntil(t, "--env", env)
	if code != 0 || out != "" || !strings.Contains(errOut, "env_file="+env) || !strings.Contains(errOut, `msg="serving app" app=731942 key=f3a9c1e7b5d2a8c4e6f0`) ||
		strings.Contains(errOut, "9b7d5f3a1c8e6b4d2f0a7c5e3b1d9f8a") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	// A misspelled credential stops serve with the name meant.
	env = writeTemp(t, ".env", "REVERB_APP_ID=731942\nREVERB_APP_KEY=f3a9c1e7b5d2a8c4e6f0\nREVERB_APP_SECRT=9b7d5f3a1c8e6b4d2f0a7c5e3b1d9f8a\n")
	code, _, errOut = serveUntil(t, "--env", env, "--port", port)
	if code != 1 || !strings.Contains(errOut, env+":3 sets REVERB_APP_SECRT: did you mean REVERB_APP_SECRET?") {
		t.Fatalf("misspelled secret: exit %d\n%s", code, errOut)
	}
}

// The banner with a host given: no loopback note, a warning instead.
func TestBannerOpenHost(t *testing.T) {
	var b bytes.Buffer
	printBanner(&b, config.Default(), "[::]:8080")
	if !strings.Contains(b.String(), "It listens beyond this machine (host ::, as configured):\nanyone who can reach port 8080") || strings.Contains(b.String(), "--host 0.0.0.0") {
		t.Fatalf("%s", b.String())
	}
}
