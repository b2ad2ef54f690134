package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/herald-ws/herald/internal/broker"
)

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func fmtNames(v [][]string) string { return fmt.Sprint(v) }
func fmtInts(v []int) string       { return fmt.Sprint(v) }
func fmtStrings(v []string) string { return fmt.Sprint(v) }

// received is one webhook as a receiver sees it.
type received struct {
	header http.Header
	body   []byte
}

// receiver is an httptest server that answers status(n) to the n-th POST
// and hands every request to the test on a channel.
func receiver(t *testing.T, status func(n int) int) (*httptest.Server, chan received) {
	t.Helper()
	ch := make(chan received, 100)
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		code := 200
		if status != nil {
			code = status(n)
		}
		n++ // handler calls are sequential: one worker per endpoint
		w.WriteHeader(code)
		ch <- received{r.Header.Clone(), body}
	}))
	t.Cleanup(srv.Close)
	return srv, ch
}

func await[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting")
		panic("unreachable")
	}
}

func lookup(url string) Lookup {
	return func(id string) (string, string, []Endpoint, bool) {
		return "app-key", "app-secret", []Endpoint{{URL: url}}, id == "1"
	}
}

// laravelVerify checks a webhook the way a Laravel controller does:
// hash_equals(hash_hmac('sha256', $request->getContent(), $secret),
// $request->header('X-Pusher-Signature')), independently of package
// signature.
func laravelVerify(t *testing.T, r received, key, secret string) {
	t.Helper()
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(r.body)
	if want := hex.EncodeToString(m.Sum(nil)); r.header.Get("X-Pusher-Signature") != want {
		t.Fatalf("X-Pusher-Signature %q, want %q", r.header.Get("X-Pusher-Signature"), want)
	}
	if r.header.Get("X-Pusher-Key") != key {
		t.Fatalf("X-Pusher-Key %q, want %q", r.header.Get("X-Pusher-Key"), key)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
}

func TestSignedPusherPayloadForEveryEvent(t *testing.T) {
	srv, got := receiver(t, nil)
	d := New(Options{
		Lookup: lookup(srv.URL + "/webhooks/pusher"),
		Batch:  time.Millisecond,
		Delay:  -1,
		Now:    func() time.Time { return time.UnixMilli(1327078148132) },
		Log:    discard(),
	})
	defer d.Close()
	events := []struct {
		e    broker.Lifecycle
		wire string
	}{
		{broker.Lifecycle{Name: broker.ChannelOccupied, Channel: "c"},
			`{"name":"channel_occupied","channel":"c"}`},
		{broker.Lifecycle{Name: broker.ChannelVacated, Channel: "c"},
			`{"name":"channel_vacated","channel":"c"}`},
		{broker.Lifecycle{Name: broker.MemberAdded, Channel: "presence-x", UserID: "7"},
			`{"name":"member_added","channel":"presence-x","user_id":"7"}`},
		{broker.Lifecycle{Name: broker.MemberRemoved, Channel: "presence-x", UserID: "7"},
			`{"name":"member_removed","channel":"presence-x","user_id":"7"}`},
		{broker.Lifecycle{Name: broker.ClientEvent, Channel: "private-x", Event: "client-typing", Data: `{"a":"<b>&"}`, SocketID: "1.2"},
			`{"name":"client_event","channel":"private-x","event":"client-typing","data":"{\"a\":\"<b>&\"}","socket_id":"1.2"}`},
		{broker.Lifecycle{Name: broker.ClientEvent, Channel: "presence-x", Event: "client-typing", Data: "", SocketID: "1.2", UserID: "7"},
			`{"name":"client_event","channel":"presence-x","event":"client-typing","data":"","socket_id":"1.2","user_id":"7"}`},
		{broker.Lifecycle{Name: broker.SubscriptionCount, Channel: "c", SubscriptionCount: 3},
			`{"name":"subscription_count","channel":"c","subscription_count":3}`},
		{broker.Lifecycle{Name: broker.SubscriptionCount, Channel: "c"},
			`{"name":"subscription_count","channel":"c","subscription_count":0}`},
		{broker.Lifecycle{Name: broker.CacheMiss, Channel: "cache-x"},
			`{"name":"cache_miss","channel":"cache-x"}`},
	}
	for _, e := range events {
		d.Observe("1", e.e)
	}
	var wire []string
	for len(wire) < len(events) {
		r := await(t, got)
		laravelVerify(t, r, "app-key", "app-secret")
		body := string(r.body)
		prefix := `{"time_ms":1327078148132,"events":[`
		if !strings.HasPrefix(body, prefix) || !strings.HasSuffix(body, "]}") {
			t.Fatalf("body %s", body)
		}
		// Split the events array at the top-level "},{" boundaries.
		inner := strings.TrimSuffix(strings.TrimPrefix(body, prefix), "]}")
		wire = append(wire, strings.Split(strings.ReplaceAll(inner, `},{"name"`, "}\x00{\"name\""), "\x00")...)
	}
	for i, e := range events {
		if wire[i] != e.wire {
			t.Errorf("event %d:\n got %s\nwant %s", i, wire[i], e.wire)
		}
	}
}

func TestRetryAfter500(t *testing.T) {
	srv, got := receiver(t, func(n int) int {
		if n == 0 {
			return 500
		}
		return 200
	})
	d := New(Options{Lookup: lookup(srv.URL), Batch: time.Millisecond, RetryMin: 10 * time.Millisecond, Log: discard()})
	defer d.Close()
	d.Observe("1", ev(broker.ChannelOccupied, "a"))
	first, second := await(t, got), await(t, got)
	if string(first.body) != string(second.body) {
		t.Fatalf("retry body %s differs from %s", second.body, first.body)
	}
	laravelVerify(t, second, "app-key", "app-secret")
	d.Close()
	if s := d.Stats(); s.Delivered != 1 || s.Retried != 1 || s.Failed != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestRetryAfterConnectionRefused(t *testing.T) {
	// A port nothing listens on: take one, then free it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	refused := make(chan error, 100)
	dialer := &net.Dialer{}
	tr := &http.Transport{DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, network, a)
		if err != nil {
			refused <- err
		}
		return c, err
	}}
	defer tr.CloseIdleConnections()
	d := New(Options{
		Lookup:   lookup("http://" + addr + "/hook"),
		Client:   &http.Client{Transport: tr},
		Batch:    time.Millisecond,
		RetryMin: 20 * time.Millisecond,
		RetryMax: 20 * time.Millisecond,
		Log:      discard(),
	})
	defer d.Close()
	d.Observe("1", ev(broker.ChannelOccupied, "a"))
	await(t, refused)

	// The endpoint comes up on the same port; the retry reaches it.
	l, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("port %s was taken meanwhile: %v", addr, err)
	}
	got := make(chan received, 10)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- received{r.Header.Clone(), body}
	}))
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	defer srv.Close()
	r := await(t, got)
	laravelVerify(t, r, "app-key", "app-secret")
	if !strings.Contains(string(r.body), `{"name":"channel_occupied","channel":"a"}`) {
		t.Fatalf("body %s", r.body)
	}
}
