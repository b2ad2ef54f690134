package metrics

import (
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestCounterSumsStripes(t *testing.T) {
	var c Counter
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for range 1000 {
				c.Add(uint32(g), 2)
			}
		})
	}
	wg.Wait()
	if got := c.Load(); got != 32000 {
		t.Fatalf("Load() = %d, want 32000", got)
	}
}

// The registry serves the snapshot's counters and the API observations,
// an unknown endpoint and an unlisted status falling into "other".
func TestHandlerServesSnapshotAndAPI(t *testing.T) {
	m := New(func() Snapshot {
		s := Snapshot{Closes: map[int]int64{4100: 3}, SlowClosed: 3}
		s.Apps = []AppSnapshot{{ID: "a1", Open: [2]int64{5, 1}, Opened: [2]int64{9, 2}, Channels: map[string]int64{"presence": 1}, Subscriptions: map[string]int64{"presence": 4}}}
		s.Traffic[0].MessagesOut = 7
		return s
	})
	m.API.Observe(EndpointEvents, 200, time.Millisecond)
	m.API.Observe(EndpointEvents, 200, time.Millisecond)
	m.API.Observe("nonsense", 299, time.Millisecond)
	m.FanOut.Observe(10)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`herald_connections{app="a1",transport="websocket"} 5`,
		`herald_connections{app="a1",transport="http"} 1`,
		`herald_connections_total{app="a1",transport="websocket"} 9`,
		`herald_connection_errors_total{code="4100"} 3`,
		`herald_subscriptions{app="a1",kind="presence"} 4`,
		`herald_messages_sent_total{transport="websocket"} 7`,
		`herald_slow_clients_closed_total 3`,
		`herald_api_requests_total{endpoint="events",status="200"} 2`,
		`herald_api_requests_total{endpoint="other",status="other"} 1`,
		`herald_api_request_duration_seconds_count{endpoint="events"} 2`,
		`herald_broadcast_fanout_recipients_bucket{le="10"} 1`,
		`go_goroutines `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("no %q in\n%s", want, body)
		}
	}
	if strings.Contains(body, "herald_webhook_") {
		t.Error("webhook metrics without webhooks")
	}
}
