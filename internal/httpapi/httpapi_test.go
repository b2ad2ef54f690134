package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/herald-ws/herald/internal/apps"
	"github.com/herald-ws/herald/internal/broker/memory"
	"github.com/herald-ws/herald/internal/hub"
	"github.com/herald-ws/herald/internal/node"
	"github.com/herald-ws/herald/internal/pusher"
	"github.com/herald-ws/herald/internal/signature"
)

type recorder struct {
	id     string
	frames []string
}

func (r *recorder) SocketID() string { return r.id }
func (r *recorder) Send(b []byte)    { r.frames = append(r.frames, string(b)) }

var _ hub.Subscriber = (*recorder)(nil)

func newAPI(t testing.TB) (*Handler, *node.App) {
	return newAPIWith(t, "", "secret", slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// newAPIWith serves app "1" (key "key") with secret below prefix, logging
// to log.
func newAPIWith(t testing.TB, prefix, secret string, log *slog.Logger) (*Handler, *node.App) {
	a := &apps.App{ID: "1", Key: "key", Secret: secret, Enabled: true, Limits: apps.DefaultLimits}
	reg, err := apps.NewRegistry([]*apps.App{a})
	if err != nil {
		t.Fatal(err)
	}
	n := node.New(reg, memory.New(), log)
	return New(n, prefix, log), n.AppByID("1")
}

func do(h *Handler, method, path string, query url.Values, body []byte, secret string) *httptest.ResponseRecorder {
	if query == nil {
		query = url.Values{}
	}
	q := signature.SignRequest("key", secret, method, path, query, body, time.Now())
	req := httptest.NewRequest(method, path+"?"+q.Encode(), bytes.NewReader(body))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func TestTriggerDelivers(t *testing.T) {
	h, a := newAPI(t)
	sub := &recorder{id: "1.1"}
	_, _ = a.Hub.Subscribe("orders", pusher.ParseChannel("orders"), sub, nil, 0)
	w := do(h, "POST", "/apps/1/events", nil, []byte(`{"name":"orders.updated","channels":["orders"],"data":"{\"n\":1}"}`), "secret")
	if w.Code != 200 || strings.TrimSpace(w.Body.String()) != "{}" {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if got := sub.frames[len(sub.frames)-1]; got != `{"event":"orders.updated","channel":"orders","data":"{\"n\":1}"}` {
		t.Fatalf("delivered %s", got)
	}
}

func TestRefusals(t *testing.T) {
	h, _ := newAPI(t)
	big := `{"name":"e","channel":"c","data":"` + strings.Repeat("x", 10241) + `"}`
	cases := []struct {
		name, method, path, body, secret string
		status                           int
	}{
		{"bad secret", "POST", "/apps/1/events", `{"name":"e","channel":"c","data":"d"}`, "wrong", 401},
		{"unknown app", "POST", "/apps/9/events", `{"name":"e","channel":"c","data":"d"}`, "secret", 401},
		{"unknown path", "GET", "/apps/1/nope", ``, "secret", 404},
		{"wrong method", "GET", "/apps/1/events", ``, "secret", 405},
		{"bad json", "POST", "/apps/1/events", `{"name":`, "secret", 400},
		{"no name", "POST", "/apps/1/events", `{"channel":"c","data":"d"}`, "secret", 400},
		{"no channels", "POST", "/apps/1/events", `{"name":"e","data":"d"}`, "secret", 400},
		{"bad channel", "POST", "/apps/1/events", `{"name":"e","channel":"a b","data":"d"}`, "secret", 400},
		{"too big", "POST", "/apps/1/events", big, "secret", 413},
		{"bad socket id", "POST", "/apps/1/events", `{"name":"e","channel":"c","data":"d","socket_id":"x"}`, "secret", 400},
		{"two encrypted", "POST", "/apps/1/events", `{"name":"e","channels":["private-encrypted-a","b"],"data":"d"}`, "secret", 400},
		{"batch too long", "POST", "/apps/1/batch_events", `{"batch":[` + strings.Repeat(`{"name":"e","channel":"c","data":"d"},`, 10) + `{"name":"e","channel":"c","data":"d"}]}`, "secret", 400},
		{"user_count on non-presence", "GET", "/apps/1/channels/c?info=user_count", ``, "secret", 400},
		{"users of non-presence", "GET", "/apps/1/channels/c/users", ``, "secret", 400},
	}
	for _, c := range cases {
		path, rawQuery, _ := strings.Cut(c.path, "?")
		q, _ := url.ParseQuery(rawQuery)
		w := do(h, c.method, path, q, []byte(c.body), c.secret)
		if w.Code != c.status {
			t.Errorf("%s: status %d, want %d (%s)", c.name, w.Code, c.status, w.Body)
			continue
		}
		var e struct{ Error string }
		if json.Unmarshal(w.Body.Bytes(), &e) != nil || e.Error == "" {
			t.Errorf("%s: body %q is not a JSON error", c.name, w.Body)
		}
	}
}

func TestStaleTimestamp(t *testing.T) {
	h, _ := newAPI(t)
	body := []byte(`{"name":"e","channel":"c","data":"d"}`)
	q := signature.SignRequest("key", "secret", "POST", "/apps/1/events", url.Values{}, body, time.Now().Add(-700*time.Second))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "/apps/1/events?"+q.Encode(), bytes.NewReader(body)))
	if w.Code != http.StatusUnauthorized {
		t.Fatalf("status %d", w.Code)
	}
}

func TestChannelQueries(t *testing.T) {
	h, a := newAPI(t)
	for i, uid := range []string{"1", "2", "2"} {
		s := &recorder{id: "1." + string(rune('0'+i))}
		_, _ = a.Hub.Subscribe("presence-room", pusher.ParseChannel("presence-room"), s, &pusher.Member{UserID: uid}, 100)
	}
	w := do(h, "GET", "/apps/1/channels", url.Values{"filter_by_prefix": {"presence-"}, "info": {"user_count"}}, nil, "secret")
	if w.Code != 200 || strings.TrimSpace(w.Body.String()) != `{"channels":{"presence-room":{"user_count":2}}}` {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	w = do(h, "GET", "/apps/1/channels/presence-room", url.Values{"info": {"user_count,subscription_count"}}, nil, "secret")
	if strings.TrimSpace(w.Body.String()) != `{"occupied":true,"subscription_count":3,"user_count":2}` {
		t.Fatalf("%s", w.Body)
	}
	w = do(h, "GET", "/apps/1/channels/presence-room/users", nil, nil, "secret")
	if strings.TrimSpace(w.Body.String()) != `{"users":[{"id":"1"},{"id":"2"}]}` {
		t.Fatalf("%s", w.Body)
	}
}

// FuzzEventRequest feeds arbitrary bodies through validation and publish:
// every answer is a JSON object with a 2xx or a documented 4xx status.
func FuzzEventRequest(f *testing.F) {
	for _, s := range []string{
		`{"name":"e","channels":["a","b"],"data":"d","info":"user_count,subscription_count"}`,
		`{"name":"e","channel":"presence-a","data":{"x":1},"socket_id":"1.2"}`,
		`{"batch":[{"name":"e","channel":"c","data":"d"}]}`,
		`{"name":"e","channels":["private-encrypted-a"],"data":"{\"ciphertext\":\"x\",\"nonce\":\"y\"}"}`,
		`{"name":"e","channel":"c","data":"d","idempotency_key":"job-1"}`,
		`{"batch":[{"name":"e","channel":"c","data":"d","idempotency_key":"k"},{"name":"e","channel":"c","data":"d","idempotency_key":""}]}`,
		`[]`, `{"name":1}`, ``,
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	h, _ := newAPI(f)
	f.Fuzz(func(t *testing.T, body string, batch bool) {
		path := "/apps/1/events"
		if batch {
			path = "/apps/1/batch_events"
		}
		w := do(h, "POST", path, nil, []byte(body), "secret")
		switch w.Code {
		case 200, 400, 413:
		default:
			t.Fatalf("status %d for %q: %s", w.Code, body, w.Body)
		}
		if !json.Valid(w.Body.Bytes()) {
			t.Fatalf("response not JSON: %q", w.Body)
		}
	})
}

func BenchmarkTrigger(b *testing.B) {
	h, _ := newAPI(b)
	body := []byte(`{"name":"e","channel":"c","data":"` + strings.Repeat("x", 100) + `"}`)
	q := signature.SignRequest("key", "secret", "POST", "/apps/1/events", url.Values{}, body, time.Now())
	target := "/apps/1/events?" + q.Encode()
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("POST", target, bytes.NewReader(body)))
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}
