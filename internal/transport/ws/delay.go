package ws

import (
	"sync"
	"time"
)

// epoch anchors monotonic timestamps kept as int64 nanoseconds.
var epoch = time.Now()

func nanotime() int64 { return int64(time.Since(epoch)) }

// delayer holds the flushes of hot sockets back for a short, fixed window
// so that events arriving meanwhile leave in the same write. The write
// system call (and, on loopback, the receiver's TCP path it runs) is most
// of what a delivery costs, so fewer, fuller writes are the cheapest
// fan-out. A flush is held only when both
//   - the socket is hot: its last two events came less than two windows
//     apart, so one that gets an event now and then is never held; and
//   - the server is busy: busyQueue flushes and reads already wait in the
//     pool, so a flush would wait anyway, and an idle server never trades
//     latency for CPU (a client in lock-step with its publisher is not
//     slowed down).
//
// Concurrency: mu guards q and armed; fire runs on the timer's goroutine
// and hands due connections to the pool.
type delayer struct {
	d      time.Duration
	hotGap int64 // nanoseconds between two events below which a socket is hot
	busy   int   // pool queue length from which the server counts as busy
	pool   *pool

	mu    sync.Mutex
	q     []delayed // in arrival order; every entry waits d, so deadlines rise (up to the µs between callers' clocks, which fire's slack covers)
	timer *time.Timer
	armed bool
}

type delayed struct {
	c  *econn
	at int64
}

// busyQueue is the pool queue length from which the server counts as busy.
const busyQueue = 64

func newDelayer(d time.Duration, p *pool) *delayer {
	dl := &delayer{d: d, hotGap: 2 * int64(d), busy: busyQueue, pool: p}
	dl.timer = time.AfterFunc(time.Hour, dl.fire)
	dl.timer.Stop()
	return dl
}

// holds reports whether a flush whose socket's last two events came gap
// apart waits: the socket is hot and the server busy.
func (dl *delayer) holds(gap int64) bool {
	return gap < dl.hotGap && len(dl.pool.tasks) >= dl.busy
}

// add schedules c's flush d from now.
func (dl *delayer) add(c *econn) {
	at := nanotime() + int64(dl.d)
	dl.mu.Lock()
	dl.q = append(dl.q, delayed{c, at})
	if !dl.armed {
		dl.armed = true
		dl.timer.Reset(dl.d)
	}
	dl.mu.Unlock()
}

// fire submits every due flush and rearms for the next one.
func (dl *delayer) fire() {
	now := nanotime()
	dl.mu.Lock()
	k := 0
	// What falls due within an eighth of the window leaves now too, so the
	// timer fires at most ~8 times per window however busy the server is.
	for k < len(dl.q) && dl.q[k].at <= now+int64(dl.d/8) {
		k++
	}
	due := dl.q[:k:k]
	rest := dl.q[k:]
	if len(rest) == 0 {
		dl.q = nil
		dl.armed = false
	} else {
		dl.q = rest // appends go past the due entries, never over them
		dl.timer.Reset(time.Duration(dl.q[0].at - now))
	}
	dl.mu.Unlock()
	for _, e := range due {
		dl.pool.submit(task{c: e.c})
	}
}
