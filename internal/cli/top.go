package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

const topUsage = `Usage: herald top [--token T] [--interval 1s] [--once] [--json] URL

A live view of a running Herald from its Prometheus metrics endpoint, for
the operator without a Grafana: connections per app and transport,
channels, messages and bytes per second, API requests per second by status
class with their p99, connection errors by close code, webhooks and HTTP
readers. Rates are the difference between two scrapes one interval apart.

URL is the metrics endpoint: http://127.0.0.1:9100/metrics for
--metrics-addr 127.0.0.1:9100, or the main port's /metrics with
--token (server.metrics_token). On a terminal the screen is redrawn every
interval; --once prints one snapshot (two scrapes) as plain text and exits.
Exit code 0, 1 when the endpoint cannot be scraped, 2 on a usage error.

Flags:
`

func top(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("herald top", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, topUsage); fs.PrintDefaults() }
	token := fs.String("token", "", "bearer token for /metrics on the main port (server.metrics_token)")
	interval := fs.Duration("interval", time.Second, "time between scrapes")
	once := fs.Bool("once", false, "print one snapshot without ANSI codes and exit")
	asJSON := fs.Bool("json", false, "print each snapshot as a JSON object (with --once: one)")
	url, rest := splitPositional(args)
	if err := fs.Parse(rest); err != nil {
		return exitForParse(err)
	}
	// Flags may also follow a URL typed after other flags.
	for url == "" && fs.NArg() > 0 {
		url = fs.Arg(0)
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return exitForParse(err)
		}
	}
	if url == "" || fs.NArg() > 0 || *interval <= 0 {
		fmt.Fprintln(stderr, "herald top: one metrics URL is required (e.g. http://127.0.0.1:9100/metrics), and --interval must be positive")
		fs.Usage()
		return 2
	}
	if !strings.Contains(url, "://") {
		url = "http://" + url
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	t := &topper{url: url, token: *token, client: &http.Client{Timeout: 10 * time.Second}}
	if err := t.run(ctx, *interval, *once, *asJSON, stdout); err != nil {
		fmt.Fprintf(stderr, "herald top: %v\n", err)
		return 1
	}
	return 0
}

// topper scrapes one metrics endpoint. Used from one goroutine.
type topper struct {
	url, token string
	client     *http.Client
}

// sample is one scrape and when it was taken.
type sample struct {
	at   time.Time
	fams map[string]*dto.MetricFamily
}

// run scrapes every interval and prints a view of each pair of scrapes
// until ctx ends (or once). A failing first scrape is an error; later
// failures are shown on the screen and retried, so a restarting server
// does not end the view.
func (t *topper) run(ctx context.Context, interval time.Duration, once, asJSON bool, w io.Writer) error {
	prev, err := t.scrape(ctx)
	if err != nil {
		return err
	}
	ansi := !once && !asJSON && isTerminal(w)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		cur, err := t.scrape(ctx)
		switch {
		case err != nil && once:
			return err
		case err != nil && ctx.Err() != nil:
			return nil
		case err != nil:
			if ansi {
				fmt.Fprint(w, "\x1b[H\x1b[2J")
			}
			fmt.Fprintf(w, "herald top  %s  %s\nscrape failed: %v (retrying)\n", t.url, time.Now().Format(time.TimeOnly), err)
			continue
		}
		v := newTopView(t.url, prev, cur)
		if asJSON {
			_ = writeJSON(w, v)
		} else {
			if ansi {
				fmt.Fprint(w, "\x1b[H\x1b[2J")
			}
			printTop(&out{w: w, color: ansi && os.Getenv("NO_COLOR") == ""}, v)
		}
		if once {
			return nil
		}
		prev = cur
	}
}

// scrape GETs the endpoint and parses the Prometheus text format, turning
// the usual mistakes into a sentence that says what to do.
func (t *topper) scrape(ctx context.Context) (sample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url, nil)
	if err != nil {
		return sample{}, fmt.Errorf("bad URL %q: %w", t.url, err)
	}
	if t.token != "" {
		req.Header.Set("Authorization", "Bearer "+t.token)
	}
	// The text format: a server that would negotiate protobuf or
	// OpenMetrics answers what the parser reads.
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := t.client.Do(req)
	if err != nil {
		return sample{}, fmt.Errorf("cannot reach %s: %w (is Herald running with metrics on?)", t.url, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized:
		if t.token == "" {
			return sample{}, fmt.Errorf("%s answered 401: pass the metrics token with --token (server.metrics_token)", t.url)
		}
		return sample{}, fmt.Errorf("%s answered 401: the --token is not the server's server.metrics_token", t.url)
	case http.StatusNotFound:
		return sample{}, fmt.Errorf("%s answered 404: metrics are off or elsewhere; start Herald with --metrics-addr 127.0.0.1:9100 (then scrape http://127.0.0.1:9100/metrics) or set server.metrics_token (then scrape the main port's /metrics with --token)", t.url)
	default:
		return sample{}, fmt.Errorf("%s answered %s", t.url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(io.LimitReader(resp.Body, 64<<20))
	if err == nil && len(fams) == 0 {
		err = errors.New("no metrics in the answer")
	}
	if err != nil {
		return sample{}, fmt.Errorf("%s did not answer in the Prometheus text format (is it Herald's /metrics?): %w", t.url, err)
	}
	return sample{at: time.Now(), fams: fams}, nil
}

// value is a counter's or gauge's value (untyped too).
func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Untyped != nil:
		return m.GetUntyped().GetValue()
	}
	return 0
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// by sums the samples of name by the values of the labels keys (joined
// with "/"); no keys sums everything under "".
func (s sample) by(name string, keys ...string) map[string]float64 {
	sums := map[string]float64{}
	for _, m := range s.fams[name].GetMetric() {
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = label(m, k)
		}
		sums[strings.Join(parts, "/")] += value(m)
	}
	return sums
}

func (s sample) total(name string) float64 { return s.by(name)[""] }

func (s sample) has(name string) bool { return s.fams[name] != nil }

// rates are the per-second increases of name by keys between two scrapes.
// A counter that went down (the server restarted) counts from zero.
func rates(prev, cur sample, name string, keys ...string) map[string]float64 {
	dt := cur.at.Sub(prev.at).Seconds()
	before, after := prev.by(name, keys...), cur.by(name, keys...)
	r := make(map[string]float64, len(after))
	for k, v := range after {
		d := v - before[k]
		if d < 0 {
			d = v
		}
		r[k] = d / math.Max(dt, 1e-9)
	}
	return r
}

// TopView is one screen of herald top, also its --json form.
type TopView struct {
	URL      string    `json:"url"`
	At       time.Time `json:"at"`
	Interval float64   `json:"interval_s"`
	Apps     []TopApp  `json:"apps"`

	MessagesIn  float64 `json:"messages_in_per_s"`
	MessagesOut float64 `json:"messages_out_per_s"`
	BytesIn     float64 `json:"bytes_in_per_s"`
	BytesOut    float64 `json:"bytes_out_per_s"`
	Publishes   float64 `json:"publishes_per_s"`

	// API is requests per second by status class ("2xx", "4xx", ...).
	API map[string]float64 `json:"api_per_s"`
	// APIP99 is the p99 latency of the interval's API requests, in
	// seconds; 0 when there were none.
	APIP99 float64 `json:"api_p99_s"`
	// Errors are connection errors by close code: since start and per
	// second.
	Errors    map[string]float64 `json:"connection_errors_total"`
	ErrorRate map[string]float64 `json:"connection_errors_per_s"`
	Slow      float64            `json:"slow_clients_closed_total"`
	Stalled   float64            `json:"stalled_clients_dropped_total"`
	Panics    float64            `json:"connection_panics_total"`
	Readers   float64            `json:"http_readers"`
	// Webhooks are the herald_webhook_* values by short name (nil
	// without webhooks).
	Webhooks map[string]float64 `json:"webhooks,omitempty"`
	HeapB    float64            `json:"go_heap_bytes"`
	RSSB     float64            `json:"process_resident_bytes"`
	Routines float64            `json:"goroutines"`
}

// TopApp is one app's connections and channels.
type TopApp struct {
	ID            string  `json:"id"`
	WebSocket     float64 `json:"websocket"`
	HTTP          float64 `json:"http"`
	Channels      float64 `json:"channels"`
	Subscriptions float64 `json:"subscriptions"`
}

func newTopView(url string, prev, cur sample) *TopView {
	v := &TopView{URL: url, At: cur.at, Interval: cur.at.Sub(prev.at).Seconds()}
	conns := cur.by("herald_connections", "app", "transport")
	chans, subs := cur.by("herald_channels", "app"), cur.by("herald_subscriptions", "app")
	ids := map[string]bool{}
	for k := range conns {
		ids[strings.Split(k, "/")[0]] = true
	}
	for id := range ids {
		v.Apps = append(v.Apps, TopApp{ID: id, WebSocket: conns[id+"/websocket"], HTTP: conns[id+"/http"], Channels: chans[id], Subscriptions: subs[id]})
	}
	slices.SortFunc(v.Apps, func(a, b TopApp) int { return strings.Compare(a.ID, b.ID) })
	v.MessagesIn = rates(prev, cur, "herald_messages_received_total")[""]
	v.MessagesOut = rates(prev, cur, "herald_messages_sent_total")[""]
	v.BytesIn = rates(prev, cur, "herald_received_bytes_total")[""]
	v.BytesOut = rates(prev, cur, "herald_sent_bytes_total")[""]
	v.Publishes = histRate(prev, cur, "herald_broadcast_fanout_recipients")
	v.API = map[string]float64{}
	for status, r := range rates(prev, cur, "herald_api_requests_total", "status") {
		class := "other"
		if len(status) == 3 && status[0] >= '1' && status[0] <= '5' {
			class = status[:1] + "xx"
		}
		v.API[class] += r
	}
	v.APIP99 = quantile(0.99, histDelta(prev, cur, "herald_api_request_duration_seconds"))
	v.Errors = cur.by("herald_connection_errors_total", "code")
	v.ErrorRate = rates(prev, cur, "herald_connection_errors_total", "code")
	v.Slow = cur.total("herald_slow_clients_closed_total")
	v.Stalled = cur.total("herald_stalled_clients_dropped_total")
	v.Panics = cur.total("herald_connection_panics_total")
	v.Readers = cur.total("herald_http_readers")
	if cur.has("herald_webhook_events_queued_total") {
		v.Webhooks = map[string]float64{
			"queued":    cur.total("herald_webhook_events_queued_total"),
			"delivered": cur.total("herald_webhook_events_delivered_total"),
			"dropped":   cur.total("herald_webhook_events_dropped_total"),
			"pending":   cur.total("herald_webhook_events_pending"),
			"failed":    cur.total("herald_webhook_posts_failed_total"),
			"retried":   cur.total("herald_webhook_posts_retried_total"),
		}
	}
	v.HeapB = cur.total("go_memstats_heap_alloc_bytes")
	v.RSSB = cur.total("process_resident_memory_bytes")
	v.Routines = cur.total("go_goroutines")
	return v
}

// bucket is a cumulative histogram bucket.
type bucket struct{ le, count float64 }

// histDelta is the cumulative buckets of name (summed over its labels)
// observed between two scrapes.
func histDelta(prev, cur sample, name string) []bucket {
	sum := func(s sample) map[float64]float64 {
		b := map[float64]float64{}
		for _, m := range s.fams[name].GetMetric() {
			for _, bk := range m.GetHistogram().GetBucket() {
				b[bk.GetUpperBound()] += float64(bk.GetCumulativeCount())
			}
		}
		return b
	}
	before, after := sum(prev), sum(cur)
	out := make([]bucket, 0, len(after))
	for le, n := range after {
		out = append(out, bucket{le, max(n-before[le], 0)})
	}
	slices.SortFunc(out, func(a, b bucket) int { return cmpFloat(a.le, b.le) })
	return out
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// histRate is the observations per second of histogram name.
func histRate(prev, cur sample, name string) float64 {
	count := func(s sample) float64 {
		n := 0.0
		for _, m := range s.fams[name].GetMetric() {
			n += float64(m.GetHistogram().GetSampleCount())
		}
		return n
	}
	d := count(cur) - count(prev)
	if d < 0 {
		d = count(cur)
	}
	return d / math.Max(cur.at.Sub(prev.at).Seconds(), 1e-9)
}

// quantile estimates the q-quantile from cumulative buckets as
// Prometheus's histogram_quantile does: linear within the bucket, the
// highest finite bound when it falls in +Inf. 0 without observations.
func quantile(q float64, bs []bucket) float64 {
	if len(bs) == 0 {
		return 0
	}
	total := bs[len(bs)-1].count // the +Inf bucket: every observation
	if total == 0 {
		return 0
	}
	rank := q * total
	lo, below := 0.0, 0.0
	for _, b := range bs {
		if b.count >= rank {
			if math.IsInf(b.le, 1) {
				return lo
			}
			if b.count == below {
				return b.le
			}
			return lo + (b.le-lo)*(rank-below)/(b.count-below)
		}
		lo, below = b.le, b.count
	}
	return lo
}

func printTop(o *out, v *TopView) {
	o.printf("%s  %s  rates over %s  %s\n\n", o.paint(bold, "herald top"), v.URL, seconds(v.Interval).Round(time.Millisecond), v.At.Format(time.TimeOnly))
	o.printf("%s\n", o.paint(bold, fmt.Sprintf("%-24s %10s %10s %10s %14s", "app", "websocket", "http", "channels", "subscriptions")))
	if len(v.Apps) == 0 {
		o.printf("%s\n", o.paint(dim, "(no herald_connections: is this Herald's /metrics?)"))
	}
	for _, a := range v.Apps {
		o.printf("%-24s %10.0f %10.0f %10.0f %14.0f\n", a.ID, a.WebSocket, a.HTTP, a.Channels, a.Subscriptions)
	}
	o.printf("\nmessages/s    in %-10s out %-10s publishes/s %s\n", num(v.MessagesIn), num(v.MessagesOut), num(v.Publishes))
	o.printf("bytes/s       in %-10s out %s\n", bytesStr(v.BytesIn), bytesStr(v.BytesOut))
	api := "0"
	if len(v.API) > 0 {
		var parts []string
		for _, c := range sorted(mapKeys(v.API)) {
			parts = append(parts, c+" "+num(v.API[c]))
		}
		api = strings.Join(parts, "  ")
	}
	p99 := "—"
	if v.APIP99 > 0 {
		p99 = ms(seconds(v.APIP99))
	}
	o.printf("api req/s     %s   p99 %s\n", api, p99)
	printTopErrors(o, v)
	if v.Webhooks != nil {
		w := v.Webhooks
		o.printf("webhooks      queued %.0f  delivered %.0f  dropped %s  pending %.0f  failed %.0f  retried %.0f\n",
			w["queued"], w["delivered"], warnIf(o, w["dropped"]), w["pending"], w["failed"], w["retried"])
	} else {
		o.printf("webhooks      %s\n", o.paint(dim, "none configured"))
	}
	o.printf("http readers  %.0f\n", v.Readers)
	o.printf("memory        heap %s  rss %s  goroutines %.0f\n", bytesStr(v.HeapB), bytesStr(v.RSSB), v.Routines)
}

func printTopErrors(o *out, v *TopView) {
	if len(v.Errors) == 0 {
		o.printf("errors        none\n")
	} else {
		var parts []string
		for _, code := range sorted(mapKeys(v.Errors)) {
			s := fmt.Sprintf("%s ×%.0f", code, v.Errors[code])
			if r := v.ErrorRate[code]; r > 0 {
				s += o.paint(red, " (+"+num(r)+"/s)")
			}
			parts = append(parts, s)
		}
		o.printf("errors        %s\n", strings.Join(parts, "  "))
	}
	o.printf("dropped       slow %.0f  stalled %.0f  panics %s\n", v.Slow, v.Stalled, warnIf(o, v.Panics))
}

func warnIf(o *out, n float64) string {
	s := fmt.Sprintf("%.0f", n)
	if n > 0 {
		return o.paint(yellow, s)
	}
	return s
}

func mapKeys(m map[string]float64) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// num prints a rate: whole numbers past 100, one decimal below.
func num(f float64) string {
	if f >= 100 || f == math.Trunc(f) {
		return fmt.Sprintf("%.0f", f)
	}
	return fmt.Sprintf("%.1f", f)
}

func bytesStr(b float64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%.0f B", b)
	}
	i, v := 0, b/unit
	for v >= unit && i < 3 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGT"[i])
}
