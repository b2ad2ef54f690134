package redis_test

import (
	"testing"
	"time"

	"github.com/herald-ws/herald/internal/broker/brokertest"
	"github.com/herald-ws/herald/internal/broker/redis"
	"github.com/herald-ws/herald/internal/broker/redis/redistest"
)

// start starts n engines on one fresh redis-server.
func start(t *testing.T, n int, now func() time.Time) []*redis.Engine {
	t.Helper()
	srv := redistest.Start(t)
	out := make([]*redis.Engine, n)
	for i := range out {
		e, err := redis.New(redis.Options{URL: srv.URL(), Now: now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = e.Close() })
		out[i] = e
	}
	return out
}

// The Redis engine passes the conformance suite on one node and on three
// sharing one redis-server.
func TestConformance(t *testing.T) {
	brokertest.Run(t, func(t *testing.T, n int, now func() time.Time) []brokertest.Node {
		var nodes []brokertest.Node
		for _, e := range start(t, n, now) {
			nodes = append(nodes, brokertest.Node{Broker: e, History: e})
		}
		return nodes
	})
}

// startB starts one engine on a fresh redis-server for a benchmark.
func startB(b *testing.B) *redis.Engine {
	b.Helper()
	srv := redistest.Start(b)
	e, err := redis.New(redis.Options{URL: srv.URL()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = e.Close() })
	return e
}
