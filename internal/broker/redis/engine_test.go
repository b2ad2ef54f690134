package redis_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/herald-ws/herald/internal/broker"
	"github.com/herald-ws/herald/internal/broker/brokertest"
	"github.com/herald-ws/herald/internal/broker/redis"
	"github.com/herald-ws/herald/internal/broker/redis/redistest"
	"github.com/herald-ws/herald/internal/pusher"
)

// The script appends the position exactly as the memory store does
// (pusher.AppendPosition): the same bytes whichever engine numbered it.
func TestFrameMatchesAppendPosition(t *testing.T) {
	e := start(t, 1, nil)[0]
	rec := brokertest.NewRecorder()
	e.SetHandler(rec.Handle)
	lim := broker.HistoryLimits{MaxEvents: 10, TTL: time.Minute}
	var want []string
	for _, data := range []string{`{"a":"\u00e9 \"q\" \\ </script>"}`, "", strings.Repeat("x", 70000)} {
		f := pusher.Event("private-c", "App\\Events\\E", data)
		orig := string(f)
		pos, _, err := e.AppendPublish(context.Background(), broker.Message{App: "a", Channel: "private-c", Frame: f}, lim, "")
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, string(pusher.AppendPosition([]byte(orig), pos.Epoch, pos.Offset)))
	}
	for i, m := range rec.Await(t, len(want)) {
		if string(m.Frame) != want[i] {
			t.Errorf("frame %d:\n got %.200s\nwant %.200s", i, m.Frame, want[i])
		}
	}
}

// Redis going away and coming back: /ready's check reports it, a publish
// fails meanwhile (the HTTP API answers 500), and afterwards the node is
// subscribed again and history works (the scripts are reloaded).
func TestRedisRestart(t *testing.T) {
	srv := redistest.Start(t)
	e, err := redis.New(redis.Options{URL: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	rec := brokertest.NewRecorder()
	e.SetHandler(rec.Handle)
	if err := e.Ready(); err != nil {
		t.Fatalf("ready: %v", err)
	}
	srv.Stop()
	for guard := time.Now().Add(5 * time.Second); e.Ready() == nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(guard) {
			t.Fatal("Ready still nil 5 s after Redis stopped")
		}
	}
	if err := e.Publish(context.Background(), broker.Message{App: "a", Channel: "c", Frame: []byte(`{}`)}); err == nil {
		t.Fatal("publish with Redis down: no error")
	}
	srv.Restart(t)
	lim := broker.HistoryLimits{MaxEvents: 10, TTL: time.Minute}
	// Publish until the node receives its own publish: then it is
	// subscribed again. Each attempt waits for the delivery briefly.
	for guard := time.Now().Add(10 * time.Second); len(rec.Messages()) == 0; {
		if time.Now().After(guard) {
			t.Fatalf("nothing delivered 10 s after Redis restarted (ready: %v)", e.Ready())
		}
		_, _, err := e.AppendPublish(context.Background(), broker.Message{App: "a", Channel: "c", Frame: pusher.Event("c", "e", "x")}, lim, "")
		if err == nil {
			rec.AwaitFor(t, 1, time.Second)
		}
	}
	if err := e.Ready(); err != nil {
		t.Fatalf("ready after the restart: %v", err)
	}
}
