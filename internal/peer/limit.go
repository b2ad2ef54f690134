package peer

import (
	"hash/maphash"
	"net/netip"
	"sync"
	"time"
)

// Limits are the per-address connection limits; a zero field is off.
type Limits struct {
	// MaxConns is how many connections one address may hold at once.
	MaxConns int
	// Rate is how many new connections one address may open per second,
	// with bursts of Burst (at least 1).
	Rate  float64
	Burst int
}

// Limiter applies Limits per client address.
//
// Concurrency: safe for concurrent use; sharded by address, one mutex per
// shard. An address has state only while it holds connections or its
// rate budget is not full again, so memory follows the live clients.
type Limiter struct {
	lim    Limits
	cost   int64 // nanoseconds per connection at Rate
	seed   maphash.Seed
	shards [64]shard
}

type shard struct {
	mu sync.Mutex
	m  map[netip.Addr]*entry
}

type entry struct {
	conns int
	tat   int64 // GCRA: when the budget is full again, unix nanos
}

// Refusal says why a connection was refused.
type Refusal int

// Refusals.
const (
	OK      Refusal = iota
	TooMany         // MaxConns held already
	TooFast         // over Rate
)

// NewLimiter returns a limiter for lim, or nil when every limit is off.
func NewLimiter(lim Limits) *Limiter {
	if lim.MaxConns <= 0 && lim.Rate <= 0 {
		return nil
	}
	l := &Limiter{lim: lim, seed: maphash.MakeSeed()}
	if lim.Rate > 0 {
		l.cost = int64(float64(time.Second) / lim.Rate)
		l.lim.Burst = max(lim.Burst, 1)
	}
	for i := range l.shards {
		l.shards[i].m = map[netip.Addr]*entry{}
	}
	return l
}

func (l *Limiter) shard(a netip.Addr) *shard {
	b := a.As16()
	return &l.shards[maphash.Bytes(l.seed, b[:])%uint64(len(l.shards))]
}

// Acquire takes a connection slot for a at now; with OK the caller must
// Release it when the connection ends.
func (l *Limiter) Acquire(a netip.Addr, now time.Time) Refusal {
	sh := l.shard(a)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.m[a]
	if e == nil {
		e = &entry{}
		sh.m[a] = e
	}
	defer l.forgetIdle(sh, a, e, now.UnixNano())
	if l.lim.MaxConns > 0 && e.conns >= l.lim.MaxConns {
		return TooMany
	}
	if l.cost > 0 {
		t := now.UnixNano()
		tat := max(e.tat, t)
		if tat-t > int64(l.lim.Burst-1)*l.cost {
			return TooFast
		}
		e.tat = tat + l.cost
	}
	e.conns++
	return OK
}

// Release gives back a slot taken by Acquire.
func (l *Limiter) Release(a netip.Addr, now time.Time) {
	sh := l.shard(a)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e := sh.m[a]; e != nil {
		e.conns--
		l.forgetIdle(sh, a, e, now.UnixNano())
	}
}

// forgetIdle drops an address with no connection and a full budget: it
// would start over the same way.
func (l *Limiter) forgetIdle(sh *shard, a netip.Addr, e *entry, now int64) {
	if e.conns <= 0 && e.tat <= now {
		delete(sh.m, a)
	}
}

// Sweep forgets the addresses whose budget filled up since they last
// connected (called now and then: Acquire and Release forget what they
// can on their own).
func (l *Limiter) Sweep(now time.Time) {
	t := now.UnixNano()
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		for a, e := range sh.m {
			l.forgetIdle(sh, a, e, t)
		}
		sh.mu.Unlock()
	}
}

// Len is the number of addresses with state (for tests and metrics).
func (l *Limiter) Len() int {
	n := 0
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}
