package node

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// Watch is a reader's interest in one channel's deliveries on this node:
// the HTTP long-polls and Server-Sent Event streams that read history wait
// on it instead of being subscribers (they are not connections, take no
// place in presence or counts, and read what they missed from history).
//
// A Watch is for one goroutine. Ready is closed by the first delivery
// after it was called, so the loop "r := w.Ready(); read history; wait on
// r" misses nothing: an event delivered after Ready is either in the read
// or closes r.
type Watch struct {
	w  *watchers
	sh *watchShard
	ch string
}

// watchers are an app's watched channels. A publish to a channel nobody
// watches costs one atomic load; to a watched one, it closes one Go
// channel (waking every waiter at once) and makes the next, whatever the
// number of waiters.
type watchers struct {
	seed   maphash.Seed
	n      atomic.Int64 // live Watches of the app
	shards [16]watchShard
}

type watchShard struct {
	mu sync.Mutex // guards m
	m  map[string]*watched
}

type watched struct {
	n     int           // live Watches of the channel
	ready chan struct{} // closed by the next delivery
}

func (w *watchers) shard(channel string) *watchShard {
	return &w.shards[maphash.String(w.seed, channel)%uint64(len(w.shards))]
}

// Watch starts watching channel's deliveries; Stop must be called.
func (a *App) Watch(channel string) *Watch {
	w := &a.watch
	sh := w.shard(channel)
	sh.mu.Lock()
	if sh.m == nil {
		sh.m = map[string]*watched{}
	}
	st := sh.m[channel]
	if st == nil {
		st = &watched{ready: make(chan struct{})}
		sh.m[channel] = st
	}
	st.n++
	w.n.Add(1)
	sh.mu.Unlock()
	return &Watch{w: w, sh: sh, ch: channel}
}

// Ready returns a channel closed by the next delivery of an event of the
// watched channel on this node.
func (wt *Watch) Ready() <-chan struct{} {
	wt.sh.mu.Lock()
	defer wt.sh.mu.Unlock()
	return wt.sh.m[wt.ch].ready
}

// Stop ends the watch.
func (wt *Watch) Stop() {
	wt.sh.mu.Lock()
	st := wt.sh.m[wt.ch]
	if st.n--; st.n == 0 {
		delete(wt.sh.m, wt.ch)
	}
	wt.w.n.Add(-1)
	wt.sh.mu.Unlock()
}

// notify wakes channel's watchers; called for every delivery.
func (w *watchers) notify(channel string) {
	if w.n.Load() == 0 {
		return
	}
	sh := w.shard(channel)
	sh.mu.Lock()
	if st := sh.m[channel]; st != nil {
		close(st.ready)
		st.ready = make(chan struct{})
	}
	sh.mu.Unlock()
}
