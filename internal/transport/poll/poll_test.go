package poll

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
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
	"github.com/herald-ws/herald/internal/session"
	"github.com/herald-ws/herald/internal/signature"
)

type fixture struct {
	t   *testing.T
	n   *node.Node
	a   *node.App
	mgr *session.Manager
	srv *Server
	web *httptest.Server

	waiting chan struct{} // a poll is held
}

func newFixture(t *testing.T, edit ...func(*Server)) *fixture {
	t.Helper()
	a := &apps.App{ID: "1", Key: "k", Secret: "s", Enabled: true, ActivityTimeout: 30 * time.Second,
		PingInterval: time.Minute, PongTimeout: time.Minute, MaxMessageBytes: 1000, Limits: apps.DefaultLimits,
		ClientEvents: apps.ClientEventsMembers,
		History:      apps.History{Enabled: true, Channels: []string{"*"}, MaxEvents: 100, TTL: time.Minute}}
	reg, err := apps.NewRegistry([]*apps.App{a})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	n := node.New(reg, memory.New(), log)
	f := &fixture{t: t, n: n, a: n.AppByKey("k"), mgr: session.NewManager(n, log, 0), waiting: make(chan struct{}, 100)}
	f.srv = New(f.mgr, "", log)
	f.srv.held = func() { f.waiting <- struct{}{} }
	for _, e := range edit {
		e(f.srv)
	}
	f.web = httptest.NewServer(f.srv)
	t.Cleanup(f.web.Close)
	t.Cleanup(f.srv.Close) // ends held requests before the server waits for them
	return f
}

func (f *fixture) url(id, verb string) string {
	u := f.web.URL + "/pusher/app/k/" + id + "/" + verb
	if verb != "xhr_send" {
		u += "?protocol=7&client=js&version=8.4.0"
	}
	return u
}

// stream is a receive response read line by line.
type stream struct {
	t   *testing.T
	res *http.Response
	rd  *bufio.Reader
}

func (f *fixture) receive(id, verb string) *stream {
	f.t.Helper()
	res, err := http.Post(f.url(id, verb), "application/json", nil)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { res.Body.Close() })
	return &stream{t: f.t, res: res, rd: bufio.NewReader(res.Body)}
}

// line reads the next frame line (without its newline); "" at the end.
func (s *stream) line() string {
	s.t.Helper()
	l, err := s.rd.ReadString('\n')
	if err == io.EOF && l == "" {
		return ""
	}
	if err != nil {
		s.t.Fatalf("reading a frame: %v (got %q)", err, l)
	}
	return strings.TrimSuffix(l, "\n")
}

// messages reads the next line, an "a" frame, and decodes its messages.
func (s *stream) messages() []pusher.Frame {
	s.t.Helper()
	return decodeBatch(s.t, s.line())
}

func decodeBatch(t *testing.T, l string) []pusher.Frame {
	t.Helper()
	var raw []string
	if !strings.HasPrefix(l, "a") || json.Unmarshal([]byte(l[1:]), &raw) != nil {
		t.Fatalf("not an a frame: %q", l)
	}
	out := make([]pusher.Frame, len(raw))
	for i, m := range raw {
		fr, err := pusher.DecodeFrame([]byte(m))
		if err != nil {
			t.Fatalf("message %q: %v", m, err)
		}
		out[i] = fr
	}
	return out
}

// poll runs one xhr request and returns its lines.
func (f *fixture) poll(id string) []string {
	f.t.Helper()
	s := f.receive(id, "xhr")
	body, err := io.ReadAll(s.rd)
	if err != nil {
		f.t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
}

func (f *fixture) send(id string, msgs ...string) int {
	f.t.Helper()
	b, _ := json.Marshal(append([]string{}, msgs...))
	res, err := http.Post(f.url(id, "xhr_send"), "application/json", strings.NewReader(string(b)))
	if err != nil {
		f.t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

func subscribeMsg(channel, auth, channelData string) string {
	b, _ := json.Marshal(map[string]any{"event": "pusher:subscribe", "data": map[string]string{"channel": channel, "auth": auth, "channel_data": channelData}})
	return string(b)
}

func socketID(t *testing.T, fr pusher.Frame) string {
	t.Helper()
	var d struct {
		SocketID string `json:"socket_id"`
	}
	var s string
	if fr.Event != "pusher:connection_established" || json.Unmarshal(fr.Data, &s) != nil || json.Unmarshal([]byte(s), &d) != nil {
		t.Fatalf("not connection_established: %+v", fr)
	}
	return d.SocketID
}

func (f *fixture) publish(channel, event, data string) {
	f.t.Helper()
	if err := f.n.Publish(context.Background(), f.a, []string{channel}, event, data, ""); err != nil {
		f.t.Fatal(err)
	}
}

func TestStreamingSession(t *testing.T) {
	f := newFixture(t)
	s := f.receive("1/abcdefgh", "xhr_streaming")
	if ct := s.res.Header.Get("Content-Type"); s.res.StatusCode != 200 || ct != "application/javascript; charset=UTF-8" {
		t.Fatalf("%d %q", s.res.StatusCode, ct)
	}
	if l := s.line(); l != "o" {
		t.Fatalf("first frame %q, want o", l)
	}
	if id := socketID(t, s.messages()[0]); !pusher.ValidSocketID(id) {
		t.Errorf("socket id %q", id)
	}
	if code := f.send("1/abcdefgh", subscribeMsg("news", "", "")); code != 204 {
		t.Fatalf("xhr_send: %d", code)
	}
	if m := s.messages(); m[0].Event != "pusher_internal:subscription_succeeded" || m[0].Channel != "news" {
		t.Fatalf("got %+v", m)
	}
	f.publish("news", "e", "hello")
	m := s.messages()
	if m[0].Event != "e" || string(m[0].Data) != `"hello"` {
		t.Fatalf("event %+v", m)
	}
	if f.srv.Count() != 1 || f.mgr.Count() != 1 {
		t.Errorf("sessions: transport %d, manager %d", f.srv.Count(), f.mgr.Count())
	}
}

func TestPollingSession(t *testing.T) {
	f := newFixture(t)
	if got := f.poll("7/pollpoll"); len(got) != 1 || got[0] != "o" {
		t.Fatalf("first poll %q, want [o]", got)
	}
	if got := f.poll("7/pollpoll"); len(got) != 1 {
		t.Fatalf("second poll %q", got)
	} else {
		socketID(t, decodeBatch(t, got[0])[0])
	}
	f.send("7/pollpoll", subscribeMsg("news", "", ""))
	if got := f.poll("7/pollpoll"); decodeBatch(t, got[0])[0].Event != "pusher_internal:subscription_succeeded" {
		t.Fatalf("got %q", got)
	}
	// A held poll is answered by the next event.
	answer := make(chan []string, 1)
	go func() { answer <- f.poll("7/pollpoll") }()
	<-f.waiting // the poll is held
	f.publish("news", "e", "1")
	got := <-answer
	if len(got) != 1 || decodeBatch(t, got[0])[0].Event != "e" {
		t.Fatalf("held poll answered %q", got)
	}
}

// Idle, a stream gets "h" lines and a held poll is answered with "h".
func TestHeartbeats(t *testing.T) {
	f := newFixture(t, func(s *Server) { s.Heartbeat = 20 * time.Millisecond })
	s := f.receive("1/beatbeat", "xhr_streaming")
	s.line()
	s.messages()
	for range 2 {
		if l := s.line(); l != "h" {
			t.Errorf("idle stream sent %q, want h", l)
		}
	}
	f.poll("2/beatpoll")
	f.poll("2/beatpoll")
	if got := f.poll("2/beatpoll"); len(got) != 1 || got[0] != "h" {
		t.Errorf("idle poll %q, want [h]", got)
	}
}

// A session nobody receives for is closed like a dropped socket: its
// presence member leaves.
func TestSessionExpiresWithoutReceiver(t *testing.T) {
	f := newFixture(t, func(s *Server) { s.Linger = 50 * time.Millisecond })
	join := func(id, user string) *stream {
		s := f.receive(id, "xhr_streaming")
		s.line()
		sid := socketID(t, s.messages()[0])
		cd := `{"user_id":"` + user + `"}`
		f.send(id, subscribeMsg("presence-room", signature.ChannelAuth("k", "s", sid, "presence-room", cd), cd))
		if m := s.messages(); m[0].Event != "pusher_internal:subscription_succeeded" {
			t.Fatalf("%s: %+v", user, m)
		}
		return s
	}
	stay := join("1/staystay", "stay")
	leave := join("2/leaveaaa", "leave")
	if m := stay.messages(); m[0].Event != "pusher_internal:member_added" {
		t.Fatalf("got %+v", m)
	}
	leave.res.Body.Close() // the client is gone
	m := stay.messages()   // within the linger, not before the stream ended
	if m[0].Event != "pusher_internal:member_removed" || !strings.Contains(string(m[0].Data), "leave") {
		t.Fatalf("got %+v", m)
	}
	if f.srv.Count() != 1 || f.mgr.Count() != 1 {
		t.Errorf("sessions after expiry: transport %d, manager %d", f.srv.Count(), f.mgr.Count())
	}
	// A new receive under the old name is a new session.
	if got := f.poll("2/leaveaaa"); got[0] != "o" {
		t.Errorf("expired name reused: %q", got)
	}
}

func TestRefusedLikeASocket(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct {
		url  string
		code int
	}{
		{f.web.URL + "/pusher/app/nokey/1/abc/xhr?protocol=7", pusher.CodeAppNotFound},
		{f.web.URL + "/pusher/app/k/1/abc/xhr", pusher.CodeNoProtocol},
		{f.web.URL + "/pusher/app/k/1/abc/xhr?protocol=4", pusher.CodeUnsupportedProtocol},
	} {
		res, err := http.Post(c.url, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		lines := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
		if len(lines) != 3 || lines[0] != "o" || !strings.HasPrefix(lines[2], fmt.Sprintf("c[%d,", c.code)) {
			t.Errorf("%s: %q", c.url, lines)
			continue
		}
		if m := decodeBatch(t, lines[1]); m[0].Event != "pusher:error" || !strings.Contains(string(m[0].Data), fmt.Sprint(c.code)) {
			t.Errorf("%s: error frame %+v", c.url, m)
		}
	}
	if f.srv.Count() != 0 || f.mgr.Count() != 0 {
		t.Errorf("refused sessions kept: %d %d", f.srv.Count(), f.mgr.Count())
	}
}

func TestSlowPollerIsCutOff(t *testing.T) {
	f := newFixture(t)
	f.poll("3/slowslow")
	f.poll("3/slowslow")
	f.send("3/slowslow", subscribeMsg("hot", "", ""))
	f.poll("3/slowslow") // subscription_succeeded
	for i := range 4097 {
		f.publish("hot", "e", fmt.Sprint(i))
	}
	got := f.poll("3/slowslow")
	if len(got) != 2 || !strings.HasPrefix(got[1], "c[4100,") {
		t.Fatalf("slow poller got %d lines ending %q", len(got), got[len(got)-1])
	}
	if m := decodeBatch(t, got[0]); len(m) != 1 || m[0].Event != "pusher:error" {
		t.Errorf("before the close: %+v", m)
	}
	if f.srv.Count() != 0 || f.mgr.Count() != 0 {
		t.Errorf("cut-off session kept: %d %d", f.srv.Count(), f.mgr.Count())
	}
}

func TestSendRules(t *testing.T) {
	f := newFixture(t)
	s := f.receive("4/sendsend", "xhr_streaming")
	s.line()
	s.messages()
	// Another client cannot use the session's name.
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/pusher/app/k/4/sendsend/xhr_send", strings.NewReader(`["{}"]`))
	req.RemoteAddr = "10.9.9.9:4000"
	f.srv.ServeHTTP(rec, req)
	if rec.Code != 404 {
		t.Errorf("xhr_send from another address: %d", rec.Code)
	}
	if code := f.send("9/nosuchss", subscribeMsg("x", "", "")); code != 404 {
		t.Errorf("xhr_send to an unknown session: %d", code)
	}
	res, _ := http.Post(f.url("4/sendsend", "xhr_send"), "application/json", strings.NewReader(`{"event":"x"}`))
	res.Body.Close()
	if res.StatusCode != 400 {
		t.Errorf("xhr_send of an object: %d", res.StatusCode)
	}
	if code := f.send("4/sendsend"); code != 204 { // pusher-js's heartbeat: []
		t.Errorf("empty batch: %d", code)
	}
	// A message over max_message_bytes closes the session with 1009.
	f.send("4/sendsend", `{"event":"pusher:ping","data":"`+strings.Repeat("x", 1000)+`"}`)
	if l := s.line(); !strings.HasPrefix(l, "c[1009,") {
		t.Errorf("oversized message: %q", l)
	}
}

func TestShutdownClosesSessions(t *testing.T) {
	f := newFixture(t)
	s := f.receive("5/shutdown", "xhr_streaming")
	s.line()
	s.messages()
	f.poll("6/waiting1") // a session with no receive request running
	f.mgr.Shutdown()
	if m := s.messages(); m[0].Event != "pusher:error" {
		t.Fatalf("got %+v", m)
	}
	if l := s.line(); !strings.HasPrefix(l, "c[4200,") {
		t.Errorf("close %q", l)
	}
	f.srv.Close()
	if f.srv.Count() != 0 || f.mgr.Count() != 0 {
		t.Errorf("after Close: %d %d", f.srv.Count(), f.mgr.Count())
	}
}

// A new receive request replaces the running one (pusher-js reopens its
// stream past 256 KB); the session goes on, without a second "o".
func TestReceiveReplaced(t *testing.T) {
	f := newFixture(t)
	first := f.receive("8/replaced", "xhr_streaming")
	first.line()
	first.messages()
	second := f.receive("8/replaced", "xhr_streaming")
	if l := first.line(); l != "" {
		t.Errorf("the replaced stream went on: %q", l)
	}
	f.publish("x", "e", "1") // nobody subscribed: nothing
	f.send("8/replaced", subscribeMsg("news", "", ""))
	if m := second.messages(); m[0].Event != "pusher_internal:subscription_succeeded" {
		t.Errorf("second stream: %+v", m)
	}
}

func TestMatch(t *testing.T) {
	s := New(nil, "/ws", nil)
	for path, want := range map[string]bool{
		"/ws/pusher/app/k/123/abcdefgh/xhr_streaming": true,
		"/ws/app/k/0/abc-_Z9/xhr":                     true,
		"/ws/app/k/999/x/xhr_send":                    true,
		"/pusher/app/k/1/a/xhr":                       false,
		"/ws/app/k/1234/a/xhr":                        false,
		"/ws/app/k/a1/a/xhr":                          false,
		"/ws/app/k/1/a.b/xhr":                         false,
		"/ws/app/k/1/a/other":                         false,
		"/ws/app/k/channels/c/events":                 false,
		"/ws/app//1/a/xhr":                            false,
	} {
		if got := s.Match(path); got != want {
			t.Errorf("Match(%q) = %v, want %v", path, got, want)
		}
	}
}

func TestFraming(t *testing.T) {
	frames := [][]byte{[]byte(`{"event":"e","data":"a\"b\n"}`), []byte(`{}`)}
	line := string(appendBatch(nil, frames))
	var back []string
	if !strings.HasSuffix(line, "\n") || json.Unmarshal([]byte(line[1:len(line)-1]), &back) != nil || len(back) != 2 || back[0] != string(frames[0]) {
		t.Errorf("batch %q does not decode back", line)
	}
	if got := string(appendClose(nil, 4200, `say "bye"`)); got != "c[4200,\"say \\\"bye\\\"\"]\n" {
		t.Errorf("close frame %q", got)
	}
}

func TestParseSend(t *testing.T) {
	got, err := parseSend([]byte(` ["{\"event\":\"a\"}","{}"] `), 100)
	if err != nil || len(got) != 2 || string(got[0]) != `{"event":"a"}` {
		t.Errorf("got %q %v", got, err)
	}
	if got, err := parseSend([]byte(`[]`), 100); err != nil || len(got) != 0 {
		t.Errorf("heartbeat: %q %v", got, err)
	}
	for _, bad := range []string{``, `{}`, `[1]`, `["a",`, `[{"event":"a"}]`, `"x"`} {
		if _, err := parseSend([]byte(bad), 100); err != errSendBody {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if _, err := parseSend([]byte(`["`+strings.Repeat("x", 101)+`"]`), 100); err != errTooBig {
		t.Errorf("oversized: %v", err)
	}
}

func FuzzParseSend(f *testing.F) {
	for _, s := range []string{`["{\"event\":\"pusher:ping\",\"data\":{}}"]`, `[]`, `["a","b"]`, `[1]`, `{}`, `["\u0000"]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		msgs, err := parseSend(body, 64)
		if err != nil {
			return
		}
		for _, m := range msgs {
			if len(m) > 64 {
				t.Fatalf("%q: a message of %d bytes passed a 64-byte limit", body, len(m))
			}
		}
		// What was accepted re-encodes to a body that parses the same.
		strs := make([]string, len(msgs))
		for i, m := range msgs {
			strs[i] = string(m)
		}
		again, _ := json.Marshal(strs)
		back, err := parseSend(again, 64)
		if err != nil || len(back) != len(msgs) {
			t.Fatalf("%q: re-encoded %s parses to %q, %v", body, again, back, err)
		}
	})
}

// Past pusher-js's 256 K characters a streaming response takes no more
// frames: pusher-js drops it and reopens; the frames wait for the new one.
func TestStreamStopsAtPusherJSBufferLimit(t *testing.T) {
	f := newFixture(t)
	s := f.receive("5/bigbigbi", "xhr_streaming")
	chars := 0    // what the response carried, as pusher-js counts it
	for range 2 { // o, connection_established
		chars += jsLength([]byte(s.line())) + 1
	}
	f.send("5/bigbigbi", subscribeMsg("big", "", ""))
	chars += jsLength([]byte(s.line())) + 1 // subscription_succeeded
	data := strings.Repeat("é", 900)        // 2 bytes, 1 JavaScript character each
	// One event at a time, each read before the next, until the response
	// is past the limit: from then on it must take nothing.
	i := 0
	for chars <= streamLimit {
		f.publish("big", "e", fmt.Sprintf("%d:%s", i, data))
		l := s.line()
		chars += jsLength([]byte(l)) + 1
		if m := decodeBatch(t, l); len(m) != 1 {
			t.Fatalf("%d messages in a line", len(m))
		}
		i++
	}
	const n = 400
	for j := i; j < n; j++ {
		f.publish("big", "e", fmt.Sprintf("%d:%s", j, data))
	}
	// What pusher-js does now: a new request, which ends the spent one.
	next := f.receive("5/bigbigbi", "xhr_streaming")
	if l := s.line(); l != "" {
		t.Errorf("the spent response went on: %.40q", l)
	}
	for seen := i; seen < n; {
		for _, m := range next.messages() {
			var d string
			_ = json.Unmarshal(m.Data, &d)
			if want := fmt.Sprintf("%d:", seen); !strings.HasPrefix(d, want) {
				t.Fatalf("event %.10q, want %q…", d, want)
			}
			seen++
		}
	}
}

func TestJSLength(t *testing.T) {
	for s, want := range map[string]int{"": 0, "abc": 3, "é": 1, "€": 1, "😀": 2, "a😀é": 4} {
		if got := jsLength([]byte(s)); got != want {
			t.Errorf("jsLength(%q) = %d, want %d", s, got, want)
		}
	}
}
