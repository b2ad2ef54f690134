package ws

import (
	"sync"
	"sync/atomic"
	"time"
)

// coarseNow is the time in unix nanoseconds, refreshed every
// coarseTick. Deadlines only need this precision, and reading an atomic
// is far cheaper per write than time.Now plus a deadline update.
var (
	coarseNow   atomic.Int64
	coarseStart sync.Once
)

const coarseTick = 10 * time.Millisecond

func startCoarseClock() {
	coarseStart.Do(func() {
		coarseNow.Store(time.Now().UnixNano())
		go func() {
			for t := range time.Tick(coarseTick) {
				coarseNow.Store(t.UnixNano())
			}
		}()
	})
}

// lazyDeadline keeps a socket deadline between d/2 and d in the future,
// calling set only when less than d/2 is left: a blocked read or write
// still fails within d, and most operations skip the deadline update.
type lazyDeadline struct {
	until atomic.Int64 // unix nanos of the deadline last set
}

func (l *lazyDeadline) refresh(d time.Duration, set func(time.Time) error) {
	now := coarseNow.Load()
	if l.until.Load()-now > int64(d/2) {
		return
	}
	t := time.Unix(0, now).Add(d)
	if set(t) == nil {
		l.until.Store(t.UnixNano())
	}
}
