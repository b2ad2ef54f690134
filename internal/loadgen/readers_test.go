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

func readersOptions(s *servertest.Server, kind string) loadgen.Options {
	return loadgen.Options{
		URL: "ws://" + s.Addr, AppID: config.DefaultAppID, Key: config.DefaultAppKey, Secret: config.DefaultAppSecret,
		Readers: kind, Conns: 30, Channels: 3, Rate: 60, Duration: 250 * time.Millisecond,
		Dialers: 30, ServerPID: -1, Drain: 5 * time.Second,
	}
}

// 30 readers of each kind on 3 channels get each of their channel's 5
// events exactly once, in order. Two runs against one server: the first
// reads channels without history yet, the second resumes past the first
// run's events.
func TestReadersGetEveryEventOnce(t *testing.T) {
	s := servertest.Start(t, config.Default())
	for _, kind := range []string{loadgen.ReadersLongPoll, loadgen.ReadersSSE} {
		for round := range 2 {
			rep, err := loadgen.Run(context.Background(), readersOptions(s, kind))
			if err != nil {
				t.Fatalf("%s round %d: %v", kind, round, err)
			}
			r := rep.Readers
			if r == nil || r.Failed() || r.Kind != kind || r.Readers != 30 || r.Complete != 30 {
				t.Fatalf("%s round %d: readers %+v (first error %q)", kind, round, r, rep.FirstError)
			}
			if rep.ConnectFailures != 0 || rep.PublishErrors != 0 || rep.Published != 15 ||
				rep.Expected != 150 || rep.Delivered != 150 || rep.Lost != 0 {
				t.Fatalf("%s round %d: report %+v", kind, round, rep)
			}
			if rep.P50 <= 0 || rep.Max < rep.P99 || rep.P99 < rep.P50 {
				t.Fatalf("%s round %d: implausible latencies %+v", kind, round, rep)
			}
		}
	}
}

// Past the server's max_readers, readers are refused with 503: the run
// counts them (refused while being held, or ended while publishing) and
// fails, and the readers held still get everything.
func TestReadersPastMaxReaders(t *testing.T) {
	for _, kind := range []string{loadgen.ReadersLongPoll, loadgen.ReadersSSE} {
		// A server each: the first run's readers free their places only
		// once the server noticed their connections closed.
		cfg := config.Default()
		cfg.History.MaxReaders = 10
		o := readersOptions(servertest.Start(t, cfg), kind)
		o.Drain = time.Second
		rep, err := loadgen.Run(context.Background(), o)
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		r := rep.Readers
		if rep.ConnectFailures+r.Ended != 20 || !strings.Contains(rep.FirstError, "503") {
			t.Fatalf("%s: %d refused, %d ended, first error %q", kind, rep.ConnectFailures, r.Ended, rep.FirstError)
		}
		if r.Ended == 0 && (r.Failed() || r.Complete != 10 || rep.Lost != 0) {
			t.Fatalf("%s: readers %+v, report %+v", kind, r, rep)
		}
		if r.Ended > 0 && !r.Failed() {
			t.Fatalf("%s: %d readers ended and the run is clean", kind, r.Ended)
		}
	}
}
