package redis

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"net"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// idle is how long the subscriber waits for a message before it pings
// Redis; a ping unanswered for as long again means the connection is dead
// (a peer gone without a FIN) and it is replaced.
const idle = 10 * time.Second

// logEvery rate-limits the failure log: one line per kind of failure per
// interval, with how many were not logged.
const logEvery = 10 * time.Second

// workerQueue is each worker's backlog; past it the reader waits, and
// Redis buffers for the connection (up to its client-output-buffer-limit
// for pub/sub, past which it drops the connection: logged, see receive).
const workerQueue = 4096

// subscriber is the node's one pub/sub connection and its workers.
//
// Concurrency: receive runs on one goroutine (it alone uses ps and the
// ping state; psMu guards replacing ps against stop closing it); each
// worker goroutine owns its queue's receiving end; the health fields are
// atomic; the failure log has its own mutex.
type subscriber struct {
	e       *Engine
	psMu    sync.Mutex
	ps      *goredis.PubSub
	chans   []string
	queues  []chan envelope
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	down    atomic.Pointer[downState] // nil while connected
	pinging bool                      // a ping is unanswered

	logMu   sync.Mutex
	logged  map[string]time.Time // last log time per failure kind
	dropped map[string]int       // failures not logged since
}

type downState struct {
	err   error
	since time.Time
}

// subscribe opens the subscriber connection, waits until Redis confirmed
// every subscription (from then on, every publish reaches this node), and
// starts the reader and the workers.
func (e *Engine) subscribe(ctx context.Context, workers int) (*subscriber, error) {
	s := &subscriber{e: e, chans: []string{e.bus, e.self}, logged: map[string]time.Time{}, dropped: map[string]int{}}
	s.ps = e.client.Subscribe(ctx, s.chans...)
	for range s.chans {
		msg, err := s.ps.ReceiveTimeout(ctx, e.timeout)
		if err != nil {
			_ = s.ps.Close()
			return nil, err
		}
		if _, ok := msg.(*goredis.Subscription); !ok {
			_ = s.ps.Close()
			return nil, fmt.Errorf("unexpected %T before the subscription was confirmed", msg)
		}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.queues = make([]chan envelope, workers)
	for i := range s.queues {
		q := make(chan envelope, workerQueue)
		s.queues[i] = q
		s.wg.Go(func() { s.work(q) })
	}
	s.wg.Go(s.receive)
	return s, nil
}

// receive reads the connection until stop. go-redis redials and
// resubscribes after an error; the loop backs off while it cannot.
func (s *subscriber) receive() {
	defer func() {
		for _, q := range s.queues {
			close(q)
		}
	}()
	backoff := 100 * time.Millisecond
	for {
		s.psMu.Lock()
		ps := s.ps
		s.psMu.Unlock()
		msg, err := ps.ReceiveTimeout(s.ctx, idle)
		if s.ctx.Err() != nil {
			return
		}
		if err != nil {
			if s.idle(ps, err) {
				continue
			}
			s.lost(err)
			select {
			case <-time.After(backoff):
			case <-s.ctx.Done():
				return
			}
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		s.pinging = false
		switch m := msg.(type) {
		case *goredis.Message:
			s.route(m.Payload)
		case *goredis.Subscription:
			s.restored()
		}
	}
}

// idle handles a receive timeout: the first pings Redis, the second in a
// row replaces the connection (it reports false then).
func (s *subscriber) idle(ps *goredis.PubSub, err error) bool {
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		return false
	}
	if !s.pinging {
		s.pinging = true
		if perr := ps.Ping(s.ctx); perr == nil {
			return true
		}
	}
	s.pinging = false
	// Closing the PubSub is the only way to drop its connection; a new
	// one subscribes the same channels.
	s.psMu.Lock()
	defer s.psMu.Unlock()
	_ = s.ps.Close()
	if s.ctx.Err() == nil {
		s.ps = s.e.client.Subscribe(s.ctx, s.chans...)
	}
	return false
}

// route hands an envelope to its channel's worker.
func (s *subscriber) route(payload string) {
	env, err := decodeEnvelope(payload)
	if err != nil {
		s.logFailure("bad message", fmt.Errorf("%w (%d bytes)", err, len(payload)))
		return
	}
	var h maphash.Hash
	h.SetSeed(s.e.seed)
	h.WriteString(env.msg.App)
	h.WriteByte(0)
	h.WriteString(env.msg.Channel)
	q := s.queues[h.Sum64()%uint64(len(s.queues))]
	select {
	case q <- env:
	case <-s.ctx.Done():
	}
}

func (s *subscriber) work(q chan envelope) {
	for env := range q {
		if env.token != 0 {
			s.e.marker(env.token)
		} else {
			s.e.deliver(env.msg)
		}
	}
}

// lost records that the connection failed and says so, loudly but at
// most once per interval.
func (s *subscriber) lost(err error) {
	if s.down.Load() == nil {
		s.down.Store(&downState{err: err, since: time.Now()})
	}
	s.logFailure("subscriber connection", err)
}

// restored is called for each subscription Redis confirms: after a
// reconnection, the connection is back.
func (s *subscriber) restored() {
	d := s.down.Swap(nil)
	if d == nil {
		return
	}
	s.e.log.Error("redis: subscriber reconnected: events published while it was down were not delivered to this node's clients (they can resume from history)",
		"down_for", time.Since(d.since).Round(time.Millisecond).String())
}

// health is nil while connected, else why not.
func (s *subscriber) health() error {
	if d := s.down.Load(); d != nil {
		return fmt.Errorf("redis unreachable since %s: %w", d.since.Format(time.RFC3339), d.err)
	}
	return nil
}

// logFailure logs err at error level, at most once per logEvery per
// kind, counting the ones it skipped.
func (s *subscriber) logFailure(kind string, err error) {
	s.logMu.Lock()
	now := time.Now()
	if now.Sub(s.logged[kind]) < logEvery {
		s.dropped[kind]++
		s.logMu.Unlock()
		return
	}
	skipped := s.dropped[kind]
	s.logged[kind], s.dropped[kind] = now, 0
	s.logMu.Unlock()
	s.e.log.Error("redis: "+kind+" failed", "err", err, "not_logged_since", skipped)
}

// stop ends the reader and the workers and closes the connection.
func (s *subscriber) stop() {
	s.cancel()
	s.psMu.Lock()
	_ = s.ps.Close() // ends a receive in progress
	s.psMu.Unlock()
	s.wg.Wait()
}
