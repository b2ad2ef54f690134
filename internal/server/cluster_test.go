package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-ws/herald/internal/broker/redis/redistest"
	"github.com/herald-ws/herald/internal/config"
	"github.com/herald-ws/herald/internal/server/servertest"
	"github.com/herald-ws/herald/internal/signature"
)

// cluster starts n Herald servers sharing one fresh redis-server.
func cluster(t *testing.T, n int) ([]*servertest.Server, *redistest.Server) {
	t.Helper()
	redis := redistest.Start(t)
	var out []*servertest.Server
	for range n {
		out = append(out, start(t, func(c *config.Config) { c.Cluster.URL = redis.URL() }))
	}
	return out, redis
}

// publishAPI publishes an event through s's signed HTTP API.
func publishAPI(t *testing.T, s *servertest.Server, channels []string, event, data string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"name": event, "channels": channels, "data": data})
	path := "/apps/" + config.DefaultAppID + "/events"
	q := signature.SignRequest(config.DefaultAppKey, config.DefaultAppSecret, "POST", path, url.Values{}, body, time.Now())
	resp, err := http.Post("http://"+s.Addr+path+"?"+q.Encode(), "application/json", bytes.NewReader(body))
	if err != nil {
		t.Error(err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Errorf("publish: %d %s", resp.StatusCode, b)
	}
}

// position is an event's epoch and offset, as a frame carries them.
type position struct {
	Epoch  string `json:"epoch"`
	Offset uint64 `json:"offset"`
}

func positionOf(t *testing.T, m servertest.Message) position {
	t.Helper()
	var p position
	if err := json.Unmarshal([]byte(m.Raw), &p); err != nil || p.Epoch == "" {
		t.Fatalf("no position in %s", m.Raw)
	}
	return p
}

// expectEvents reads n events named event and returns their data and
// positions, failing on any other channel event in between.
func expectEvents(t *testing.T, c *servertest.Client, event string, n int) ([]string, []position) {
	t.Helper()
	var data []string
	var pos []position
	deadline := time.Now().Add(guard)
	for len(data) < n {
		m, err := c.Next(time.Until(deadline))
		if err != nil {
			t.Fatalf("after %d of %d %s events: %v", len(data), n, event, err)
		}
		if strings.HasPrefix(m.Event, "pusher") {
			continue
		}
		if m.Event != event {
			t.Fatalf("got %s, want %s", m.Raw, event)
		}
		data = append(data, m.DataString())
		pos = append(pos, positionOf(t, m))
	}
	return data, pos
}

// Three nodes on one Redis: events published through node A's HTTP API
// by concurrent publishers on several channels reach subscribers on B
// and C exactly once, offsets +1, one epoch per channel on every node.
func TestClusterDeliversAcrossNodes(t *testing.T) {
	nodes, _ := cluster(t, 3)
	channels := []string{"orders", "prices", "news"}
	type sub struct {
		c  *servertest.Client
		ch string
	}
	var subs []sub
	for _, n := range nodes[1:] {
		for _, ch := range channels {
			subs = append(subs, sub{subscribed(t, n, ch), ch})
		}
	}
	const publishers, each = 4, 25
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			for i := range each {
				ch := channels[(p+i)%len(channels)]
				publishAPI(t, nodes[0], []string{ch}, "e", fmt.Sprintf("%d.%d", p, i))
			}
		})
	}
	wg.Wait()
	perChannel := map[string]int{}
	for p := range publishers {
		for i := range each {
			perChannel[channels[(p+i)%len(channels)]]++
		}
	}
	epochs := map[string]string{}
	for _, s := range subs {
		data, pos := expectEvents(t, s.c, "e", perChannel[s.ch])
		seen := map[string]bool{}
		for i, d := range data {
			if seen[d] {
				t.Fatalf("%s: %s twice", s.ch, d)
			}
			seen[d] = true
			if pos[i].Offset != uint64(i+1) || pos[i].Epoch != pos[0].Epoch {
				t.Fatalf("%s: event %d at %+v, want offset %d in one epoch", s.ch, i, pos[i], i+1)
			}
		}
		if e, ok := epochs[s.ch]; ok && e != pos[0].Epoch {
			t.Fatalf("%s: epoch %s on one node, %s on another", s.ch, e, pos[0].Epoch)
		}
		epochs[s.ch] = pos[0].Epoch
	}
	// Nothing more: a duplicate would show up before this pong.
	for _, s := range subs {
		s.c.Send(`{"event":"pusher:ping","data":{}}`)
		if m := s.c.Expect("pusher:pong"); m.Event != "pusher:pong" {
			t.Fatal(m.Raw)
		}
	}
}

// A client that leaves node B and comes back on node C with the last
// position it saw gets exactly the events published (on A) meanwhile,
// then live ones.
func TestClusterResumeOnAnotherNode(t *testing.T) {
	nodes, _ := cluster(t, 3)
	a, b, c := nodes[0], nodes[1], nodes[2]
	client := subscribed(t, b, "feed")
	for i := range 3 {
		publishAPI(t, a, []string{"feed"}, "e", fmt.Sprint(i))
	}
	_, pos := expectEvents(t, client, "e", 3)
	last := pos[2]
	_ = client.Conn().Close()
	for i := 3; i < 8; i++ {
		publishAPI(t, a, []string{"feed"}, "e", fmt.Sprint(i))
	}
	again, _ := connect(t, c)
	again.Send(fmt.Sprintf(`{"event":"pusher:subscribe","data":{"channel":"feed","since":{"epoch":%q,"offset":%d}}}`, last.Epoch, last.Offset))
	again.Expect("pusher_internal:subscription_succeeded")
	data, got := expectEvents(t, again, "e", 5)
	for i := range got {
		if got[i].Offset != last.Offset+uint64(i)+1 || got[i].Epoch != last.Epoch || data[i] != fmt.Sprint(i+3) {
			t.Fatalf("replayed %q at %+v, want events 3-7 after %+v", data, got, last)
		}
	}
	publishAPI(t, a, []string{"feed"}, "e", "live")
	if data, p := expectEvents(t, again, "e", 1); data[0] != "live" || p[0].Offset != last.Offset+6 {
		t.Fatalf("live event %q at %+v", data, p)
	}
}

// A client event (whisper) sent on node B reaches the channel's members
// on A and C, not its sender.
func TestClusterClientEvents(t *testing.T) {
	nodes, _ := cluster(t, 3)
	const ch = "private-chat"
	join := func(s *servertest.Server) *servertest.Client {
		c, sid := connect(t, s)
		auth := signature.ChannelAuth(config.DefaultAppKey, config.DefaultAppSecret, sid, ch, "")
		c.Send(`{"event":"pusher:subscribe","data":{"channel":"` + ch + `","auth":"` + auth + `"}}`)
		c.Expect("pusher_internal:subscription_succeeded")
		return c
	}
	onA, sender, onC := join(nodes[0]), join(nodes[1]), join(nodes[2])
	sender.Send(`{"event":"client-typing","channel":"` + ch + `","data":{"who":"b"}}`)
	for _, c := range []*servertest.Client{onA, onC} {
		if m := c.Expect("client-typing"); !strings.Contains(m.Raw, `"who":"b"`) {
			t.Fatalf("got %s", m.Raw)
		}
	}
	// The sender gets nothing: its next frame is the pong.
	sender.Send(`{"event":"pusher:ping","data":{}}`)
	if m, err := sender.Next(guard); err != nil || m.Event != "pusher:pong" {
		t.Fatalf("sender got %s (%v), want only its pong", m.Raw, err)
	}
}

// /ready turns 503 while Redis is unreachable, and a publish fails with a
// 5xx; both recover when Redis is back.
func TestClusterReadyFollowsRedis(t *testing.T) {
	nodes, redis := cluster(t, 1)
	s := nodes[0]
	ready := func() (int, string) {
		resp, err := http.Get("http://" + s.Addr + "/ready")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := ready(); code != http.StatusOK {
		t.Fatalf("/ready %d %s", code, body)
	}
	redis.Stop()
	for deadline := time.Now().Add(guard); ; time.Sleep(10 * time.Millisecond) {
		code, body := ready()
		if code == http.StatusServiceUnavailable && strings.Contains(body, "cluster engine unreachable") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/ready %d %s with Redis down", code, body)
		}
	}
	body := []byte(`{"name":"e","channels":["c"],"data":"d"}`)
	path := "/apps/" + config.DefaultAppID + "/events"
	q := signature.SignRequest(config.DefaultAppKey, config.DefaultAppSecret, "POST", path, url.Values{}, body, time.Now())
	resp, err := http.Post("http://"+s.Addr+path+"?"+q.Encode(), "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode < 500 {
		t.Fatalf("publish with Redis down: %d, want 5xx", resp.StatusCode)
	}
	redis.Restart(t)
	for deadline := time.Now().Add(3 * guard); ; time.Sleep(20 * time.Millisecond) {
		if code, _ := ready(); code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("/ready still 503 after Redis came back")
		}
	}
}
