package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/herald-ws/herald/internal/config"
	"github.com/herald-ws/herald/internal/pusher"
	"github.com/herald-ws/herald/internal/server"
	"github.com/herald-ws/herald/internal/server/servertest"
)

func start(t *testing.T, edit func(*config.Config)) *servertest.Server {
	cfg := config.Default()
	if edit != nil {
		edit(cfg)
	}
	return servertest.Start(t, cfg)
}

func connect(t *testing.T, s *servertest.Server) (*servertest.Client, string) {
	c := s.Dial(t, "/app/"+config.DefaultAppKey+"?protocol=7&client=go&version=1")
	m := c.Expect("pusher:connection_established")
	var id string
	if _, err := fmt.Sscanf(m.DataString(), `{"socket_id":"%s`, &id); err != nil {
		t.Fatalf("bad connection_established %s", m.Raw)
	}
	return c, strings.SplitN(id, `"`, 2)[0]
}

// subscribed connects a client subscribed to the public channel ch.
func subscribed(t *testing.T, s *servertest.Server, ch string) *servertest.Client {
	c, _ := connect(t, s)
	c.Send(`{"event":"pusher:subscribe","data":{"channel":"` + ch + `"}}`)
	c.Expect("pusher_internal:subscription_succeeded")
	return c
}

func TestPublishReachesSubscriber(t *testing.T) {
	s := start(t, nil)
	c := subscribed(t, s, "orders")
	app := s.Node().AppByKey(config.DefaultAppKey)
	if err := s.Node().Publish(context.Background(), app, []string{"orders"}, "orders.updated", `{"n":1}`, ""); err != nil {
		t.Fatal(err)
	}
	m := c.Expect("orders.updated")
	// History is on by default: the frame is Pusher's, with the channel's
	// position appended as the last two fields.
	pos, ok := app.Position("orders")
	if !ok || pos.Offset != 1 {
		t.Fatalf("position %+v, %v; want offset 1", pos, ok)
	}
	want := `{"event":"orders.updated","channel":"orders","data":"{\"n\":1}","epoch":"` + pos.Epoch + `","offset":1}`
	if m.Raw != want {
		t.Fatalf("got  %s\nwant %s", m.Raw, want)
	}
}

func TestMalformedFrameKeepsConnection(t *testing.T) {
	s := start(t, nil)
	c, _ := connect(t, s)
	c.Send(`not json`)
	m := c.Expect("pusher:error")
	if !strings.Contains(m.DataString(), `"code":4200`) {
		t.Fatalf("got %s", m.Raw)
	}
	c.Send(`{"event":"pusher:ping","data":{}}`)
	c.Expect("pusher:pong")
}

// A client that stops reading is cut off with 4100 and does not hold up
// the others.
func TestSlowClientIsCutOff(t *testing.T) {
	s := start(t, nil)
	slow, fast := subscribed(t, s, "firehose"), subscribed(t, s, "firehose")
	app := s.Node().AppByKey(config.DefaultAppKey)
	payload := strings.Repeat("x", 8000)
	// Publish in step with the fast reader: it never falls behind, while
	// the slow one (never reading) passes its 8 MiB bound plus what the
	// kernel buffers.
	for i := range 4000 {
		if err := s.Node().Publish(context.Background(), app, []string{"firehose"}, "e", payload, ""); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
		fast.Expect("e")
	}
	if code := slow.ExpectClose(); code != pusher.CodeOverCapacity {
		t.Fatalf("slow client closed with %d, want 4100", code)
	}
	if st := s.Stats(); st.SlowClosed != 1 || st.Stalled != 0 {
		t.Fatalf("stats %+v, want one slow client closed", st)
	}
}

// A client that takes none of our data for the write timeout (below its
// queue bound) is dropped and counted.
func TestStalledClientIsDroppedAndCounted(t *testing.T) {
	for _, transport := range []string{"epoll", "goroutine"} {
		t.Run(transport, func(t *testing.T) {
			s := start(t, func(c *config.Config) {
				c.Server.Transport = transport
				c.Server.WriteTimeout = 300 * time.Millisecond
			})
			stalled, fast := subscribed(t, s, "firehose"), subscribed(t, s, "firehose")
			app := s.Node().AppByKey(config.DefaultAppKey)
			payload := strings.Repeat("x", 8000)
			for range 750 { // 6 MB: more than the kernel buffers (~4 MB here), below the 8 MiB bound
				if err := s.Node().Publish(context.Background(), app, []string{"firehose"}, "e", payload, ""); err != nil {
					t.Fatal(err)
				}
				fast.Expect("e")
			}
			// The stalled client must not read before the drop (reading
			// would unstall it), so watch the counter the operator sees.
			var st server.Stats
			for deadline := time.Now().Add(5 * time.Second); st.Stalled == 0; time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("stats %+v after 5 s: the stalled client was not dropped", st)
				}
				st = s.Stats()
			}
			if st.Stalled != 1 || st.SlowClosed != 0 {
				t.Fatalf("stats %+v, want one stalled client dropped and none cut off", st)
			}
			stalled.ExpectClosed()
			fast.Send(`{"event":"pusher:ping","data":{}}`)
			fast.Expect("pusher:pong")
		})
	}
}

// A debug address that cannot be bound stops the start with an error
// naming it, instead of a server silently without its profiler.
func TestDebugAddrInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := config.Default()
	cfg.Server.Host, cfg.Server.Port, cfg.Server.DebugAddr = "127.0.0.1", 0, ln.Addr().String()
	s, err := server.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err == nil || !strings.Contains(err.Error(), "debug listener on "+ln.Addr().String()) {
		t.Fatalf("Listen: %v", err)
	}
}

func TestPongTimeout(t *testing.T) {
	s := start(t, func(c *config.Config) {
		c.Apps[0].PingInterval = 100 * time.Millisecond
		c.Apps[0].PongTimeout = 100 * time.Millisecond
	})
	c, _ := connect(t, s)
	c.Expect("pusher:ping")
	if code := c.ExpectClose(); code != pusher.CodePongNotReceived {
		t.Fatalf("closed with %d, want 4201", code)
	}
}

func TestPongKeepsConnection(t *testing.T) {
	s := start(t, func(c *config.Config) {
		c.Apps[0].PingInterval = 100 * time.Millisecond
		c.Apps[0].PongTimeout = 150 * time.Millisecond
	})
	c, _ := connect(t, s)
	for range 3 {
		c.Expect("pusher:ping")
		c.Send(`{"event":"pusher:pong","data":{}}`)
	}
}

func TestShutdownClosesWith4200(t *testing.T) {
	cfg := config.Default()
	cfg.Server.Host, cfg.Server.Port = "127.0.0.1", 0
	s := servertest.Start(t, cfg)
	c, _ := connect(t, s)
	resp, err := http.Get("http://" + s.Addr + "/up")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/up: %v %v", resp, err)
	}
	resp.Body.Close()
	go s.Shutdown()
	if code := c.ExpectClose(); code != pusher.CodeGeneric {
		t.Fatalf("closed with %d, want 4200", code)
	}
}

// Many clients that stop reading must not hold up delivery to the others:
// each is cut off with 4100 on its own, and a reading client keeps
// receiving every event meanwhile.
func TestManySlowClientsDoNotStallOthers(t *testing.T) {
	s := start(t, nil)
	var slow []*servertest.Client
	for range 12 {
		slow = append(slow, subscribed(t, s, "firehose"))
	}
	fast := subscribed(t, s, "firehose")
	app := s.Node().AppByKey(config.DefaultAppKey)
	payload := strings.Repeat("x", 8000)
	for i := range 3000 {
		if err := s.Node().Publish(context.Background(), app, []string{"firehose"}, "e", payload, ""); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
		fast.Expect("e") // fails after 5 s if a stuck worker holds it up
	}
	for _, c := range slow {
		if code := c.ExpectClose(); code != pusher.CodeOverCapacity {
			t.Fatalf("slow client closed with %d, want 4100", code)
		}
	}
}
