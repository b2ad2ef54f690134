package loadgen

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Kinds of HTTP reader (Options.Readers).
const (
	// ReadersLongPoll readers loop on GET …/events?since=E:N&wait=30,
	// each asking again from the position its last answer gave.
	ReadersLongPoll = "longpoll"
	// ReadersSSE readers hold one text/event-stream each.
	ReadersSSE = "sse"
)

// longPollWait is every long-poll's wait parameter, in seconds: Herald's
// cap.
const longPollWait = 30

// ReadersReport is the outcome of an HTTP readers run (Options.Readers):
// readers of channel history waiting on the server (held long-polls or
// SSE streams) instead of sockets. A run is clean when every reader got
// every event of its channel exactly once, in offset order. Report.Lost
// counts the events never received, Report.RSSPerConnKiB is the server's
// memory per held reader, and the latencies are publish → received.
type ReadersReport struct {
	Kind     string `json:"kind"`     // ReadersLongPoll or ReadersSSE
	Channels int    `json:"channels"` // channels the readers read
	Readers  int    `json:"readers"`  // readers held when publishing began
	Complete int    `json:"complete"` // readers that got every event of their channel
	// RSSGrowthBytes is the local server's RSS growth from before the
	// first reader to all of them held.
	RSSGrowthBytes int64 `json:"rss_growth_bytes,omitempty"`
	// Answers counts the long-polls answered with events while
	// publishing (an answer may carry several).
	Answers int64 `json:"long_poll_answers,omitempty"`
	// What went wrong; all zero in a clean run.
	Duplicates   int64 `json:"duplicates"`    // events received more than once
	OutOfOrder   int64 `json:"out_of_order"`  // events received after a later one
	ResumeFailed int64 `json:"resume_failed"` // 410 answers and herald:resume_failed events
	Ended        int   `json:"ended"`         // readers whose request or stream failed while publishing
	// ServerCPUSeconds is the local server's CPU time from the first
	// publish to the end of the drain; ServerCPUCores is the same over
	// that wall time (1: one core busy).
	ServerCPUSeconds float64 `json:"server_cpu_seconds,omitempty"`
	ServerCPUCores   float64 `json:"server_cpu_cores,omitempty"`
}

// Failed reports whether any reader missed, repeated or reordered an
// event, was told its position could not be served, or stopped early.
func (r *ReadersReport) Failed() bool {
	return r.Duplicates+r.OutOfOrder+r.ResumeFailed > 0 || r.Ended > 0 || r.Complete < r.Readers
}

// checkReaders validates Options.Readers.
func (o *Options) checkReaders() error {
	switch {
	case o.Readers == "":
		return nil
	case o.Readers != ReadersLongPoll && o.Readers != ReadersSSE:
		return fmt.Errorf("unknown kind of reader %q: want %s or %s", o.Readers, ReadersLongPoll, ReadersSSE)
	case o.Presence || o.Slow > 0 || o.Resume > 0:
		return fmt.Errorf("a readers run cannot be combined with presence, slow subscribers or resume")
	}
	return nil
}

// readerRun is one readers run: where the readers connect, and their
// goroutines. stopping is set before their connections are closed on
// purpose, so that the errors this causes are not counted.
type readerRun struct {
	b        *bench
	kind     string
	host     string      // host:port
	path     string      // {prefix}/app/{key}/channels/
	tls      *tls.Config // for https, else nil
	stopping atomic.Bool
	wg       sync.WaitGroup // reader goroutines
}

// runReaders is the HTTP readers scenario: open Conns readers over the
// channels, each waiting on its channel's history (a held long-poll or an
// SSE stream), measure the server's RSS growth once all are held, then
// publish at Rate for Duration (each event carrying its send time) and
// check that every reader gets every event once, in order.
func (b *bench) runReaders(ctx context.Context) error {
	rr, err := newReaderRun(b)
	if err != nil {
		return err
	}
	b.settle() // the readers of an earlier round gone
	before := b.procStats()
	all := rr.openAll(ctx)
	defer rr.stop(all)
	if len(all) == 0 {
		return fmt.Errorf("no reader could be opened: %s", b.rep.FirstError)
	}
	b.settle()
	rs := rr.held(all)
	if len(rs) == 0 {
		return fmt.Errorf("no reader was held: %s", b.rep.FirstError)
	}
	res := &ReadersReport{Kind: b.o.Readers, Channels: b.o.Channels, Readers: len(rs)}
	b.rep.Readers = res
	idle := b.measureRSS(before, len(rs))
	if before.RSSBytes > 0 {
		res.RSSGrowthBytes = idle.RSSBytes - before.RSSBytes
	}
	start := time.Now()
	b.publishAll(ctx)
	if after := b.procStats(); after.CPU > 0 {
		res.ServerCPUSeconds = (after.CPU - idle.CPU).Seconds()
		res.ServerCPUCores = res.ServerCPUSeconds / time.Since(start).Seconds()
	}
	rr.stop(all)
	rr.collect(rs)
	return nil
}

func newReaderRun(b *bench) (*readerRun, error) {
	u, err := url.Parse(b.o.APIURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("invalid API URL %q: want http://host:port", b.o.APIURL)
	}
	rr := &readerRun{b: b, kind: b.o.Readers, host: u.Host,
		path: strings.TrimSuffix(u.Path, "/") + "/app/" + url.PathEscape(b.o.Key) + "/channels/"}
	port := "80"
	if u.Scheme == "https" {
		port = "443"
		rr.tls = &tls.Config{ServerName: u.Hostname()}
	}
	if u.Port() == "" {
		rr.host = net.JoinHostPort(u.Hostname(), port)
	}
	return rr, nil
}

// openAll opens the readers, --dialers at a time, and starts each one's
// goroutine; it returns those that opened.
func (rr *readerRun) openAll(ctx context.Context) []*reader {
	b := rr.b
	start := time.Now()
	all := make([]*reader, b.o.Conns)
	var done atomic.Int64
	stop := b.progressLoop("connect", &done, int64(len(all)))
	forEach(ctx, b.o.Dialers, len(all), &done, func(i int) {
		r := &reader{run: rr, ch: i % b.o.Channels}
		if err := r.open(ctx, i); err != nil {
			b.connectFailed(err)
			return
		}
		all[i] = r
		rr.wg.Add(1)
		go r.loop()
	})
	stop()
	b.rep.ConnectSeconds = time.Since(start).Seconds()
	return slices.DeleteFunc(all, func(r *reader) bool { return r == nil })
}

// held drops the readers that ended while being held (refused with 503
// past the server's max_readers, say), counting them as failed
// connections, and counts the others on each channel: the deliveries
// expected.
func (rr *readerRun) held(all []*reader) []*reader {
	b := rr.b
	rs := slices.DeleteFunc(slices.Clone(all), func(r *reader) bool {
		if !r.ended.Load() {
			return false
		}
		b.connectFailed(r.err)
		return true
	})
	for _, r := range rs {
		b.rep.perChannel[channelName(r.ch, b.o.Channels)]++
	}
	b.rep.Conns = len(rs)
	b.rep.ConnectRate = float64(len(rs)) / b.rep.ConnectSeconds
	return rs
}

// settle waits until the local server's CPU time stops growing, 5 s at
// most: a long-poll's request is sent at once but held by the server a
// little later, and a held long-poll answers nothing, so a quiet server is
// the sign that every reader is held. Without a server pid it returns.
func (b *bench) settle() {
	if b.o.ServerPID <= 0 {
		return
	}
	prev := b.procStats().CPU
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		time.Sleep(250 * time.Millisecond) // sampling a counter: there is no event to wait for
		cur := b.procStats().CPU
		if cur-prev <= 10*time.Millisecond { // one clock tick
			return
		}
		prev = cur
	}
}

// stop ends the readers' goroutines: their connections are closed on
// purpose. It may be called again.
func (rr *readerRun) stop(all []*reader) {
	rr.stopping.Store(true)
	for _, r := range all {
		resetClose(r.tcp)
	}
	rr.wg.Wait()
}

// collect merges the readers' outcomes into the report; their goroutines
// have ended.
func (rr *readerRun) collect(rs []*reader) {
	b, res := rr.b, rr.b.rep.Readers
	var all []time.Duration
	for _, r := range rs {
		all = append(all, r.latencies...)
		res.Duplicates += r.dups
		res.OutOfOrder += r.disorder
		res.ResumeFailed += r.gone
		res.Answers += r.answers
		if r.ended.Load() {
			res.Ended++
		}
		if r.got >= b.sent[r.ch].Load() {
			res.Complete++
		}
	}
	b.rep.Delivered = b.delivered.Load()
	b.rep.Lost = max(0, b.rep.Expected-b.rep.Delivered)
	if b.rep.PublishSeconds > 0 {
		b.rep.DeliveryRate = float64(b.rep.Delivered) / b.rep.PublishSeconds
	}
	if b.rep.Delivered > 0 && res.ServerCPUSeconds > 0 {
		b.rep.CPUPerMillion = res.ServerCPUSeconds / (float64(b.rep.Delivered) / 1e6)
	}
	b.setLatencies(all)
}
