package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/herald-ws/herald/internal/config"
	"github.com/herald-ws/herald/internal/server/servertest"
)

func run(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := Main(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestKeygen(t *testing.T) {
	code, out, _ := run("keygen")
	re := regexp.MustCompile(`^REVERB_APP_ID=\d{6}\nREVERB_APP_KEY=[0-9a-f]{20}\nREVERB_APP_SECRET=[0-9a-f]{40}\n$`)
	if code != 0 || !re.MatchString(out) {
		t.Fatalf("exit %d, output %q", code, out)
	}
	_, out2, _ := run("keygen")
	if out2 == out {
		t.Fatal("two keygen runs printed the same credentials")
	}
	code, out, _ = run("keygen", "--json")
	var v map[string]string
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || len(v["secret"]) != 40 {
		t.Fatalf("json: exit %d %q", code, out)
	}
}

func TestPublishAndPing(t *testing.T) {
	s := servertest.Start(t, config.Default())
	c := s.Dial(t, "/app/"+config.DefaultAppKey+"?protocol=7")
	c.Expect("pusher:connection_established")
	c.Send(`{"event":"pusher:subscribe","data":{"channel":"orders"}}`)
	c.Expect("pusher_internal:subscription_succeeded")

	creds := []string{"--app-id", config.DefaultAppID, "--key", config.DefaultAppKey, "--secret", config.DefaultAppSecret}
	code, out, errOut := run(append([]string{"publish", "--url", "http://" + s.Addr, "--channel", "orders", "--event", "orders.updated", "--data", `{"n":1}`}, creds...)...)
	if code != 0 || !strings.Contains(out, "published") {
		t.Fatalf("publish: exit %d %q %q", code, out, errOut)
	}
	if m := c.Expect("orders.updated"); m.DataString() != `{"n":1}` {
		t.Fatalf("received %s", m.Raw)
	}

	code, out, _ = run(append([]string{"publish", "--url", "http://" + s.Addr, "--channel", "orders", "--event", "e", "--data", `{}`, "--json"}, "--app-id", config.DefaultAppID, "--key", config.DefaultAppKey, "--secret", "wrong")...)
	if code != 1 || !strings.Contains(out, `"status": 401`) {
		t.Fatalf("publish with a wrong secret: exit %d %q", code, out)
	}
	if code, _, errOut := run("publish", "--channel", "x"); code != 2 || !strings.Contains(errOut, "missing") {
		t.Fatalf("publish without flags: exit %d %q", code, errOut)
	}

	code, out, _ = run(append([]string{"ping", "ws://" + s.Addr, "--count", "3"}, creds...)...)
	if code != 0 || !strings.Contains(out, "OK") || !strings.Contains(out, "p99") || strings.Contains(out, "\x1b[") {
		t.Fatalf("ping: exit %d %q", code, out)
	}
	code, out, _ = run(append([]string{"ping", "ws://" + s.Addr, "--json", "--key", "nope"}, "--app-id", "x", "--secret", "y")...)
	var res struct {
		OK    bool
		Steps []struct {
			Name        string `json:"name"`
			LikelyCause string `json:"likely_cause"`
		}
	}
	if code != 1 || json.Unmarshal([]byte(out), &res) != nil || res.OK || res.Steps[0].Name != "connect" || !strings.Contains(res.Steps[0].LikelyCause, "4001") {
		t.Fatalf("ping wrong key: exit %d %q", code, out)
	}
}

func TestUnknownCommand(t *testing.T) {
	if code, _, errOut := run("frobnicate"); code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Fatalf("exit %d %q", code, errOut)
	}
}

// benchJSON runs `herald bench --json` with flags against a fresh server
// and decodes its report into v; the run must succeed.
func benchJSON(t *testing.T, v any, flags ...string) {
	benchJSONWith(t, config.Default(), v, flags...)
}

func benchJSONWith(t *testing.T, cfg *config.Config, v any, flags ...string) {
	s := servertest.Start(t, cfg)
	args := append([]string{"bench", "ws://" + s.Addr, "--app-id", config.DefaultAppID, "--key", config.DefaultAppKey,
		"--secret", config.DefaultAppSecret, "--json"}, flags...)
	code, out, errOut := run(args...)
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatal(err)
	}
}

func TestBenchShortRun(t *testing.T) {
	var r struct {
		Connections int     `json:"connections"`
		Published   int64   `json:"published"`
		Expected    int64   `json:"expected_deliveries"`
		Delivered   int64   `json:"delivered"`
		Lost        int64   `json:"lost"`
		P50         int64   `json:"latency_p50_ns"`
		P99         int64   `json:"latency_p99_ns"`
		Rate        float64 `json:"connects_per_second"`
	}
	benchJSON(t, &r, "--conns", "50", "--channels", "2", "--rate", "100", "--duration", "1s")
	// 100 events over 2 channels of 25 subscribers each: 2500 deliveries.
	if r.Connections != 50 || r.Published != 100 || r.Expected != 2500 || r.Delivered != 2500 || r.Lost != 0 {
		t.Fatalf("report %+v", r)
	}
	if r.P50 <= 0 || r.P99 < r.P50 || r.Rate <= 0 {
		t.Fatalf("implausible figures %+v", r)
	}
}

// clearLaravelEnv keeps the runner's own Laravel variables out of the
// test: doctor, ping, publish and serve read the process environment.
func clearLaravelEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		for _, p := range []string{"APP_", "BROADCAST_", "QUEUE_", "REVERB_", "PUSHER_", "VITE_"} {
			if strings.HasPrefix(k, p) {
				t.Setenv(k, v) // restored after the test
				os.Unsetenv(k)
			}
		}
	}
}

func TestDoctorExitCodes(t *testing.T) {
	clearLaravelEnv(t)
	code, out, _ := run("doctor", "--env", "../doctor/testdata/seed.env")
	if code != 1 || !strings.Contains(out, "BROADCAST_CONNECTION is defined 2 times") || !strings.Contains(out, "2 errors, 1 warning") {
		t.Fatalf("seed: exit %d\n%s", code, out)
	}
	code, out, _ = run("doctor", "--env", "../doctor/testdata/clean.env")
	if code != 0 || strings.TrimSpace(out) != "No problems found" {
		t.Fatalf("clean: exit %d %q", code, out)
	}
	code, out, _ = run("doctor", "--env", "../doctor/testdata/seed.env", "--json")
	var rep struct {
		OK       bool
		Findings []struct {
			Severity, Check string
			Line            int
		}
	}
	if code != 1 || json.Unmarshal([]byte(out), &rep) != nil || rep.OK || len(rep.Findings) != 3 {
		t.Fatalf("json: exit %d %s", code, out)
	}
	cfg := filepath.Join(t.TempDir(), "herald.yaml")
	if err := os.WriteFile(cfg, []byte("apps:\n  - id: \"731942\"\n    key: f3a9c1e7b5d2a8c4e6f0\n    secret: 9b7d5f3a1c8e6b4d2f0a7c5e3b1d9f8a\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, _ := run("doctor", "--env", "../doctor/testdata/clean.env", "--config", cfg); code != 0 {
		t.Fatalf("matching config: exit %d %s", code, out)
	}
	if code, _, errOut := run("doctor", "--env", "does-not-exist.env"); code != 1 || !strings.Contains(errOut, "does-not-exist.env") {
		t.Fatalf("missing file: exit %d %q", code, errOut)
	}
	if code, _, errOut := run("doctor", "../doctor/testdata/clean.env"); code != 2 || !strings.Contains(errOut, "unexpected argument") {
		t.Fatalf("file without --env: exit %d %q", code, errOut)
	}
}

func TestBenchPresence(t *testing.T) {
	var r struct {
		Connections int   `json:"connections"`
		Want        int64 `json:"member_added_expected"`
		Got         int64 `json:"member_added_delivered"`
		Lost        int64 `json:"lost"`
	}
	benchJSON(t, &r, "--conns", "60", "--presence")
	// 60 members: every pair is announced once, to the earlier member.
	if r.Connections != 60 || r.Want != 60*59/2 || r.Got != r.Want || r.Lost != 0 {
		t.Fatalf("report %+v", r)
	}
}

// Subscribers that never read are dropped once the write timeout passes;
// the bench reports it and the readers lose nothing. The kernel buffers
// ~4 MB (about 0.7 s of this stream); 300 ms later the slow subscribers are
// dropped, well before publishing ends at 2 s and the bench lets them read
// (reading earlier would unstall them). Their queues never near the 8 MiB
// bound: 300 ms of the stream is 1.8 MB.
func TestBenchSlowSubscribers(t *testing.T) {
	cfg := config.Default()
	cfg.Server.WriteTimeout = 300 * time.Millisecond
	var r struct {
		Slow        int         `json:"slow_connections"`
		SlowDropped int         `json:"slow_dropped_without_close"`
		Closed      map[int]int `json:"closed_by_code"`
		Expected    int64       `json:"expected_deliveries"`
		Delivered   int64       `json:"delivered"`
		Lost        int64       `json:"lost"`
	}
	benchJSONWith(t, cfg, &r, "--conns", "4", "--slow", "2", "--rate", "600", "--payload", "10000", "--duration", "2s", "--drain", "2s")
	if r.Slow != 2 || r.SlowDropped != 2 || r.Closed[4100] != 0 || r.Expected != 4800 || r.Delivered != 4800 || r.Lost != 0 {
		t.Fatalf("report %+v", r)
	}
}

// --rounds reports presence runs as presence figures (not empty delivery
// figures), and --presence refuses --slow.
func TestBenchRoundsText(t *testing.T) {
	s := servertest.Start(t, config.Default())
	args := []string{"bench", "ws://" + s.Addr, "--app-id", config.DefaultAppID, "--key", config.DefaultAppKey, "--secret", config.DefaultAppSecret}
	code, out, errOut := run(append(args, "--conns", "20", "--presence", "--rounds", "2")...)
	if code != 0 || !strings.Contains(out, "member_added       190.0 [190.0–190.0] delivered of 190") ||
		strings.Contains(out, "deliveries") || !strings.Contains(out, "nothing lost in any round") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := run(append(args, "--presence", "--slow", "2")...); code != 2 || !strings.Contains(errOut, "cannot be combined") {
		t.Fatalf("--presence --slow: exit %d %q", code, errOut)
	}
}
