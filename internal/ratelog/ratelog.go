// Package ratelog bounds how often one kind of warning reaches the log, so
// that a flood of refused requests (a misconfigured app retrying, or an
// attacker) cannot fill the disk while the first occurrences of each reason
// stay visible.
//
// Keys name a reason ("api: bad signature"), never attacker-chosen text:
// the number of keys is bounded by the code, and Limiter forgets every key
// if it is ever handed more than maxKeys of them.
package ratelog

import (
	"sync"
	"time"
)

// maxKeys bounds the memory a Limiter holds.
const maxKeys = 1024

// Limiter lets through at most Burst events per key in each Window.
//
// Concurrency: safe for concurrent use; mu guards keys.
type Limiter struct {
	Burst  int           // lines per key and window (default 5)
	Window time.Duration // default 1 minute
	now    func() time.Time

	mu   sync.Mutex
	keys map[string]*window
}

type window struct {
	start      time.Time
	count      int // events in this window, allowed or not
	suppressed int // events held back since the last allowed one
}

// New returns a limiter allowing burst lines per key and window; zero
// values take the defaults.
func New(burst int, every time.Duration) *Limiter {
	if burst <= 0 {
		burst = 5
	}
	if every <= 0 {
		every = time.Minute
	}
	return &Limiter{Burst: burst, Window: every, now: time.Now, keys: map[string]*window{}}
}

// Allow reports whether an event of key may be logged now, and how many
// events of key were held back since the last one allowed (to be logged
// with it, as "suppressed").
func (l *Limiter) Allow(key string) (ok bool, suppressed int) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.keys[key]
	if w == nil {
		if len(l.keys) >= maxKeys {
			clear(l.keys)
		}
		w = &window{start: now}
		l.keys[key] = w
	}
	if now.Sub(w.start) >= l.Window {
		w.start, w.count = now, 0
	}
	w.count++
	if w.count > l.Burst {
		w.suppressed++
		return false, 0
	}
	suppressed, w.suppressed = w.suppressed, 0
	return true, suppressed
}
