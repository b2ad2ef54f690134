package redis_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-ws/herald/internal/broker"
	"github.com/herald-ws/herald/internal/broker/brokertest"
	"github.com/herald-ws/herald/internal/broker/memory"
	"github.com/herald-ws/herald/internal/history"
	"github.com/herald-ws/herald/internal/pusher"
)

// BenchmarkPublish is one publish (one engine message: a PUBLISH, or one
// script with history) from 16 concurrent publishers on 64 channels,
// until the node's handler has delivered it: the memory engine (single
// node) against Redis (one node of a cluster; every other node would get
// the same one message).
func BenchmarkPublish(b *testing.B) {
	lim := broker.HistoryLimits{MaxEvents: 100, TTL: 5 * time.Minute}
	engines := []struct {
		name  string
		start func(b *testing.B) brokertest.Node
	}{
		{"memory", func(*testing.B) brokertest.Node {
			return brokertest.Node{Broker: memory.New(), History: history.NewMemory(history.Options{})}
		}},
		{"redis", func(b *testing.B) brokertest.Node {
			e := startB(b)
			return brokertest.Node{Broker: e, History: e}
		}},
	}
	for _, eng := range engines {
		for _, hist := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/history=%v", eng.name, hist), func(b *testing.B) {
				nd := eng.start(b)
				var delivered atomic.Int64
				done := make(chan struct{}, 1)
				var want atomic.Int64
				want.Store(-1)
				nd.Broker.SetHandler(func(broker.Message) {
					if n := delivered.Add(1); n == want.Load() {
						done <- struct{}{}
					}
				})
				var seq atomic.Int64
				b.ReportAllocs()
				b.SetParallelism(16)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						ch := fmt.Sprintf("c%d", seq.Add(1)%64)
						m := broker.Message{App: "a", Channel: ch, Frame: pusher.Event(ch, "e", `{"n":1}`)}
						if _, _, err := brokertest.Publish(context.Background(), nd, m, hist, lim, ""); err != nil {
							b.Error(err)
							return
						}
					}
				})
				want.Store(seq.Load())
				if delivered.Load() < seq.Load() {
					select {
					case <-done:
					case <-time.After(30 * time.Second):
						b.Fatalf("%d of %d delivered", delivered.Load(), seq.Load())
					}
				}
				b.StopTimer()
			})
		}
	}
}
