package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-ws/herald/internal/apps"
	"github.com/herald-ws/herald/internal/broker/memory"
	"github.com/herald-ws/herald/internal/node"
	"github.com/herald-ws/herald/internal/signature"
)

// guard bounds every wait on the network below; the awaited event comes
// far sooner unless the behaviour under test is broken.
const guard = 5 * time.Second

// signedTarget signs a request over signPath and returns sendPath with the
// signed query, ready to send.
func signedTarget(method, signPath, sendPath, key, secret string, body []byte, now time.Time) string {
	q := signature.SignRequest(key, secret, method, signPath, url.Values{}, body, now)
	return sendPath + "?" + q.Encode()
}

func serve(h http.Handler, method, target string, body []byte) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(method, target, bytes.NewReader(body)))
	return w
}

// A client may sign the decoded path (as the Node and PHP SDKs do) or the
// path exactly as it sends it, canonically encoded or not; below a server
// path prefix too. Anything else is refused.
func TestSignedPathForms(t *testing.T) {
	body := []byte(`{}`)
	for _, prefix := range []string{"", "/ws"} {
		h, _ := newAPIWith(t, prefix, "secret", slog.New(slog.NewTextHandler(io.Discard, nil)))
		p := prefix + "/apps/1/users/"
		cases := []struct {
			name, sign, send string
			status           int
		}{
			{"decoded, canonical encoding sent", p + "a b/terminate_connections", p + "a%20b/terminate_connections", 200},
			{"as sent, canonical encoding", p + "a%20b/terminate_connections", p + "a%20b/terminate_connections", 200},
			{"decoded, odd encoding sent", p + "ab/terminate_connections", p + "%61b/terminate_connections", 200},
			{"as sent, odd encoding", p + "%61b/terminate_connections", p + "%61b/terminate_connections", 200},
			{"as sent, absolute form", p + "a%20b/terminate_connections", "http://herald.test" + p + "a%20b/terminate_connections", 200},
			{"another encoding than sent", p + "a+b/terminate_connections", p + "a%20b/terminate_connections", 401},
			{"another path", p + "zz/terminate_connections", p + "a%20b/terminate_connections", 401},
		}
		for _, c := range cases {
			target := signedTarget("POST", c.sign, c.send, "key", "secret", body, time.Now())
			if w := serve(h, "POST", target, body); w.Code != c.status {
				t.Errorf("prefix %q, %s: status %d, want %d: %s", prefix, c.name, w.Code, c.status, w.Body)
			}
		}
	}
}

// twoWorlds serves the same app "1" twice, one server also knowing app "9":
// what a caller without app 9's credentials gets from the two must not
// differ, or app ids can be enumerated.
func twoWorlds(t *testing.T) (without, with *Handler) {
	build := func(list ...*apps.App) *Handler {
		reg, err := apps.NewRegistry(list)
		if err != nil {
			t.Fatal(err)
		}
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		return New(node.New(reg, memory.New(), log), "", log)
	}
	app := func(id, key, secret string) *apps.App {
		return &apps.App{ID: id, Key: key, Secret: secret, Enabled: true, Limits: apps.DefaultLimits}
	}
	return build(app("1", "key", "secret")), build(app("1", "key", "secret"), app("9", "key9", "secret9"))
}

func TestUnknownAppAnswersAsBadSignature(t *testing.T) {
	without, with := twoWorlds(t)
	body := []byte(`{"name":"e","channel":"c","data":"d"}`)
	now := time.Now()
	cases := []struct {
		name, method, key, secret string
		body                      []byte
		now                       time.Time
	}{
		{"its key, a wrong secret", "POST", "key9", "wrong", body, now},
		{"another app's credentials", "POST", "key", "secret", body, now},
		{"an unknown key", "POST", "nope", "wrong", body, now},
		{"no body", "GET", "key9", "wrong", nil, now},
		{"stale timestamp", "POST", "key9", "wrong", body, now.Add(-time.Hour)},
	}
	for _, c := range cases {
		path := "/apps/9/events"
		if c.method == "GET" {
			path = "/apps/9/channels"
		}
		target := signedTarget(c.method, path, path, c.key, c.secret, c.body, c.now)
		a, b := serve(without, c.method, target, c.body), serve(with, c.method, target, c.body)
		if a.Code != http.StatusUnauthorized || a.Code != b.Code || a.Body.String() != b.Body.String() ||
			a.Header().Get("Content-Type") != b.Header().Get("Content-Type") {
			t.Errorf("%s: unknown app answered\n %d %s\nknown app with bad credentials\n %d %s", c.name, a.Code, a.Body, b.Code, b.Body)
		}
	}
	// Unsigned: the same, and 401 rather than 404.
	a, b := serve(without, "POST", "/apps/9/events", body), serve(with, "POST", "/apps/9/events", body)
	if a.Code != http.StatusUnauthorized || a.Body.String() != b.Body.String() {
		t.Errorf("unsigned: unknown app %d %s, known app %d %s", a.Code, a.Body, b.Code, b.Body)
	}
	// A path that exists for no app is still 404.
	if w := serve(without, "GET", "/apps/9", nil); w.Code != http.StatusNotFound {
		t.Errorf("/apps/9: status %d, want 404", w.Code)
	}
}

// rawRequest writes a request head to a new connection to srv.
func rawRequest(t *testing.T, srv *httptest.Server, method, target string, header ...string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(guard))
	head := method + " " + target + " HTTP/1.1\r\nHost: herald.test\r\n" + strings.Join(header, "\r\n") + "\r\n\r\n"
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	return conn, bufio.NewReader(conn)
}

func readResponse(t *testing.T, br *bufio.Reader) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	return resp, string(b)
}

// expectClosed waits for the server to close the connection (an end of
// file or a reset; not the guard's timeout).
func expectClosed(t *testing.T, br *bufio.Reader) {
	t.Helper()
	_, err := io.Copy(io.Discard, br)
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		t.Fatalf("connection still open after %v", guard)
	}
}

// A request without valid credentials is refused before a byte of its
// body is read: its answer comes while the client has sent none of the
// (huge, or trickling) body, and the connection then closes.
func TestBodyNotReadWithoutCredentials(t *testing.T) {
	h, _ := newAPI(t)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close) // after the clients' cleanups close their connections
	body := []byte(`{"name":"e","channel":"c","data":"d"}`)
	cases := []struct{ name, target string }{
		{"unsigned", "/apps/1/events"},
		{"bad signature", signedTarget("POST", "/apps/1/events", "/apps/1/events", "key", "wrong", body, time.Now())},
		{"unknown app", signedTarget("POST", "/apps/9/events", "/apps/9/events", "key", "secret", body, time.Now())},
	}
	for _, c := range cases {
		for _, framing := range []string{"Content-Length: 1000000000", "Transfer-Encoding: chunked"} {
			t.Run(c.name+", "+framing, func(t *testing.T) {
				t.Parallel() // each waits up to a second for the close
				conn, br := rawRequest(t, srv, "POST", c.target, framing)
				if strings.HasPrefix(framing, "Transfer") {
					_, _ = io.WriteString(conn, "1\r\n{\r\n") // one byte, then nothing
				}
				resp, text := readResponse(t, br)
				if resp.StatusCode != http.StatusUnauthorized || !resp.Close {
					t.Fatalf("%d (close %v) %s, want 401 and the connection closed", resp.StatusCode, resp.Close, text)
				}
				expectClosed(t, br)
			})
		}
	}
}

// A body that trickles in is cut off at the read deadline with 408.
func TestTricklingBodyIsCutOff(t *testing.T) {
	h, _ := newAPI(t)
	h.ReadTimeout = 200 * time.Millisecond
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close) // after the clients' cleanups close their connections
	body := []byte(`{"name":"e","channel":"c","data":"` + strings.Repeat("x", 500) + `"}`)
	target := signedTarget("POST", "/apps/1/events", "/apps/1/events", "key", "secret", body, time.Now())
	conn, br := rawRequest(t, srv, "POST", target, "Content-Length: "+strconv.Itoa(len(body)))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { // a byte every 20 ms: the whole body would take 10 s
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for _, b := range body {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if _, err := conn.Write([]byte{b}); err != nil {
				return
			}
		}
	})
	defer func() { close(stop); wg.Wait() }()
	start := time.Now()
	resp, text := readResponse(t, br)
	if resp.StatusCode != http.StatusRequestTimeout || !resp.Close {
		t.Fatalf("%d (close %v) %s, want 408 and the connection closed", resp.StatusCode, resp.Close, text)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("answered after %v; the deadline is 200ms", d)
	}
}

// expectContinue sends a signed POST announcing a body it does not send,
// and returns once the handler is reading it (net/http says 100 Continue
// then): a request in flight, stalled.
func expectContinue(t *testing.T, srv *httptest.Server, body []byte) (net.Conn, *bufio.Reader) {
	t.Helper()
	target := signedTarget("POST", "/apps/1/events", "/apps/1/events", "key", "secret", body, time.Now())
	conn, br := rawRequest(t, srv, "POST", target, "Content-Length: "+strconv.Itoa(len(body)), "Expect: 100-continue")
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100") {
		t.Fatalf("waiting for 100 Continue: %q %v", line, err)
	}
	if _, err := br.ReadString('\n'); err != nil { // the blank line ending it
		t.Fatal(err)
	}
	return conn, br
}

// Over MaxInFlight requests at once, one more gets 503 with Retry-After at
// once, is counted, and the others carry on.
func TestInFlightCap(t *testing.T) {
	h, _ := newAPI(t)
	h.MaxInFlight = 2
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close) // after the clients' cleanups close their connections
	body := []byte(`{"name":"e","channel":"c","data":"d"}`)
	c1, br1 := expectContinue(t, srv, body)
	expectContinue(t, srv, body)

	get := func() (*http.Response, string) {
		target := signedTarget("GET", "/apps/1/channels", "/apps/1/channels", "key", "secret", nil, time.Now())
		ctx, cancel := context.WithTimeout(context.Background(), guard)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+target, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, text := get()
	var e struct{ Error string }
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" || json.Unmarshal([]byte(text), &e) != nil || e.Error == "" {
		t.Fatalf("over the cap: %d Retry-After %q %s, want 503 with Retry-After 1 and a JSON error", resp.StatusCode, resp.Header.Get("Retry-After"), text)
	}
	if h.Busy() != 1 {
		t.Fatalf("Busy() = %d, want 1", h.Busy())
	}
	// The stalled request finishes normally, and frees its place.
	if _, err := c1.Write(body); err != nil {
		t.Fatal(err)
	}
	if resp, text := readResponse(t, br1); resp.StatusCode != 200 {
		t.Fatalf("stalled request, completed: %d %s", resp.StatusCode, text)
	}
	if resp, text := get(); resp.StatusCode != 200 {
		t.Fatalf("under the cap again: %d %s", resp.StatusCode, text)
	}
}

// capture keeps every log record.
type capture struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (c *capture) Enabled(context.Context, slog.Level) bool { return true }
func (c *capture) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c *capture) WithGroup(string) slog.Handler            { return c }
func (c *capture) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.recs = append(c.recs, r.Clone())
	return nil
}

// refusals returns the attributes of each warn-level refusal logged.
func (c *capture) refusals() []map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []map[string]string
	for _, r := range c.recs {
		if r.Level != slog.LevelWarn || r.Message != "api request refused" {
			continue
		}
		m := map[string]string{}
		r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.String(); return true })
		out = append(out, m)
	}
	return out
}

func TestRefusalsAreLoggedAtWarn(t *testing.T) {
	const secret = "s3cr3t-never-logged"
	logs := &capture{}
	h, _ := newAPIWith(t, "", secret, slog.New(logs))
	now := time.Unix(1700000000, 0)
	h.now = func() time.Time { return now }
	body := []byte(`{"name":"e","channel":"c","data":"d"}`)

	target := signedTarget("POST", "/apps/1/events", "/apps/1/events", "key", "wrong", body, now)
	if w := serve(h, "POST", target, body); w.Code != 401 {
		t.Fatalf("status %d", w.Code)
	}
	expected := signature.SignRequest("key", secret, "POST", "/apps/1/events", url.Values{}, body, now).Get("auth_signature")
	got := logs.refusals()
	if len(got) != 1 {
		t.Fatalf("%d warnings for a bad signature, want 1: %v", len(got), got)
	}
	w := got[0]
	if w["reason"] != signature.ErrSignature.Error() || w["app"] != "1" || w["remote"] != "192.0.2.1:1234" {
		t.Fatalf("warning %v, want reason, app and remote", w)
	}
	for k, v := range w {
		if strings.Contains(v, secret) || strings.Contains(v, expected) {
			t.Fatalf("warning attribute %s = %q reveals the secret or the expected signature", k, v)
		}
	}

	target = signedTarget("POST", "/apps/9/events", "/apps/9/events", "key", secret, body, now)
	serve(h, "POST", target, body)
	if got := logs.refusals(); len(got) != 2 || got[1]["reason"] != "unknown app" || got[1]["app"] != "9" {
		t.Fatalf("unknown app logged as %v", got[1:])
	}

	// A flood: at most the burst per reason reaches the log.
	target = signedTarget("POST", "/apps/1/events", "/apps/1/events", "key", "wrong", body, now)
	for range 1000 {
		serve(h, "POST", target, body)
	}
	n := 0
	for _, w := range logs.refusals() {
		if w["reason"] == signature.ErrSignature.Error() {
			n++
		}
	}
	if n > 5 {
		t.Fatalf("%d bad-signature warnings for 1,001 refusals, want at most the burst of 5", n)
	}
}
