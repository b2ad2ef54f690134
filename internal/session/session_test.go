package session

import (
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-ws/herald/internal/apps"
	"github.com/herald-ws/herald/internal/broker/memory"
	"github.com/herald-ws/herald/internal/node"
	"github.com/herald-ws/herald/internal/pusher"
	"github.com/herald-ws/herald/internal/signature"
)

// fakeTransport records what the session asks to write.
type fakeTransport struct {
	mu    sync.Mutex
	wakes int
}

func (f *fakeTransport) Wake() { f.mu.Lock(); f.wakes++; f.mu.Unlock() }

type harness struct {
	t   *testing.T
	mgr *Manager
	app *node.App
	now time.Time
}

func newHarness(t *testing.T, edit func(*apps.App)) *harness {
	a := &apps.App{ID: "1", Key: "key", Secret: "secret", Enabled: true, ClientEvents: apps.ClientEventsMembers,
		UserAuthentication: true, ActivityTimeout: 30 * time.Second, PingInterval: 60 * time.Second,
		PongTimeout: 30 * time.Second, MaxMessageBytes: 10000, Limits: apps.DefaultLimits}
	if edit != nil {
		edit(a)
	}
	reg, err := apps.NewRegistry([]*apps.App{a})
	if err != nil {
		t.Fatal(err)
	}
	n := node.New(reg, memory.New(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	h := &harness{t: t, now: time.Unix(1_700_000_000, 0)}
	h.mgr = NewManager(n, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Second)
	h.mgr.now = func() time.Time { return h.now }
	h.app = n.AppByID("1")
	return h
}

type client struct {
	*Session
	t *testing.T
}

func (h *harness) open() *client {
	s, err := h.mgr.Open(h.app, &fakeTransport{})
	if err != nil {
		h.t.Fatal(err)
	}
	c := &client{s, h.t}
	if ev := c.events(); len(ev) != 1 || ev[0].Event != "pusher:connection_established" {
		h.t.Fatalf("first frames %v", ev)
	}
	return c
}

type frame struct {
	Event, Channel, UserID string
	Data                   json.RawMessage
	raw                    string
}

func (f frame) data() string {
	var s string
	if json.Unmarshal(f.Data, &s) == nil {
		return s
	}
	return string(f.Data)
}

// events drains the queue and decodes it.
func (c *client) events() []frame {
	frames, _, _, _ := c.Drain(nil)
	out := make([]frame, 0, len(frames))
	for _, b := range frames {
		var f struct {
			Event   string          `json:"event"`
			Channel string          `json:"channel"`
			UserID  string          `json:"user_id"`
			Data    json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(b, &f); err != nil {
			c.t.Fatalf("bad frame %s", b)
		}
		out = append(out, frame{f.Event, f.Channel, f.UserID, f.Data, string(b)})
	}
	return out
}

func (c *client) one(event string) frame {
	c.t.Helper()
	ev := c.events()
	if len(ev) != 1 || ev[0].Event != event {
		c.t.Fatalf("want one %s, got %+v", event, ev)
	}
	return ev[0]
}

func (c *client) errorCode(code int) {
	c.t.Helper()
	f := c.one("pusher:error")
	if !strings.Contains(f.data(), `"code":`+itoa(code)) {
		c.t.Fatalf("want error %d, got %s", code, f.data())
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func (c *client) send(v string) { c.Handle([]byte(v)) }

func (c *client) subscribe(channel, auth, channelData string) {
	b, _ := json.Marshal(map[string]any{"event": "pusher:subscribe", "data": map[string]string{"channel": channel, "auth": auth, "channel_data": channelData}})
	c.Handle(b)
}

func (c *client) closing() (bool, int) {
	_, closing, code, _ := c.Drain(nil)
	return closing, code
}

func TestPrivateChannelAuth(t *testing.T) {
	h := newHarness(t, nil)
	c := h.open()
	c.subscribe("private-a", "key:"+strings.Repeat("0", 64), "")
	c.errorCode(pusher.CodeUnauthorized)
	c.subscribe("private-a", "", "")
	c.errorCode(pusher.CodeUnauthorized)
	c.subscribe("private-a", signature.ChannelAuth("key", "secret", c.SocketID(), "private-a", ""), "")
	c.one("pusher_internal:subscription_succeeded")
	if !c.authorized.Load() {
		t.Fatal("private subscription did not mark the socket authorized")
	}
}

func TestPresenceJoinLeave(t *testing.T) {
	h := newHarness(t, nil)
	join := func(uid string) *client {
		c := h.open()
		cd := `{"user_id":"` + uid + `","user_info":{"name":"` + uid + `"}}`
		c.subscribe("presence-room", signature.ChannelAuth("key", "secret", c.SocketID(), "presence-room", cd), cd)
		return c
	}
	ann := join("ann")
	if f := ann.one("pusher_internal:subscription_succeeded"); !strings.Contains(f.data(), `"count":1`) {
		t.Fatalf("got %s", f.data())
	}
	bob1 := join("bob")
	bob1.events()
	if f := ann.one("pusher_internal:member_added"); f.data() != `{"user_id":"bob","user_info":{"name":"bob"}}` {
		t.Fatalf("member_added %s", f.data())
	}
	bob2 := join("bob")
	bob2.events()
	if ev := ann.events(); len(ev) != 0 {
		t.Fatalf("second socket of bob announced: %+v", ev)
	}
	bob1.Closed()
	if ev := ann.events(); len(ev) != 0 {
		t.Fatalf("bob removed while a socket remains: %+v", ev)
	}
	bob2.send(`{"event":"pusher:unsubscribe","data":{"channel":"presence-room"}}`)
	if f := ann.one("pusher_internal:member_removed"); f.data() != `{"user_id":"bob"}` {
		t.Fatalf("member_removed %s", f.data())
	}
}

func TestClientEvents(t *testing.T) {
	h := newHarness(t, func(a *apps.App) { a.Limits.ClientEventsPerSecond = 2 })
	sub := func(ch string) *client {
		c := h.open()
		c.subscribe(ch, signature.ChannelAuth("key", "secret", c.SocketID(), ch, ""), "")
		c.events()
		return c
	}
	a, b := sub("private-x"), sub("private-x")
	a.send(`{"event":"client-typing","channel":"private-x","data":{"on":true}}`)
	if f := b.one("client-typing"); f.raw != `{"event":"client-typing","channel":"private-x","data":{"on":true}}` {
		t.Fatalf("relayed %s", f.raw)
	}
	if ev := a.events(); len(ev) != 0 {
		t.Fatalf("sender got its own event: %+v", ev)
	}
	a.send(`{"event":"client-typing","channel":"private-x","data":{}}`)
	b.events()
	a.send(`{"event":"client-typing","channel":"private-x","data":{}}`)
	a.errorCode(pusher.CodeClientEventRejected) // third in one second
	if ev := b.events(); len(ev) != 0 {
		t.Fatalf("rate-limited event delivered: %+v", ev)
	}
	h.now = h.now.Add(time.Second)
	a.send(`{"event":"client-typing","channel":"private-x","data":{}}`)
	b.one("client-typing")

	outsider := h.open()
	outsider.send(`{"event":"client-typing","channel":"private-x","data":{}}`)
	outsider.errorCode(pusher.CodeClientEventRejected)
	pub := sub("public")
	pub.send(`{"event":"client-typing","channel":"public","data":{}}`)
	pub.errorCode(pusher.CodeClientEventRejected)
}

func TestClientEventModes(t *testing.T) {
	for _, mode := range []string{apps.ClientEventsAll, apps.ClientEventsNone} {
		h := newHarness(t, func(a *apps.App) { a.ClientEvents = mode })
		member := h.open()
		member.subscribe("private-x", signature.ChannelAuth("key", "secret", member.SocketID(), "private-x", ""), "")
		member.events()
		outsider := h.open()
		outsider.send(`{"event":"client-x","channel":"private-x","data":{}}`)
		if mode == apps.ClientEventsAll {
			member.one("client-x")
			if ev := outsider.events(); len(ev) != 0 {
				t.Fatalf("all: outsider got %+v", ev)
			}
		} else {
			outsider.errorCode(pusher.CodeClientEventRejected)
			if ev := member.events(); len(ev) != 0 {
				t.Fatalf("none: member got %+v", ev)
			}
		}
	}
}

func TestPresenceClientEventCarriesUserID(t *testing.T) {
	h := newHarness(t, nil)
	join := func(uid string) *client {
		c := h.open()
		cd := `{"user_id":"` + uid + `"}`
		c.subscribe("presence-p", signature.ChannelAuth("key", "secret", c.SocketID(), "presence-p", cd), cd)
		c.events()
		return c
	}
	a, b := join("a"), join("b")
	a.events()
	a.send(`{"event":"client-hi","channel":"presence-p","data":"x"}`)
	if f := b.one("client-hi"); f.UserID != "a" {
		t.Fatalf("got %s", f.raw)
	}
}

func TestSigninWatchlistTerminate(t *testing.T) {
	h := newHarness(t, nil)
	signin := func(c *client, userData string) {
		b, _ := json.Marshal(map[string]any{"event": "pusher:signin", "data": map[string]string{
			"user_data": userData, "auth": signature.UserAuth("key", "secret", c.SocketID(), userData)}})
		c.Handle(b)
	}
	watcher := h.open()
	signin(watcher, `{"id":"w","watchlist":["u2"]}`)
	if f := watcher.one("pusher:signin_success"); f.data() != `{"user_data":"{\"id\":\"w\",\"watchlist\":[\"u2\"]}"}` {
		t.Fatalf("signin_success %s", f.data())
	}
	u2 := h.open()
	signin(u2, `{"id":"u2"}`)
	u2.events()
	if f := watcher.one("pusher_internal:watchlist_events"); f.data() != `{"events":[{"name":"online","user_ids":["u2"]}]}` {
		t.Fatalf("online %s", f.data())
	}
	// only the signed-in user may subscribe to its server-to-user channel
	watcher.subscribe("#server-to-user-u2", "", "")
	watcher.errorCode(pusher.CodeUnauthorized)
	u2.subscribe("#server-to-user-u2", "", "")
	u2.one("pusher_internal:subscription_succeeded")

	if n := h.app.Terminate("u2"); n != 1 {
		t.Fatalf("terminated %d", n)
	}
	if closing, code := u2.closing(); !closing || code != pusher.CodeUnauthorized {
		t.Fatalf("u2 closing=%v code=%d", closing, code)
	}
	u2.Closed()
	if f := watcher.one("pusher_internal:watchlist_events"); !strings.Contains(f.data(), `"offline"`) {
		t.Fatalf("offline %s", f.data())
	}

	bad := h.open()
	bad.send(`{"event":"pusher:signin","data":{"user_data":"{\"id\":\"x\"}","auth":"key:` + strings.Repeat("a", 64) + `"}}`)
	if closing, code := bad.closing(); !closing || code != pusher.CodeUnauthorized {
		t.Fatalf("bad signin closing=%v code=%d", closing, code)
	}
}

func TestWatchlistLimit(t *testing.T) {
	h := newHarness(t, func(a *apps.App) { a.Limits.MaxWatchlist = 1 })
	c := h.open()
	ud := `{"id":"w","watchlist":["a","b"]}`
	b, _ := json.Marshal(map[string]any{"event": "pusher:signin", "data": map[string]string{"user_data": ud, "auth": signature.UserAuth("key", "secret", c.SocketID(), ud)}})
	c.Handle(b)
	c.errorCode(pusher.CodeWatchlistOverLimit)
}

func TestTimers(t *testing.T) {
	h := newHarness(t, func(a *apps.App) { a.AuthorizedConnectionsTimeout = 5 * time.Second })
	idle := h.open()
	authed := h.open()
	authed.subscribe("private-a", signature.ChannelAuth("key", "secret", authed.SocketID(), "private-a", ""), "")
	authed.events()

	h.now = h.now.Add(6 * time.Second)
	h.mgr.sweep()
	if closing, code := idle.closing(); !closing || code != pusher.CodeUnauthorized {
		t.Fatalf("unauthorized idle socket: closing=%v code=%d", closing, code)
	}
	if closing, _ := authed.closing(); closing {
		t.Fatal("authorized socket closed")
	}
	h.now = h.now.Add(61 * time.Second)
	h.mgr.sweep()
	authed.one("pusher:ping")
	h.now = h.now.Add(10 * time.Second)
	authed.send(`{"event":"pusher:pong","data":{}}`)
	h.now = h.now.Add(25 * time.Second)
	h.mgr.sweep()
	if closing, _ := authed.closing(); closing {
		t.Fatal("closed although it answered the ping")
	}
	h.now = h.now.Add(61 * time.Second)
	h.mgr.sweep()
	authed.one("pusher:ping")
	h.now = h.now.Add(31 * time.Second)
	h.mgr.sweep()
	if closing, code := authed.closing(); !closing || code != pusher.CodePongNotReceived {
		t.Fatalf("no pong: closing=%v code=%d", closing, code)
	}
}

func TestMaxConnections(t *testing.T) {
	h := newHarness(t, func(a *apps.App) { a.MaxConnections = 1 })
	c := h.open()
	if _, err := h.mgr.Open(h.app, &fakeTransport{}); err == nil || err.(*pusher.Error).Code != pusher.CodeOverQuota {
		t.Fatalf("second connection: %v", err)
	}
	c.Closed()
	h.open()
}

func TestSlowConsumerOverflow(t *testing.T) {
	h := newHarness(t, nil)
	c := h.open()
	frame := make([]byte, 1024)
	for range maxQueuedFrames + 1 {
		c.Send(frame)
	}
	frames, closing, code, _ := c.Drain(nil)
	if !closing || code != pusher.CodeOverCapacity || len(frames) != 1 {
		t.Fatalf("closing=%v code=%d frames=%d", closing, code, len(frames))
	}
	if h.mgr.SlowClosed() != 1 {
		t.Fatalf("SlowClosed = %d", h.mgr.SlowClosed())
	}
}
