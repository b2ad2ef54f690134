package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/herald-ws/herald/internal/apps"
	"github.com/herald-ws/herald/internal/config"
	"github.com/herald-ws/herald/internal/pusher"
	"github.com/herald-ws/herald/internal/server/servertest"
	"github.com/herald-ws/herald/internal/signature"
)

const metricsToken = "server-test-metrics-token-0123"

// families is one scrape, parsed by Prometheus's own text parser.
type families map[string]*dto.MetricFamily

// scrape GETs url (with auth as the Authorization header when not "")
// and parses the answer as the Prometheus text format.
func scrape(t *testing.T, url, auth string) families {
	t.Helper()
	code, hdr, body := httpDo(t, "GET", url, auth, "")
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, code, body)
	}
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("GET %s: Content-Type %q, want the text format", url, ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parsing the scrape: %v\n%s", err, body)
	}
	return fams
}

// value sums the samples of name whose labels include want: a counter's or
// gauge's value, a histogram's sample count.
func (f families) value(name string, want ...string) float64 {
	fam := f[name]
	if fam == nil {
		return 0
	}
	total := 0.0
next:
	for _, m := range fam.GetMetric() {
		for i := 0; i+1 < len(want); i += 2 {
			found := false
			for _, l := range m.GetLabel() {
				found = found || l.GetName() == want[i] && l.GetValue() == want[i+1]
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			total += m.GetCounter().GetValue()
		case m.Gauge != nil:
			total += m.GetGauge().GetValue()
		case m.Histogram != nil:
			total += float64(m.GetHistogram().GetSampleCount())
		case m.Untyped != nil:
			total += m.GetUntyped().GetValue()
		}
	}
	return total
}

// metricsServer starts a server with /metrics on its own address and on
// the main port behind metricsToken.
func metricsServer(t *testing.T, edit func(*config.Config)) (s *servertest.Server, scrapeURL string) {
	s = start(t, func(c *config.Config) {
		c.Server.MetricsAddr = "127.0.0.1:0"
		c.Server.MetricsToken = metricsToken
		if edit != nil {
			edit(c)
		}
	})
	return s, "http://" + s.MetricsAddr().String() + "/metrics"
}

// TestMetricsE2EScrapeParsedWithExpfmt drives a server through every path
// that the metrics of issue #12 count (connections on both transports,
// subscriptions by kind, messages both ways, API requests, a refusal, a
// slow client, webhooks delivered, failed, retried and dropped), scraping
// /metrics as it goes and parsing each scrape with expfmt: every metric
// moves as expected.
func TestMetricsE2EScrapeParsedWithExpfmt(t *testing.T) {
	var flaky atomic.Int64 // 500 on the first POST, 200 after: one retry
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/reject":
			w.WriteHeader(http.StatusBadRequest)
		case flaky.Add(1) == 1:
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(hooks.Close)
	s, url := metricsServer(t, func(c *config.Config) {
		c.Apps[0].BroadcastToken = testToken
		c.Apps[0].Webhooks = []apps.Webhook{{URL: hooks.URL + "/flaky"}, {URL: hooks.URL + "/reject"}}
	})
	base := "http://" + s.Addr
	app := config.DefaultAppID

	// On the main port: 401 without the token, the same metrics with it.
	for _, auth := range []string{"", "Bearer wrong-token-0123456789", metricsToken} {
		if code, _, _ := httpDo(t, "GET", base+"/metrics", auth, ""); code != http.StatusUnauthorized {
			t.Fatalf("GET /metrics on the main port with %q: %d, want 401", auth, code)
		}
	}
	if f := scrape(t, base+"/metrics", "Bearer "+metricsToken); f["herald_connections"] == nil {
		t.Fatal("main port /metrics: no herald_connections")
	}

	f := scrape(t, url, "")
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_resident_memory_bytes", "process_cpu_seconds_total"} {
		if f[name] == nil {
			t.Errorf("no %s: want Go runtime and process metrics", name)
		}
	}
	if f.value("herald_connections_total") != 0 || f.value("herald_broadcast_fanout_recipients") != 0 {
		t.Fatalf("a fresh server counts connections or publishes")
	}

	// Two WebSocket clients: one on a public channel, one on a private one.
	pub := subscribed(t, s, "broadcast")
	priv, sid := connect(t, s)
	auth := signature.ChannelAuth(config.DefaultAppKey, config.DefaultAppSecret, sid, "private-orders", "")
	priv.Send(`{"event":"pusher:subscribe","data":{"channel":"private-orders","auth":"` + auth + `"}}`)
	priv.Expect("pusher_internal:subscription_succeeded")
	pub.Send(`{"event":"pusher:ping","data":{}}`)
	pub.Expect("pusher:pong")

	// The API: a /broadcast publish (200) and an unsigned request (401).
	if code, _, body := httpDo(t, "POST", base+"/broadcast", "Bearer "+testToken, `{"message":{"type":"note","data":{"n":1}}}`); code != http.StatusOK {
		t.Fatalf("/broadcast: %d %s", code, body)
	}
	pub.Expect("note")
	if code, _, _ := httpDo(t, "GET", base+"/apps/"+app+"/channels", "", ""); code != http.StatusUnauthorized {
		t.Fatalf("unsigned GET channels: %d, want 401", code)
	}
	// A refusal: an unknown key is closed with 4001.
	if code := s.Dial(t, "/app/no-such-key?protocol=7&client=go&version=1").ExpectClose(); code != pusher.CodeAppNotFound {
		t.Fatalf("unknown key closed with %d", code)
	}
	// pusher-js's HTTP transport: a session opened with xhr_polling, its
	// connection_established taken by a second poll.
	xhr := base + "/app/" + config.DefaultAppKey + "/123/metricstest/xhr?protocol=7&client=js&version=8"
	if code, _, body := httpDo(t, "POST", xhr, "", ""); code != http.StatusOK || body != "o\n" {
		t.Fatalf("xhr open: %d %q", code, body)
	}
	if code, _, body := httpDo(t, "POST", xhr, "", ""); code != http.StatusOK || !strings.Contains(body, "connection_established") {
		t.Fatalf("xhr poll: %d %q", code, body)
	}

	f = scrape(t, url, "")
	expect := func(f families, name string, want float64, labels ...string) {
		t.Helper()
		if got := f.value(name, labels...); got != want {
			t.Errorf("%s%v = %v, want %v", name, labels, got, want)
		}
	}
	atLeast := func(f families, name string, want float64, labels ...string) {
		t.Helper()
		if got := f.value(name, labels...); got < want {
			t.Errorf("%s%v = %v, want at least %v", name, labels, got, want)
		}
	}
	expect(f, "herald_connections", 2, "app", app, "transport", "websocket")
	expect(f, "herald_connections_total", 2, "app", app, "transport", "websocket")
	expect(f, "herald_connections", 1, "app", app, "transport", "http")
	expect(f, "herald_connections_total", 1, "app", app, "transport", "http")
	expect(f, "herald_channels", 1, "app", app, "kind", "public")
	expect(f, "herald_channels", 1, "app", app, "kind", "private")
	expect(f, "herald_subscriptions", 1, "app", app, "kind", "private")
	expect(f, "herald_connection_errors_total", 1, "code", "4001")
	expect(f, "herald_api_requests_total", 1, "endpoint", "broadcast", "status", "200")
	expect(f, "herald_api_requests_total", 1, "endpoint", "channels", "status", "401")
	expect(f, "herald_api_request_duration_seconds", 1, "endpoint", "broadcast")
	expect(f, "herald_api_request_duration_seconds", 1, "endpoint", "channels")
	expect(f, "herald_broadcast_fanout_recipients", 1) // one publish…
	if h := f["herald_broadcast_fanout_recipients"].GetMetric()[0].GetHistogram(); h.GetSampleSum() != 1 {
		t.Errorf("fan-out sum %v, want 1 (the publish reached one socket)", h.GetSampleSum())
	}
	// Received: two subscribes and a ping. Sent: two connection_established,
	// two subscription_succeeded, the pong and the event (at least: the
	// counts are per flush, which may come before the test reads).
	expect(f, "herald_messages_received_total", 3, "transport", "websocket")
	atLeast(f, "herald_received_bytes_total", 60, "transport", "websocket")
	expect(f, "herald_messages_sent_total", 6, "transport", "websocket")
	atLeast(f, "herald_sent_bytes_total", 300, "transport", "websocket")
	expect(f, "herald_messages_sent_total", 1, "transport", "http")
	atLeast(f, "herald_history_bytes", 1)

	// A slow client: it never reads and is cut off with 4100, while a
	// reader on the same channel keeps up.
	slow, fast := subscribed(t, s, "firehose"), subscribed(t, s, "firehose")
	a := s.Node().AppByKey(config.DefaultAppKey)
	payload := strings.Repeat("x", 8000)
	for i := range 4000 {
		if err := s.Node().Publish(context.Background(), a, []string{"firehose"}, "e", payload, ""); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
		fast.Expect("e")
	}
	if code := slow.ExpectClose(); code != pusher.CodeOverCapacity {
		t.Fatalf("slow client closed with %d, want 4100", code)
	}
	priv.Conn().Close()

	// Webhooks (batched, and the flaky endpoint retried after a second),
	// and the closed sockets leaving: wait for them.
	deadline := time.Now().Add(10 * time.Second)
	for f = scrape(t, url, ""); f.value("herald_webhook_posts_retried_total") < 1 || f.value("herald_webhook_events_dropped_total") < 1 ||
		f.value("herald_connections", "transport", "websocket") != 2; f = scrape(t, url, "") {
		if time.Now().After(deadline) {
			t.Fatal("webhooks not retried and dropped, or sockets not closed, after 10 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	expect(f, "herald_slow_clients_closed_total", 1)
	expect(f, "herald_connection_errors_total", 1, "code", "4100")
	expect(f, "herald_connections_total", 4, "app", app, "transport", "websocket")
	expect(f, "herald_broadcast_fanout_recipients", 4001)
	atLeast(f, "herald_messages_sent_total", 6+2*2+4000, "transport", "websocket")
	expect(f, "herald_stalled_clients_dropped_total", 0)
	atLeast(f, "herald_webhook_events_queued_total", 2)
	atLeast(f, "herald_webhook_events_delivered_total", 1)
	atLeast(f, "herald_webhook_posts_failed_total", 2) // the 500 and the 400
	expect(f, "herald_connection_panics_total", 0)

	// Bounded labels: no channel name or socket id appears in any label.
	for name, fam := range f {
		for _, m := range fam.GetMetric() {
			for _, l := range m.GetLabel() {
				if v := l.GetValue(); strings.Contains(v, "orders") || strings.Contains(v, "firehose") || v == sid || !strings.HasPrefix(name, "herald_") && !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_") {
					t.Errorf("%s has label %s=%q", name, l.GetName(), v)
				}
			}
		}
		if !strings.HasPrefix(name, "herald_") && !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_") && !strings.HasPrefix(name, "promhttp_") {
			t.Errorf("metric %s: want the herald_ prefix", name)
		}
	}
}

// A client that takes none of our data for the write timeout is counted in
// herald_stalled_clients_dropped_total.
func TestMetricsStalledClient(t *testing.T) {
	s, url := metricsServer(t, func(c *config.Config) { c.Server.WriteTimeout = 300 * time.Millisecond })
	_, fast := subscribed(t, s, "firehose"), subscribed(t, s, "firehose")
	app := s.Node().AppByKey(config.DefaultAppKey)
	payload := strings.Repeat("x", 8000)
	for range 750 { // 6 MB: more than the kernel buffers, below the 8 MiB bound
		if err := s.Node().Publish(context.Background(), app, []string{"firehose"}, "e", payload, ""); err != nil {
			t.Fatal(err)
		}
		fast.Expect("e")
	}
	deadline := time.Now().Add(5 * time.Second)
	for f := scrape(t, url, ""); f.value("herald_stalled_clients_dropped_total") != 1; f = scrape(t, url, "") {
		if time.Now().After(deadline) {
			t.Fatalf("herald_stalled_clients_dropped_total = %v after 5 s, want 1", f.value("herald_stalled_clients_dropped_total"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Without server.metrics_token, /metrics on the main port does not exist.
func TestMetricsOffByDefault(t *testing.T) {
	s := start(t, nil)
	if code, _, _ := httpDo(t, "GET", "http://"+s.Addr+"/metrics", "Bearer "+metricsToken, ""); code != http.StatusNotFound {
		t.Fatalf("GET /metrics without a token configured: %d, want 404", code)
	}
	if s.MetricsAddr() != nil {
		t.Fatal("a metrics listener without server.metrics_addr")
	}
}

// Resumes are counted: replayed (and the events replayed) or failed.
func TestMetricsResumes(t *testing.T) {
	s, url := metricsServer(t, nil)
	a := s.Node().AppByID(config.DefaultAppID)
	for _, d := range []string{"1", "2"} {
		if err := s.Node().Publish(context.Background(), a, []string{"news"}, "e", d, ""); err != nil {
			t.Fatal(err)
		}
	}
	pos, _ := a.Position("news")
	c, _ := connect(t, s)
	c.Send(`{"event":"pusher:subscribe","data":{"channel":"news","since":{"epoch":"` + pos.Epoch + `","offset":0}}}`)
	c.Expect("pusher_internal:subscription_succeeded")
	c.Expect("e")
	c.Expect("e")
	c.Send(`{"event":"pusher:subscribe","data":{"channel":"other","since":{"epoch":"gone","offset":3}}}`)
	c.Expect("pusher_internal:subscription_succeeded")
	c.Expect("herald:resume_failed")
	f := scrape(t, url, "")
	for _, want := range []struct {
		name   string
		labels []string
		v      float64
	}{
		{"herald_resumes_total", []string{"result", "replayed"}, 1},
		{"herald_resumes_total", []string{"result", "failed"}, 1},
		{"herald_resumed_events_total", nil, 2},
	} {
		if got := f.value(want.name, want.labels...); got != want.v {
			t.Errorf("%s%v = %v, want %v", want.name, want.labels, got, want.v)
		}
	}
}
