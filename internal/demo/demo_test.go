package demo_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-ws/herald/internal/config"
	"github.com/herald-ws/herald/internal/demo"
	"github.com/herald-ws/herald/internal/server/servertest"
	"github.com/herald-ws/herald/internal/signature"
)

const token = "demo-test-broadcast-token-0123456"

// sent is one request the backend made to Herald.
type sent struct {
	Method, Path string
	Bearer       bool // Authorization: Bearer <token>
	Signed       bool // auth_signature in the query
	Body         string
}

// recorder is an http.RoundTripper that notes each request and passes it on.
type recorder struct {
	mu   sync.Mutex
	reqs []sent
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body = io.NopCloser(strings.NewReader(string(body)))
	}
	r.mu.Lock()
	r.reqs = append(r.reqs, sent{req.Method, req.URL.Path, req.Header.Get("Authorization") == "Bearer "+token,
		req.URL.Query().Get("auth_signature") != "", string(body)})
	r.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

func (r *recorder) list() []sent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]sent(nil), r.reqs...)
}

// fixture is a Herald in process, the demo backend in front of it, and the
// record of what the backend sent to Herald.
type fixture struct {
	herald  *servertest.Server
	backend *httptest.Server
	h       *demo.Handler
	sent    *recorder
}

func start(t *testing.T) *fixture {
	t.Helper()
	cfg := config.Default()
	cfg.Apps[0].BroadcastToken = token
	s := servertest.Start(t, cfg)
	rec := &recorder{}
	h, err := demo.New(demo.Options{HeraldURL: "http://" + s.Addr, AppID: config.DefaultAppID, Key: config.DefaultAppKey,
		Secret: config.DefaultAppSecret, BroadcastToken: token, Client: &http.Client{Transport: rec}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return &fixture{herald: s, backend: ts, h: h, sent: rec}
}

// call sends a request to the backend (with the page's CSRF token unless
// csrf is false) and decodes the JSON answer into a map.
func (f *fixture) call(t *testing.T, method, path, body string, csrf bool) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, f.backend.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if csrf {
		req.Header.Set("X-CSRF-TOKEN", f.h.CSRFToken())
	}
	if strings.Contains(body, "socket_id=") {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var v map[string]any
	if err := json.NewDecoder(res.Body).Decode(&v); err != nil {
		t.Fatalf("%s %s: %d, not JSON: %v", method, path, res.StatusCode, err)
	}
	return res.StatusCode, v
}

// subscriber connects a raw Pusher client to Herald and subscribes to
// channel (with auth for a private one).
func (f *fixture) subscriber(t *testing.T, channel string, auth func(socketID string) string) *servertest.Client {
	t.Helper()
	c := f.herald.Dial(t, "/app/"+config.DefaultAppKey+"?protocol=7")
	m := c.Expect("pusher:connection_established")
	var est struct {
		SocketID string `json:"socket_id"`
	}
	if err := json.Unmarshal([]byte(m.DataString()), &est); err != nil {
		t.Fatal(err)
	}
	data := map[string]string{"channel": channel}
	if auth != nil {
		data["auth"] = auth(est.SocketID)
	}
	c.Send(map[string]any{"event": "pusher:subscribe", "data": data})
	c.Expect("pusher_internal:subscription_succeeded")
	return c
}

// expect reads frames until event arrives on channel and decodes its data.
func expect(t *testing.T, c *servertest.Client, channel, event string, v any) {
	t.Helper()
	m := c.Expect(event)
	if m.Channel != channel {
		t.Fatalf("%s on %q, want %q", event, m.Channel, channel)
	}
	if err := json.Unmarshal([]byte(m.DataString()), v); err != nil {
		t.Fatalf("%s data %q: %v", event, m.DataString(), err)
	}
}

type ticketEvent struct {
	ID               int         `json:"id"`
	Ticket           demo.Ticket `json:"ticket"`
	By               string      `json:"by"`
	Status           string      `json:"status"`
	PreviousStatus   string      `json:"previous_status"`
	Assignee         *string     `json:"assignee"`
	PreviousAssignee *string     `json:"previous_assignee"`
}

// A created ticket goes out as ticket_created through POST /broadcast with
// the bearer token; status and assignee changes through the signed HTTP
// API; a change that changes nothing is not published.
func TestTicketEvents(t *testing.T) {
	f := start(t)
	c := f.subscriber(t, demo.TicketsChannel, nil)

	code, v := f.call(t, "POST", "/api/tickets", `{"subject":"  Printer on fire ","requester":"Tom","priority":"urgent","by":"Sam Okafor"}`, true)
	if code != http.StatusCreated {
		t.Fatalf("create: %d %v", code, v)
	}
	var created ticketEvent
	expect(t, c, demo.TicketsChannel, "ticket_created", &created)
	if tk := created.Ticket; tk.Subject != "Printer on fire" || tk.Requester != "Tom" || tk.Priority != "urgent" || tk.Status != "new" ||
		tk.Version != 1 || tk.ID != 5 || created.By != "Sam Okafor" {
		t.Fatalf("ticket_created %+v", created)
	}

	if code, v := f.call(t, "POST", "/api/tickets/5/status", `{"status":"resolved","by":"Priya Shah"}`, true); code != 200 {
		t.Fatalf("status: %d %v", code, v)
	}
	var status ticketEvent
	expect(t, c, demo.TicketsChannel, "ticket_status_changed", &status)
	if status.ID != 5 || status.Status != "resolved" || status.PreviousStatus != "new" || status.Ticket.Version != 2 || status.By != "Priya Shah" {
		t.Fatalf("ticket_status_changed %+v", status)
	}

	// The same status again: answered, not published.
	if code, v := f.call(t, "POST", "/api/tickets/5/status", `{"status":"resolved"}`, true); code != 200 || v["ticket"].(map[string]any)["version"] != 2.0 {
		t.Fatalf("no-op status: %d %v", code, v)
	}
	if code, v := f.call(t, "POST", "/api/tickets/5/assignee", `{"assignee":"Alex Kim","by":"nobody we know"}`, true); code != 200 {
		t.Fatalf("assignee: %d %v", code, v)
	}
	var assigned ticketEvent
	expect(t, c, demo.TicketsChannel, "ticket_assigned", &assigned)
	if assigned.Assignee == nil || *assigned.Assignee != "Alex Kim" || *assigned.PreviousAssignee != "" || assigned.Ticket.Version != 3 || assigned.By != "" {
		t.Fatalf("ticket_assigned %+v", assigned)
	}

	reqs := f.sent.list()
	if len(reqs) != 3 {
		t.Fatalf("requests to Herald: %+v", reqs)
	}
	if r := reqs[0]; r.Path != "/broadcast" || !r.Bearer || r.Signed || !strings.Contains(r.Body, `"type":"ticket_created"`) || !strings.Contains(r.Body, `"idempotency_key"`) {
		t.Errorf("create went as %+v, want POST /broadcast with the bearer token", r)
	}
	for _, r := range reqs[1:] {
		if r.Path != "/apps/"+config.DefaultAppID+"/events" || r.Bearer || !r.Signed || !strings.Contains(r.Body, `"idempotency_key"`) {
			t.Errorf("change went as %+v, want the signed HTTP API", r)
		}
	}

	code, v = f.call(t, "GET", "/api/tickets", "", false)
	list := v["tickets"].([]any)
	if code != 200 || len(list) != 5 || list[4].(map[string]any)["assignee"] != "Alex Kim" || len(v["agents"].([]any)) == 0 {
		t.Fatalf("list: %d %v", code, v)
	}
}

// Orders go out as order.created on the orders channel; a notification as
// Laravel's BroadcastNotificationCreated on the user's private channel,
// which /broadcasting/auth signs for the demo user only.
func TestOrdersAndNotifications(t *testing.T) {
	f := start(t)
	orders := f.subscriber(t, demo.OrdersChannel, nil)
	code, v := f.call(t, "POST", "/api/orders", "", true)
	if code != http.StatusCreated {
		t.Fatalf("order: %d %v", code, v)
	}
	var o demo.Order
	expect(t, orders, demo.OrdersChannel, "order.created", &o)
	if o.ID != 4 || o.Number == "" || o.Total == "" || o.Currency != "EUR" {
		t.Fatalf("order.created %+v", o)
	}
	if _, v := f.call(t, "GET", "/api/orders", "", false); len(v["orders"].([]any)) != 4 {
		t.Fatalf("orders: %v", v)
	}

	user := f.subscriber(t, demo.UserChannel, func(socketID string) string {
		code, v := f.call(t, "POST", "/broadcasting/auth", url.Values{"socket_id": {socketID}, "channel_name": {demo.UserChannel}}.Encode(), true)
		if code != 200 {
			t.Fatalf("auth: %d %v", code, v)
		}
		return v["auth"].(string)
	})
	if code, v := f.call(t, "POST", "/api/notifications", "", true); code != http.StatusCreated {
		t.Fatalf("notify: %d %v", code, v)
	}
	var n struct{ ID, Type, Title, Body string }
	expect(t, user, demo.UserChannel, demo.NotificationEvent, &n)
	if n.ID == "" || !strings.HasPrefix(n.Type, `App\Notifications\`) || n.Title == "" {
		t.Fatalf("notification %+v", n)
	}
}

func TestBroadcastingAuth(t *testing.T) {
	f := start(t)
	form := func(channel string) string {
		return url.Values{"socket_id": {"123.456"}, "channel_name": {channel}}.Encode()
	}
	code, v := f.call(t, "POST", "/broadcasting/auth", form(demo.UserChannel), true)
	if code != 200 || signature.VerifyChannelAuth(config.DefaultAppKey, config.DefaultAppSecret, "123.456", demo.UserChannel, "", v["auth"].(string)) != nil {
		t.Fatalf("auth: %d %v", code, v)
	}
	for _, tc := range []struct {
		body string
		csrf bool
		want int
	}{
		{form(demo.UserChannel), false, 419},
		{form("private-App.Models.User.2"), true, 403},
		{form("presence-chat"), true, 403},
		{"socket_id=nope&channel_name=" + demo.UserChannel, true, 400},
	} {
		if code, v := f.call(t, "POST", "/broadcasting/auth", tc.body, tc.csrf); code != tc.want || v["message"] == "" {
			t.Errorf("%q csrf %v: %d %v, want %d", tc.body, tc.csrf, code, v, tc.want)
		}
	}
}

// Refusals answer JSON with a message and publish nothing.
func TestRefusals(t *testing.T) {
	f := start(t)
	for _, tc := range []struct {
		path, body string
		csrf       bool
		want       int
	}{
		{"/api/tickets", `{"subject":"x","requester":"y"}`, false, 419},
		{"/api/orders", ``, false, 419},
		{"/api/notifications", ``, false, 419},
		{"/api/tickets/1/status", `{"status":"done"}`, false, 419},
		{"/api/tickets", `{"subject":"  ","requester":"y"}`, true, 422},
		{"/api/tickets", `{"subject":"x","requester":""}`, true, 422},
		{"/api/tickets", `{"subject":"x","requester":"y","priority":"asap"}`, true, 422},
		{"/api/tickets", `{"subject":"` + strings.Repeat("x", 20000) + `"}`, true, 413},
		{"/api/tickets", `{`, true, 400},
		{"/api/tickets/1/status", `{"status":"done"}`, true, 422},
		{"/api/tickets/1/assignee", `{"assignee":"Somebody Else"}`, true, 422},
		{"/api/tickets/99/status", `{"status":"open"}`, true, 404},
		{"/api/tickets/x/status", `{"status":"open"}`, true, 404},
	} {
		if code, v := f.call(t, "POST", tc.path, tc.body, tc.csrf); code != tc.want || v["message"] == "" {
			t.Errorf("POST %s %.40q csrf %v: %d %v, want %d", tc.path, tc.body, tc.csrf, code, v, tc.want)
		}
	}
	if reqs := f.sent.list(); len(reqs) != 0 {
		t.Fatalf("published %+v", reqs)
	}
}

// The pages load herald.js (or Echo, pusher-js and herald-echo.js) and
// carry Herald's URL, the app key and the CSRF token; the templates are not
// served as files.
func TestPages(t *testing.T) {
	f := start(t)
	get := func(path string) (int, http.Header, string) {
		res, err := http.Get(f.backend.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header, string(b)
	}
	herald := "http://" + f.herald.Addr
	for path, wants := range map[string][]string{
		"/":            {`<script src="` + herald + `/herald.js" defer>`, `/static/helpdesk.js`},
		"/marketplace": {`<script src="` + herald + `/herald-echo.js" defer>`, `/static/vendor/echo.iife.js`, `/static/vendor/pusher.min.js`, `/static/marketplace.js`},
	} {
		code, h, body := get(path)
		wants = append(wants, `<meta name="herald-url" content="`+herald+`">`, `<meta name="herald-key" content="herald-key">`,
			`<meta name="csrf-token" content="`+f.h.CSRFToken()+`">`)
		for _, w := range wants {
			if !strings.Contains(body, w) {
				t.Errorf("GET %s lacks %s", path, w)
			}
		}
		if code != 200 || h.Get("Cache-Control") != "no-store" || !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
			t.Errorf("GET %s: %d %v", path, code, h)
		}
	}
	for path, want := range map[string]int{
		"/static/demo.css": 200, "/static/helpdesk.js": 200, "/static/vendor/echo.iife.js": 200, "/static/vendor/pusher.min.js": 200,
		"/static/vendor/echo.LICENSE.md": 200, "/static/helpdesk.html": 404, "/static/": 404, "/nope": 404,
	} {
		if code, _, _ := get(path); code != want {
			t.Errorf("GET %s: %d, want %d", path, code, want)
		}
	}
}

// When Herald cannot be reached the change is kept and the answer says
// so (502, with the record); a 5xx is retried once with the same
// idempotency key.
func TestPublishFailures(t *testing.T) {
	var mu sync.Mutex
	var keys []string
	fails := 1
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b struct {
			Key string `json:"idempotency_key"`
		}
		_ = json.NewDecoder(r.Body).Decode(&b)
		mu.Lock()
		defer mu.Unlock()
		keys = append(keys, b.Key)
		if fails > 0 {
			fails--
			http.Error(w, `{"error":"busy"}`, http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte(`{}`))
	}))
	defer fake.Close()
	h, err := demo.New(demo.Options{HeraldURL: fake.URL, AppID: "a", Key: "k", Secret: "s", BroadcastToken: token})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(h)
	defer ts.Close()
	f := &fixture{backend: ts, h: h}

	start := time.Now()
	if code, v := f.call(t, "POST", "/api/orders", "", true); code != http.StatusCreated {
		t.Fatalf("retried publish: %d %v", code, v)
	}
	mu.Lock()
	if len(keys) != 2 || keys[0] == "" || keys[0] != keys[1] {
		t.Errorf("attempts with idempotency keys %q, want two with the same key", keys)
	}
	mu.Unlock()
	t.Logf("publish with one retry: %v", time.Since(start))

	fake.Close() // Herald gone
	code, v := f.call(t, "POST", "/api/tickets", `{"subject":"x","requester":"y"}`, true)
	if code != http.StatusBadGateway || !strings.Contains(v["message"].(string), "saved, but Herald did not take the event") || v["ticket"] == nil {
		t.Fatalf("Herald down: %d %v", code, v)
	}
	if _, v := f.call(t, "GET", "/api/tickets", "", false); len(v["tickets"].([]any)) != 5 {
		t.Fatalf("the ticket was not kept: %v", v)
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	for _, o := range []demo.Options{
		{HeraldURL: "127.0.0.1:8080", AppID: "a", Key: "k", Secret: "s", BroadcastToken: token},
		{HeraldURL: "http://127.0.0.1:8080", AppID: "a", Key: "k", Secret: "s"},
	} {
		if _, err := demo.New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
}
