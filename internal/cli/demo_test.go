package cli

import (
	"context"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestDemoFlags(t *testing.T) {
	code, _, errOut := run("demo", "--help")
	if code != 0 || !strings.Contains(errOut, "Usage: herald demo") || !strings.Contains(errOut, "-demo-port int") {
		t.Fatalf("demo --help: exit %d\n%s", code, errOut)
	}
	for _, args := range [][]string{
		{"demo", "--port", "-1"},
		{"demo", "--demo-port", "70000"},
		{"demo", "--log-level", "loud"},
		{"demo", "extra"},
		{"demo", "--nope"},
	} {
		if code, _, errOut := run(args...); code != 2 || errOut == "" {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
	if code, out, _ := run("help"); code != 0 || !strings.Contains(out, "herald demo              a live helpdesk") {
		t.Fatalf("help lacks demo: exit %d\n%s", code, out)
	}
}

var demoURLs = regexp.MustCompile(`(?m)^  Helpdesk, "All tickets"   (http://\S+)/\n(?:.*\n)*?  Herald                    (http://\S+)\n`)

// herald demo on free ports: both listen, the page loads herald.js from
// Herald, a ticket created on the backend is published to Herald with the
// run's token; cancelling stops both and exits 0.
func TestDemoListens(t *testing.T) {
	stdout, stderr := newSyncWriter("Ctrl+C stops both."), newSyncWriter("\x00")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() { done <- demoContext(ctx, []string{"--port", "0", "--demo-port", "0"}, stdout, stderr) }()
	select {
	case <-stdout.seen:
	case code := <-done:
		t.Fatalf("demo exited %d\n%s%s", code, stdout, stderr)
	case <-time.After(10 * time.Second):
		t.Fatalf("no banner\n%s%s", stdout, stderr)
	}
	m := demoURLs.FindStringSubmatch(stdout.String())
	if m == nil {
		t.Fatalf("no URLs in the banner:\n%s", stdout)
	}
	pages, herald := m[1], m[2]
	for _, u := range []string{pages, herald} {
		if !strings.HasPrefix(u, "http://127.0.0.1:") {
			t.Errorf("%s: want loopback", u)
		}
	}

	get := func(u string) (int, string) {
		res, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	code, page := get(pages + "/")
	if code != 200 || !strings.Contains(page, `<script src="`+herald+`/herald.js"`) {
		t.Fatalf("GET /: %d\n%.600s", code, page)
	}
	if code, _ := get(herald + "/up"); code != 200 {
		t.Fatalf("Herald /up: %d", code)
	}
	if code, _ := get(herald + "/herald.js"); code != 200 {
		t.Fatalf("Herald /herald.js: %d", code)
	}
	csrf := regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)">`).FindStringSubmatch(page)
	req, _ := http.NewRequest("POST", pages+"/api/tickets", strings.NewReader(`{"subject":"From the CLI test","requester":"Go"}`))
	req.Header.Set("X-CSRF-TOKEN", csrf[1])
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("create a ticket: %d %s", res.StatusCode, b)
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("demo did not stop")
	}
	for _, u := range []string{pages, herald} {
		if c, err := net.DialTimeout("tcp", strings.TrimPrefix(u, "http://"), time.Second); err == nil {
			c.Close()
			t.Errorf("%s still listening after the stop", u)
		}
	}
	if !strings.Contains(stderr.String(), `msg="herald listening"`) || !strings.Contains(stderr.String(), "msg=stopped") {
		t.Errorf("Herald's log:\n%s", stderr)
	}
}

// A port in use stops the demo with exit 1, and gives back the other one.
func TestDemoPortTaken(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	_, port, _ := net.SplitHostPort(taken.Addr().String())
	free := freePort(t)

	code, _, errOut := run("demo", "--port", "0", "--demo-port", port)
	if code != 1 || !strings.Contains(errOut, "herald demo: listen") || !strings.Contains(errOut, ":"+port) {
		t.Fatalf("demo port taken: exit %d %q", code, errOut)
	}
	code, _, errOut = run("demo", "--port", port, "--demo-port", free)
	if code != 1 || !strings.Contains(errOut, "herald demo: listen on 127.0.0.1:"+port) {
		t.Fatalf("Herald's port taken: exit %d %q", code, errOut)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+free)
	if err != nil {
		t.Fatalf("the demo port was not given back: %v", err)
	}
	ln.Close()
}
