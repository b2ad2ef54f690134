package loadgen

import (
	"bytes"
	"sync"
	"time"
)

// tally is what one subscriber of the fan-out scenario received. Its
// reader goroutine writes it under mu; the run reads it under mu too,
// while the reader may still run.
type tally struct {
	mu        sync.Mutex
	latencies []time.Duration // one per event, at its first delivery
	seen      seqSet          // the events received, by seq / Channels
	closeCode int             // the server's close code, 0 without one
	dropped   bool            // a slow connection the server ended without a close frame
}

// deliver counts the bench event whose data ("seq sendtime pad") starts
// data, received at now (Unix ns): its first delivery, with its latency,
// or a duplicate. Each subscriber gets the events of one channel, seq
// mod Channels, so seq / Channels numbers them densely. Data that does
// not parse is not counted.
func (t *tally) deliver(b *bench, now int64, data []byte) {
	seq, ok := parseInt(firstField(data))
	sent, ok2 := parseInt(secondField(data))
	if !ok || !ok2 {
		return
	}
	t.mu.Lock()
	first := t.seen.add(seq / int64(b.o.Channels))
	if first {
		t.latencies = append(t.latencies, time.Duration(now-sent))
	}
	t.mu.Unlock()
	if first {
		b.delivered.Add(1)
	} else {
		b.duplicates.Add(1)
	}
}

// firstField returns b up to its first space; nil when there is none.
func firstField(b []byte) []byte {
	i := bytes.IndexByte(b, ' ')
	if i < 0 {
		return nil
	}
	return b[:i]
}

// seqSet is a set of small numbers, a bit each, grown on demand. Numbers
// from maxTracked on are not tracked: they are always new.
type seqSet []uint64

// add adds n and reports whether it was not in the set.
func (s *seqSet) add(n int64) bool {
	if n < 0 || n >= maxTracked {
		return true
	}
	w, bit := int(n/64), uint64(1)<<(n%64)
	if w >= len(*s) {
		*s = append(*s, make([]uint64, w+1-len(*s))...)
	}
	if (*s)[w]&bit != 0 {
		return false
	}
	(*s)[w] |= bit
	return true
}
