package session

import (
	"context"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/herald-ws/herald/internal/pusher"
)

// minDrainWait is the shortest pause Drain takes between closes: closes
// due sooner go together, so that ten thousand sockets over three
// seconds cost a few thousand timer waits, not ten thousand.
const minDrainWait = time.Millisecond

// Drain refuses new sessions, then closes every open one with 4200
// (reconnect), spread evenly over window in a random order: of n
// sessions, the i-th (after shuffling) closes window*i/n after the start,
// so the first goes at once and the last a window/n before the end. A
// client told to reconnect does so at once, and n thousand clients told
// together would all land on the next server in the same 100 ms; spread,
// they arrive at n/window per second. A session keeps receiving until its
// turn, and what is queued to it is written before its close (the close
// is queued after it).
//
// When ctx ends first, the sessions still open are closed at once. Drain
// returns once every session's close has started; window 0 closes all at
// once.
func (m *Manager) Drain(ctx context.Context, window time.Duration) {
	m.ready.Store(false)
	all := m.snapshot()
	if len(all) > 0 {
		// One line for them all, not one per connection.
		m.log.Info("closing connections: server shutting down", "connections", len(all), "code", pusher.CodeGeneric, "drain_window", window)
	}
	// Sessions already closing (their client left) take no turn.
	all = slices.DeleteFunc(all, func(s *Session) bool { return s.dead.Load() })
	rand.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	start := time.Now()
	var timer *time.Timer
	for i, s := range all {
		if window > 0 {
			due := start.Add(time.Duration(int64(window) * int64(i) / int64(len(all))))
			if wait := time.Until(due); wait >= minDrainWait {
				if timer == nil {
					timer = time.NewTimer(wait)
					defer timer.Stop()
				} else {
					timer.Reset(wait)
				}
				select {
				case <-timer.C:
				case <-ctx.Done():
					window = 0 // out of time: the rest go now
				}
			}
		}
		m.closeForShutdown(s)
	}
	// A session opened as ready was being cleared (Open checked it just
	// before) is not in the first snapshot.
	for _, s := range m.snapshot() {
		m.closeForShutdown(s)
	}
}

func (m *Manager) closeForShutdown(s *Session) {
	if s.startClose(pusher.CodeGeneric, pusher.CodeGeneric, "server shutting down") {
		s.log.Debug("closing connection", "code", pusher.CodeGeneric, "reason", "server shutting down")
	}
}
