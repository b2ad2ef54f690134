// Package metrics exposes Herald's counters in the Prometheus text format.
//
// Most numbers already exist as atomics where the work happens (sessions
// per app, slow clients, webhook deliveries): they are read only when
// Prometheus scrapes, through a Collector that asks the server for a
// Snapshot. The few observations made as things happen (an HTTP API
// request, a publish's fan-out) go to metrics bound at start-up, so no hot
// path looks up a label value. Each server owns its Registry: there is no
// global one.
//
// Labels are bounded: app ids (fixed at start), transports, channel kinds,
// close codes, API endpoints and status codes; never a channel name or a
// socket id.
package metrics

import (
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Transports are the values of the transport label.
var Transports = []string{"websocket", "http"}

// FanOutBuckets are the recipient counts the fan-out histogram tells
// apart: a publish reaches nobody, one socket, or up to a million.
var FanOutBuckets = []float64{0, 1, 10, 100, 1000, 10000, 100000, 1000000}

// Snapshot is the server's counters at one moment, read at scrape time.
type Snapshot struct {
	Apps []AppSnapshot
	// Traffic is per transport, in the order of Transports.
	Traffic [2]TrafficSnapshot
	// Closes counts connections closed or refused with a close code, by
	// code.
	Closes map[int]int64

	SlowClosed, Stalled, Panics  int64
	APIBusy                      int64
	IPRefused, HandshakesEvicted int64
	Readers, ReadersBusy         int64
	HistoryBytes                 int64
	// Resumes (subscribes with since) served with a replay, failed
	// (herald:resume_failed), and the events replayed.
	Resumed, ResumeFailed, ResumedEvents int64
	Webhooks                             *WebhookSnapshot // nil without webhooks
}

// AppSnapshot is one app's connections and channels.
type AppSnapshot struct {
	ID string
	// Open and Opened are per transport, in the order of Transports: the
	// connections open now and since start.
	Open, Opened [2]int64
	// Channels and Subscriptions are by channel kind ("public",
	// "private", ...).
	Channels, Subscriptions map[string]int64
}

// TrafficSnapshot is one transport's messages and bytes.
type TrafficSnapshot struct {
	MessagesIn, BytesIn, MessagesOut, BytesOut int64
}

// WebhookSnapshot is the webhook dispatcher's counters.
type WebhookSnapshot struct {
	Queued, Delivered, Dropped, Pending, Failed, Retried int64
}

// Metrics is one server's registry and the metrics observed as things
// happen.
//
// Concurrency: safe for concurrent use after New.
type Metrics struct {
	reg *prometheus.Registry
	// FanOut observes how many local sockets each publish reached, once
	// per channel published to.
	FanOut prometheus.Histogram
	API    *API
}

// New returns metrics whose scrape-time counters come from snap.
func New(snap func() Snapshot) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg: reg,
		FanOut: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "herald_broadcast_fanout_recipients",
			Help:    "Local sockets each publish was queued to, observed once per channel published to.",
			Buckets: FanOutBuckets,
		}),
		API: newAPI(),
	}
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.FanOut,
		m.API.requests, m.API.latency,
		&collector{snap: snap},
	)
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Registry is the server's registry (for tests).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// API endpoints, the values of the endpoint label.
const (
	EndpointEvents      = "events"
	EndpointBatchEvents = "batch_events"
	EndpointChannels    = "channels"
	EndpointChannel     = "channel"
	EndpointUsers       = "channel_users"
	EndpointTerminate   = "terminate_connections"
	EndpointBroadcast   = "broadcast"
	EndpointOther       = "other"
)

var endpoints = []string{EndpointEvents, EndpointBatchEvents, EndpointChannels, EndpointChannel, EndpointUsers, EndpointTerminate, EndpointBroadcast, EndpointOther}

// statuses are the status codes the API answers with; any other is
// counted as "other".
var statuses = [...]int{200, 202, 204, 400, 401, 403, 404, 405, 408, 409, 413, 415, 422, 429, 500, 503}

// API counts HTTP API requests by endpoint and status, with a latency
// histogram per endpoint. Latency observers are bound at start; a status
// counter is bound on its first request (so the scrape shows no series of
// pairs never seen) and kept, so later requests look nothing up.
type API struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	bound    map[string]*apiEndpoint // read-only after newAPI
}

type apiEndpoint struct {
	name    string
	latency prometheus.Observer
	status  [len(statuses) + 1]atomic.Pointer[prometheus.Counter] // the last: any other status
}

func newAPI() *API {
	a := &API{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_api_requests_total",
			Help: "HTTP API requests (Pusher REST API and /broadcast) by endpoint and status code.",
		}, []string{"endpoint", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "herald_api_request_duration_seconds",
			Help:    "Time to answer an HTTP API request, by endpoint.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
		}, []string{"endpoint"}),
		bound: map[string]*apiEndpoint{},
	}
	for _, e := range endpoints {
		a.bound[e] = &apiEndpoint{name: e, latency: a.latency.WithLabelValues(e)}
	}
	return a
}

// Observe counts one request to endpoint (one of the Endpoint constants;
// anything else counts as other) answered with status after d.
func (a *API) Observe(endpoint string, status int, d time.Duration) {
	b := a.bound[endpoint]
	if b == nil {
		b = a.bound[EndpointOther]
	}
	b.latency.Observe(d.Seconds())
	i, label := len(statuses), "other"
	if j := slices.Index(statuses[:], status); j >= 0 {
		i, label = j, strconv.Itoa(status)
	}
	c := b.status[i].Load()
	if c == nil {
		// Racing first requests bind the same child: WithLabelValues
		// returns one counter per label pair.
		cc := a.requests.WithLabelValues(b.name, label)
		c = &cc
		b.status[i].Store(c)
	}
	(*c).Inc()
}
