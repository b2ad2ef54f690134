package metrics

import "sync/atomic"

// stripes is how many cache lines a Counter spreads its additions over.
const stripes = 8

// Counter is a monotonic count added to from many goroutines at once
// (every pool worker flushing sockets). One shared atomic would make each
// core wait for the cache line the others just wrote; a Counter keeps one
// padded atomic per stripe, each caller adding to its own, and sums them
// only when read (a scrape).
//
// Concurrency: safe for concurrent use; the zero value is ready.
type Counter struct {
	s [stripes]struct {
		n atomic.Int64
		_ [56]byte // one cache line per stripe
	}
}

// Add adds n on stripe (any number: a connection's own, say).
func (c *Counter) Add(stripe uint32, n int64) { c.s[stripe%stripes].n.Add(n) }

// Load is the sum of all stripes.
func (c *Counter) Load() int64 {
	var t int64
	for i := range c.s {
		t += c.s[i].n.Load()
	}
	return t
}

// Traffic counts a transport's messages and bytes in each direction.
//
// Concurrency: safe for concurrent use; the zero value is ready.
type Traffic struct {
	MessagesIn, BytesIn, MessagesOut, BytesOut Counter
}

// In counts one inbound message of n bytes.
func (t *Traffic) In(stripe uint32, n int) {
	t.MessagesIn.Add(stripe, 1)
	t.BytesIn.Add(stripe, int64(n))
}

// Out counts frames messages written in one flush of n bytes.
func (t *Traffic) Out(stripe uint32, frames, n int) {
	if frames > 0 {
		t.MessagesOut.Add(stripe, int64(frames))
	}
	t.BytesOut.Add(stripe, int64(n))
}

// Snapshot reads the counts.
func (t *Traffic) Snapshot() TrafficSnapshot {
	return TrafficSnapshot{MessagesIn: t.MessagesIn.Load(), BytesIn: t.BytesIn.Load(), MessagesOut: t.MessagesOut.Load(), BytesOut: t.BytesOut.Load()}
}
