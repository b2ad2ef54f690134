package loadgen_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/herald-ws/herald/internal/config"
	"github.com/herald-ws/herald/internal/loadgen"
	"github.com/herald-ws/herald/internal/server/servertest"
)

// 30 subscribers over each of pusher-js's HTTP transports, on 3
// channels, get each of their channel's 5 events exactly once. Two runs
// against one server: the first run's sessions, lingering on the server
// after their clients went, are not taken for the second run's.
func TestXHRSubscribersGetEveryEventOnce(t *testing.T) {
	s := servertest.Start(t, config.Default())
	for _, transport := range []string{loadgen.TransportXHRStreaming, loadgen.TransportXHRPolling} {
		for round := range 2 {
			rep, err := loadgen.Run(context.Background(), loadgen.Options{
				URL: "ws://" + s.Addr, AppID: config.DefaultAppID, Key: config.DefaultAppKey, Secret: config.DefaultAppSecret,
				Transport: transport, Conns: 30, Channels: 3, Rate: 60, Duration: 250 * time.Millisecond,
				Dialers: 30, ServerPID: -1, Drain: 5 * time.Second,
			})
			if err != nil {
				t.Fatalf("%s round %d: %v", transport, round, err)
			}
			if rep.Transport != transport || rep.Conns != 30 || rep.ConnectFailures != 0 || rep.PublishErrors != 0 || rep.Published != 15 ||
				rep.Expected != 150 || rep.Delivered != 150 || rep.Duplicates != 0 || rep.Lost != 0 || rep.Batches == 0 || len(rep.Closed) != 0 {
				t.Fatalf("%s round %d: report %+v", transport, round, rep)
			}
			if rep.P50 <= 0 || rep.Max < rep.P99 || rep.P99 < rep.P50 {
				t.Fatalf("%s round %d: implausible latencies %+v", transport, round, rep)
			}
		}
	}
}

// A refused session is a failed connection with the server's reason.
func TestXHRRefused(t *testing.T) {
	s := servertest.Start(t, config.Default())
	rep, err := loadgen.Run(context.Background(), loadgen.Options{
		URL: "ws://" + s.Addr, AppID: config.DefaultAppID, Key: "no-such-key", Secret: config.DefaultAppSecret,
		Transport: loadgen.TransportXHRPolling, Conns: 2, ServerPID: -1,
	})
	if err == nil || rep.ConnectFailures != 2 || len(rep.Refused) != 1 {
		t.Fatalf("err %v, report %+v", err, rep)
	}
	for reason := range rep.Refused {
		if !strings.Contains(reason, "4001") {
			t.Errorf("refused: %q", reason)
		}
	}
}

func TestXHRTransportChecked(t *testing.T) {
	for _, o := range []loadgen.Options{
		{Transport: "sockjs"},
		{Transport: loadgen.TransportXHRStreaming, Presence: true},
		{Transport: loadgen.TransportXHRPolling, Readers: loadgen.ReadersSSE},
		{Transport: loadgen.TransportXHRPolling, Resume: 5},
	} {
		o.URL = "ws://127.0.0.1:1"
		if _, err := loadgen.Run(context.Background(), o); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}
