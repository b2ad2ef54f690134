// Package loadgen is `herald bench`: a load generator for any
// Pusher-compatible server. It opens N WebSocket connections (spread over
// several loopback source addresses when N is large), subscribes them,
// publishes through the HTTP API at a fixed rate, and reports connect rate,
// delivery throughput, latency percentiles, lost messages and — when the
// server runs on this machine — its memory per connection and CPU time per
// million deliveries. The subscribers may instead use pusher-js's HTTP
// fallback transports, xhr_streaming or xhr_polling (xhr.go). Other
// scenarios measure presence, slow subscribers, resuming with "since"
// (resume.go) and, for Herald, HTTP readers of channel history held as
// long-polls or SSE streams (readers.go).
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-ws/herald/internal/probe"
)

// Options configure a run. Zero values take the defaults noted.
type Options struct {
	URL        string // ws://host:port[/prefix]
	APIURL     string // default: URL with http
	AppID      string
	Key        string
	Secret     string
	Conns      int           // connections (default 100)
	Channels   int           // channels the connections spread over (default 1)
	Rate       float64       // events per second, all channels (default 10)
	Duration   time.Duration // publishing time (default 10 s)
	Payload    int           // event data bytes (default 100)
	Publishers int           // concurrent HTTP publishers (default 8)
	Dialers    int           // concurrent connection attempts (default 64)
	Drain      time.Duration // wait for stragglers after publishing (default 3 s)
	ServerPID  int           // local server pid; found from the port when 0
	// Presence makes every connection join one presence channel as its own
	// user instead of publishing; the run checks that each member_added
	// reaches every earlier member (N·(N−1)/2 in all).
	Presence bool
	// Slow adds this many subscribers that never read: the server must cut
	// them off (4100 at its queue bound, or a drop after its write timeout)
	// without changing the others' latency. Not with Presence.
	Slow int
	// Resume, when above 0, runs the resume scenario instead of
	// publishing at a rate: each client misses this many events of its
	// channel and comes back asking for them with "since" (see runResume).
	// It must not exceed the server's history size per channel (Herald's
	// history max_events, 100 by default). Not with Presence or Slow.
	Resume int
	// Readers, when set, holds Conns HTTP readers of channel history
	// instead of opening sockets: ReadersLongPoll or ReadersSSE (see
	// runReaders). Herald only. Not with Presence, Slow or Resume.
	Readers string
	// Transport carries the subscribers of the fan-out scenario:
	// TransportWS (""), TransportXHRStreaming or TransportXHRPolling
	// (pusher-js's HTTP fallbacks, see xhr.go). Not with Presence, Slow,
	// Resume or Readers.
	Transport string
	// Progress, when set, is called about twice a second.
	Progress func(Progress)
}

// Progress is a live snapshot.
type Progress struct {
	Phase     string // "connect", "publish", "drain"; "resume" with Options.Resume
	Done, Of  int64
	Delivered int64
}

// Report is a run's outcome.
type Report struct {
	Conns           int            `json:"connections"`
	ConnectFailures int            `json:"connect_failures"`
	ConnectSeconds  float64        `json:"connect_seconds"`
	ConnectRate     float64        `json:"connects_per_second"`
	Published       int64          `json:"published"`
	PublishErrors   int64          `json:"publish_errors"`
	PublishSeconds  float64        `json:"publish_seconds"`
	Expected        int64          `json:"expected_deliveries"`
	Delivered       int64          `json:"delivered"`
	Lost            int64          `json:"lost"`
	Duplicates      int64          `json:"duplicates"` // deliveries of an event a subscriber had already received
	DeliveryRate    float64        `json:"deliveries_per_second"`
	P50             time.Duration  `json:"latency_p50_ns"`
	P90             time.Duration  `json:"latency_p90_ns"`
	P99             time.Duration  `json:"latency_p99_ns"`
	Max             time.Duration  `json:"latency_max_ns"`
	Closed          map[int]int    `json:"closed_by_code,omitempty"`
	Refused         map[string]int `json:"refused,omitempty"` // connections the server refused, by the reason it gave
	ServerPID       int            `json:"server_pid,omitempty"`
	RSSPerConnKiB   float64        `json:"rss_per_connection_kib,omitempty"`
	CPUPerMillion   float64        `json:"server_cpu_seconds_per_million_deliveries,omitempty"`
	FirstError      string         `json:"first_error,omitempty"`
	Slow            int            `json:"slow_connections,omitempty"`
	SlowDropped     int            `json:"slow_dropped_without_close,omitempty"`
	MemberAddedWant int64          `json:"member_added_expected,omitempty"`
	MemberAddedGot  int64          `json:"member_added_delivered,omitempty"`
	Resume          *ResumeReport  `json:"resume,omitempty"`      // with Options.Resume; Published, Delivered and Lost count the missed events
	Readers         *ReadersReport `json:"readers,omitempty"`     // with Options.Readers; Conns counts the readers, RSSPerConnKiB is per held reader
	Transport       string         `json:"transport,omitempty"`   // the fan-out scenario's Options.Transport
	Batches         int64          `json:"xhr_batches,omitempty"` // xhr transports: "a" lines (poll answers, for xhr_polling) that carried events
	perChannel      map[string]int // subscribers per channel
}

func (o *Options) defaults() {
	set := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	set(&o.Conns, 100)
	set(&o.Channels, 1)
	set(&o.Payload, 100)
	set(&o.Publishers, 8)
	set(&o.Dialers, 64)
	if o.Rate <= 0 {
		o.Rate = 10
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	if o.Drain <= 0 {
		o.Drain = 3 * time.Second
	}
	if o.Transport == "" {
		o.Transport = TransportWS
	}
}

// Run performs a benchmark run.
func Run(ctx context.Context, o Options) (*Report, error) {
	o.defaults()
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return nil, fmt.Errorf("invalid URL %q: want ws://host:port", o.URL)
	}
	if o.APIURL == "" {
		a := *u
		a.Scheme = strings.Replace(u.Scheme, "ws", "http", 1)
		o.APIURL = a.String()
	}
	if o.Resume > 0 && (o.Presence || o.Slow > 0) {
		return nil, errors.New("a resume run cannot be combined with presence or slow subscribers")
	}
	if err := o.checkReaders(); err != nil {
		return nil, err
	}
	if err := o.checkTransport(); err != nil {
		return nil, err
	}
	rep := &Report{Closed: map[int]int{}, Refused: map[string]int{}, perChannel: map[string]int{}}
	if o.ServerPID == 0 {
		o.ServerPID = findLocalServer(u.Host)
	}
	rep.ServerPID = o.ServerPID
	b := &bench{o: o, rep: rep, wsBase: strings.TrimSuffix(u.String(), "/")}
	if b.xhr() {
		b.xt = newXHRTarget(u, o.Key)
	}
	switch {
	case o.Resume > 0:
		return rep, b.runResume(ctx)
	case o.Readers != "":
		return rep, b.runReaders(ctx)
	}
	rep.Transport = o.Transport
	if b.xhr() {
		b.settle() // an earlier round's sessions gone
	}
	before := b.procStats()
	conns := b.connectAll(ctx)
	defer func() {
		for _, c := range conns {
			c.close()
		}
	}()
	if len(conns) == 0 {
		return rep, fmt.Errorf("no connection succeeded: %s", rep.FirstError)
	}
	if b.xhr() {
		b.settle() // every poll held again, every send connection gone
	}
	idle := b.measureRSS(before, len(conns))
	if o.Presence {
		b.awaitMembers(len(conns))
	} else {
		b.publishAll(ctx)
	}
	b.drainSlow(conns)
	b.collect(conns)
	if o.ServerPID > 0 && rep.Delivered > 0 {
		after := b.procStats()
		rep.CPUPerMillion = (after.CPU - idle.CPU).Seconds() / (float64(rep.Delivered) / 1e6)
	}
	return rep, nil
}

type bench struct {
	o           Options
	rep         *Report
	wsBase      string
	xt          *xhrTarget // with an xhr transport
	delivered   atomic.Int64
	duplicates  atomic.Int64
	batches     atomic.Int64   // xhr "a" lines that carried events
	sent        []atomic.Int64 // events published to each channel, by channel index (publishAll)
	memberAdded atomic.Int64
	errOnce     sync.Once
	mu          sync.Mutex // guards rep's failure counts while connections are made concurrently
}

// procStats reads the local server's counters; zero without a server pid.
func (b *bench) procStats() procStats {
	if b.o.ServerPID <= 0 {
		return procStats{}
	}
	st, _ := readProc(b.o.ServerPID)
	return st
}

// measureRSS sets the server's RSS growth per connection since before and
// returns the counters now. RSS may shrink (a GC returning memory) on a
// small run: then there is no figure, rather than a negative one.
func (b *bench) measureRSS(before procStats, conns int) procStats {
	idle := b.procStats()
	if grew := idle.RSSBytes - before.RSSBytes; grew > 0 && before.RSSBytes > 0 {
		b.rep.RSSPerConnKiB = float64(grew) / float64(conns) / 1024
	}
	return idle
}

func (b *bench) fail(err error) {
	b.errOnce.Do(func() { b.rep.FirstError = err.Error() })
}

func channelName(i, n int) string { return fmt.Sprintf("bench-%d", i%n) }

// subscriber is one client of the fan-out scenario, whatever carries it:
// a WebSocket (conn) or pusher-js's HTTP transports (xhrClient). Its
// reader goroutine records what it receives in its tally.
type subscriber interface {
	results() *tally
	close() // ends the reader: its connections are reset
}

// dialSubscriber opens and subscribes client i over the run's transport.
func (b *bench) dialSubscriber(ctx context.Context, i int) (subscriber, error) {
	if b.xhr() {
		x, err := dialXHR(ctx, b, i)
		if err != nil {
			return nil, err
		}
		return x, nil
	}
	c, err := dial(ctx, b, i)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// connectAll opens and subscribes the connections.
func (b *bench) connectAll(ctx context.Context) []subscriber {
	o := b.o
	start := time.Now()
	total := o.Conns + o.Slow
	results := make([]subscriber, total)
	failures := make([]error, total)
	var next, done atomic.Int64
	var wg sync.WaitGroup
	for range o.Dialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= total || ctx.Err() != nil {
					return
				}
				c, err := b.dialSubscriber(ctx, i)
				if err != nil {
					b.fail(err)
					failures[i] = err
				} else {
					results[i] = c
				}
				done.Add(1)
			}
		}()
	}
	stop := b.progressLoop("connect", &done, int64(total))
	wg.Wait()
	stop()
	b.rep.ConnectSeconds = time.Since(start).Seconds()
	var conns []subscriber
	for i, c := range results {
		if c == nil {
			b.rep.ConnectFailures++
			if r, ok := errors.AsType[*RefusedError](failures[i]); ok {
				b.rep.Refused[r.Reason]++
			}
			continue
		}
		if i < o.Conns { // not a slow one
			b.rep.perChannel[channelName(i, o.Channels)]++
		}
		conns = append(conns, c)
	}
	b.rep.Conns = len(conns)
	b.rep.Slow = o.Slow
	b.rep.ConnectRate = float64(len(conns)) / b.rep.ConnectSeconds
	return conns
}

// progressLoop reports progress until the returned stop is called.
func (b *bench) progressLoop(phase string, done *atomic.Int64, of int64) func() {
	if b.o.Progress == nil {
		return func() {}
	}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			b.o.Progress(Progress{Phase: phase, Done: done.Load(), Of: of, Delivered: b.delivered.Load()})
			select {
			case <-quit:
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		close(quit)
		wg.Wait()
		b.o.Progress(Progress{Phase: phase, Done: done.Load(), Of: of, Delivered: b.delivered.Load()})
	}
}

// publishAll publishes at the configured rate for the configured time,
// event k to channel k mod Channels, counting in sent what each channel
// was sent, then waits up to Drain for the deliveries expected.
func (b *bench) publishAll(ctx context.Context) {
	o := b.o
	total := int64(math.Round(o.Rate * o.Duration.Seconds()))
	api := &probe.API{BaseURL: o.APIURL, AppID: o.AppID, Key: o.Key, Secret: o.Secret, HTTP: newHTTPClient(o.Publishers)}
	// Idle keep-alive connections would hold up the server's shutdown.
	defer api.HTTP.CloseIdleConnections()
	b.sent = make([]atomic.Int64, o.Channels)
	pad := strings.Repeat("x", max(0, o.Payload-40))
	tokens := make(chan int64, o.Publishers)
	var published, errs atomic.Int64
	var wg sync.WaitGroup
	for range o.Publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := range tokens {
				ch := channelName(int(seq), o.Channels)
				data := fmt.Sprintf("%d %d %s", seq, time.Now().UnixNano(), pad)
				if _, err := api.Trigger(ctx, probe.Event{Name: "bench", Data: data, Channels: []string{ch}}); err != nil {
					errs.Add(1)
					b.fail(fmt.Errorf("publish: %w", err))
					continue
				}
				published.Add(1)
				b.sent[int(seq)%o.Channels].Add(1)
				atomic.AddInt64(&b.rep.Expected, int64(b.rep.perChannel[ch]))
			}
		}()
	}
	stop := b.progressLoop("publish", &published, total)
	start := time.Now()
	interval := time.Duration(float64(time.Second) / o.Rate)
	for seq := int64(0); seq < total && ctx.Err() == nil; seq++ {
		if d := time.Until(start.Add(time.Duration(seq) * interval)); d > 0 {
			time.Sleep(d) // pacing the offered load, not waiting for an event
		}
		tokens <- seq
	}
	close(tokens)
	wg.Wait()
	b.rep.PublishSeconds = time.Since(start).Seconds()
	stop()
	b.rep.Published, b.rep.PublishErrors = published.Load(), errs.Load()

	// Drain: wait until everything expected arrived or the drain time ends.
	deadline := time.Now().Add(o.Drain)
	for b.delivered.Load() < atomic.LoadInt64(&b.rep.Expected) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
}

// awaitMembers waits until every member_added arrived or the drain time
// ends: each pair of members is announced once, to the earlier one.
func (b *bench) awaitMembers(n int) {
	want := int64(n) * int64(n-1) / 2
	deadline := time.Now().Add(b.o.Drain)
	for b.memberAdded.Load() < want && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	b.rep.MemberAddedWant, b.rep.MemberAddedGot = want, b.memberAdded.Load()
	b.rep.Lost = max(0, want-b.rep.MemberAddedGot)
}

// drainSlow lets the never-reading connections read what the server left
// them, to learn how (and whether) they were closed.
func (b *bench) drainSlow(conns []subscriber) {
	var wg sync.WaitGroup
	for _, s := range conns {
		if c, ok := s.(*conn); ok && c.slow {
			wg.Add(1)
			go func() { defer wg.Done(); c.drainUntilClose() }()
		}
	}
	wg.Wait()
}

// collect merges the per-connection results; the readers may still run.
func (b *bench) collect(conns []subscriber) {
	var all []time.Duration
	for _, s := range conns {
		t := s.results()
		t.mu.Lock()
		all = append(all, t.latencies...)
		if t.closeCode != 0 {
			b.rep.Closed[t.closeCode]++
		}
		if t.dropped { // only a slow connection's drain sets it
			b.rep.SlowDropped++
		}
		t.mu.Unlock()
	}
	b.rep.Delivered = b.delivered.Load()
	b.rep.Duplicates = b.duplicates.Load()
	b.rep.Batches = b.batches.Load()
	if !b.o.Presence {
		b.rep.Lost = max(0, b.rep.Expected-b.rep.Delivered)
	}
	if b.rep.PublishSeconds > 0 {
		b.rep.DeliveryRate = float64(b.rep.Delivered) / b.rep.PublishSeconds
	}
	b.setLatencies(all)
}

// setLatencies sets the report's latency percentiles from all (sorted in
// place); none without a delivery.
func (b *bench) setLatencies(all []time.Duration) {
	if len(all) > 0 {
		slices.Sort(all)
		pick := func(p float64) time.Duration { return all[int(float64(len(all)-1)*p)] }
		b.rep.P50, b.rep.P90, b.rep.P99, b.rep.Max = pick(0.50), pick(0.90), pick(0.99), all[len(all)-1]
	}
}

// sourceAddr spreads connections over loopback source addresses so that
// more than one address's ephemeral ports are available. (Connections are
// reset on close, so no TIME_WAIT from an earlier run holds ports.)
func sourceAddr(i int) *net.TCPAddr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+i/perSourceAddr))}
}

// perSourceAddr is how many connections share one source address.
const perSourceAddr = 20000
