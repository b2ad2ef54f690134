package server_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herald-ws/herald/internal/config"
	"github.com/herald-ws/herald/internal/server"
	"github.com/herald-ws/herald/internal/signature"
)

// guard bounds every wait on the network below; the awaited event comes
// far sooner unless the behaviour under test is broken.
const guard = 5 * time.Second

var eventBody = []byte(`{"name":"e","channel":"c","data":"d"}`)

// rawPOST sends a signed POST /apps/{id}/events head announcing body, plus
// extra header lines, and sends none of the body.
func rawPOST(t *testing.T, addr string, body []byte, header ...string) (net.Conn, *bufio.Reader) {
	t.Helper()
	path := "/apps/" + config.DefaultAppID + "/events"
	q := signature.SignRequest(config.DefaultAppKey, config.DefaultAppSecret, "POST", path, url.Values{}, body, time.Now())
	header = append(header, "Content-Length: "+strconv.Itoa(len(body)))
	return rawHead(t, addr, "POST", path+"?"+q.Encode(), header...)
}

func rawHead(t *testing.T, addr, method, target string, header ...string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
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

// awaitContinue returns once the handler reads the body: net/http answers
// "Expect: 100-continue" then.
func awaitContinue(t *testing.T, br *bufio.Reader) {
	t.Helper()
	for _, want := range []string{"HTTP/1.1 100", "\r\n"} {
		line, err := br.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, want) {
			t.Fatalf("waiting for 100 Continue: %q %v", line, err)
		}
	}
}

// A request stalled mid-body when the server stops is cut off at the
// shutdown timeout, and the shutdown is still a success: a client's stall
// must not make Herald exit 1.
func TestShutdownCutsStalledRequest(t *testing.T) {
	s, stop := serving(t, func(c *config.Config) { c.Server.ShutdownTimeout = 200 * time.Millisecond })
	_, br := rawPOST(t, s.Addr().String(), eventBody, "Expect: 100-continue")
	awaitContinue(t, br)
	if err := stop(); err != nil {
		t.Fatalf("Serve = %v, want nil", err)
	}
	if _, err := io.Copy(io.Discard, br); isTimeout(err) {
		t.Fatal("the stalled request's connection is still open")
	}
}

// serving runs a server (the default config, edited) on a free loopback
// port; stop ends it and returns what Serve returned, failing the test
// if Serve is still running guard after the stop.
func serving(t *testing.T, edit func(*config.Config)) (s *server.Server, stop func() error) {
	t.Helper()
	cfg := config.Default()
	cfg.Server.Host, cfg.Server.Port = "127.0.0.1", 0
	edit(cfg)
	s, err := server.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	return s, func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(guard):
			t.Fatalf("Serve still running %v after the stop", guard)
			return nil
		}
	}
}

func isTimeout(err error) bool {
	ne, ok := errors.AsType[net.Error](err)
	return ok && ne.Timeout()
}

// server.request_timeout bounds reading an API request's body.
func TestRequestTimeoutCutsSlowBody(t *testing.T) {
	s := start(t, func(c *config.Config) { c.Server.RequestTimeout = 200 * time.Millisecond })
	conn, br := rawPOST(t, s.Addr, eventBody)
	expectCutOff(t, conn, br, eventBody[:5])
}

// expectCutOff sends part of a request body and no more, and checks that
// the server answers 408 and closes the connection well within 2 s (the
// tests set request_timeout to 200 ms; a bound, not a benchmark).
func expectCutOff(t *testing.T, conn net.Conn, br *bufio.Reader, part []byte) {
	t.Helper()
	if _, err := conn.Write(part); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout || !resp.Close {
		t.Fatalf("%d (close %v), want 408 and the connection closed", resp.StatusCode, resp.Close)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("answered after %v; request_timeout is 200ms", d)
	}
}

// The answers that read no body (/up, unknown paths, /app/ without an
// upgrade) do not wait for one either, and close a connection whose body
// they left unread.
func TestBodylessAnswersDoNotWaitForBody(t *testing.T) {
	s := start(t, func(c *config.Config) { c.Server.RequestTimeout = 200 * time.Millisecond })
	for _, c := range []struct {
		target string
		status int
	}{
		{"/up", 200},
		{"/nope", 404},
		{"/app/" + config.DefaultAppKey, 426},
	} {
		for _, framing := range []string{"Content-Length: 1000", "Transfer-Encoding: chunked"} {
			_, br := rawHead(t, s.Addr, "POST", c.target, framing)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("%s, %s: no answer: %v", c.target, framing, err)
			}
			resp.Body.Close()
			if resp.StatusCode != c.status || !resp.Close {
				t.Errorf("%s, %s: %d (close %v), want %d and the connection closed", c.target, framing, resp.StatusCode, resp.Close, c.status)
			}
			if _, err := io.Copy(io.Discard, br); isTimeout(err) {
				t.Errorf("%s, %s: connection still open", c.target, framing)
			}
		}
	}
}

// The request deadline is for plain HTTP only: a WebSocket lives on past
// it. (A guard: the upgrade path never had a deadline to lose.)
func TestRequestTimeoutSparesWebSockets(t *testing.T) {
	s := start(t, func(c *config.Config) {
		c.Server.RequestTimeout = 50 * time.Millisecond
		c.Apps[0].PingInterval = 300 * time.Millisecond
	})
	c, _ := connect(t, s)
	c.Expect("pusher:ping") // 300ms in, six deadlines later
	c.Send(`{"event":"pusher:pong","data":{}}`)
	c.Send(`{"event":"pusher:ping","data":{}}`)
	c.Expect("pusher:pong")
}
