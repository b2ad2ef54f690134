package node

import (
	"encoding/json"
	"io"
	"log/slog"
	"reflect"
	"sync"
	"testing"

	"github.com/herald-ws/herald/internal/apps"
	"github.com/herald-ws/herald/internal/broker"
	"github.com/herald-ws/herald/internal/broker/memory"
	"github.com/herald-ws/herald/internal/pusher"
)

type observed struct {
	mu     sync.Mutex
	events []broker.Lifecycle
}

func (o *observed) Observe(appID string, e broker.Lifecycle) {
	if appID != "1" {
		panic("app " + appID)
	}
	o.mu.Lock()
	o.events = append(o.events, e)
	o.mu.Unlock()
}

func (o *observed) take() []broker.Lifecycle {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := o.events
	o.events = nil
	return out
}

func TestLifecycleEvents(t *testing.T) {
	a := &apps.App{ID: "1", Key: "key", Secret: "secret", Enabled: true, Limits: apps.DefaultLimits, SubscriptionCount: true}
	reg, err := apps.NewRegistry([]*apps.App{a})
	if err != nil {
		t.Fatal(err)
	}
	obs := &observed{}
	n := NewWithOptions(reg, memory.New(), slog.New(slog.NewTextHandler(io.Discard, nil)), Options{Observer: obs})
	app := n.AppByID("1")
	r1, r2 := &recorder{id: "1.1"}, &recorder{id: "1.2"}
	sub := func(ch string, r *recorder, m *pusher.Member) {
		t.Helper()
		if _, err := app.Subscribe(ch, pusher.ParseChannel(ch), r, m, 10, nil, false); err != nil {
			t.Fatal(err)
		}
	}
	check := func(what string, want ...broker.Lifecycle) {
		t.Helper()
		if got := obs.take(); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %+v, want %+v", what, got, want)
		}
	}
	sub("news", r1, nil)
	check("first subscriber", broker.Lifecycle{Name: broker.ChannelOccupied, Channel: "news"})
	sub("news", r2, nil)
	sub("news", r2, nil) // already subscribed
	check("second subscriber")
	app.Unsubscribe("news", r1, "")
	check("one left")
	app.Unsubscribe("news", r2, "")
	check("last left", broker.Lifecycle{Name: broker.ChannelVacated, Channel: "news"})

	u7 := &pusher.Member{UserID: "7", Info: json.RawMessage(`{}`)}
	sub("presence-room", r1, u7)
	check("first member", broker.Lifecycle{Name: broker.ChannelOccupied, Channel: "presence-room"}, broker.Lifecycle{Name: broker.MemberAdded, Channel: "presence-room", UserID: "7"})
	sub("presence-room", r2, u7)
	check("the same user's second socket")
	app.Unsubscribe("presence-room", r1, "7")
	check("one of the user's sockets left")
	app.Unsubscribe("presence-room", r2, "7")
	check("the user's last socket left", broker.Lifecycle{Name: broker.MemberRemoved, Channel: "presence-room", UserID: "7"}, broker.Lifecycle{Name: broker.ChannelVacated, Channel: "presence-room"})

	sub("cache-price", r1, nil)
	check("empty cache channel", broker.Lifecycle{Name: broker.ChannelOccupied, Channel: "cache-price"}, broker.Lifecycle{Name: broker.CacheMiss, Channel: "cache-price"})

	app.ClientEventSent("private-x", "client-typing", json.RawMessage(`{"a":1}`), "1.1", "")
	app.ClientEventSent("presence-x", "client-hi", json.RawMessage(`"text"`), "1.2", "7")
	check("client events",
		broker.Lifecycle{Name: broker.ClientEvent, Channel: "private-x", Event: "client-typing", Data: `{"a":1}`, SocketID: "1.1"},
		broker.Lifecycle{Name: broker.ClientEvent, Channel: "presence-x", Event: "client-hi", Data: "text", SocketID: "1.2", UserID: "7"})

	sub("counted", r1, nil)
	sub("counted", r2, nil)
	obs.take()
	app.FlushSubscriptionCounts()
	got := obs.take()
	found := false
	for _, e := range got {
		if e == (broker.Lifecycle{Name: broker.SubscriptionCount, Channel: "counted", SubscriptionCount: 2}) {
			found = true
		}
	}
	if !found {
		t.Errorf("subscription counts: %+v", got)
	}
}
