//go:build linux

package ws

import (
	"bufio"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-ws/herald/internal/pusher"
	"github.com/herald-ws/herald/internal/session"
)

// countingReader drains a client socket and counts the bytes it got.
func countingReader(nc net.Conn, got *atomic.Int64) {
	buf := make([]byte, 64<<10)
	for {
		n, err := nc.Read(buf)
		got.Add(int64(n))
		if err != nil {
			return
		}
	}
}

// BenchmarkEpollBroadcast sends one serialized event to N sessions on the
// epoll transport over real loopback sockets, through the pool's flushes
// and write(2), and waits until every client has read it: the whole
// server-side delivery path, allocations included (the client readers
// reuse one buffer each).
func BenchmarkEpollBroadcast(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			srv, a := newCoalescingServer(b, time.Second, 0, nil)
			var got atomic.Int64
			sessions := make([]*session.Session, n)
			for i := range sessions {
				server, client := tcpPair(b)
				_ = client.SetReadBuffer(256 << 10)
				sessions[i] = attach(b, srv, a, server)
				readEvent(b, bufio.NewReader(client), client) // connection_established
				_ = client.SetReadDeadline(time.Time{})
				go countingReader(client, &got)
			}
			frame := pusher.Event("orders", "orders.updated", strings.Repeat("x", 100))
			per := int64(n) * int64(len(appendHeader(nil, len(frame)))+len(frame))
			want := int64(0)
			round := func() {
				for _, s := range sessions {
					s.Send(frame)
				}
				want += per
				for got.Load() < want {
					runtime.Gosched() // a benchmark's wait: every client has the event
				}
			}
			round() // warm-up: queues and pooled buffers grow once
			b.ReportAllocs()
			for b.Loop() {
				round()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/recipient")
		})
	}
}
