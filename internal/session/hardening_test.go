package session

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-ws/herald/internal/apps"
	"github.com/herald-ws/herald/internal/pusher"
	"github.com/herald-ws/herald/internal/signature"
)

func (c *client) signin(userData string) {
	b, _ := json.Marshal(map[string]any{"event": "pusher:signin", "data": map[string]string{
		"user_data": userData, "auth": signature.UserAuth("key", "secret", c.SocketID(), userData)}})
	c.Handle(b)
}

func (c *client) unsubscribe(channel string) {
	c.send(`{"event":"pusher:unsubscribe","data":{"channel":"` + channel + `"}}`)
}

// refusedSub asserts one pusher:error code, the connection still open and
// not subscribed to channel.
func (c *client) refusedSub(channel string, code int) {
	c.t.Helper()
	c.errorCode(code)
	if closing, _ := c.closing(); closing {
		c.t.Fatalf("refusing %s closed the connection", channel)
	}
	if c.app.Hub.IsSubscribed(channel, c.Session) {
		c.t.Fatalf("refused subscription to %s was made", channel)
	}
}

func TestChannelLimitPerConnection(t *testing.T) {
	h := newHarness(t, func(a *apps.App) { a.Limits.MaxChannelsPerConnection = 3 })
	c := h.open()
	c.signin(`{"id":"u1"}`) // the user's channel does not count
	c.one("pusher:signin_success")
	for _, ch := range []string{"a", "b", "c"} {
		c.subscribe(ch, "", "")
		c.one("pusher_internal:subscription_succeeded")
	}
	c.subscribe("#server-to-user-u1", "", "") // as pusher-js does after signing in
	c.one("pusher_internal:subscription_succeeded")
	c.subscribe("d", "", "")
	c.refusedSub("d", pusher.CodeOverChannelLimit)

	c.subscribe("a", "", "") // already subscribed: answered, not counted twice
	c.one("pusher_internal:subscription_succeeded")
	c.subscribe("d", "", "")
	c.refusedSub("d", pusher.CodeOverChannelLimit)

	c.unsubscribe("a") // frees the slot
	c.subscribe("d", "", "")
	c.one("pusher_internal:subscription_succeeded")
	if !h.app.Hub.IsSubscribed("d", c.Session) {
		t.Fatal("not subscribed to d after a slot was freed")
	}
}

func TestChannelLimitPerApp(t *testing.T) {
	h := newHarness(t, func(a *apps.App) { a.Limits.MaxChannels = 2 })
	c1, c2 := h.open(), h.open()
	c1.subscribe("x", "", "")
	c1.one("pusher_internal:subscription_succeeded")
	c1.subscribe("y", "", "")
	c1.one("pusher_internal:subscription_succeeded")
	c2.subscribe("z", "", "")
	c2.refusedSub("z", pusher.CodeOverChannelLimit)
	c2.subscribe("x", "", "") // an existing channel is no new channel
	c2.one("pusher_internal:subscription_succeeded")

	c1.unsubscribe("y")
	c2.subscribe("z", "", "")
	c2.one("pusher_internal:subscription_succeeded")

	c1.Closed() // x keeps c2; the app has x and z
	c2.Closed() // vacates x and z: both slots free
	c3 := h.open()
	for _, ch := range []string{"p", "q"} {
		c3.subscribe(ch, "", "")
		c3.one("pusher_internal:subscription_succeeded")
	}
}

func TestInboundRateLimit(t *testing.T) {
	h := newHarness(t, func(a *apps.App) { a.Limits.MaxMessagesPerSecond = 10; a.Limits.MaxMessagesBurst = 20 })
	ping := `{"event":"pusher:ping","data":{}}`

	// A client at the sustained rate is never refused, whatever the burst.
	steady := h.open()
	for range 100 {
		steady.send(ping)
		steady.one("pusher:pong")
		h.now = h.now.Add(100 * time.Millisecond)
	}

	c := h.open()
	for range 20 { // the burst, all at once
		c.send(ping)
	}
	if n := len(c.events()); n != 20 {
		t.Fatalf("%d answers to a burst of 20", n)
	}
	h.now = h.now.Add(100 * time.Millisecond) // one message's worth
	c.send(ping)
	c.one("pusher:pong")
	c.send(ping)
	frames, closing, code, _ := c.Drain(nil)
	if len(frames) != 1 || !strings.Contains(string(frames[0]), `\"code\":4301`) || !closing || code != pusher.CodeOverCapacity {
		t.Fatalf("over budget: frames %q closing=%v code=%d; want one 4301 error and a 4100 close", frames, closing, code)
	}

	// Once closing, messages are dropped unread: not even the clock is read.
	seen := c.lastSeen.Load()
	h.now = h.now.Add(time.Hour)
	c.subscribe("after", "", "")
	if c.lastSeen.Load() != seen || c.app.Hub.IsSubscribed("after", c.Session) {
		t.Fatal("a message after the close was handled")
	}
}

// capture is a slog.Handler keeping every record with its attributes.
type capture struct {
	mu    *sync.Mutex
	recs  *[]map[string]any
	attrs []slog.Attr
}

func newCapture() capture { return capture{mu: &sync.Mutex{}, recs: &[]map[string]any{}} }

func (c capture) Enabled(context.Context, slog.Level) bool { return true }
func (c capture) WithGroup(string) slog.Handler            { return c }
func (c capture) WithAttrs(as []slog.Attr) slog.Handler {
	c.attrs = append(slices.Clip(c.attrs), as...)
	return c
}
func (c capture) Handle(_ context.Context, r slog.Record) error {
	m := map[string]any{"level": r.Level.String(), "msg": r.Message}
	for _, a := range c.attrs {
		m[a.Key] = a.Value.Any()
	}
	r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.Any(); return true })
	c.mu.Lock()
	*c.recs = append(*c.recs, m)
	c.mu.Unlock()
	return nil
}

// warns returns the warn records.
func (c capture) warns() []map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []map[string]any
	for _, r := range *c.recs {
		if r["level"] == "WARN" {
			out = append(out, r)
		}
	}
	return out
}

type addrTransport struct{ fakeTransport }

func (*addrTransport) RemoteAddr() string { return "203.0.113.7:51234" }

func TestRefusalsLoggedAtWarn(t *testing.T) {
	h := newHarness(t, nil)
	logs := newCapture()
	h.mgr.log = slog.New(logs)
	s, err := h.mgr.Open(h.app, &addrTransport{})
	if err != nil {
		t.Fatal(err)
	}
	c := &client{s, t}
	c.events()
	badSig := "key:" + strings.Repeat("ab", 32)
	cd := `{"user_id":"u1"}`
	goodPresence := signature.ChannelAuth("key", "secret", c.SocketID(), "presence-p", `{"user_id":""}`)

	c.subscribe("private-a", "", "")
	c.subscribe("private-a", badSig, "")
	c.subscribe("private-encrypted-e", "nokey", "")
	c.subscribe("presence-p", signature.ChannelAuth("key", "secret", c.SocketID(), "presence-p", cd), "")
	c.subscribe("presence-p", goodPresence, `{"user_id":""}`)
	c.subscribe("#server-to-user-x", "", "")
	c.send(`{"event":"pusher:signin","data":{"user_data":"{\"id\":\"x\"}","auth":"` + badSig + `"}}`)

	want := []struct{ msg, reason, channel string }{
		{"subscription refused", "missing auth", "private-a"},
		{"subscription refused", "bad signature", "private-a"},
		{"subscription refused", "malformed auth", "private-encrypted-e"},
		{"subscription refused", "missing channel_data", "presence-p"},
		{"subscription refused", "bad channel_data", "presence-p"},
		{"subscription refused", "not signed in as that user", "#server-to-user-x"},
		{"sign-in refused", "bad signature", ""},
	}
	got := logs.warns()
	if len(got) != len(want) {
		t.Fatalf("%d warn lines, want %d: %v", len(got), len(want), got)
	}
	expected := signature.ChannelAuth("key", "secret", c.SocketID(), "private-a", "")
	for i, w := range want {
		r := got[i]
		if r["msg"] != w.msg || r["reason"] != w.reason || r["app"] != "1" || r["socket_id"] != c.SocketID() || r["remote"] != "203.0.113.7:51234" {
			t.Errorf("line %d: %v, want %+v with app, socket_id and remote", i, r, w)
		}
		if ch, _ := r["channel"].(string); ch != w.channel {
			t.Errorf("line %d: channel %q, want %q", i, ch, w.channel)
		}
		line := fmt.Sprint(r)
		for _, secret := range []string{"secret", badSig[4:], expected[4:]} {
			if strings.Contains(line, secret) {
				t.Errorf("line %d logs %q: %s", i, secret, line)
			}
		}
	}
}

func TestRefusalWarningsRateLimited(t *testing.T) {
	h := newHarness(t, nil)
	logs := newCapture()
	h.mgr.log = slog.New(logs)
	c := h.open()
	for range 8 {
		c.subscribe("private-a", "", "")
	}
	c.subscribe("private-a", "key:"+strings.Repeat("ab", 32), "") // another reason has its own budget
	if n := len(logs.warns()); n != 6 {
		t.Fatalf("%d warn lines for 8 refusals of one reason and 1 of another; want 5 + 1", n)
	}
	h.mgr.warns.Window = 0 // the next refusal starts a new window
	c.subscribe("private-a", "", "")
	got := logs.warns()
	if last := got[len(got)-1]; last["reason"] != "missing auth" || last["suppressed"] != int64(3) {
		t.Fatalf("first line of a new window %v; want suppressed=3", last)
	}
}

func TestSubscriptionCount(t *testing.T) {
	h := newHarness(t, func(a *apps.App) { a.SubscriptionCount = true })
	c1 := h.open()
	c1.subscribe("room", "", "")
	c1.one("pusher_internal:subscription_succeeded")
	h.mgr.flushCounts()
	if f := c1.one("pusher_internal:subscription_count"); f.raw != `{"event":"pusher_internal:subscription_count","channel":"room","data":"{\"subscription_count\":1}"}` {
		t.Fatalf("wire frame %s", f.raw)
	}

	// A burst of changes is sent once, with the final count, at the next flush.
	c2, c3 := h.open(), h.open()
	c2.subscribe("room", "", "")
	c3.subscribe("room", "", "")
	c3.unsubscribe("room")
	c2.events()
	c3.events()
	if ev := c1.events(); len(ev) != 0 {
		t.Fatalf("counts sent before the flush: %+v", ev)
	}
	h.mgr.flushCounts()
	for _, c := range []*client{c1, c2} {
		if f := c.one("pusher_internal:subscription_count"); f.data() != `{"subscription_count":2}` {
			t.Fatalf("count %s", f.data())
		}
	}
	if ev := c3.events(); len(ev) != 0 {
		t.Fatalf("an unsubscribed socket got %+v", ev)
	}
	h.mgr.flushCounts() // nothing changed
	if ev := c1.events(); len(ev) != 0 {
		t.Fatalf("unchanged count sent again: %+v", ev)
	}
	c2.Closed()
	h.mgr.flushCounts()
	if f := c1.one("pusher_internal:subscription_count"); f.data() != `{"subscription_count":1}` {
		t.Fatalf("count after a close %s", f.data())
	}

	// Not on presence channels (Pusher sends none there).
	cd := `{"user_id":"u"}`
	c1.subscribe("presence-p", signature.ChannelAuth("key", "secret", c1.SocketID(), "presence-p", cd), cd)
	c1.one("pusher_internal:subscription_succeeded")
	h.mgr.flushCounts()
	if ev := c1.events(); len(ev) != 0 {
		t.Fatalf("presence channel got %+v", ev)
	}
}

func TestSubscriptionCountOffByDefault(t *testing.T) {
	h := newHarness(t, nil)
	c := h.open()
	c.subscribe("room", "", "")
	c.one("pusher_internal:subscription_succeeded")
	h.mgr.flushCounts()
	if ev := c.events(); len(ev) != 0 {
		t.Fatalf("counts sent by an app without subscription_count: %+v", ev)
	}
}
