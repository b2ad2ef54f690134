package feed

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/herald-ws/herald/internal/apps"
	"github.com/herald-ws/herald/internal/broker"
	"github.com/herald-ws/herald/internal/broker/memory"
	"github.com/herald-ws/herald/internal/node"
	"github.com/herald-ws/herald/internal/signature"
)

type fixture struct {
	t    *testing.T
	n    *node.Node
	a    *node.App
	h    *Handler
	srv  *httptest.Server
	held chan struct{}
}

func newFixture(t *testing.T, configure ...func(*apps.App)) *fixture {
	t.Helper()
	a := &apps.App{ID: "1", Key: "key", Secret: "secret", Enabled: true, Limits: apps.DefaultLimits,
		History: apps.History{Enabled: true, Channels: []string{"*"}, MaxEvents: 10, TTL: time.Minute}}
	for _, c := range configure {
		c(a)
	}
	reg, err := apps.NewRegistry([]*apps.App{a})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	n := node.New(reg, memory.New(), log)
	f := &fixture{t: t, n: n, a: n.AppByKey("key"), held: make(chan struct{}, 100)}
	f.h = New(n, "", log)
	f.h.held = func() { f.held <- struct{}{} }
	f.srv = httptest.NewServer(f.h)
	t.Cleanup(f.srv.Close)
	t.Cleanup(f.h.Close) // before the server's Close, which waits for streams
	return f
}

func (f *fixture) publish(channel, event, data string) {
	f.t.Helper()
	if err := f.n.Publish(context.Background(), f.a, []string{channel}, event, data, ""); err != nil {
		f.t.Fatal(err)
	}
}

type pollAnswer struct {
	Status int
	Error  string            `json:"error"`
	Epoch  string            `json:"epoch"`
	Offset uint64            `json:"offset"`
	Events []json.RawMessage `json:"events"`
	Header http.Header
}

type event struct {
	Event, Channel, Data, Epoch string
	Offset                      uint64
}

func (p pollAnswer) events(t *testing.T) []event {
	t.Helper()
	var out []event
	for _, raw := range p.Events {
		var e event
		if err := json.Unmarshal(raw, &e); err != nil {
			t.Fatalf("event %s: %v", raw, err)
		}
		out = append(out, e)
	}
	return out
}

func (f *fixture) get(path string, header ...string) pollAnswer {
	f.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	p := pollAnswer{Status: res.StatusCode, Header: res.Header}
	if err := json.Unmarshal(body, &p); err != nil {
		f.t.Fatalf("GET %s: %d %q: %v", path, res.StatusCode, body, err)
	}
	return p
}

func eventsURL(channel string, q ...string) string {
	u := "/app/key/channels/" + channel + "/events"
	if len(q) > 0 {
		u += "?" + strings.Join(q, "&")
	}
	return u
}

func TestPollFromAStartingPoint(t *testing.T) {
	f := newFixture(t)
	start := f.get(eventsURL("news"))
	if start.Status != 200 || start.Epoch != "" || start.Offset != 0 || start.Events == nil || len(start.Events) != 0 {
		t.Fatalf("starting point of an empty channel: %+v", start)
	}
	if cc := start.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
	f.publish("news", "a", "1")
	f.publish("news", "b", `{"x":"line1\nline2"}`)
	got := f.get(eventsURL("news", "since=:0"))
	evs := got.events(t)
	if got.Status != 200 || len(evs) != 2 || got.Offset != 2 || got.Epoch == "" {
		t.Fatalf("since :0: %+v", got)
	}
	want := []event{{"a", "news", "1", got.Epoch, 1}, {"b", "news", `{"x":"line1\nline2"}`, got.Epoch, 2}}
	for i := range want {
		if evs[i] != want[i] {
			t.Errorf("event %d: %+v, want %+v", i, evs[i], want[i])
		}
	}
	again := f.get(eventsURL("news", fmt.Sprintf("since=%s:%d", got.Epoch, got.Offset)))
	if again.Status != 200 || len(again.Events) != 0 || again.Offset != 2 {
		t.Errorf("nothing new: %+v", again)
	}
	now := f.get(eventsURL("news"))
	if now.Epoch != got.Epoch || now.Offset != 2 || len(now.Events) != 0 {
		t.Errorf("starting point after two events: %+v", now)
	}
}

func TestPollGone(t *testing.T) {
	f := newFixture(t)
	for i := range 12 { // MaxEvents 10: offsets 1 and 2 leave
		f.publish("c", "e", fmt.Sprint(i))
	}
	ep := f.get(eventsURL("c")).Epoch
	for _, since := range []string{"other:1", ep + ":1", ep + ":13", ":0"} {
		got := f.get(eventsURL("c", "since="+since))
		if got.Status != http.StatusGone || got.Epoch != ep || got.Offset != 12 || got.Error == "" {
			t.Errorf("since %s: %+v, want 410 at %s:12", since, got, ep)
		}
	}
	if got := f.get(eventsURL("c", "since="+ep+":2")); got.Status != 200 || len(got.Events) != 10 {
		t.Errorf("since the oldest offset kept minus one: %d %d events", got.Status, len(got.Events))
	}
}

func TestBadRequests(t *testing.T) {
	f := newFixture(t, func(a *apps.App) { a.History.Channels = []string{"kept-*"} })
	for _, c := range []struct {
		path   string
		status int
		says   string
	}{
		{eventsURL("kept-a", "since=abc"), 400, "since"},
		{eventsURL("kept-a", "since=:5"), 400, "since"},
		{eventsURL("kept-a", "since=:0", "wait=-1"), 400, "wait"},
		{eventsURL("kept-a", "since=:0", "wait=1.5"), 400, "wait"},
		{eventsURL("kept-%20a"), 400, "channel name"},
		{eventsURL("other"), 404, "keeps no history"},
		{"/app/nokey/channels/kept-a/events", 404, "unknown app key"},
		{eventsURL("private-kept-a"), 404, "keeps no history"},
	} {
		got := f.get(c.path)
		if got.Status != c.status || !strings.Contains(got.Error, c.says) || strings.Contains(got.Error, "pusher error") {
			t.Errorf("GET %s: %d %q, want %d saying %q", c.path, got.Status, got.Error, c.status, c.says)
		}
	}
	for _, method := range []string{http.MethodPost, http.MethodHead} {
		req, _ := http.NewRequest(method, f.srv.URL+eventsURL("kept-a"), nil)
		req.Header.Set("Accept", "text/event-stream") // HEAD must not hold a stream
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 405 || res.Header.Get("Allow") != "GET, OPTIONS" {
			t.Errorf("%s events: %d Allow %q", method, res.StatusCode, res.Header.Get("Allow"))
		}
	}
	// A page's developer can read why an unknown key is refused.
	if got := f.get("/app/nokey/sessions", "Origin", "https://x.test"); got.Status != 404 || got.Header.Get("Access-Control-Allow-Origin") != "https://x.test" {
		t.Errorf("unknown key from a page: %d %v", got.Status, got.Header)
	}
}

func TestLongPollWakesOnPublish(t *testing.T) {
	f := newFixture(t)
	f.publish("c", "e", "0")
	start := f.get(eventsURL("c"))
	answer := make(chan pollAnswer, 1)
	go func() {
		answer <- f.get(eventsURL("c", fmt.Sprintf("since=%s:%d", start.Epoch, start.Offset), "wait=30"))
	}()
	<-f.held // the request is waiting
	if f.h.Waiting() != 1 {
		t.Errorf("Waiting = %d", f.h.Waiting())
	}
	f.publish("other", "e", "x") // not its channel: it keeps waiting
	f.publish("c", "e", "1")
	got := <-answer
	evs := got.events(t)
	if got.Status != 200 || len(evs) != 1 || evs[0].Data != "1" || evs[0].Offset != 2 || got.Offset != 2 {
		t.Fatalf("woken long-poll: %+v", got)
	}
	if f.h.Waiting() != 0 {
		t.Errorf("Waiting = %d after the answer", f.h.Waiting())
	}
}

func TestLongPollDeadline(t *testing.T) {
	f := newFixture(t)
	f.h.MaxWait = 50 * time.Millisecond // wait=5 is capped to it
	f.publish("c", "e", "0")
	start := f.get(eventsURL("c"))
	began := time.Now()
	got := f.get(eventsURL("c", fmt.Sprintf("since=%s:%d", start.Epoch, start.Offset), "wait=5"))
	if got.Status != 200 || len(got.Events) != 0 || got.Offset != 1 || got.Epoch != start.Epoch {
		t.Fatalf("long-poll at its deadline: %+v", got)
	}
	if waited := time.Since(began); waited < 50*time.Millisecond {
		t.Errorf("answered after %v, before the wait", waited)
	}
	<-f.held
}

func TestHeldRequestsAreBounded(t *testing.T) {
	f := newFixture(t)
	f.h.MaxWaiting = 1
	done := make(chan pollAnswer, 1)
	go func() { done <- f.get(eventsURL("c", "since=:0", "wait=30")) }()
	<-f.held
	got := f.get(eventsURL("c", "since=:0", "wait=30"))
	if got.Status != 503 || got.Header.Get("Retry-After") == "" || f.h.Busy() != 1 {
		t.Errorf("second held request: %+v busy %d", got, f.h.Busy())
	}
	if got := f.get(eventsURL("c", "since=:0")); got.Status != 200 {
		t.Errorf("a plain poll is never held, so never refused: %+v", got)
	}
	f.h.Close() // ends the held one with an empty answer
	if got := <-done; got.Status != 200 || len(got.Events) != 0 {
		t.Errorf("held request at Close: %+v", got)
	}
	if got := f.get(eventsURL("c", "since=:0")); got.Status != 503 {
		t.Errorf("after Close: %+v", got)
	}
}

// sse is an SSE reader over a raw response body.
type sse struct {
	t   *testing.T
	res *http.Response
	rd  *bufio.Reader
}

func (f *fixture) stream(path string, header ...string) *sse {
	f.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+path, nil)
	req.Header.Set("Accept", "text/event-stream")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { res.Body.Close() })
	return &sse{t: f.t, res: res, rd: bufio.NewReader(res.Body)}
}

// block reads one SSE block (up to a blank line), without its newlines.
func (s *sse) block() string {
	s.t.Helper()
	var lines []string
	for {
		line, err := s.rd.ReadString('\n')
		if err != nil {
			s.t.Fatalf("stream ended: %v (read %q)", err, lines)
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			return strings.Join(lines, "\n")
		}
		lines = append(lines, line)
	}
}

func TestSSEFromNowThenLive(t *testing.T) {
	f := newFixture(t)
	f.publish("c", "e", "old")
	ep := f.get(eventsURL("c")).Epoch
	s := f.stream(eventsURL("c"))
	if ct := s.res.Header.Get("Content-Type"); s.res.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("%d %q", s.res.StatusCode, ct)
	}
	if b := s.block(); b != "retry: 1000" {
		t.Errorf("first block %q", b)
	}
	if b, want := s.block(), fmt.Sprintf("id: %s:1\nevent: herald:position\ndata: {\"epoch\":%q,\"offset\":1}", ep, ep); b != want {
		t.Errorf("position block %q, want %q", b, want)
	}
	f.publish("c", "multi", "a\nb\r\nc")
	if b, want := s.block(), "id: "+ep+":2\nevent: multi\ndata: a\ndata: b\ndata: c"; b != want {
		t.Errorf("event block %q, want %q", b, want)
	}
	f.publish("c", "obj", `{"k":1}`)
	if b, want := s.block(), "id: "+ep+":3\nevent: obj\ndata: {\"k\":1}"; b != want {
		t.Errorf("event block %q, want %q", b, want)
	}
}

func TestSSEResumesFromLastEventID(t *testing.T) {
	f := newFixture(t)
	for i := 1; i <= 4; i++ {
		f.publish("c", "e", fmt.Sprint(i))
	}
	ep := f.get(eventsURL("c")).Epoch
	// since says 1, Last-Event-ID (a reconnect) says 2: the later wins.
	s := f.stream(eventsURL("c", "since="+ep+":1"), "Last-Event-ID", ep+":2")
	s.block() // retry
	for i := 3; i <= 4; i++ {
		if b, want := s.block(), fmt.Sprintf("id: %s:%d\nevent: e\ndata: %d", ep, i, i); b != want {
			t.Errorf("replayed %q, want %q", b, want)
		}
	}
	f.publish("c", "e", "5")
	if b, want := s.block(), fmt.Sprintf("id: %s:5\nevent: e\ndata: 5", ep); b != want {
		t.Errorf("live %q, want %q", b, want)
	}
}

func TestSSEResumeFailedThenLive(t *testing.T) {
	f := newFixture(t)
	f.publish("c", "e", "1")
	ep := f.get(eventsURL("c")).Epoch
	s := f.stream(eventsURL("c", "since=gone:7"))
	s.block()
	want := fmt.Sprintf("id: %s:1\nevent: herald:resume_failed\ndata: {\"epoch\":%q,\"offset\":1}", ep, ep)
	if b := s.block(); b != want {
		t.Errorf("got %q, want %q", b, want)
	}
	f.publish("c", "e", "2")
	if b, want := s.block(), fmt.Sprintf("id: %s:2\nevent: e\ndata: 2", ep); b != want {
		t.Errorf("live after resume_failed %q, want %q", b, want)
	}
	if got := f.stream(eventsURL("c"), "Last-Event-ID", "junk"); got.res.StatusCode != 400 {
		t.Errorf("bad Last-Event-ID: %d", got.res.StatusCode)
	}
}

func TestSSEHeartbeatAndClose(t *testing.T) {
	f := newFixture(t)
	f.h.Heartbeat = 10 * time.Millisecond
	s := f.stream(eventsURL("c"))
	s.block()
	if b, want := s.block(), "id: :0\nevent: herald:position\ndata: {\"epoch\":\"\",\"offset\":0}"; b != want {
		t.Errorf("position of an empty channel %q, want %q", b, want)
	}
	if b := s.block(); b != ": heartbeat" {
		t.Errorf("idle stream sent %q, want a heartbeat comment", b)
	}
	f.h.Close()
	if _, err := io.ReadAll(s.rd); err != nil {
		t.Errorf("stream did not end cleanly at Close: %v", err)
	}
	if f.h.Waiting() != 0 {
		t.Errorf("Waiting = %d after Close", f.h.Waiting())
	}
}

func (f *fixture) session() string {
	f.t.Helper()
	res, err := http.Post(f.srv.URL+"/app/key/sessions", "", nil)
	if err != nil {
		f.t.Fatal(err)
	}
	defer res.Body.Close()
	var s sessionAnswer
	if err := json.NewDecoder(res.Body).Decode(&s); err != nil || res.StatusCode != 200 || s.ExpiresIn != int64(DefaultSessionTTL/time.Second) {
		f.t.Fatalf("session: %d %+v %v", res.StatusCode, s, err)
	}
	return s.SocketID
}

func TestPrivateAndPresenceReadersAuthorize(t *testing.T) {
	f := newFixture(t)
	f.publish("private-a", "e", "secret stuff")
	f.publish("presence-r", "e", "room")
	sid := f.session()
	q := func(channel, socketID, auth, data string) string {
		v := url.Values{"since": {":0"}, "socket_id": {socketID}, "auth": {auth}}
		if data != "" {
			v.Set("channel_data", data)
		}
		return eventsURL(channel, v.Encode())
	}
	good := signature.ChannelAuth("key", "secret", sid, "private-a", "")
	if got := f.get(q("private-a", sid, good, "")); got.Status != 200 || len(got.Events) != 1 {
		t.Errorf("authorized private reader: %+v", got)
	}
	member := `{"user_id":"7","user_info":{}}`
	pauth := signature.ChannelAuth("key", "secret", sid, "presence-r", member)
	if got := f.get(q("presence-r", sid, pauth, member)); got.Status != 200 || len(got.Events) != 1 {
		t.Errorf("authorized presence reader: %+v", got)
	}
	expired := signature.SessionID("secret", 9, time.Now().Add(-time.Second))
	forged := signature.SessionID("other-secret", 9, time.Now().Add(time.Hour))
	for _, c := range []struct {
		name, path string
		status     int
		says       string
	}{
		{"no auth", eventsURL("private-a", "since=:0"), 401, "needs authorization"},
		{"made-up socket id", q("private-a", "123.456", signature.ChannelAuth("key", "secret", "123.456", "private-a", ""), ""), 401, "not a session id"},
		{"expired session", q("private-a", expired, signature.ChannelAuth("key", "secret", expired, "private-a", ""), ""), 401, "expired"},
		{"another secret's session", q("private-a", forged, signature.ChannelAuth("key", "secret", forged, "private-a", ""), ""), 401, "not issued"},
		{"auth for another channel", q("private-a", sid, signature.ChannelAuth("key", "secret", sid, "private-b", ""), ""), 403, "Invalid signature"},
		{"presence without channel_data", q("presence-r", sid, pauth, ""), 403, "Invalid signature"},
		{"server-to-user", "/app/key/channels/%23server-to-user-7/events", 403, "server-to-user"},
	} {
		got := f.get(c.path)
		if got.Status != c.status || !strings.Contains(got.Error, c.says) || len(got.Events) != 0 {
			t.Errorf("%s: %d %q, want %d saying %q", c.name, got.Status, got.Error, c.status, c.says)
		}
	}
	// SSE authorizes the same way.
	s := f.stream(q("private-a", sid, good, ""))
	s.block()
	if b := s.block(); !strings.Contains(b, "data: secret stuff") {
		t.Errorf("private SSE: %q", b)
	}
}

func TestCORS(t *testing.T) {
	f := newFixture(t, func(a *apps.App) { a.AllowedOrigins = []string{"app.example.com"} })
	ok := f.get(eventsURL("c"), "Origin", "https://app.example.com")
	if ok.Status != 200 || ok.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" || ok.Header.Get("Vary") != "Origin" {
		t.Errorf("allowed origin: %d %v", ok.Status, ok.Header)
	}
	bad := f.get(eventsURL("c"), "Origin", "https://evil.example.net")
	if bad.Status != 403 || bad.Header.Get("Access-Control-Allow-Origin") != "" || !strings.Contains(bad.Error, "not allowed") {
		t.Errorf("other origin: %+v", bad)
	}
	if none := f.get(eventsURL("c")); none.Status != 200 || none.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("no Origin (not a browser): %+v", none)
	}
	for _, path := range []string{eventsURL("c"), "/app/key/sessions"} {
		req, _ := http.NewRequest(http.MethodOptions, f.srv.URL+path, nil)
		req.Header.Set("Origin", "https://app.example.com")
		req.Header.Set("Access-Control-Request-Method", "GET")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		h := res.Header
		if res.StatusCode != 204 || h.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
			!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Last-Event-ID") || !strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") {
			t.Errorf("preflight %s: %d %v", path, res.StatusCode, h)
		}
	}
}

func TestMatch(t *testing.T) {
	h := New(nil, "/ws", nil)
	for path, want := range map[string]bool{
		"/ws/app/k/sessions":            true,
		"/ws/app/k/channels/c/events":   true,
		"/app/k/sessions":               false,
		"/ws/app/k":                     false,
		"/ws/app/k/channels//events":    false,
		"/ws/app/k/channels/c/d/events": false,
		"/ws/app//sessions":             false,
		"/ws/app/k/channels/c/events/x": false,
	} {
		if got := h.Match(path); got != want {
			t.Errorf("Match(%q) = %v, want %v", path, got, want)
		}
	}
}

func TestBlockCacheIsBounded(t *testing.T) {
	var c blockCache
	frame := func(i int) broker.Event {
		return broker.Event{Offset: uint64(i), Frame: []byte(fmt.Sprintf(`{"event":"e","channel":"c","data":"%0500d","epoch":"E","offset":%d}`, i, i))}
	}
	first := c.get("E", frame(1))
	if again := c.get("E", frame(1)); &again[0] != &first[0] {
		t.Error("the same event was rendered twice")
	}
	if want := appendEvent(nil, "E", frame(1)); string(first) != string(want) {
		t.Errorf("cached block %q, want %q", first, want)
	}
	for i := 2; i < 20_000; i++ {
		c.get("E", frame(i))
	}
	if c.bytes > blockCacheBytes || len(c.m) == 0 || len(c.order)-c.head != len(c.m) {
		t.Errorf("%d bytes in %d entries (queue %d), cap %d", c.bytes, len(c.m), len(c.order)-c.head, blockCacheBytes)
	}
	if _, ok := c.m[string(frame(1).Frame)]; ok {
		t.Error("the oldest entry was never evicted")
	}
}

// format=frames: unnamed messages carrying whole frames, herald events too.
func TestSSEFrames(t *testing.T) {
	f := newFixture(t)
	f.publish("c", "a", "1")
	ep := f.get(eventsURL("c")).Epoch
	s := f.stream(eventsURL("c", "format=frames"))
	s.block()
	if b, want := s.block(), fmt.Sprintf(`id: %s:1`+"\n"+`data: {"event":"herald:position","channel":"c","data":"{\"epoch\":\"%s\",\"offset\":1}"}`, ep, ep); b != want {
		t.Errorf("position %q, want %q", b, want)
	}
	f.publish("c", "line", "x\ny")
	if b, want := s.block(), fmt.Sprintf(`id: %s:2`+"\n"+`data: {"event":"line","channel":"c","data":"x\ny","epoch":"%s","offset":2}`, ep, ep); b != want {
		t.Errorf("event %q, want %q", b, want)
	}
	g := f.stream(eventsURL("c", "format=frames", "since=gone:1"))
	g.block()
	if b := g.block(); !strings.Contains(b, `data: {"event":"herald:resume_failed","channel":"c"`) {
		t.Errorf("resume_failed %q", b)
	}
	if bad := f.stream(eventsURL("c", "format=xml")); bad.res.StatusCode != 400 {
		t.Errorf("format=xml: %d", bad.res.StatusCode)
	}
}
