package redis_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-ws/herald/internal/apps"
	"github.com/herald-ws/herald/internal/broker"
	"github.com/herald-ws/herald/internal/node"
	"github.com/herald-ws/herald/internal/pusher"
)

// nodes builds n Herald nodes (one app with history on every channel) on
// engines sharing one redis-server, and returns the app on each.
func nodes(t *testing.T, n int, maxEvents int) ([]*node.Node, []*node.App) {
	t.Helper()
	a := &apps.App{ID: "1", Key: "key", Secret: "secret", Enabled: true, Limits: apps.DefaultLimits,
		History: apps.History{Enabled: true, Channels: []string{"*"}, MaxEvents: maxEvents, TTL: time.Minute}}
	reg, err := apps.NewRegistry([]*apps.App{a})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var ns []*node.Node
	var as []*node.App
	for _, e := range start(t, n, nil) {
		nd := node.NewWithOptions(reg, e, log, node.Options{History: e})
		ns, as = append(ns, nd), append(as, nd.AppByID("1"))
	}
	return ns, as
}

// sub is a subscriber that keeps its frames and wakes a waiter.
type sub struct {
	id     string
	mu     sync.Mutex
	frames []frame
	notify chan struct{}
}

type frame struct {
	Event  string `json:"event"`
	Epoch  string `json:"epoch"`
	Offset uint64 `json:"offset"`
	raw    string
}

func newSub(id string) *sub { return &sub{id: id, notify: make(chan struct{}, 1)} }

func (s *sub) SocketID() string { return s.id }
func (s *sub) Send(b []byte) {
	var f frame
	if err := json.Unmarshal(b, &f); err != nil {
		panic(err)
	}
	f.raw = string(b)
	s.mu.Lock()
	s.frames = append(s.frames, f)
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// await waits (hang guard 10 s) until s has a channel event.
func (s *sub) await(t *testing.T) {
	t.Helper()
	guard := time.After(10 * time.Second)
	for {
		s.mu.Lock()
		has := slices.ContainsFunc(s.frames, func(f frame) bool { return !strings.Contains(f.Event, ":") })
		s.mu.Unlock()
		if has {
			return
		}
		select {
		case <-s.notify:
		case <-guard:
			t.Fatal("no event after 10 s")
		}
	}
}

// take returns the frames so far, and the channel events among them.
func (s *sub) take() (all, evs []frame) {
	s.mu.Lock()
	all, s.frames = s.frames, nil
	s.mu.Unlock()
	for _, f := range all {
		if !strings.Contains(f.Event, ":") {
			evs = append(evs, f)
		}
	}
	return all, evs
}

// A client that leaves one node and resumes on another, again and again,
// while events are published on a third at full speed, gets every event
// exactly once: the replay on the new node ends exactly where its live
// delivery begins.
func TestResumeOnAnotherNodeRacingPublishes(t *testing.T) {
	ns, apps := nodes(t, 3, 100000)
	const ch = "private-feed"
	info := pusher.ParseChannel(ch)
	s := newSub("1.1")
	if _, err := apps[1].Subscribe(ch, info, s, nil, 0, nil, false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var published atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if _, err := ns[0].PublishOnce(context.Background(), apps[0], []string{ch}, "tick", "x", "", ""); err != nil {
				t.Error(err)
				return
			}
			published.Add(1)
		}
	}()
	defer func() { cancel(); <-done }()

	var last broker.Position
	on := 1
	for round := range 100 {
		s.await(t)
		apps[on].Hub.Unsubscribe(ch, s, "") // no frame comes from that node after this
		all, evs := s.take()
		for _, f := range all {
			if f.Event == "herald:resume_failed" {
				t.Fatalf("round %d: resume failed: %s", round, f.raw)
			}
		}
		for i, e := range evs {
			if want := last.Offset + uint64(i) + 1; e.Offset != want || last.Epoch != "" && e.Epoch != last.Epoch {
				t.Fatalf("round %d: after %+v got offset %d (epoch %s), want %d: a gap or a duplicate", round, last, e.Offset, e.Epoch, want)
			}
		}
		last = broker.Position{Epoch: evs[len(evs)-1].Epoch, Offset: evs[len(evs)-1].Offset}
		on = 1 + (round+1)%2 // C, B, C, …
		if _, err := apps[on].Subscribe(ch, info, s, nil, 0, &pusher.Since{Epoch: last.Epoch, Offset: last.Offset}, false); err != nil {
			t.Fatal(err)
		}
	}
	if published.Load() < 100 {
		t.Fatalf("only %d publishes", published.Load())
	}
}
