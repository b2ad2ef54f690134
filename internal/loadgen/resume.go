package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-ws/herald/internal/probe"
)

// ResumeReport is the outcome of a resume run (Options.Resume > 0): every
// client comes back at once and asks, with "since", for the events it
// missed. A run is clean when every client got exactly those events, in
// order, and then the next live one.
type ResumeReport struct {
	Events             int     `json:"events_per_client"`     // missed events each client asked for
	Clients            int     `json:"clients"`               // clients that resubscribed with since
	CaughtUp           int     `json:"caught_up"`             // clients that got every missed event
	ReconnectSeconds   float64 `json:"reconnect_seconds"`     // start of the reconnect to the last subscription_succeeded
	AllCaughtUpSeconds float64 `json:"all_caught_up_seconds"` // start of the reconnect to the last client caught up
	// Per-client catch-up time: from the client's dial to its last missed
	// event.
	P50 time.Duration `json:"catch_up_p50_ns"`
	P90 time.Duration `json:"catch_up_p90_ns"`
	P99 time.Duration `json:"catch_up_p99_ns"`
	Max time.Duration `json:"catch_up_max_ns"`
	// What went wrong; all zero in a clean run.
	Gaps         int64 `json:"gaps"`          // missed events never received
	Duplicates   int64 `json:"duplicates"`    // events received more than once
	OutOfOrder   int64 `json:"out_of_order"`  // events received before an earlier one
	ResumeFailed int   `json:"resume_failed"` // clients told herald:resume_failed
	LiveMissed   int   `json:"live_missed"`   // caught-up clients that did not get the next live event
	// ServerCPUSeconds is the local server's CPU time from the start of the
	// reconnect until every client caught up (or gave up).
	ServerCPUSeconds float64 `json:"server_cpu_seconds,omitempty"`
}

// Failed reports whether any client did not get exactly its missed events
// and then the live one.
func (r *ResumeReport) Failed() bool {
	return r.Gaps+r.Duplicates+r.OutOfOrder > 0 || r.ResumeFailed+r.LiveMissed > 0 || r.CaughtUp < r.Clients
}

// batchSize is how many missed events go in one batch_events request:
// Pusher's (and Herald's default) limit.
const batchSize = 10

// runResume is the resume scenario: connect and subscribe the clients,
// publish one event per channel so that each learns its channel's
// position, close every socket, publish Resume events per channel, then
// reconnect everyone with since = the position they saw, and time how long
// it takes until all of them have all the missed events. A live event per
// channel published afterwards checks that the replay hands over to live
// delivery without a gap or a duplicate.
func (b *bench) runResume(ctx context.Context) error {
	api := &probe.API{BaseURL: b.o.APIURL, AppID: b.o.AppID, Key: b.o.Key, Secret: b.o.Secret, HTTP: newHTTPClient(b.o.Publishers)}
	// Idle keep-alive connections would hold up the server's shutdown.
	defer api.HTTP.CloseIdleConnections()
	before := b.procStats()
	rs := b.connectResumers(ctx)
	if len(rs) == 0 {
		return fmt.Errorf("no connection succeeded: %s", b.rep.FirstError)
	}
	b.measureRSS(before, len(rs))
	rs = b.learnPositions(ctx, api, rs)
	for _, r := range rs {
		r.c.close()
	}
	if len(rs) == 0 {
		return fmt.Errorf("no client received its channel's first event: %s", b.rep.FirstError)
	}
	b.publishMissed(ctx, api)
	b.reconnect(ctx, api, rs)
	b.collectResume(rs)
	return nil
}

// resumer is one client of the resume scenario. Its fields are written by
// one goroutine at a time: the connect, learn and catch-up phases hand it
// over through their WaitGroups.
type resumer struct {
	i       int
	channel string
	c       *conn
	epoch   string
	last    uint64 // offset of the last event seen before going away

	start, caughtUp time.Time // dial of the reconnect; the last missed event
	seen            []bool    // seen[k]: offset last+1+k arrived
	got             int       // distinct missed events received
	high            uint64    // the highest offset received
	dups, disorder  int64
	failed, live    bool // herald:resume_failed; the live event after the replay
}

// want is the offset of the last missed event.
func (r *resumer) want(n int) uint64 { return r.last + uint64(n) }

// forEach calls f(i) for every i in [0, n) from up to workers goroutines,
// counting completions in done, until ctx ends.
func forEach(ctx context.Context, workers, n int, done *atomic.Int64, f func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				f(i)
				done.Add(1)
			}
		})
	}
	wg.Wait()
}

// connectResumers opens and subscribes the clients, --dialers at a time.
func (b *bench) connectResumers(ctx context.Context) []*resumer {
	start := time.Now()
	n := b.o.Conns
	all := make([]*resumer, n)
	var done atomic.Int64
	stop := b.progressLoop("connect", &done, int64(n))
	forEach(ctx, b.o.Dialers, n, &done, func(i int) {
		r := &resumer{i: i, channel: channelName(i, b.o.Channels)}
		nc, br, _, err := open(ctx, b, i)
		if err == nil {
			if err = subscribe(nc, br, map[string]any{"channel": r.channel}); err != nil {
				nc.Close()
			}
		}
		if err != nil {
			b.connectFailed(err)
			return
		}
		r.c = &conn{nc: nc, br: br}
		all[i] = r
	})
	stop()
	b.rep.ConnectSeconds = time.Since(start).Seconds()
	rs := slices.DeleteFunc(all, func(r *resumer) bool { return r == nil })
	b.rep.Conns = len(rs)
	b.rep.ConnectRate = float64(len(rs)) / b.rep.ConnectSeconds
	return rs
}

// connectFailed counts a failed connection and, when the server refused
// it, the reason it gave.
func (b *bench) connectFailed(err error) {
	b.fail(err)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rep.ConnectFailures++
	if r, ok := errors.AsType[*RefusedError](err); ok {
		b.rep.Refused[r.Reason]++
	}
}

// learnPositions publishes one event per channel and has every client
// read it, to learn the epoch and offset it will resume from; the clients
// that do not get it are dropped and counted as failed connections.
func (b *bench) learnPositions(ctx context.Context, api *probe.API, rs []*resumer) []*resumer {
	b.publishPerChannel(ctx, api, "mark")
	var wg sync.WaitGroup
	for _, r := range rs {
		wg.Go(func() {
			if err := r.readPosition(); err != nil {
				r.c.close()
				b.connectFailed(fmt.Errorf("waiting for the first event on %s: %w", r.channel, err))
				r.c = nil
			}
		})
	}
	wg.Wait()
	return slices.DeleteFunc(rs, func(r *resumer) bool { return r.c == nil })
}

// readPosition reads frames until the first event of the client's channel
// and records its position.
func (r *resumer) readPosition() error {
	_ = r.c.nc.SetReadDeadline(time.Now().Add(15 * time.Second))
	for {
		p, err := r.c.nextEvent()
		if err != nil {
			return err
		}
		if !bytes.HasPrefix(p, benchPrefix) {
			continue
		}
		epoch, offset, ok := positionOf(p)
		if !ok {
			return fmt.Errorf("event without a position (is history on for %s?): %.200s", r.channel, p)
		}
		r.epoch, r.last = string(epoch), offset
		return nil
	}
}

// publishPerChannel publishes one event named "bench" to every channel.
func (b *bench) publishPerChannel(ctx context.Context, api *probe.API, data string) {
	var done atomic.Int64
	forEach(ctx, b.o.Publishers, b.o.Channels, &done, func(i int) {
		ev := probe.Event{Name: "bench", Data: data, Channels: []string{channelName(i, b.o.Channels)}}
		if _, err := api.Trigger(ctx, ev); err != nil {
			b.publishFailed(err)
		}
	})
}

func (b *bench) publishFailed(err error) {
	b.fail(fmt.Errorf("publish: %w", err))
	atomic.AddInt64(&b.rep.PublishErrors, 1)
}

// publishMissed publishes Resume events to every channel while nobody is
// connected, in batch_events requests of 10, --publishers at a time.
// Batches go round the channels so that each fills at the same pace.
func (b *bench) publishMissed(ctx context.Context, api *probe.API) {
	o := b.o
	perChannel := (o.Resume + batchSize - 1) / batchSize
	total := perChannel * o.Channels
	pad := strings.Repeat("x", max(0, o.Payload-12))
	var done atomic.Int64
	stop := b.progressLoop("publish", &done, int64(total))
	start := time.Now()
	forEach(ctx, o.Publishers, total, &done, func(j int) {
		ch, first := channelName(j%o.Channels, o.Channels), j/o.Channels*batchSize
		batch := make([]batchEvent, 0, batchSize)
		for k := first; k < min(first+batchSize, o.Resume); k++ {
			batch = append(batch, batchEvent{Name: "bench", Channel: ch, Data: fmt.Sprintf("%d %s", k, pad)})
		}
		body, _ := json.Marshal(map[string]any{"batch": batch})
		if _, err := api.Do(ctx, http.MethodPost, "/apps/"+o.AppID+"/batch_events", nil, body); err != nil {
			b.publishFailed(err)
			return
		}
		atomic.AddInt64(&b.rep.Published, int64(len(batch)))
	})
	stop()
	b.rep.PublishSeconds = time.Since(start).Seconds()
}

type batchEvent struct {
	Name    string `json:"name"`
	Channel string `json:"channel"`
	Data    string `json:"data"`
}

// reconnect brings every client back, --dialers at a time, each
// subscribing with since = the position it saw, and waits until each has
// caught up or given up (a quiet --drain). Then it publishes one live
// event per channel and waits up to --drain for every caught-up client to
// get it.
func (b *bench) reconnect(ctx context.Context, api *probe.API, rs []*resumer) {
	var done atomic.Int64
	var settled, finished sync.WaitGroup
	cpu := b.procStats()
	stop := b.progressLoop("resume", &done, int64(len(rs)))
	start := time.Now()
	forEach(ctx, b.o.Dialers, len(rs), &done, func(i int) {
		r := rs[i]
		if err := r.resubscribe(ctx, b); err != nil {
			b.connectFailed(fmt.Errorf("reconnect: %w", err))
			return
		}
		settled.Add(1)
		finished.Go(func() { r.catchUp(b, settled.Done) })
	})
	res := &ResumeReport{Events: b.o.Resume, ReconnectSeconds: time.Since(start).Seconds()}
	b.rep.Resume = res
	settled.Wait()
	stop()
	if after := b.procStats(); after.CPU > 0 {
		res.ServerCPUSeconds = (after.CPU - cpu.CPU).Seconds()
	}
	for _, r := range rs {
		if !r.caughtUp.IsZero() {
			res.AllCaughtUpSeconds = max(res.AllCaughtUpSeconds, r.caughtUp.Sub(start).Seconds())
		}
	}
	b.publishPerChannel(ctx, api, "live")
	waitTimeout(&finished, b.o.Drain)
	for _, r := range rs {
		if r.c != nil {
			r.c.close()
		}
	}
	finished.Wait()
}

// waitTimeout waits for wg, or d at most.
func waitTimeout(wg *sync.WaitGroup, d time.Duration) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// resubscribe opens a new connection for r and subscribes it with since.
func (r *resumer) resubscribe(ctx context.Context, b *bench) error {
	r.c, r.start = nil, time.Now()
	nc, br, _, err := open(ctx, b, r.i)
	if err != nil {
		return err
	}
	since := map[string]any{"epoch": r.epoch, "offset": r.last}
	if err := subscribe(nc, br, map[string]any{"channel": r.channel, "since": since}); err != nil {
		nc.Close()
		return err
	}
	r.c = &conn{nc: nc, br: br}
	return nil
}

// collectResume merges the clients' outcomes into the report.
func (b *bench) collectResume(rs []*resumer) {
	res, n := b.rep.Resume, b.o.Resume
	var times []time.Duration
	for _, r := range rs {
		if r.c == nil {
			continue // did not reconnect: counted as a failed connection
		}
		res.Clients++
		r.c.mu.Lock()
		if r.c.closeCode != 0 {
			b.rep.Closed[r.c.closeCode]++
		}
		r.c.mu.Unlock()
		b.rep.Expected += int64(n)
		b.rep.Delivered += int64(r.got)
		res.Duplicates += r.dups
		res.OutOfOrder += r.disorder
		switch {
		case r.failed:
			res.ResumeFailed++
		case r.got == n:
			res.CaughtUp++
			times = append(times, r.caughtUp.Sub(r.start))
			if !r.live {
				res.LiveMissed++
			}
		}
		if !r.failed {
			res.Gaps += int64(n - r.got)
		}
	}
	b.rep.Lost = b.rep.Expected - b.rep.Delivered
	if res.AllCaughtUpSeconds > 0 {
		b.rep.DeliveryRate = float64(b.rep.Delivered) / res.AllCaughtUpSeconds
	}
	if b.rep.Delivered > 0 && res.ServerCPUSeconds > 0 {
		b.rep.CPUPerMillion = res.ServerCPUSeconds / (float64(b.rep.Delivered) / 1e6)
	}
	if len(times) > 0 {
		slices.Sort(times)
		pick := func(p float64) time.Duration { return times[int(float64(len(times)-1)*p)] }
		res.P50, res.P90, res.P99, res.Max = pick(0.50), pick(0.90), pick(0.99), times[len(times)-1]
	}
}
