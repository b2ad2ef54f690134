package server_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herald-ws/herald/internal/config"
	"github.com/herald-ws/herald/internal/server"
)

const testToken = "server-test-broadcast-token-0123"

// httpDo sends one request to the test server and returns the answer.
func httpDo(t *testing.T, method, url, auth, body string) (int, http.Header, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// POST {path}/broadcast reaches a WebSocket subscriber; both it and
// /test honour server.path, and only there.
func TestBroadcastBelowServerPath(t *testing.T) {
	s := start(t, func(c *config.Config) {
		c.Server.Path = "/ws"
		c.Apps[0].BroadcastToken = testToken
	})
	c := s.Dial(t, "/ws/app/"+config.DefaultAppKey+"?protocol=7&client=go&version=1")
	c.Expect("pusher:connection_established")
	c.Send(`{"event":"pusher:subscribe","data":{"channel":"broadcast"}}`)
	c.Expect("pusher_internal:subscription_succeeded")

	base := "http://" + s.Addr
	body := `{"message":{"type":"ticket_created","data":{"id":7}}}`
	if code, _, text := httpDo(t, "POST", base+"/broadcast", "Bearer "+testToken, body); code != 404 {
		t.Fatalf("/broadcast outside server.path: %d %s", code, text)
	}
	code, _, text := httpDo(t, "POST", base+"/ws/broadcast", "Bearer "+testToken, body)
	var res struct {
		OK       bool
		Channels []string
		Offsets  map[string]uint64
	}
	if code != 200 || json.Unmarshal([]byte(text), &res) != nil || !res.OK || len(res.Channels) != 1 || res.Channels[0] != "broadcast" {
		t.Fatalf("/ws/broadcast: %d %s", code, text)
	}
	m := c.Expect("ticket_created")
	var ev struct {
		Event, Channel, Data string
		Offset               uint64
	}
	if json.Unmarshal([]byte(m.Raw), &ev) != nil || ev.Channel != "broadcast" || ev.Data != `{"id":7}` {
		t.Fatalf("delivered %s", m.Raw)
	}
	// The answer's offset is the delivered event's (history is on for
	// every channel by default).
	if off, ok := res.Offsets["broadcast"]; !ok || off != ev.Offset || off == 0 {
		t.Fatalf("answered offsets %v, delivered offset %d", res.Offsets, ev.Offset)
	}
	if code, _, text := httpDo(t, "POST", base+"/ws/broadcast", "Bearer wrong-"+testToken, body); code != 401 {
		t.Fatalf("wrong token: %d %s", code, text)
	}

	code, hdr, text := httpDo(t, "GET", base+"/ws/test", "", "")
	var st struct {
		OK          *bool   `json:"ok"`
		Version     *string `json:"version"`
		Connections *int    `json:"connections"`
		UptimeS     *int64  `json:"uptime_s"`
	}
	if code != 200 || hdr.Get("Content-Type") != "application/json" || json.Unmarshal([]byte(text), &st) != nil ||
		st.OK == nil || !*st.OK || st.Version == nil || *st.Version == "" || st.Connections == nil || *st.Connections != 1 ||
		st.UptimeS == nil || *st.UptimeS < 0 {
		t.Fatalf("/ws/test: %d %s", code, text)
	}
	if strings.Contains(text, config.DefaultAppKey) || strings.Contains(text, testToken) || strings.Contains(text, config.DefaultAppSecret) {
		t.Fatalf("/test tells too much: %s", text)
	}
	if code, hdr, _ := httpDo(t, "POST", base+"/ws/test", "", ""); code != 405 || hdr.Get("Allow") == "" {
		t.Fatalf("POST /ws/test: %d Allow %q", code, hdr.Get("Allow"))
	}
	if code, _, _ := httpDo(t, "GET", base+"/test", "", ""); code != 404 {
		t.Fatalf("/test outside server.path: %d", code)
	}
}

// The server's version (set by the CLI before Serve) is what /test
// answers.
func TestStatusVersion(t *testing.T) {
	cfg := config.Default()
	cfg.Server.Port = 0
	s, err := server.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	s.Version = "v9.9.9 test"
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	_, _, text := httpDo(t, "GET", "http://"+s.Addr().String()+"/test", "", "")
	if !strings.Contains(text, `"version":"v9.9.9 test"`) || !strings.Contains(text, `"connections":0`) {
		t.Fatalf("/test: %s", text)
	}
}

// With no token configured the endpoint is closed, never open.
func TestBroadcastClosedWithoutToken(t *testing.T) {
	s := start(t, nil)
	code, _, text := httpDo(t, "POST", "http://"+s.Addr+"/broadcast", "", `{"message":{"type":"e"}}`)
	if code != 404 || !strings.Contains(text, "HERALD_BROADCAST_TOKEN") {
		t.Fatalf("%d %s", code, text)
	}
}

// server.request_timeout bounds reading a /broadcast body, as an API
// request's.
func TestRequestTimeoutCutsSlowBroadcast(t *testing.T) {
	s := start(t, func(c *config.Config) {
		c.Server.RequestTimeout = 200 * time.Millisecond
		c.Apps[0].BroadcastToken = testToken
	})
	body := `{"message":{"type":"e","data":{}}}`
	conn, br := rawHead(t, s.Addr, "POST", "/broadcast", "Authorization: Bearer "+testToken, "Content-Length: "+strconv.Itoa(len(body)))
	expectCutOff(t, conn, br, []byte(body[:5]))
}
