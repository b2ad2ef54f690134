package httpapi

import (
	"encoding/json"
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

// newKeyedAPI serves app "1" (key "key", secret "secret", history on
// every channel but "plain-*", 3 events) for the signed API.
func newKeyedAPI(t testing.TB) (*Handler, *node.App) {
	t.Helper()
	a := &apps.App{ID: "1", Key: "key", Secret: "secret", Enabled: true, Limits: apps.DefaultLimits,
		History: apps.History{Enabled: true, Channels: []string{"c*", "private-*"}, MaxEvents: 3, TTL: time.Minute}}
	reg, err := apps.NewRegistry([]*apps.App{a})
	if err != nil {
		t.Fatal(err)
	}
	n := node.New(reg, memory.New(), quiet())
	return New(n, "", quiet()), n.AppByID("1")
}

func sub(t *testing.T, a *node.App, ch string) *recorder {
	t.Helper()
	r := &recorder{id: "1.1"}
	if _, err := a.Hub.Subscribe(ch, pusher.ParseChannel(ch), r, nil, 0); err != nil {
		t.Fatal(err)
	}
	r.frames = nil
	return r
}

func TestEventsIdempotencyKey(t *testing.T) {
	h, a := newKeyedAPI(t)
	c, d, plain := sub(t, a, "c"), sub(t, a, "d-no-history"), sub(t, a, "plain")
	post := func(path, body string) {
		t.Helper()
		if w := do(h, "POST", path, nil, []byte(body), "secret"); w.Code != 200 || strings.TrimSpace(w.Body.String()) != "{}" {
			t.Fatalf("%s %s: %d %s", path, body, w.Code, w.Body)
		}
	}
	for range 3 {
		post("/apps/1/events", `{"name":"e","channels":["c","plain"],"data":"1","idempotency_key":"job-1"}`)
	}
	if len(c.frames) != 1 || !strings.HasSuffix(c.frames[0], `"offset":1}`) {
		t.Fatalf("c got %q, want one event at offset 1", c.frames)
	}
	if len(plain.frames) != 3 {
		t.Fatalf("plain (no history) got %d events, want 3: the key has no effect there", len(plain.frames))
	}
	// Batch entries are keyed one by one; a retry of the whole batch
	// delivers nothing again.
	batch := `{"batch":[{"name":"e","channel":"c","data":"2","idempotency_key":"job-2"},` +
		`{"name":"e","channel":"c","data":"3","idempotency_key":"job-3"},` +
		`{"name":"e","channel":"d-no-history","data":"4","idempotency_key":"job-2"},` +
		`{"name":"e","channel":"c","data":"5"}]}`
	post("/apps/1/batch_events", batch)
	post("/apps/1/batch_events", batch)
	if len(c.frames) != 5 || len(d.frames) != 2 {
		t.Fatalf("after a batch twice: c %q, d %q", c.frames, d.frames)
	}
	// job-1's event (offset 1) has left the 3-event history: the key
	// publishes anew.
	post("/apps/1/events", `{"name":"e","channel":"c","data":"1","idempotency_key":"job-1"}`)
	if len(c.frames) != 6 || !strings.HasSuffix(c.frames[5], `"offset":6}`) {
		t.Fatalf("after trim: %q", c.frames)
	}
}

func TestBroadcastIdempotencyKey(t *testing.T) {
	h, n := newBroadcastAPI(t, quiet())
	ch := listen(t, n, "1", "private-a")
	post := func(body string, key ...string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "/broadcast", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token1)
		for _, k := range key {
			req.Header.Add("Idempotency-Key", k)
		}
		w := httptest.NewRecorder()
		h.ServeBroadcast(w, req)
		return w
	}
	const want = `{"ok":true,"channels":["private-a"],"offsets":{"private-a":1}}`
	body := `{"message":{"type":"e","data":1},"channel":"private-a","idempotency_key":"k1"}`
	for _, w := range []*httptest.ResponseRecorder{
		post(body), post(body), post(body, "k1"),
		post(`{"message":{"type":"e","data":1},"channel":"private-a"}`, "k1"),
	} {
		if w.Code != 200 || w.Body.String() != want {
			t.Fatalf("%d %s, want %s", w.Code, w.Body, want)
		}
	}
	if len(ch.frames) != 1 {
		t.Fatalf("delivered %d times", len(ch.frames))
	}
	w := post(`{"message":{"type":"e","data":1},"channel":"private-a"}`, "k2")
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"private-a":2`) || len(ch.frames) != 2 {
		t.Fatalf("new key: %d %s", w.Code, w.Body)
	}
	// Another app's same key on a same-named channel is its own.
	other := listen(t, n, "2", "news")
	req := httptest.NewRequest("POST", "/broadcast", strings.NewReader(`{"message":{"type":"e","data":1},"idempotency_key":"k1"}`))
	req.Header.Set("Authorization", "Bearer "+token2)
	w = httptest.NewRecorder()
	h.ServeBroadcast(w, req)
	if w.Code != 200 || len(other.frames) != 1 {
		t.Fatalf("app 2: %d %s", w.Code, w.Body)
	}
	// Refusals name the field.
	for _, c := range []struct {
		body    string
		headers []string
		mention string
	}{
		{`{"message":{"type":"e"},"idempotency_key":""}`, nil, "idempotency_key"},
		{`{"message":{"type":"e"},"idempotency_key":"` + strings.Repeat("k", 129) + `"}`, nil, "idempotency_key"},
		{`{"message":{"type":"e"},"idempotency_key":"a\u0000b"}`, nil, "idempotency_key"},
		{`{"message":{"type":"e"},"idempotency_key":"caf\u00e9"}`, nil, "idempotency_key"},
		{`{"message":{"type":"e"},"idempotency_key":7}`, nil, "idempotency_key"},
		{`{"message":{"type":"e"},"idempotency_key":"a"}`, []string{"b"}, "idempotency_key"},
		{`{"message":{"type":"e"}}`, []string{""}, "Idempotency-Key"},
		{`{"message":{"type":"e"}}`, []string{"a", "a"}, "Idempotency-Key"},
	} {
		w := post(c.body, c.headers...)
		var e struct{ Error string }
		if w.Code != http.StatusBadRequest || json.Unmarshal(w.Body.Bytes(), &e) != nil || !strings.Contains(e.Error, c.mention) {
			t.Errorf("%s %q: %d %s, want 400 naming %s", c.body, c.headers, w.Code, w.Body, c.mention)
		}
	}
	if len(ch.frames) != 2 {
		t.Fatalf("a refusal published: %q", ch.frames)
	}
}

func TestEventsIdempotencyKeyRefusals(t *testing.T) {
	h, _ := newKeyedAPI(t)
	for _, c := range []struct{ path, body string }{
		{"/apps/1/events", `{"name":"e","channel":"c","data":"d","idempotency_key":""}`},
		{"/apps/1/events", `{"name":"e","channel":"c","data":"d","idempotency_key":"` + strings.Repeat("x", 129) + `"}`},
		{"/apps/1/events", `{"name":"e","channel":"c","data":"d","idempotency_key":"tab\there"}`},
		{"/apps/1/events", `{"name":"e","channel":"c","data":"d","idempotency_key":null}`},
		{"/apps/1/events", `{"name":"e","channel":"c","data":"d","idempotency_key":["k"]}`},
		{"/apps/1/batch_events", `{"batch":[{"name":"e","channel":"c","data":"d","idempotency_key":"\n"}]}`},
	} {
		w := do(h, "POST", c.path, nil, []byte(c.body), "secret")
		var e struct{ Error string }
		if c.body == `{"name":"e","channel":"c","data":"d","idempotency_key":null}` {
			// null is "not given", as for Pusher's own optional fields.
			if w.Code != 200 {
				t.Errorf("null key: %d %s", w.Code, w.Body)
			}
			continue
		}
		if w.Code != 400 || json.Unmarshal(w.Body.Bytes(), &e) != nil || !strings.Contains(e.Error, "idempotency_key") {
			t.Errorf("%s: %d %s, want 400 naming idempotency_key", c.body, w.Code, w.Body)
		}
	}
	if _, err := validIdempotencyKey("k", ptr(strings.Repeat("~", 128))); err != nil {
		t.Errorf("128 printable bytes refused: %v", err)
	}
	if _, err := validIdempotencyKey("k", ptr(" a b ")); err != nil {
		t.Errorf("spaces refused: %v", err)
	}
}

func ptr(s string) *string { return &s }

// FuzzIdempotencyKey checks that an accepted key is 1 to 128 printable
// ASCII bytes, and that every refusal is a 400.
func FuzzIdempotencyKey(f *testing.F) {
	for _, s := range []string{"job-1", "", "a\x00", "é", strings.Repeat("k", 129), "550e8400-e29b-41d4-a716-446655440000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, k string) {
		got, err := validIdempotencyKey("idempotency_key", &k)
		if err != nil {
			if ae, ok := err.(*apiError); !ok || ae.status != 400 || !strings.Contains(ae.msg, "idempotency_key") {
				t.Fatalf("refusal %#v", err)
			}
			return
		}
		if got != k || len(k) == 0 || len(k) > maxIdempotencyKey {
			t.Fatalf("accepted %q", k)
		}
		for i := 0; i < len(k); i++ {
			if k[i] < ' ' || k[i] > '~' {
				t.Fatalf("accepted %q", k)
			}
		}
	})
}
