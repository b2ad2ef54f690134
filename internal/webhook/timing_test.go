package webhook

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/herald-ws/herald/internal/broker"
)

// These tests run in a synctest bubble with an in-memory transport, so the
// batch window, the vacated delay and the backoff run on the bubble's
// virtual clock: exact and instant, no real sleeps.

type post struct {
	url    string
	header http.Header
	body   []byte
}

// fakeHTTP records every POST and answers with status(n) for the n-th
// (0-based); a status of 0 answers with a network error.
type fakeHTTP struct {
	mu     sync.Mutex
	posts  []post
	status func(n int) int
}

func (f *fakeHTTP) RoundTrip(r *http.Request) (*http.Response, error) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	n := len(f.posts)
	f.posts = append(f.posts, post{url: r.URL.String(), header: r.Header.Clone(), body: body})
	code := 200
	if f.status != nil {
		code = f.status(n)
	}
	f.mu.Unlock()
	if code == 0 {
		return nil, errors.New("connection refused")
	}
	return &http.Response{StatusCode: code, Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
}

func (f *fakeHTTP) all() []post {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]post(nil), f.posts...)
}

// names returns the event names of every POST so far, one slice per POST.
func (f *fakeHTTP) names(t *testing.T) [][]string {
	t.Helper()
	var out [][]string
	for _, p := range f.all() {
		var b struct {
			Events []struct{ Name, Channel, UserID string } `json:"events"`
		}
		if err := json.Unmarshal(p.body, &b); err != nil {
			t.Fatalf("body %s: %v", p.body, err)
		}
		var ns []string
		for _, e := range b.Events {
			ns = append(ns, e.Name+":"+e.Channel)
		}
		out = append(out, ns)
	}
	return out
}

func newFake(t *testing.T, f *fakeHTTP, tweak func(*Options), endpoints ...Endpoint) *Dispatcher {
	t.Helper()
	if len(endpoints) == 0 {
		endpoints = []Endpoint{{URL: "http://hook.test/a"}}
	}
	o := Options{
		Lookup: func(id string) (string, string, []Endpoint, bool) {
			return "key-" + id, "secret-" + id, endpoints, id == "1"
		},
		Client:   &http.Client{Transport: f},
		Batch:    250 * time.Millisecond,
		Delay:    3 * time.Second,
		RetryMin: time.Second,
		RetryMax: time.Minute,
		Log:      discard(),
	}
	if tweak != nil {
		tweak(&o)
	}
	d := New(o)
	t.Cleanup(d.Close)
	return d
}

func ev(name, channel string) broker.Lifecycle { return broker.Lifecycle{Name: name, Channel: channel} }

func member(name, channel, user string) broker.Lifecycle {
	return broker.Lifecycle{Name: name, Channel: channel, UserID: user}
}

// advance moves the virtual clock by d and lets every goroutine settle.
func advance(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

func TestBatchWindowGathersEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeHTTP{}
		d := newFake(t, f, nil)
		d.Observe("1", ev(broker.ChannelOccupied, "a"))
		advance(100 * time.Millisecond)
		d.Observe("1", ev(broker.ChannelOccupied, "b"))
		d.Observe("1", ev(broker.CacheMiss, "cache-c"))
		advance(100 * time.Millisecond)
		if n := len(f.all()); n != 0 {
			t.Fatalf("%d POSTs inside the batch window, want 0", n)
		}
		advance(50 * time.Millisecond)
		got := f.names(t)
		want := "[[channel_occupied:a channel_occupied:b cache_miss:cache-c]]"
		if s := fmtNames(got); s != want {
			t.Fatalf("POSTs %s, want %s", s, want)
		}
	})
}

func TestMaxBatchSplitsBacklog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeHTTP{}
		d := newFake(t, f, nil)
		for range 45 {
			d.Observe("1", ev(broker.ChannelOccupied, "a"))
		}
		advance(time.Second)
		var sizes []int
		for _, p := range f.names(t) {
			sizes = append(sizes, len(p))
		}
		if fmtInts(sizes) != "[20 20 5]" {
			t.Fatalf("batch sizes %v, want [20 20 5] (Pusher's batch size)", sizes)
		}
		if s := d.Stats(); s.Delivered != 45 || s.Pending != 0 {
			t.Fatalf("stats %+v", s)
		}
	})
}

func TestVacatedDelayedThenSent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeHTTP{}
		d := newFake(t, f, nil)
		d.Observe("1", ev(broker.ChannelVacated, "a"))
		advance(2900 * time.Millisecond)
		if n := len(f.all()); n != 0 {
			t.Fatalf("channel_vacated sent before the delay: %d POSTs", n)
		}
		advance(100*time.Millisecond + 250*time.Millisecond) // delay, then batch window
		if s := fmtNames(f.names(t)); s != "[[channel_vacated:a]]" {
			t.Fatalf("POSTs %s", s)
		}
	})
}

func TestReoccupyCancelsVacated(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeHTTP{}
		d := newFake(t, f, nil)
		d.Observe("1", ev(broker.ChannelVacated, "a"))
		d.Observe("1", ev(broker.ChannelVacated, "b"))
		advance(time.Second)
		d.Observe("1", ev(broker.ChannelOccupied, "a")) // page reload on a
		advance(10 * time.Second)
		if s := fmtNames(f.names(t)); s != "[[channel_vacated:b]]" {
			t.Fatalf("POSTs %s, want only b's vacated: a's pair must cancel", s)
		}
		// a is occupied again; its next vacated is held and sent as usual.
		d.Observe("1", ev(broker.ChannelVacated, "a"))
		advance(10 * time.Second)
		if s := fmtNames(f.names(t)); s != "[[channel_vacated:b] [channel_vacated:a]]" {
			t.Fatalf("POSTs %s", s)
		}
	})
}

func TestMemberAddedCancelsMemberRemoved(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeHTTP{}
		// This endpoint wants only member_removed: member_added must still
		// cancel it.
		d := newFake(t, f, nil, Endpoint{URL: "http://hook.test/m", Events: []string{broker.MemberRemoved}})
		d.Observe("1", member(broker.MemberRemoved, "presence-x", "7"))
		d.Observe("1", member(broker.MemberRemoved, "presence-x", "8"))
		advance(time.Second)
		d.Observe("1", member(broker.MemberAdded, "presence-x", "7"))
		d.Observe("1", member(broker.MemberAdded, "presence-y", "8")) // another channel: no cancel
		advance(10 * time.Second)
		var users []string
		for _, p := range f.all() {
			var b struct {
				Events []map[string]any `json:"events"`
			}
			_ = json.Unmarshal(p.body, &b)
			for _, e := range b.Events {
				users = append(users, e["name"].(string)+":"+e["user_id"].(string))
			}
		}
		if fmtStrings(users) != "[member_removed:8]" {
			t.Fatalf("sent %v, want only user 8 removed", users)
		}
	})
}

func TestRetryBackoffThenDelivered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeHTTP{status: func(n int) int {
			if n < 3 {
				return []int{500, 0, 503}[n]
			}
			return 204
		}}
		d := newFake(t, f, nil)
		d.Observe("1", ev(broker.ChannelOccupied, "a"))
		advance(250 * time.Millisecond)
		var at []time.Duration
		start := time.Now()
		for len(f.all()) < 4 {
			n := len(f.all())
			advance(100 * time.Millisecond)
			if len(f.all()) > n {
				at = append(at, time.Since(start))
			}
		}
		// Backoff 1 s, 2 s, 4 s, each plus up to a fifth of jitter.
		bounds := [][2]time.Duration{{1000, 1300}, {3000, 3700}, {7000, 8500}}
		for i, b := range bounds {
			if at[i] < b[0]*time.Millisecond || at[i] > b[1]*time.Millisecond {
				t.Fatalf("retry %d at %v, want within %v ms", i+1, at[i], b)
			}
		}
		ps := f.all()
		for _, p := range ps[1:] {
			if string(p.body) != string(ps[0].body) || p.header.Get("X-Pusher-Signature") != ps[0].header.Get("X-Pusher-Signature") {
				t.Fatal("a retry must resend the same signed body")
			}
		}
		if s := d.Stats(); s.Delivered != 1 || s.Failed != 3 || s.Retried != 3 || s.Dropped != 0 {
			t.Fatalf("stats %+v", s)
		}
	})
}

func TestRetryWindowOverDrops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeHTTP{status: func(int) int { return 502 }}
		d := newFake(t, f, func(o *Options) { o.RetryFor = 10 * time.Second })
		d.Observe("1", ev(broker.ChannelOccupied, "a"))
		d.Observe("1", ev(broker.ChannelOccupied, "b"))
		advance(time.Minute)
		// Attempts at ~0, 1, 3, 7 s; the next (~15 s) is past the window.
		if s := d.Stats(); s.Dropped != 2 || s.Failed != 4 || s.Pending != 0 || s.Delivered != 0 {
			t.Fatalf("stats %+v, want 2 dropped after 4 attempts", s)
		}
	})
}

func TestClientErrorIsNotRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeHTTP{status: func(int) int { return 401 }}
		d := newFake(t, f, nil)
		d.Observe("1", ev(broker.ChannelOccupied, "a"))
		advance(time.Minute)
		if s := d.Stats(); len(f.all()) != 1 || s.Dropped != 1 || s.Retried != 0 {
			t.Fatalf("%d POSTs, stats %+v: a 401 is dropped, not retried", len(f.all()), s)
		}
	})
}

func TestEndpointsGetOnlyWhatTheyAskFor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeHTTP{}
		d := newFake(t, f, func(o *Options) { o.Delay = -1 },
			Endpoint{URL: "http://hook.test/presence", Events: []string{broker.MemberAdded, broker.MemberRemoved}},
			Endpoint{URL: "http://hook.test/all"},
		)
		d.Observe("1", ev(broker.ChannelOccupied, "presence-x"))
		d.Observe("1", member(broker.MemberAdded, "presence-x", "7"))
		d.Observe("1", member(broker.MemberRemoved, "presence-x", "7"))
		d.Observe("1", ev(broker.ChannelVacated, "presence-x"))
		d.Observe("2", ev(broker.ChannelOccupied, "other-app")) // app without webhooks
		advance(time.Second)
		byURL := map[string]int{}
		for _, p := range f.all() {
			var b struct{ Events []any }
			_ = json.Unmarshal(p.body, &b)
			byURL[p.url] += len(b.Events)
		}
		if byURL["http://hook.test/presence"] != 2 || byURL["http://hook.test/all"] != 4 || len(byURL) != 2 {
			t.Fatalf("events per endpoint %v", byURL)
		}
	})
}

func TestCloseFlushesHeldAndQueued(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeHTTP{}
		d := newFake(t, f, nil)
		d.Observe("1", ev(broker.ChannelOccupied, "a"))
		d.Observe("1", ev(broker.ChannelVacated, "b"))
		d.Close() // before the batch window and the delay
		if s := fmtNames(f.names(t)); s != "[[channel_occupied:a channel_vacated:b]]" {
			t.Fatalf("POSTs %s", s)
		}
		d.Observe("1", ev(broker.ChannelOccupied, "c"))
		if s := d.Stats(); s.Dropped != 1 || s.Delivered != 2 {
			t.Fatalf("stats %+v: an event after Close is dropped and counted", s)
		}
	})
}

func TestCloseDeadlineDropsUndeliverable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeHTTP{status: func(int) int { return 0 }}
		d := newFake(t, f, func(o *Options) { o.FlushTimeout = 5 * time.Second })
		for range 30 {
			d.Observe("1", ev(broker.ChannelOccupied, "a"))
		}
		start := time.Now()
		d.Close()
		if el := time.Since(start); el < 5*time.Second || el > 6*time.Second {
			t.Fatalf("Close took %v, want its flush deadline", el)
		}
		if s := d.Stats(); s.Dropped != 30 || s.Pending != 0 {
			t.Fatalf("stats %+v", s)
		}
	})
}

// BenchmarkObserve is the cost Observe adds to a subscribe or publish path
// for an app with one endpoint (delivery happens elsewhere, to a sink).
func BenchmarkObserve(b *testing.B) {
	d := New(Options{
		Lookup: func(string) (string, string, []Endpoint, bool) {
			return "k", "s", []Endpoint{{URL: "http://hook.test/"}}, true
		},
		Client:   &http.Client{Transport: sink{}},
		MaxQueue: 1 << 30,
		Log:      discard(),
	})
	defer d.Close()
	e := broker.Lifecycle{Name: broker.ClientEvent, Channel: "private-x", Event: "client-typing", Data: `{"a":1}`, SocketID: "1.2"}
	b.ReportAllocs()
	for b.Loop() {
		d.Observe("1", e)
	}
}

type sink struct{}

func (sink) RoundTrip(r *http.Request) (*http.Response, error) {
	_, _ = io.Copy(io.Discard, r.Body)
	return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
}
