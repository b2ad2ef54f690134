package cli

import (
	"encoding/json"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/herald-ws/herald/internal/apps"
	"github.com/herald-ws/herald/internal/config"
	"github.com/herald-ws/herald/internal/server/servertest"
)

const topToken = "cli-top-test-metrics-token-0123"

// metricsHerald starts a Herald with /metrics on its own address and on
// the main port behind topToken, and a webhook endpoint (so the webhook
// metrics exist).
func metricsHerald(t *testing.T) *servertest.Server {
	hooks := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(hooks.Close)
	cfg := config.Default()
	cfg.Server.MetricsAddr = "127.0.0.1:0"
	cfg.Server.MetricsToken = topToken
	cfg.Apps[0].Webhooks = []apps.Webhook{{URL: hooks.URL}}
	return servertest.Start(t, cfg)
}

func TestTopOnceShowsTheConnection(t *testing.T) {
	s := metricsHerald(t)
	c := s.Dial(t, "/app/"+config.DefaultAppKey+"?protocol=7")
	c.Expect("pusher:connection_established")
	c.Send(`{"event":"pusher:subscribe","data":{"channel":"orders"}}`)
	c.Expect("pusher_internal:subscription_succeeded")

	url := "http://" + s.MetricsAddr().String() + "/metrics"
	code, out, errOut := run("top", url, "--once", "--interval", "50ms")
	if code != 0 {
		t.Fatalf("top --once: exit %d %q %q", code, out, errOut)
	}
	row := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(config.DefaultAppID) + `\s+1\s+0\s+1\s+1$`)
	if !row.MatchString(out) || strings.Contains(out, "\x1b[") {
		t.Fatalf("top --once: want the app with 1 websocket connection, 1 channel, 1 subscription and no ANSI codes:\n%s", out)
	}
	for _, want := range []string{"messages/s", "api req/s", "errors", "webhooks      queued", "http readers", "memory"} {
		if !strings.Contains(out, want) {
			t.Errorf("top --once output lacks %q:\n%s", want, out)
		}
	}

	// The main port with the token, as JSON.
	code, out, errOut = run("top", "http://"+s.Addr+"/metrics", "--token", topToken, "--once", "--json", "--interval", "10ms")
	var v TopView
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil {
		t.Fatalf("top --json: exit %d %q %q", code, out, errOut)
	}
	if len(v.Apps) != 1 || v.Apps[0].ID != config.DefaultAppID || v.Apps[0].WebSocket != 1 || v.Webhooks == nil {
		t.Fatalf("top --json: %+v", v)
	}
}

func TestTopErrors(t *testing.T) {
	s := metricsHerald(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/metrics"
	ln.Close()
	notText := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"ok":true,"connections":1}`))
	}))
	t.Cleanup(notText.Close)
	main := "http://" + s.Addr + "/metrics"
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"closed port", []string{closed}, "cannot reach"},
		{"no token", []string{main}, "pass the metrics token with --token"},
		{"wrong token", []string{main, "--token", "wrong-token-0123456789"}, "--token is not"},
		{"no metrics", []string{"http://" + s.Addr + "/nothing-here"}, "--metrics-addr"},
		{"not prometheus", []string{notText.URL}, "Prometheus text format"},
	} {
		code, out, errOut := run(append([]string{"top", "--once", "--interval", "10ms"}, tc.args...)...)
		if code != 1 || out != "" || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want 1 and %q", tc.name, code, out, errOut, tc.want)
		}
	}
	if code, _, errOut := run("top"); code != 2 || !strings.Contains(errOut, "URL is required") {
		t.Errorf("top without a URL: exit %d %q", code, errOut)
	}
}

func TestQuantile(t *testing.T) {
	inf := bucket{le: math.Inf(1)}
	for _, tc := range []struct {
		bs   []bucket
		q    float64
		want float64
	}{
		{nil, 0.99, 0},
		{[]bucket{{0.1, 0}, {1, 0}, {inf.le, 0}}, 0.99, 0},
		{[]bucket{{0.1, 0}, {1, 100}, {inf.le, 100}}, 0.5, 0.55},
		{[]bucket{{0.1, 50}, {1, 100}, {inf.le, 100}}, 0.5, 0.1},
		{[]bucket{{0.1, 0}, {1, 0}, {inf.le, 10}}, 0.99, 1},
	} {
		if got := quantile(tc.q, tc.bs); got < tc.want-1e-9 || got > tc.want+1e-9 {
			t.Errorf("quantile(%v, %v) = %v, want %v", tc.q, tc.bs, got, tc.want)
		}
	}
}

// The Grafana dashboard in deploy/ parses, and every metric its queries
// name is one a Herald with webhooks exposes.
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile("../../deploy/grafana-herald.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title         string `json:"title"`
		SchemaVersion int    `json:"schemaVersion"`
		Panels        []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("deploy/grafana-herald.json: %v", err)
	}
	if d.SchemaVersion < 30 || d.Title == "" || !strings.Contains(string(b), "${DS_PROMETHEUS}") {
		t.Fatalf("dashboard: title %q, schemaVersion %d, or no ${DS_PROMETHEUS}", d.Title, d.SchemaVersion)
	}
	s := metricsHerald(t)
	// Activity, so the series bound on first use exist: a channel, an
	// API request, a connection refused with 4001.
	c := s.Dial(t, "/app/"+config.DefaultAppKey+"?protocol=7")
	c.Expect("pusher:connection_established")
	c.Send(`{"event":"pusher:subscribe","data":{"channel":"orders"}}`)
	c.Expect("pusher_internal:subscription_succeeded")
	if code := s.Dial(t, "/app/no-such-key?protocol=7").ExpectClose(); code != 4001 {
		t.Fatalf("unknown key closed with %d", code)
	}
	resp, err := http.Get("http://" + s.Addr + "/apps/" + config.DefaultAppID + "/channels")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	smp, err := (&topper{url: "http://" + s.MetricsAddr().String() + "/metrics", client: http.DefaultClient}).scrape(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	names := regexp.MustCompile(`\b(?:herald|go|process)_[a-z_]+`)
	queries := 0
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			queries++
			found := names.FindAllString(tg.Expr, -1)
			if len(found) == 0 {
				t.Errorf("panel %q: %q names no Herald metric", p.Title, tg.Expr)
			}
			for _, n := range found {
				base := n
				for _, suf := range []string{"_bucket", "_count", "_sum"} {
					if b, ok := strings.CutSuffix(n, suf); ok && smp.fams[b].GetType() == dto.MetricType_HISTOGRAM {
						base = b
					}
				}
				if smp.fams[base] == nil {
					t.Errorf("panel %q: %s is not a metric Herald exposes", p.Title, n)
				}
			}
		}
	}
	if queries < 8 {
		t.Errorf("%d queries; want the panels of issue #12", queries)
	}
}
