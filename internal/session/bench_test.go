package session

import (
	"fmt"
	"strings"
	"testing"

	"github.com/herald-ws/herald/internal/pusher"
)

type nopTransport struct{}

func (nopTransport) Wake() {}

// BenchmarkBroadcast fans one serialized event out to N real sessions and
// drains their queues as a transport would: allocations stay at zero per
// recipient (and per broadcast) once queues have grown.
func BenchmarkBroadcast(b *testing.B) {
	for _, n := range []int{1, 100, 1000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			h := newHarness(&testing.T{}, nil)
			sessions := make([]*Session, n)
			info := pusher.ParseChannel("orders")
			for i := range sessions {
				s, err := h.mgr.Open(h.app, nopTransport{})
				if err != nil {
					b.Fatal(err)
				}
				sessions[i] = s
				if _, err := h.app.Hub.Subscribe("orders", info, s, nil, 0); err != nil {
					b.Fatal(err)
				}
			}
			frame := pusher.Event("orders", "orders.updated", strings.Repeat("x", 100))
			scratch := make([][]byte, 0, 64)
			// One warm-up round grows every queue once, as the first
			// events on a live server do; b.Loop counts from its first
			// call, so the figure is the steady state.
			h.app.Hub.Broadcast("orders", frame, "")
			for _, s := range sessions {
				scratch, _, _, _ = s.Drain(scratch)
			}
			b.ReportAllocs()
			for b.Loop() {
				h.app.Hub.Broadcast("orders", frame, "")
				for _, s := range sessions {
					scratch, _, _, _ = s.Drain(scratch)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/recipient")
		})
	}
}
