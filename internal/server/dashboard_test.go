package server_test

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/herald-ws/herald/internal/config"
)

const dashToken = "dash-token-0123456789"

func TestDashboardOffByDefault(t *testing.T) {
	s := start(t, nil)
	for _, p := range []string{"/dashboard", "/dashboard/", "/dashboard/api/overview"} {
		if code, _, _ := httpDo(t, "GET", "http://"+s.Addr+p+"?token="+dashToken, "Bearer "+dashToken, ""); code != http.StatusNotFound {
			t.Errorf("GET %s without dashboard credentials configured: %d, want 404", p, code)
		}
	}
}

// With a token, the dashboard is served under server.path, and its
// console tees the server's own log: a socket's connect and disconnect,
// and a refused API request, reach a live stream.
func TestDashboardConsoleSeesTheServer(t *testing.T) {
	s := start(t, func(c *config.Config) { c.Server.DashboardToken = dashToken; c.Server.Path = "/ws" })
	if code, _, _ := httpDo(t, "GET", "http://"+s.Addr+"/ws/dashboard/", "", ""); code != http.StatusUnauthorized {
		t.Fatalf("no token: %d", code)
	}
	if code, _, body := httpDo(t, "GET", "http://"+s.Addr+"/ws/dashboard/", "Bearer "+dashToken, ""); code != 200 || !strings.Contains(body, "Herald dashboard") {
		t.Fatalf("with the token: %d", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+s.Addr+"/ws/dashboard/api/live?app="+config.DefaultAppID, nil)
	req.Header.Set("Authorization", "Bearer "+dashToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	until := func(what string, ok func(line string) bool) {
		t.Helper()
		for sc.Scan() {
			if ok(sc.Text()) {
				return
			}
		}
		t.Fatalf("stream ended waiting for %s: %v", what, sc.Err())
	}
	until("samples", func(l string) bool { return l == "event: samples" })

	c := s.Dial(t, "/ws/app/"+config.DefaultAppKey+"?protocol=7")
	c.Expect("pusher:connection_established")
	until("the connect", func(l string) bool {
		return strings.Contains(l, `"msg":"connected"`) && strings.Contains(l, `["transport","websocket"]`)
	})
	c.Close()
	until("the disconnect", func(l string) bool { return strings.Contains(l, `"msg":"disconnected"`) })
	if code, _, _ := httpDo(t, "GET", "http://"+s.Addr+"/ws/apps/"+config.DefaultAppID+"/channels", "", ""); code != http.StatusUnauthorized {
		t.Fatalf("unsigned API request: %d", code)
	}
	until("the refused API request", func(l string) bool {
		return strings.Contains(l, `"msg":"api request refused"`) && strings.Contains(l, `["status","401"]`)
	})
	until("a sample", func(l string) bool { return l == "event: sample" })
}
