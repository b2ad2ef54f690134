package metrics

import (
	"slices"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// collector turns a Snapshot into metrics at scrape time.
//
// Concurrency: Collect may run concurrently (parallel scrapes); it only
// reads the snapshot it asked for.
type collector struct {
	snap func() Snapshot
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

var (
	descConns       = desc("herald_connections", "Connections open now, by app and transport.", "app", "transport")
	descConnsTotal  = desc("herald_connections_total", "Connections opened since start, by app and transport.", "app", "transport")
	descCloses      = desc("herald_connection_errors_total", "Connections closed or refused by the server with a close code (Pusher 4000-4399, WebSocket 1002-1011), by code.", "code")
	descChannels    = desc("herald_channels", "Occupied channels on this node, by app and channel kind.", "app", "kind")
	descSubs        = desc("herald_subscriptions", "Channel subscriptions on this node, by app and channel kind.", "app", "kind")
	descMsgIn       = desc("herald_messages_received_total", "Messages received from clients, by transport.", "transport")
	descBytesIn     = desc("herald_received_bytes_total", "Bytes of the messages received from clients (payload), by transport.", "transport")
	descMsgOut      = desc("herald_messages_sent_total", "Messages (frames) sent to clients, by transport.", "transport")
	descBytesOut    = desc("herald_sent_bytes_total", "Bytes written to clients (with WebSocket or HTTP framing), by transport.", "transport")
	descSlow        = desc("herald_slow_clients_closed_total", "Clients closed with 4100 because their outbound queue passed its bound.")
	descStalled     = desc("herald_stalled_clients_dropped_total", "Clients dropped because the socket took none of our data for server.write_timeout.")
	descPanics      = desc("herald_connection_panics_total", "Panics recovered on connection goroutines (each closed only its connection; anything but 0 is a bug).")
	descAPIBusy     = desc("herald_api_requests_refused_busy_total", "HTTP API requests refused with 503 at the in-flight cap.")
	descIPRefused   = desc("herald_connections_refused_per_ip_total", "Connections refused with 4100 by server.max_connections_per_ip or max_new_connections_per_ip.")
	descEvicted     = desc("herald_handshakes_evicted_total", "Connections closed unfinished at server.max_pending_handshakes (slowloris).")
	descReaders     = desc("herald_http_readers", "HTTP readers held now (long-polls waiting, SSE streams).")
	descReadersBusy = desc("herald_http_readers_refused_busy_total", "HTTP readers refused with 503 at history.max_readers.")
	descHistory     = desc("herald_history_bytes", "Memory held by channel history on this node.")
	descResumes     = desc("herald_resumes_total", "Subscribes with since: replayed (resumed without a gap) or failed (herald:resume_failed: another epoch, too old, no history).", "result")
	descReplayed    = desc("herald_resumed_events_total", "Events replayed to resuming subscribers.")
	descWHQueued    = desc("herald_webhook_events_queued_total", "Webhook events accepted into an endpoint queue.")
	descWHDelivered = desc("herald_webhook_events_delivered_total", "Webhook events in a POST answered 2xx.")
	descWHDropped   = desc("herald_webhook_events_dropped_total", "Webhook events given up: queue full, retries over, refused (4xx), shut down.")
	descWHPending   = desc("herald_webhook_events_pending", "Webhook events queued or in flight now.")
	descWHFailed    = desc("herald_webhook_posts_failed_total", "Webhook POSTs that failed (network error or non-2xx).")
	descWHRetried   = desc("herald_webhook_posts_retried_total", "Webhook POSTs that were retries.")
)

var allDescs = []*prometheus.Desc{
	descConns, descConnsTotal, descCloses, descChannels, descSubs,
	descMsgIn, descBytesIn, descMsgOut, descBytesOut,
	descSlow, descStalled, descPanics, descAPIBusy, descIPRefused, descEvicted, descReaders, descReadersBusy, descHistory,
	descResumes, descReplayed,
	descWHQueued, descWHDelivered, descWHDropped, descWHPending, descWHFailed, descWHRetried,
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.snap()
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	for _, a := range s.Apps {
		for i, t := range Transports {
			gauge(descConns, a.Open[i], a.ID, t)
			counter(descConnsTotal, a.Opened[i], a.ID, t)
		}
		for kind, n := range a.Channels {
			gauge(descChannels, n, a.ID, kind)
		}
		for kind, n := range a.Subscriptions {
			gauge(descSubs, n, a.ID, kind)
		}
	}
	codes := make([]int, 0, len(s.Closes))
	for code := range s.Closes {
		codes = append(codes, code)
	}
	slices.Sort(codes)
	for _, code := range codes {
		counter(descCloses, s.Closes[code], strconv.Itoa(code))
	}
	for i, t := range Transports {
		tr := s.Traffic[i]
		counter(descMsgIn, tr.MessagesIn, t)
		counter(descBytesIn, tr.BytesIn, t)
		counter(descMsgOut, tr.MessagesOut, t)
		counter(descBytesOut, tr.BytesOut, t)
	}
	counter(descSlow, s.SlowClosed)
	counter(descStalled, s.Stalled)
	counter(descPanics, s.Panics)
	counter(descAPIBusy, s.APIBusy)
	counter(descIPRefused, s.IPRefused)
	counter(descEvicted, s.HandshakesEvicted)
	gauge(descReaders, s.Readers)
	counter(descReadersBusy, s.ReadersBusy)
	gauge(descHistory, s.HistoryBytes)
	counter(descResumes, s.Resumed, "replayed")
	counter(descResumes, s.ResumeFailed, "failed")
	counter(descReplayed, s.ResumedEvents)
	if w := s.Webhooks; w != nil {
		counter(descWHQueued, w.Queued)
		counter(descWHDelivered, w.Delivered)
		counter(descWHDropped, w.Dropped)
		gauge(descWHPending, w.Pending)
		counter(descWHFailed, w.Failed)
		counter(descWHRetried, w.Retried)
	}
}
