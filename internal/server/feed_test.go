package server_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/herald-ws/herald/internal/config"
)

// The feed lives below server.path, and a long-poll outlives the
// request timeout (the read deadline every bodyless request gets would
// otherwise cancel it) and is woken by a /broadcast.
func TestLongPollBelowServerPathOutlivesRequestTimeout(t *testing.T) {
	s := start(t, func(c *config.Config) {
		c.Server.Path = "/ws"
		c.Server.RequestTimeout = 50 * time.Millisecond
		c.Apps[0].BroadcastToken = testToken
	})
	base := "http://" + s.Addr + "/ws/app/" + config.DefaultAppKey + "/channels/broadcast/events"
	if code, _, _ := httpDo(t, "GET", "http://"+s.Addr+"/app/"+config.DefaultAppKey+"/channels/broadcast/events", "", ""); code != 404 {
		t.Errorf("feed outside server.path: %d", code)
	}
	for _, p := range []string{base + "/", "http://" + s.Addr + "/ws/app/" + config.DefaultAppKey + "/channels/a%2Fb/events"} {
		if code, _, text := httpDo(t, "GET", p, "", ""); code != 404 {
			t.Errorf("GET %s: %d %s, want 404 (not the WebSocket's 426)", p, code, text)
		}
	}
	code, _, text := httpDo(t, "GET", base+"?since=:0&wait=1", "", "")
	if code != 200 || !strings.Contains(text, `"events":[]`) {
		t.Fatalf("long-poll past the request timeout: %d %s", code, text)
	}
	type answer struct {
		code int
		text string
	}
	got := make(chan answer, 1)
	go func() {
		code, _, text := httpDo(t, "GET", base+"?since=:0&wait=4", "", "")
		got <- answer{code, text}
	}()
	// Held or not yet when the publish lands, the request gets the event:
	// since :0 asks for the channel from its start.
	if c, _, text := httpDo(t, "POST", "http://"+s.Addr+"/ws/broadcast", "Bearer "+testToken, `{"message":{"type":"ticket_created","data":{"id":7}}}`); c != 200 {
		t.Fatalf("broadcast: %d %s", c, text)
	}
	a := <-got
	var p struct {
		Events []struct{ Event, Data string } `json:"events"`
	}
	if a.code != 200 || json.Unmarshal([]byte(a.text), &p) != nil || len(p.Events) != 1 || p.Events[0].Event != "ticket_created" || p.Events[0].Data != `{"id":7}` {
		t.Fatalf("long-poll: %d %s", a.code, a.text)
	}
}

// Shutdown ends SSE streams instead of waiting for them until its
// timeout: their clients reconnect to another node at once.
func TestShutdownEndsStreams(t *testing.T) {
	s, stop := serving(t, func(c *config.Config) { c.Server.ShutdownTimeout = time.Minute })
	req, _ := http.NewRequest("GET", "http://"+s.Addr().String()+"/app/"+config.DefaultAppKey+"/channels/news/events", nil)
	req.Header.Set("Accept", "text/event-stream")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	rd := bufio.NewReader(res.Body)
	if line, err := rd.ReadString('\n'); err != nil || line != "retry: 1000\n" {
		t.Fatalf("stream start: %q %v", line, err)
	}
	// With a minute of shutdown timeout, only ending the stream lets
	// Serve return within guard.
	if err := stop(); err != nil {
		t.Errorf("serve: %v", err)
	}
	if _, err := io.ReadAll(rd); err != nil {
		t.Errorf("stream at shutdown: %v", err)
	}
}

// The browser client is served below server.path.
func TestClientScriptServed(t *testing.T) {
	s := start(t, func(c *config.Config) { c.Server.Path = "/ws" })
	for _, name := range []string{"/herald.js", "/herald.mjs"} {
		code, h, body := httpDo(t, "GET", "http://"+s.Addr+"/ws"+name, "", "")
		if code != 200 || h.Get("Content-Type") != "text/javascript; charset=utf-8" || !strings.Contains(body, "Herald") {
			t.Errorf("GET /ws%s: %d %s", name, code, h.Get("Content-Type"))
		}
		if code, _, _ := httpDo(t, "GET", "http://"+s.Addr+name, "", ""); code != 404 {
			t.Errorf("GET %s outside server.path: %d", name, code)
		}
	}
}

// /ready turns 503 as soon as a graceful stop begins, while /up is the
// liveness check.
func TestReady(t *testing.T) {
	s := start(t, nil)
	base := "http://" + s.Addr
	if code, _, body := httpDo(t, "GET", base+"/ready", "", ""); code != 200 || !strings.Contains(body, `"ready":true`) {
		t.Fatalf("/ready: %d %s", code, body)
	}
	if code, _, _ := httpDo(t, "POST", base+"/ready", "", ""); code != 405 {
		t.Errorf("POST /ready: %d", code)
	}
	s.Shutdown()
	if code, _, body := httpDo(t, "GET", base+"/ready", "", ""); code != 503 || !strings.Contains(body, `"reason":"draining`) {
		t.Errorf("/ready while stopping: %d %s", code, body)
	}
}
