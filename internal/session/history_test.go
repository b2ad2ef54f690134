package session

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/herald-ws/herald/internal/apps"
	"github.com/herald-ws/herald/internal/pusher"
	"github.com/herald-ws/herald/internal/signature"
)

func withHistory(a *apps.App) {
	a.History = apps.History{Enabled: true, Channels: []string{"*"}, MaxEvents: 3, TTL: time.Minute}
}

func (c *client) subscribeSince(channel, auth, since string) {
	c.send(fmt.Sprintf(`{"event":"pusher:subscribe","data":{"channel":%q,"auth":%q,"since":%s}}`, channel, auth, since))
}

func TestResumeOverTheProtocol(t *testing.T) {
	h := newHarness(t, withHistory)
	ctx := context.Background()
	pos, err := h.mgr.node.PublishOnce(ctx, h.app, []string{"private-orders"}, "created", `{"id":1}`, "", "")
	if err != nil {
		t.Fatal(err)
	}
	ep := pos[0].Epoch
	for i := 2; i <= 4; i++ {
		_ = h.mgr.node.Publish(ctx, h.app, []string{"private-orders"}, "created", fmt.Sprintf(`{"id":%d}`, i), "")
	}
	c := h.open()
	auth := signature.ChannelAuth("key", "secret", c.SocketID(), "private-orders", "")

	// Unauthorized: no replay, no resume_failed, only the refusal.
	c.subscribeSince("private-orders", h.app.Key+":00", fmt.Sprintf(`{"epoch":%q,"offset":2}`, ep))
	c.errorCode(4009)

	c.subscribeSince("private-orders", auth, fmt.Sprintf(`{"epoch":%q,"offset":2}`, ep))
	got := c.events()
	want := []string{
		`{"event":"pusher_internal:subscription_succeeded","channel":"private-orders","data":"{}"}`,
		fmt.Sprintf(`{"event":"created","channel":"private-orders","data":"{\"id\":3}","epoch":%q,"offset":3}`, ep),
		fmt.Sprintf(`{"event":"created","channel":"private-orders","data":"{\"id\":4}","epoch":%q,"offset":4}`, ep),
	}
	if len(got) != len(want) {
		t.Fatalf("got %d frames %+v, want %q", len(got), got, want)
	}
	for i := range want {
		if got[i].raw != want[i] {
			t.Errorf("frame %d\n got %s\nwant %s", i, got[i].raw, want[i])
		}
	}

	// Too old (max 3 events: 2..4 held), on a fresh socket.
	d := h.open()
	dauth := signature.ChannelAuth("key", "secret", d.SocketID(), "private-orders", "")
	d.subscribeSince("private-orders", dauth, fmt.Sprintf(`{"epoch":%q,"offset":0}`, ep))
	got = d.events()
	if len(got) != 2 || got[1].raw != fmt.Sprintf(`{"event":"herald:resume_failed","channel":"private-orders","data":"{\"epoch\":\"%s\",\"offset\":4}"}`, ep) {
		t.Fatalf("too old: %+v", got)
	}
}

func TestSubscribeWithoutSinceIsUnchanged(t *testing.T) {
	h := newHarness(t, withHistory)
	c := h.open()
	c.subscribe("news", "", "")
	if f := c.one("pusher_internal:subscription_succeeded"); f.raw != `{"event":"pusher_internal:subscription_succeeded","channel":"news","data":"{}"}` {
		t.Fatalf("got %s", f.raw)
	}
	_ = h.mgr.node.Publish(context.Background(), h.app, []string{"news"}, "e", "hi", "")
	var f struct {
		Event, Channel, Data, Epoch string
		Offset                      int
	}
	raw := c.one("e").raw
	if err := json.Unmarshal([]byte(raw), &f); err != nil || f.Event != "e" || f.Channel != "news" || f.Data != "hi" || f.Epoch == "" || f.Offset != 1 {
		t.Errorf("event frame %s", raw)
	}
}

func TestBadSince(t *testing.T) {
	h := newHarness(t, withHistory)
	c := h.open()
	for _, since := range []string{`"x"`, `{"epoch":"","offset":1}`, `{"epoch":"e","offset":-1}`, `{"epoch":"e"}`, `{"epoch":"e","offset":1.5}`} {
		c.subscribeSince("news", "", since)
		c.errorCode(pusher.CodeGeneric)
	}
}

// BenchmarkPublishHistory publishes through the node (encode, history,
// broker, hub) to 1,000 real sessions and drains them, with history off
// and on: the difference is the per-publish cost of offsets and storage.
func BenchmarkPublishHistory(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(map[bool]string{false: "off", true: "on"}[on], func(b *testing.B) {
			h := newHarness(&testing.T{}, func(a *apps.App) {
				if on {
					a.History = apps.History{Enabled: true, Channels: []string{"*"}, MaxEvents: 100, TTL: time.Minute}
				}
			})
			const n = 1000
			sessions := make([]*Session, n)
			for i := range sessions {
				s, err := h.mgr.Open(h.app, nopTransport{})
				if err != nil {
					b.Fatal(err)
				}
				sessions[i] = s
				if _, err := h.app.Hub.Subscribe("orders", pusher.ParseChannel("orders"), s, nil, 0); err != nil {
					b.Fatal(err)
				}
			}
			data := strings.Repeat("x", 100)
			channels := []string{"orders"}
			scratch := make([][]byte, 0, 64)
			publish := func() {
				_ = h.mgr.node.Publish(context.Background(), h.app, channels, "orders.updated", data, "")
				for _, s := range sessions {
					scratch, _, _, _ = s.Drain(scratch)
				}
			}
			publish()
			b.ReportAllocs()
			for b.Loop() {
				publish()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/recipient")
		})
	}
}

// A client tracking positions is told of the event it was excluded from
// (toOthers, its own client event), so the next offset is no gap to it; a
// stock client excluded gets nothing, as from Pusher.
func TestExcludedClientLearnsThePosition(t *testing.T) {
	h := newHarness(t, withHistory)
	ctx := context.Background()
	tracker, stock := h.open(), h.open()
	tracker.send(`{"event":"pusher:subscribe","data":{"channel":"news","position":true}}`)
	tracker.events() // subscription_succeeded, herald:position
	stock.subscribe("news", "", "")
	stock.events()
	pos, err := h.mgr.node.PublishOnce(ctx, h.app, []string{"news"}, "e", "x", tracker.SocketID(), "")
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`{"event":"herald:position","channel":"news","data":"{\"epoch\":\"%s\",\"offset\":1}"}`, pos[0].Epoch)
	if got := tracker.events(); len(got) != 1 || got[0].raw != want {
		t.Fatalf("excluded tracker got %+v, want %s", got, want)
	}
	if got := stock.events(); len(got) != 1 || got[0].Event != "e" {
		t.Fatalf("stock client got %+v", got)
	}
	_ = h.mgr.node.Publish(ctx, h.app, []string{"news"}, "e", "y", stock.SocketID())
	if got := stock.events(); len(got) != 0 {
		t.Errorf("excluded stock client got %+v", got)
	}
}
