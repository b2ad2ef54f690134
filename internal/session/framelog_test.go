package session

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/herald-ws/herald/internal/apps"
	"github.com/herald-ws/herald/internal/signature"
)

// syncBuffer is a bytes.Buffer safe for the handler's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// debugHarness is a harness set up as herald serve --debug sets the
// server up: a text log at debug level, frames logged.
func debugHarness(t *testing.T, secret string) (*harness, *syncBuffer) {
	h := newHarness(t, func(a *apps.App) { a.Secret = secret })
	out := &syncBuffer{}
	h.mgr.log = slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h.mgr.LogFrames = true
	return h, out
}

func TestDebugLogsFramesRedacted(t *testing.T) {
	const secret = "9f2c1e7ab0d4-app-secret-do-not-log"
	h, out := debugHarness(t, secret)
	a, b := h.open(), h.open()

	authA := signature.ChannelAuth("key", secret, a.SocketID(), "private-room", "")
	authB := signature.ChannelAuth("key", secret, b.SocketID(), "private-room", "")
	a.subscribe("private-room", authA, "")
	b.subscribe("private-room", authB, "")
	a.one("pusher_internal:subscription_succeeded")
	b.one("pusher_internal:subscription_succeeded")
	userData := `{"id":"u1"}`
	signin := signature.UserAuth("key", secret, a.SocketID(), userData)
	c := h.open()
	c.signin(userData) // signed with another secret: refused, closed, and still redacted
	if closing, code := c.closing(); !closing || code != 4009 {
		t.Fatalf("bad sign-in: closing=%v code=%d, want a 4009 close", closing, code)
	}
	a.send(`{"event":"pusher:signin","data":{"user_data":"{\"id\":\"u1\"}","auth":"` + signin + `"}}`)
	if ev := a.events(); len(ev) != 1 || ev[0].Event != "pusher:signin_success" {
		t.Fatalf("sign-in: %+v\n%s", ev, out.String())
	}
	a.send(`{"event":"client-typing","channel":"private-room","data":{"who":"a"}}`)
	b.one("client-typing")

	log := out.String()
	for _, want := range []string{
		`msg=frame`, `dir=in`, `dir=out`,
		`pusher:connection_established`,          // out, queued at Open
		`pusher:subscribe`,                       // in
		`pusher_internal:subscription_succeeded`, // out
		`pusher:signin_success`,                  // out
		`client-typing`,                          // in on a, out on b
		`\"auth\":\"key:[redacted]\"`,            // the key kept, the signature gone
	} {
		if !strings.Contains(log, want) {
			t.Errorf("debug log lacks %s:\n%s", want, log)
		}
	}
	for _, leak := range []string{secret, sig(authA), sig(authB), sig(signin), sig(signature.UserAuth("key", "secret", c.SocketID(), userData))} {
		if strings.Contains(log, leak) {
			t.Errorf("debug log holds %q:\n%s", leak, log)
		}
	}
}

// sig is an auth value's signature, the part after "key:".
func sig(auth string) string { return auth[strings.IndexByte(auth, ':')+1:] }

func TestRedactFrame(t *testing.T) {
	hex := strings.Repeat("0a", 32)
	for _, c := range []struct{ in, want string }{
		{`{"event":"pusher:subscribe","data":{"channel":"private-a","auth":"key:` + hex + `"}}`,
			`{"event":"pusher:subscribe","data":{"channel":"private-a","auth":"key:[redacted]"}}`},
		// data as a JSON-encoded string, as some clients send it
		{`{"event":"pusher:subscribe","data":"{\"channel\":\"private-a\",\"auth\":\"key:` + hex + `\"}"}`,
			`{"event":"pusher:subscribe","data":"{\"channel\":\"private-a\",\"auth\":\"key:[redacted]\"}"}`},
		// a malformed auth (no key) is dropped whole; a truncated signature too
		{`{"data":{"auth" : "deadbeef"}}`, `{"data":{"auth" : "[redacted]"}}`},
		{`{"data":{"auth":"key:abc`, `{"data":{"auth":"key:[redacted]`},
		{`{"data":{"auth":"key:s","shared_secret":"c2VjcmV0IHNoYXJlZA=="}}`,
			`{"data":{"auth":"key:[redacted]","shared_secret":"[redacted]"}}`},
		// an HMAC elsewhere, and the app's secret, should a client send it
		{`{"event":"client-x","data":{"note":"` + hex + ` app-secret-123"}}`,
			`{"event":"client-x","data":{"note":"[redacted] [redacted]"}}`},
		{`{"event":"pusher:ping","data":{}}`, `{"event":"pusher:ping","data":{}}`},
	} {
		if got := redactFrame([]byte(c.in), "app-secret-123"); got != c.want {
			t.Errorf("redactFrame(%s)\n got %s\nwant %s", c.in, got, c.want)
		}
	}
	// A short secret is not searched for: it would blank common words.
	if got := redactFrame([]byte(`{"event":"pusher:ping"}`), "ping"); got != `{"event":"pusher:ping"}` {
		t.Errorf("short secret: %s", got)
	}
	long := redactFrame([]byte(`{"data":"`+strings.Repeat("é", 2000)+`"}`), "")
	if len(long) > maxLoggedFrame+len("…") || !strings.HasSuffix(long, "…") || !utf8.ValidString(long) {
		t.Errorf("a long frame is logged as %d bytes (valid UTF-8: %v)", len(long), utf8.ValidString(long))
	}
}

func TestFramesNotLoggedByDefault(t *testing.T) {
	h, out := debugHarness(t, "app-secret-123")
	h.mgr.LogFrames = false // log.level debug alone
	c := h.open()
	c.send(`{"event":"pusher:ping","data":{}}`)
	c.one("pusher:pong")
	if strings.Contains(out.String(), "msg=frame") {
		t.Fatalf("frames logged without --debug:\n%s", out)
	}
}

func TestServerClosesLoggedRateLimited(t *testing.T) {
	h, out := debugHarness(t, "app-secret-123")
	h.mgr.log = slog.New(slog.NewTextHandler(out, nil)) // info
	for range 20 {
		c := h.open()
		c.Close(4009, "connection is unauthorized")
	}
	c := h.open()
	c.Close(4201, "pong not received in time")
	log := out.String()
	if n := strings.Count(log, `msg="closing connection"`); n != h.mgr.warns.Burst+1 {
		t.Errorf("%d close lines for 21 closes, want %d (a burst of 4009 and the 4201):\n%s", n, h.mgr.warns.Burst+1, log)
	}
	if !strings.Contains(log, `code=4201 reason="pong not received in time"`) {
		t.Errorf("4201 close not logged with its reason:\n%s", log)
	}

	h.mgr.Shutdown() // one line for all, not one per connection
	if n := strings.Count(out.String(), "server shutting down"); n != 1 {
		t.Errorf("%d shutdown lines, want 1:\n%s", n, out)
	}
}

// A WebSocket protocol failure (the transport fails the connection) is
// logged like a server close: code and reason at info.
func TestProtocolFailureLogged(t *testing.T) {
	h, out := debugHarness(t, "app-secret-123")
	h.mgr.log = slog.New(slog.NewTextHandler(out, nil)) // info
	c := h.open()
	c.Session.ProtocolFailure(1002, "reserved bits set")
	if log := out.String(); !strings.Contains(log, `level=INFO msg="closing connection"`) || !strings.Contains(log, `code=1002 reason="reserved bits set"`) {
		t.Errorf("protocol failure not logged at info with its code:\n%s", log)
	}
}
