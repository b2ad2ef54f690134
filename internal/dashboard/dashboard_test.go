package dashboard

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/herald-ws/herald/internal/apps"
	"github.com/herald-ws/herald/internal/broker/memory"
	"github.com/herald-ws/herald/internal/node"
	"github.com/herald-ws/herald/internal/pusher"
)

const (
	token    = "dash-token-0123456789"
	user     = "ops"
	password = "correct-horse-battery"
)

type fixture struct {
	t       *testing.T
	n       *node.Node
	a       *node.App
	h       *Handler
	srv     *httptest.Server
	log     *slog.Logger
	console *Console
}

func newFixture(t *testing.T, o Options) *fixture {
	t.Helper()
	a := &apps.App{ID: "1", Key: "key", Secret: "secret", Enabled: true, Limits: apps.DefaultLimits,
		History: apps.History{Enabled: true, Channels: []string{"*"}, MaxEvents: 10, TTL: time.Minute}}
	b := &apps.App{ID: "2", Key: "key2", Secret: "secret2", Enabled: true, Limits: apps.DefaultLimits}
	reg, err := apps.NewRegistry([]*apps.App{a, b})
	if err != nil {
		t.Fatal(err)
	}
	console := NewConsole()
	log := slog.New(console.Handler(slog.NewTextHandler(io.Discard, nil)))
	n := node.New(reg, memory.New(), log)
	o.Node, o.Console, o.Log = n, console, log
	o.Numbers = func() Numbers { return Numbers{Connections: 3, Channels: 2} }
	f := &fixture{t: t, n: n, a: n.AppByID("1"), log: log, console: console}
	f.h = New(o)
	f.srv = httptest.NewServer(f.h)
	t.Cleanup(f.srv.Close)
	t.Cleanup(f.h.Close) // before the server's Close, which waits for streams
	return f
}

// get requests path with the request changed by mod, without following
// redirects.
func (f *fixture) do(method, path string, body io.Reader, mod func(*http.Request)) *http.Response {
	f.t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, body)
	if err != nil {
		f.t.Fatal(err)
	}
	if mod != nil {
		mod(req)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { res.Body.Close() })
	return res
}

func bearer(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }

func readAll(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Every dashboard path needs the credentials; the token in the URL is
// traded for a cookie and leaves the address bar.
func TestAuthToken(t *testing.T) {
	f := newFixture(t, Options{Token: token})
	for _, p := range []string{"/dashboard/", "/dashboard/dashboard.js", "/dashboard/api/overview", "/dashboard/api/live"} {
		res := f.do("GET", p, nil, nil)
		if body := readAll(t, res); res.StatusCode != 401 || !strings.Contains(body, "?token=") {
			t.Errorf("%s without credentials: %d %s", p, res.StatusCode, body)
		}
	}
	if res := f.do("GET", "/dashboard/", nil, func(r *http.Request) { r.Header.Set("Authorization", "Bearer wrong-token-0123456789") }); res.StatusCode != 401 {
		t.Errorf("wrong token: %d", res.StatusCode)
	}
	if res := f.do("GET", "/dashboard/", nil, bearer); res.StatusCode != 200 || !strings.Contains(readAll(t, res), "Herald dashboard") {
		t.Errorf("bearer: %d", res.StatusCode)
	}
	res := f.do("GET", "/dashboard/?app=1&token="+token, nil, nil)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/dashboard/?app=1" {
		t.Fatalf("token in the URL: %d, Location %q", res.StatusCode, res.Header.Get("Location"))
	}
	cookies := res.Cookies()
	if len(cookies) != 1 || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteStrictMode || cookies[0].Path != "/dashboard" || strings.Contains(cookies[0].Value, token) {
		t.Fatalf("cookie %+v", cookies)
	}
	withCookie := func(r *http.Request) { r.AddCookie(cookies[0]) }
	if res := f.do("GET", "/dashboard/api/overview", nil, withCookie); res.StatusCode != 200 {
		t.Errorf("with the cookie: %d", res.StatusCode)
	}
	if res := f.do("GET", "/dashboard/", nil, func(r *http.Request) { r.AddCookie(&http.Cookie{Name: cookieName, Value: token}) }); res.StatusCode != 401 {
		t.Errorf("the raw token as cookie: %d, want 401", res.StatusCode)
	}
	if res := f.do("POST", "/dashboard/api/publish?token="+token, strings.NewReader("{}"), nil); res.StatusCode != 401 {
		t.Errorf("token in a POST's URL: %d, want 401", res.StatusCode)
	}
	if res := f.do("GET", "/dashboard", nil, bearer); res.StatusCode != http.StatusFound || res.Header.Get("Location") != "/dashboard/" {
		t.Errorf("/dashboard: %d → %q", res.StatusCode, res.Header.Get("Location"))
	}
}

func TestAuthBasic(t *testing.T) {
	f := newFixture(t, Options{User: user, Password: password, Prefix: "/ws"})
	res := f.do("GET", "/ws/dashboard/", nil, nil)
	if res.StatusCode != 401 || !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Basic ") {
		t.Errorf("no credentials: %d %q", res.StatusCode, res.Header.Get("WWW-Authenticate"))
	}
	if res := f.do("GET", "/ws/dashboard/", nil, func(r *http.Request) { r.SetBasicAuth(user, "wrong-password-123") }); res.StatusCode != 401 {
		t.Errorf("wrong password: %d", res.StatusCode)
	}
	if res := f.do("GET", "/ws/dashboard/?token="+token, nil, nil); res.StatusCode != 401 {
		t.Errorf("a token where none is configured: %d", res.StatusCode)
	}
	res = f.do("GET", "/ws/dashboard/dashboard.css", nil, func(r *http.Request) { r.SetBasicAuth(user, password) })
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/css") {
		t.Errorf("basic auth: %d %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if !f.h.Match("/ws/dashboard") || f.h.Match("/ws/dashboardx") || f.h.Match("/dashboard/") {
		t.Error("Match")
	}
}

// fakeSub is a hub subscriber that keeps what it is sent.
type fakeSub struct {
	id  string
	got chan []byte
}

func (s *fakeSub) SocketID() string { return s.id }
func (s *fakeSub) Send(f []byte)    { s.got <- f }

func subscribe(t *testing.T, a *node.App, ch, id, userID string) *fakeSub {
	t.Helper()
	s := &fakeSub{id: id, got: make(chan []byte, 100)}
	var m *pusher.Member
	if userID != "" {
		m = &pusher.Member{UserID: userID, Info: json.RawMessage(`{"name":"` + userID + `"}`)}
	}
	if _, err := a.Hub.Subscribe(ch, pusher.ParseChannel(ch), s, m, 100); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestOverview(t *testing.T) {
	f := newFixture(t, Options{Token: token, Version: "1.2.3"})
	subscribe(t, f.a, "news", "1.1", "")
	subscribe(t, f.a, "presence-room", "1.2", "bob")
	subscribe(t, f.a, "presence-room", "1.3", "alice")
	subscribe(t, f.a, "presence-room", "1.4", "alice")
	res := f.do("GET", "/dashboard/api/overview?app=1", nil, bearer)
	var ans overviewAnswer
	if err := json.NewDecoder(res.Body).Decode(&ans); err != nil {
		t.Fatal(err)
	}
	if ans.Version != "1.2.3" || ans.App != "1" || len(ans.Apps) != 2 || ans.Apps[1].Key != "key2" || ans.Occupied != 2 || len(ans.Channels) != 2 {
		t.Fatalf("overview %+v", ans)
	}
	room := ans.Channels[0] // the busiest first
	if room.Name != "presence-room" || room.Kind != "presence" || room.Subscriptions != 3 || room.Users != 2 ||
		len(room.Members) != 2 || room.Members[0].ID != "alice" || string(room.Members[0].Info) != `{"name":"alice"}` {
		t.Errorf("presence channel %+v", room)
	}
	if c := ans.Channels[1]; c.Name != "news" || c.Kind != "public" || c.Subscriptions != 1 || c.Members != nil {
		t.Errorf("public channel %+v", c)
	}
	if res := f.do("GET", "/dashboard/api/overview?app=nope", nil, bearer); res.StatusCode != 404 {
		t.Errorf("unknown app: %d", res.StatusCode)
	}
	res = f.do("GET", "/dashboard/api/overview", nil, bearer) // the first app by default
	ans = overviewAnswer{}
	if err := json.NewDecoder(res.Body).Decode(&ans); err != nil || ans.App != "1" {
		t.Errorf("default app %q, %v", ans.App, err)
	}
}

func publishReq(body string, header bool) func(*http.Request) {
	return func(r *http.Request) {
		bearer(r)
		r.Header.Set("Content-Type", "application/json")
		if header {
			r.Header.Set("X-Herald-Dashboard", "1")
		}
	}
}

func TestPublish(t *testing.T) {
	f := newFixture(t, Options{Token: token})
	sub := subscribe(t, f.a, "news", "1.1", "")
	<-sub.got // subscription_succeeded
	cases := []struct {
		body   string
		header bool
		status int
		want   string
	}{
		{`{"app":"1","channel":"news","event":"e","data":"x"}`, false, 403, "X-Herald-Dashboard"},
		{`{"app":"1","channel":"bad channel","event":"e","data":"x"}`, true, 400, `channel name \"bad channel\" contains`},
		{`{"app":"1","channel":"news","event":"","data":"x"}`, true, 400, "event name is empty"},
		{`{"app":"9","channel":"news","event":"e","data":"x"}`, true, 404, "no app"},
		{`not json`, true, 400, "must be JSON"},
		{`{"app":"1","channel":"news","event":"e","data":"` + strings.Repeat("x", apps.DefaultLimits.MaxEventPayloadBytes+1) + `"}`, true, 413, "limit"},
	}
	for _, c := range cases {
		res := f.do("POST", "/dashboard/api/publish", strings.NewReader(c.body), publishReq(c.body, c.header))
		if body := readAll(t, res); res.StatusCode != c.status || !strings.Contains(body, c.want) {
			t.Errorf("%.60s: %d %s; want %d %q", c.body, res.StatusCode, body, c.status, c.want)
		}
	}
	select {
	case fr := <-sub.got:
		t.Fatalf("a refused publish was delivered: %s", fr)
	default:
	}
	if res := f.do("GET", "/dashboard/api/publish", nil, bearer); res.StatusCode != 405 {
		t.Errorf("GET publish: %d", res.StatusCode)
	}
	body := `{"app":"1","channel":"news","event":"test-event","data":"{\"hello\":1}"}`
	res := f.do("POST", "/dashboard/api/publish", strings.NewReader(body), publishReq(body, true))
	if b := readAll(t, res); res.StatusCode != 200 || !strings.Contains(b, `"ok":true`) {
		t.Fatalf("publish: %d %s", res.StatusCode, b)
	}
	fr := <-sub.got
	if !strings.Contains(string(fr), `"event":"test-event"`) || !strings.Contains(string(fr), `"data":"{\"hello\":1}"`) {
		t.Errorf("delivered %s", fr)
	}
	recent, ch := f.console.subscribe(1)
	f.console.unsubscribe(ch)
	if last := recent[len(recent)-1]; last.Msg != "dashboard: test event published" || last.App != "1" {
		t.Errorf("console's last line %+v", last)
	}
}

// sseReader reads a live stream's events.
type sseReader struct {
	t  *testing.T
	sc *bufio.Scanner
}

type sseEvent struct{ name, data string }

func (r *sseReader) next() sseEvent {
	r.t.Helper()
	var e sseEvent
	for r.sc.Scan() {
		line := r.sc.Text()
		switch {
		case line == "" && e.name != "":
			return e
		case strings.HasPrefix(line, "event: "):
			e.name = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			e.data = line[len("data: "):]
		}
	}
	r.t.Fatalf("stream ended: %v", r.sc.Err())
	return e
}

// until skips events until one named name satisfies ok.
func (r *sseReader) until(name string, ok func(string) bool) string {
	r.t.Helper()
	for {
		if e := r.next(); e.name == name && ok(e.data) {
			return e.data
		}
	}
}

func (f *fixture) live(query string) *sseReader {
	f.t.Helper()
	res := f.do("GET", "/dashboard/api/live?"+query, nil, bearer)
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		f.t.Fatalf("live: %d %s", res.StatusCode, readAll(f.t, res))
	}
	return &sseReader{t: f.t, sc: bufio.NewScanner(res.Body)}
}

// The live stream starts with the samples so far and the recent log
// lines, then carries the tailed channel's events (only its own) and the
// app's log lines (not another app's), debug ones included while it runs.
func TestLive(t *testing.T) {
	f := newFixture(t, Options{Token: token})
	f.h.sampler.add(Sample{Time: 1, Connections: 7})
	f.log.Info("before the stream", "app", "1")
	f.log.Debug("not kept: nobody watched", "app", "1")
	r := f.live("app=1&channel=news")
	if e := r.next(); e.name != "samples" || !strings.Contains(e.data, `"connections":7`) {
		t.Fatalf("first event %+v", e)
	}
	if e := r.next(); e.name != "log" || !strings.Contains(e.data, `"msg":"before the stream"`) {
		t.Fatalf("recent log line %+v", e)
	}
	ctx := context.Background()
	if err := f.n.Publish(ctx, f.a, []string{"other"}, "skip", `"no"`, ""); err != nil {
		t.Fatal(err)
	}
	if err := f.n.Publish(ctx, f.a, []string{"news"}, "headline", `{"n":1}`, "1.5"); err != nil {
		t.Fatal(err)
	}
	data := r.until("event", func(string) bool { return true })
	var ev tappedEvent
	if err := json.Unmarshal([]byte(data), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Channel != "news" || ev.Event != "headline" || string(ev.Data) != `"{\"n\":1}"` || ev.Offset != 1 || ev.Exclude != "1.5" {
		t.Errorf("tapped %s", data)
	}
	f.log.Debug("connected", "app", "2", "socket_id", "9.9") // another app: not shown
	f.log.With("app", "1", "socket_id", "1.1").WithGroup("g").Debug("disconnected", "code", 4009)
	data = r.until("log", func(string) bool { return true })
	var e Entry
	if err := json.Unmarshal([]byte(data), &e); err != nil {
		t.Fatal(err)
	}
	if e.Msg != "disconnected" || e.Level != "DEBUG" || e.App != "1" || len(e.Attrs) != 3 || e.Attrs[2] != [2]string{"g.code", "4009"} {
		t.Errorf("log line %s", data)
	}
	f.h.sampler.add(Sample{Time: 2, Connections: 8})
	r.until("sample", func(d string) bool { return strings.Contains(d, `"connections":8`) })
	f.h.Close() // shutdown ends the stream
	for r.sc.Scan() {
	}
	if f.console.watching.Load() != 0 || f.a.Hub.ChannelCount() != 0 {
		t.Errorf("after the stream: %d watching, %d channels", f.console.watching.Load(), f.a.Hub.ChannelCount())
	}
}

// The tee passes records to the base handler at its level, keeps info and
// above in a bounded ring, and turns debug on only while a stream watches.
func TestConsoleTee(t *testing.T) {
	var base strings.Builder
	c := NewConsole()
	log := slog.New(c.Handler(slog.NewTextHandler(&base, &slog.HandlerOptions{Level: slog.LevelWarn})))
	ctx := context.Background()
	if log.Enabled(ctx, slog.LevelDebug) {
		t.Error("debug enabled with nobody watching")
	}
	for i := range consoleRing + 5 {
		log.Info("line", "i", i)
	}
	log.Warn("warned")
	if strings.Contains(base.String(), "msg=line") || !strings.Contains(base.String(), "msg=warned") {
		t.Errorf("base got %q", base.String())
	}
	recent, ch := c.subscribe(4)
	if len(recent) != consoleRing || recent[0].Attrs[0][1] != "6" || recent[len(recent)-1].Msg != "warned" {
		t.Errorf("ring: %d entries, first %+v, last %+v", len(recent), recent[0], recent[len(recent)-1])
	}
	if !log.Enabled(ctx, slog.LevelDebug) {
		t.Error("debug disabled while watched")
	}
	log.Debug("watched")
	if e := <-ch; e.Msg != "watched" {
		t.Errorf("got %+v", e)
	}
	for range 10 { // a stalled reader loses lines; the logger never blocks
		log.Info("flood")
	}
	c.unsubscribe(ch)
	if log.Enabled(ctx, slog.LevelDebug) {
		t.Error("debug still enabled after the stream")
	}
}

func TestSamplePoint(t *testing.T) {
	prev := Numbers{MessagesIn: 10, MessagesOut: 100, APIRequests: 5}
	cur := Numbers{Connections: 4, Channels: 2, MessagesIn: 30, MessagesOut: 500, APIRequests: 6}
	p := point(prev, cur, 2*time.Second, time.UnixMilli(1000))
	if p.InPerS != 10 || p.OutPerS != 200 || p.APIPerS != 0.5 || p.Connections != 4 || p.Time != 1000 {
		t.Errorf("point %+v", p)
	}
	s := newSampler(nil)
	for i := range maxSamples + 3 {
		s.add(Sample{Time: int64(i)})
	}
	got, ch := s.subscribe()
	s.unsubscribe(ch)
	if len(got) != maxSamples || got[0].Time != 3 {
		t.Errorf("ring %d, first %d", len(got), got[0].Time)
	}
}
