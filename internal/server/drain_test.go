package server_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/herald-ws/herald/internal/config"
	"github.com/herald-ws/herald/internal/pusher"
	"github.com/herald-ws/herald/internal/server/servertest"
)

// A graceful stop spreads its 4200 closes over the drain window, and what
// was published just before reaches every client before its close.
//
// The spread is asserted without trusting the machine's speed: the i-th
// close is scheduled i*window/n after the stop begins, and load can only
// delay a close, never bring it forward, so the i-th earliest close
// observed is at least i*window/n after the stop was asked for. All at
// once would fail that; a slow machine cannot. Only the upper bound
// (everything closed by window + slack) depends on speed, with a wide
// slack.
func TestDrainSpreadsClosesOverTheWindow(t *testing.T) {
	const n, window, slack = 200, time.Second, 3 * time.Second
	s, stop := serving(t, func(c *config.Config) {
		c.Server.DrainWindow, c.Server.ShutdownTimeout = window, 10*time.Second
	})
	ts := &servertest.Server{Server: s, Addr: s.Addr().String()}
	clients := make([]*servertest.Client, n)
	for i := range clients {
		clients[i] = subscribed(t, ts, "orders")
	}
	type result struct {
		closedAt  time.Time
		code      int
		sawLast   bool
		afterLast int // frames after "last", before the close
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() {
			r := &results[i]
			for {
				m, err := c.Next(window + slack + 5*time.Second)
				if err != nil {
					r.closedAt, r.code = time.Now(), c.CloseCode
					c.Close() // as a client does on a close frame
					return
				}
				switch {
				case m.Event == "last":
					r.sawLast = true
				case r.sawLast:
					r.afterLast++
				}
			}
		})
	}
	app := s.Node().AppByKey(config.DefaultAppKey)
	if err := s.Node().Publish(t.Context(), app, []string{"orders"}, "last", `{}`, ""); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	if err := stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	stopped := time.Since(begin)
	wg.Wait()

	var after []time.Duration
	for i, r := range results {
		if r.code != pusher.CodeGeneric || !r.sawLast {
			t.Fatalf("client %d: close code %d, saw the last event: %v", i, r.code, r.sawLast)
		}
		after = append(after, r.closedAt.Sub(begin))
	}
	slices.Sort(after)
	const early = 5 * time.Millisecond // closes due within a millisecond go together
	for i, d := range after {
		if min := window * time.Duration(i) / n; d < min-early {
			t.Fatalf("close %d of %d came %v after the stop, before its earliest turn %v: not spread (first %v, median %v, last %v)",
				i, n, d, min, after[0], after[n/2], after[n-1])
		}
	}
	if last := after[n-1]; last > window+slack {
		t.Errorf("last close %v after the stop, want within %v", last, window+slack)
	}
	if stopped > window+slack {
		t.Errorf("Serve returned %v after the stop, want within %v", stopped, window+slack)
	}
	t.Logf("closes after the stop: first %v, 10%% %v, median %v, 90%% %v, last %v; Serve returned after %v",
		after[0], after[n/10], after[n/2], after[n*9/10], after[n-1], stopped)
}
