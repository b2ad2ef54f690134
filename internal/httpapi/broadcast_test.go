package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/herald-ws/herald/internal/apps"
	"github.com/herald-ws/herald/internal/broker/memory"
	"github.com/herald-ws/herald/internal/node"
	"github.com/herald-ws/herald/internal/pusher"
)

const (
	token1 = "t0ken-of-app-one-0123456789"
	token2 = "t0ken-of-app-two-9876543210"
)

// newBroadcastAPI serves app "1" (token1, the default channel, history on
// private- channels), app "2" (token2, channel "news" with history, small
// limits) and app "3" (no token).
func newBroadcastAPI(t testing.TB, log *slog.Logger) (*Handler, *node.Node) {
	t.Helper()
	small := apps.DefaultLimits
	small.MaxEventPayloadBytes, small.MaxChannelsPerEvent, small.MaxRequestBytes, small.MaxEventNameLength = 20, 2, 200, 10
	list := []*apps.App{
		{ID: "1", Key: "key1", Secret: "s1", Enabled: true, Limits: apps.DefaultLimits, BroadcastToken: token1,
			History: apps.History{Enabled: true, Channels: []string{"private-*"}}},
		{ID: "2", Key: "key2", Secret: "s2", Enabled: true, Limits: small, BroadcastToken: token2, BroadcastChannel: "news",
			History: apps.History{Enabled: true, Channels: []string{"news"}}},
		{ID: "3", Key: "key3", Secret: "s3", Enabled: true, Limits: apps.DefaultLimits},
	}
	reg, err := apps.NewRegistry(list)
	if err != nil {
		t.Fatal(err)
	}
	n := node.New(reg, memory.New(), log)
	return New(n, "", log), n
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// listen subscribes a recorder to channel ch of app id, and keeps only
// what comes after the subscription.
func listen(t testing.TB, n *node.Node, id, ch string) *recorder {
	t.Helper()
	r := &recorder{id: "1." + strconv.Itoa(len(ch))}
	if _, err := n.AppByID(id).Hub.Subscribe(ch, pusher.ParseChannel(ch), r, nil, 0); err != nil {
		t.Fatal(err)
	}
	r.frames = nil // subscription_succeeded
	return r
}

func postBroadcast(h *Handler, auth, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("POST", "/broadcast", strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	w := httptest.NewRecorder()
	h.ServeBroadcast(w, req)
	return w
}

func TestBroadcastDefaultChannel(t *testing.T) {
	h, n := newBroadcastAPI(t, quiet())
	sub := listen(t, n, "1", "broadcast")
	w := postBroadcast(h, "Bearer "+token1, `{"message": {"type": "ticket_created", "data": {"id": 7, "subject": "Printer <on fire>"}}}`)
	if w.Code != 200 || w.Body.String() != `{"ok":true,"channels":["broadcast"],"offsets":{}}` {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if w.Header().Get("Content-Type") != "application/json" {
		t.Errorf("Content-Type %q", w.Header().Get("Content-Type"))
	}
	want := `{"event":"ticket_created","channel":"broadcast","data":"{\"id\":7,\"subject\":\"Printer <on fire>\"}"}`
	if len(sub.frames) != 1 || sub.frames[0] != want {
		t.Fatalf("delivered %q, want %s", sub.frames, want)
	}
}

// The token says which app: app 2's token publishes to app 2's channels,
// on its own default channel, and never to app 1's.
func TestBroadcastTokenPicksApp(t *testing.T) {
	h, n := newBroadcastAPI(t, quiet())
	one := listen(t, n, "1", "news")
	two := listen(t, n, "2", "news")
	w := postBroadcast(h, "bearer  "+token2+" ", `{"message":{"type":"e","data":1}}`) // scheme in any case, spaces around
	if w.Code != 200 || w.Body.String() != `{"ok":true,"channels":["news"],"offsets":{"news":1}}` {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if len(two.frames) != 1 || len(one.frames) != 0 {
		t.Fatalf("app 2 got %q, app 1 got %q", two.frames, one.frames)
	}
}

func TestBroadcastNamedChannels(t *testing.T) {
	h, n := newBroadcastAPI(t, quiet())
	a, b, def := listen(t, n, "1", "private-a"), listen(t, n, "1", "presence-b"), listen(t, n, "1", "broadcast")
	w := postBroadcast(h, "Bearer "+token1, `{"message":{"type":"e","data":{"x":1}},"channel":"private-a"}`)
	if w.Code != 200 || w.Body.String() != `{"ok":true,"channels":["private-a"],"offsets":{"private-a":1}}` {
		t.Fatalf("channel: %d %s", w.Code, w.Body)
	}
	w = postBroadcast(h, "Bearer "+token1, `{"message":{"type":"e","data":{"x":2}},"channels":["private-a","presence-b"]}`)
	// Offsets are those of the channels with history only.
	if w.Code != 200 || w.Body.String() != `{"ok":true,"channels":["private-a","presence-b"],"offsets":{"private-a":2}}` {
		t.Fatalf("channels: %d %s", w.Code, w.Body)
	}
	if len(a.frames) != 2 || len(b.frames) != 1 || len(def.frames) != 0 {
		t.Fatalf("private-a %q, presence-b %q, broadcast %q", a.frames, b.frames, def.frames)
	}
	if b.frames[0] != `{"event":"e","channel":"presence-b","data":"{\"x\":2}"}` {
		t.Fatalf("presence-b got %s", b.frames[0])
	}
}

// data is message.data as compact JSON text, whatever its type, so that
// JSON.parse(data) on the client gives message.data back.
func TestBroadcastDataEncoding(t *testing.T) {
	h, n := newBroadcastAPI(t, quiet())
	sub := listen(t, n, "1", "broadcast")
	cases := []struct{ data, want string }{
		{`{ "a" : [1, 2.50, "x y"], "b": null }`, `{"a":[1,2.50,"x y"],"b":null}`},
		{`"hello"`, `"hello"`},
		{`"caf\u00e9 \"q\""`, `"caf\u00e9 \"q\""`},
		{`42`, `42`},
		{`true`, `true`},
		{`[ ]`, `[]`},
		{`null`, `null`},
		{``, `null`}, // no message.data at all
	}
	for _, c := range cases {
		msg := `{"type":"e","data":` + c.data + `}`
		if c.data == "" {
			msg = `{"type":"e"}`
		}
		sub.frames = nil
		if w := postBroadcast(h, "Bearer "+token1, `{"message":`+msg+`}`); w.Code != 200 {
			t.Fatalf("data %s: %d %s", c.data, w.Code, w.Body)
		}
		var ev struct{ Data string }
		if len(sub.frames) != 1 || json.Unmarshal([]byte(sub.frames[0]), &ev) != nil {
			t.Fatalf("data %s: delivered %q", c.data, sub.frames)
		}
		if ev.Data != c.want {
			t.Errorf("data %s: event data %s, want %s", c.data, ev.Data, c.want)
		}
	}
}

// Every refusal has its status and a JSON error naming the field at
// fault, and publishes nothing.
func TestBroadcastRefusals(t *testing.T) {
	h, n := newBroadcastAPI(t, quiet())
	subs := []*recorder{listen(t, n, "1", "broadcast"), listen(t, n, "2", "news"), listen(t, n, "1", "a")}
	ok1, ok2 := "Bearer "+token1, "Bearer "+token2
	long := `["c0","c1","c2"]`
	cases := []struct {
		name, auth, body string
		status           int
		mention          string // in the error
	}{
		{"no Authorization", "", `{"message":{"type":"e"}}`, 401, "Authorization: Bearer"},
		{"basic scheme", "Basic " + token1, `{"message":{"type":"e"}}`, 401, "Bearer <token>"},
		{"bearer, no token", "Bearer ", `{"message":{"type":"e"}}`, 401, "Bearer <token>"},
		{"wrong token", "Bearer nope", `{"message":{"type":"e"}}`, 401, "invalid broadcast token"},
		{"token prefix", "Bearer " + token1[:len(token1)-1], `{"message":{"type":"e"}}`, 401, "invalid broadcast token"},
		{"token plus more", "Bearer " + token1 + "x", `{"message":{"type":"e"}}`, 401, "invalid broadcast token"},
		{"app key as token", "Bearer key1", `{"message":{"type":"e"}}`, 401, "invalid broadcast token"},
		{"empty body", ok1, ``, 400, "empty body"},
		{"bad JSON", ok1, `{"message":`, 400, "invalid JSON body"},
		{"not an object", ok1, `["message"]`, 400, "must be an object"},
		{"trailing data", ok1, `{"message":{"type":"e"}} {}`, 400, "trailing data"},
		{"no message", ok1, `{"type":"e"}`, 400, `"message"`},
		{"bad socket_id", ok1, `{"message":{"type":"e"},"socket_id":"abc"}`, 400, "socket_id"},
		{"message null", ok1, `{"message":null}`, 400, `"message"`},
		{"message a string", ok1, `{"message":"e"}`, 400, "message must be an object"},
		{"no type", ok1, `{"message":{"data":{}}}`, 400, "message.type"},
		{"empty type", ok1, `{"message":{"type":""}}`, 400, "message.type"},
		{"type a number", ok1, `{"message":{"type":5}}`, 400, "message.type must be a string"},
		{"type too long", ok2, `{"message":{"type":"abcdefghijk"}}`, 400, "message.type"},
		{"type reserved", ok1, `{"message":{"type":"pusher:subscribe"}}`, 400, "message.type"},
		{"type internal", ok1, `{"message":{"type":"pusher_internal:member_added"}}`, 400, "message.type"},
		{"data too big", ok2, `{"message":{"type":"e","data":"0123456789012345678"}}`, 413, "message.data"},
		{"bad data JSON", ok1, `{"message":{"type":"e","data":{"a"}}}`, 400, "invalid JSON body"},
		{"channel and channels", ok1, `{"message":{"type":"e"},"channel":"a","channels":["b"]}`, 400, `"channel" or "channels"`},
		{"bad channel", ok1, `{"message":{"type":"e"},"channel":"a b"}`, 400, "channel:"},
		{"empty channel", ok1, `{"message":{"type":"e"},"channel":""}`, 400, "channel:"},
		{"channel a number", ok1, `{"message":{"type":"e"},"channel":7}`, 400, "channel must be a string"},
		{"empty channels", ok1, `{"message":{"type":"e"},"channels":[]}`, 400, "channels:"},
		{"channels a string", ok1, `{"message":{"type":"e"},"channels":"a"}`, 400, "channels must be a list of strings"},
		{"bad channels entry", ok1, `{"message":{"type":"e"},"channels":["a","b/c"]}`, 400, "channels[1]"},
		{"too many channels", ok2, `{"message":{"type":"e"},"channels":` + long + `}`, 400, "channels: 3 channels; the limit is 2"},
		{"channel twice", ok1, `{"message":{"type":"e"},"channels":["a","a"]}`, 400, "channels[1]"},
		{"encrypted channel", ok1, `{"message":{"type":"e"},"channel":"private-encrypted-x"}`, 400, "encrypted"},
		{"body over max_request_bytes", ok2, `{"message":{"type":"e"},"pad":"` + strings.Repeat("x", 200) + `"}`, 413, "over 200 bytes"},
	}
	for _, c := range cases {
		w := postBroadcast(h, c.auth, c.body)
		var e struct{ Error string }
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" {
			t.Errorf("%s: body %q is not a JSON error", c.name, w.Body)
			continue
		}
		if w.Code != c.status || !strings.Contains(e.Error, c.mention) {
			t.Errorf("%s: %d %q, want %d mentioning %q", c.name, w.Code, e.Error, c.status, c.mention)
		}
		if got := w.Header().Get("WWW-Authenticate"); (w.Code == 401) != (got != "") {
			t.Errorf("%s: WWW-Authenticate %q with status %d", c.name, got, w.Code)
		}
		if strings.Contains(w.Body.String(), token1) || strings.Contains(w.Body.String(), token2) {
			t.Errorf("%s: the answer echoes a token: %s", c.name, w.Body)
		}
	}
	for _, s := range subs {
		if len(s.frames) != 0 {
			t.Fatalf("a refused broadcast was delivered: %q", s.frames)
		}
	}
}

func TestBroadcastMethodAndDisabledApp(t *testing.T) {
	h, n := newBroadcastAPI(t, quiet())
	req := httptest.NewRequest("GET", "/broadcast", nil)
	req.Header.Set("Authorization", "Bearer "+token1)
	w := httptest.NewRecorder()
	h.ServeBroadcast(w, req)
	if w.Code != 405 || w.Header().Get("Allow") != "POST" {
		t.Fatalf("GET: %d Allow %q %s", w.Code, w.Header().Get("Allow"), w.Body)
	}
	n.AppByID("1").Enabled = false // before any request in a real server; here nothing runs concurrently
	if w := postBroadcast(h, "Bearer "+token1, `{"message":{"type":"e"}}`); w.Code != 403 {
		t.Fatalf("disabled app: %d %s", w.Code, w.Body)
	}
}

// With no app holding a token the endpoint is closed, whatever is sent,
// and says how to open it.
func TestBroadcastNotConfigured(t *testing.T) {
	h, _ := newAPI(t) // app "1" without a broadcast token
	for _, auth := range []string{"", "Bearer ", "Bearer anything-at-all-0123456789"} {
		w := postBroadcast(h, auth, `{"message":{"type":"e"}}`)
		var e struct{ Error string }
		if w.Code != 404 || json.Unmarshal(w.Body.Bytes(), &e) != nil ||
			!strings.Contains(e.Error, "broadcast_token") || !strings.Contains(e.Error, "HERALD_BROADCAST_TOKEN") {
			t.Fatalf("auth %q: %d %s, want 404 saying how to enable it", auth, w.Code, w.Body)
		}
	}
}

// failReader fails the test if the handler reads the body.
type failReader struct{ read bool }

func (f *failReader) Read([]byte) (int, error) { f.read = true; return 0, io.EOF }

// The token is checked before a byte of the body is read, and the
// connection of a refused request closes rather than drain the body.
func TestBroadcastTokenBeforeBody(t *testing.T) {
	h, _ := newBroadcastAPI(t, quiet())
	for _, auth := range []string{"", "Bearer wrong-token-0123456789"} {
		body := &failReader{}
		req := httptest.NewRequest("POST", "/broadcast", body)
		req.ContentLength = 1 << 30
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		h.ServeBroadcast(w, req)
		if w.Code != 401 || body.read || w.Header().Get("Connection") != "close" {
			t.Fatalf("auth %q: %d, body read %v, Connection %q", auth, w.Code, body.read, w.Header().Get("Connection"))
		}
	}
	// With the right token, a declared body over max_request_bytes is
	// refused unread too.
	body := &failReader{}
	req := httptest.NewRequest("POST", "/broadcast", body)
	req.ContentLength = 1 << 30
	req.Header.Set("Authorization", "Bearer "+token1)
	w := httptest.NewRecorder()
	h.ServeBroadcast(w, req)
	if w.Code != 413 || body.read {
		t.Fatalf("oversized: %d, body read %v", w.Code, body.read)
	}
}

func TestAppByToken(t *testing.T) {
	h, _ := newBroadcastAPI(t, quiet())
	for tok, want := range map[string]string{
		token1: "1", token2: "2", "": "", token1[:5]: "", token1 + token2: "", strings.ToUpper(token1): "",
	} {
		got := ""
		if a := h.appByToken(tok); a != nil {
			got = a.ID
		}
		if got != want {
			t.Errorf("appByToken(%q) = app %q, want %q", tok, got, want)
		}
	}
}

// A wrong token is logged at warn, rate-limited, and no token — neither
// the one tried nor a real one — is ever in the log.
func TestBroadcastRefusalsLoggedWithoutToken(t *testing.T) {
	logs := &capture{}
	h, _ := newBroadcastAPI(t, slog.New(logs))
	tried := token1[:len(token1)-1] + "X"
	for range 50 {
		postBroadcast(h, "Bearer "+tried, `{"message":{"type":"e"}}`)
	}
	got := logs.refusals()
	if len(got) == 0 || len(got) > 5 {
		t.Fatalf("%d warnings for 50 wrong tokens, want 1 to the burst of 5", len(got))
	}
	if got[0]["reason"] != "broadcast token wrong" || got[0]["status"] != "401" {
		t.Fatalf("warning %v", got[0])
	}
	postBroadcast(h, "", `{}`)
	logs.mu.Lock()
	defer logs.mu.Unlock()
	var all bytes.Buffer
	for _, r := range logs.recs {
		all.WriteString(r.Message)
		r.Attrs(func(a slog.Attr) bool { all.WriteString(" " + a.Key + "=" + a.Value.String()); return true })
		all.WriteByte('\n')
	}
	for _, tok := range []string{tried, token1, token2} {
		if strings.Contains(all.String(), tok) {
			t.Fatalf("the log holds a token:\n%s", all.String())
		}
	}
	if !strings.Contains(all.String(), "broadcast token missing") {
		t.Fatalf("a missing token is not logged:\n%s", all.String())
	}
}

// The in-flight cap counts /broadcast too.
func TestBroadcastInFlightCap(t *testing.T) {
	h, _ := newBroadcastAPI(t, quiet())
	h.MaxInFlight = 1
	h.inFlight.Add(1) // one request being served
	w := postBroadcast(h, "Bearer "+token1, `{"message":{"type":"e"}}`)
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" || h.Busy() != 1 {
		t.Fatalf("over the cap: %d Retry-After %q busy %d", w.Code, w.Header().Get("Retry-After"), h.Busy())
	}
	h.inFlight.Add(-1)
	if w := postBroadcast(h, "Bearer "+token1, `{"message":{"type":"e"}}`); w.Code != 200 || h.inFlight.Load() != 0 {
		t.Fatalf("under the cap: %d, in flight %d after", w.Code, h.inFlight.Load())
	}
}

// socket_id excludes that socket, as on the HTTP API (Laravel's toOthers).
func TestBroadcastSocketIDExcludes(t *testing.T) {
	h, n := newBroadcastAPI(t, quiet())
	a := n.AppByID("1")
	me, other := &recorder{id: "11.11"}, &recorder{id: "22.22"}
	for _, r := range []*recorder{me, other} {
		if _, err := a.Hub.Subscribe("broadcast", pusher.ParseChannel("broadcast"), r, nil, 0); err != nil {
			t.Fatal(err)
		}
		r.frames = nil
	}
	w := postBroadcast(h, "Bearer "+token1, `{"message":{"type":"e","data":1},"socket_id":"11.11"}`)
	if w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if len(me.frames) != 0 || len(other.frames) != 1 {
		t.Errorf("the excluded socket got %d frames, the other %d", len(me.frames), len(other.frames))
	}
}
