package node

import (
	"sync"
	"sync/atomic"
)

// Tapped is one delivered frame as a Tap sees it.
type Tapped struct {
	Channel string
	Frame   []byte // shared with the subscribers: read only
	// Exclude is the socket the publish was not sent to ("" for none).
	Exclude string
}

// Tap is a copy of an app's deliveries on this node, for the dashboard's
// debug console: like a Watch it is no subscriber (it takes no place in
// counts, presence or webhooks), and unlike one it carries the frames.
// Frames are handed over without ever blocking a delivery: when the tap's
// buffer is full they are dropped and counted.
type Tap struct {
	taps    *taps
	channel string // "" for every channel
	c       chan Tapped
	dropped atomic.Int64
}

// taps are an app's live Taps. A delivery while none is live costs one
// atomic load.
type taps struct {
	n   atomic.Int32
	mu  sync.Mutex // guards all
	all map[*Tap]struct{}
}

// Tap starts copying the deliveries of channel ("" for all the app's
// channels) into a buffer of size frames; Stop must be called.
func (a *App) Tap(channel string, size int) *Tap {
	t := &Tap{taps: &a.taps, channel: channel, c: make(chan Tapped, max(size, 1))}
	a.taps.mu.Lock()
	if a.taps.all == nil {
		a.taps.all = map[*Tap]struct{}{}
	}
	a.taps.all[t] = struct{}{}
	a.taps.n.Add(1)
	a.taps.mu.Unlock()
	return t
}

// C delivers the tapped frames; it is never closed.
func (t *Tap) C() <-chan Tapped { return t.c }

// Dropped is how many frames did not fit in the buffer.
func (t *Tap) Dropped() int64 { return t.dropped.Load() }

// Stop ends the tap.
func (t *Tap) Stop() {
	t.taps.mu.Lock()
	if _, ok := t.taps.all[t]; ok {
		delete(t.taps.all, t)
		t.taps.n.Add(-1)
	}
	t.taps.mu.Unlock()
}

// send copies one delivery to the taps that want it.
func (ts *taps) send(channel string, frame []byte, exclude string) {
	if ts.n.Load() == 0 {
		return
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for t := range ts.all {
		if t.channel != "" && t.channel != channel {
			continue
		}
		select {
		case t.c <- Tapped{Channel: channel, Frame: frame, Exclude: exclude}:
		default:
			t.dropped.Add(1)
		}
	}
}
