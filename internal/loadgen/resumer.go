package loadgen

import (
	"bytes"
	"fmt"
	"sync"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

var (
	resumeFailedPrefix = []byte(`{"event":"herald:resume_failed"`)
	epochMarker        = []byte(`,"epoch":"`)
	offsetMarker       = []byte(`,"offset":`)
)

// catchUp reads r's replay. It calls settled once r has every missed
// event, was told herald:resume_failed, or heard nothing for --drain; a
// client that caught up then reads on until the live event published
// after the replay, counting anything else as a duplicate, until its
// connection is closed.
func (r *resumer) catchUp(b *bench, settled func()) {
	n := b.o.Resume
	r.seen = make([]bool, n)
	settle := sync.OnceFunc(settled)
	defer settle()
	for {
		if r.caughtUp.IsZero() {
			_ = r.c.nc.SetReadDeadline(time.Now().Add(b.o.Drain))
		}
		p, err := r.c.nextEvent()
		if err != nil {
			if r.caughtUp.IsZero() {
				b.fail(fmt.Errorf("resume on %s: %d of %d missed events, then %w", r.channel, r.got, n, err))
			}
			return
		}
		if bytes.HasPrefix(p, resumeFailedPrefix) {
			r.failed = true
			b.fail(fmt.Errorf("resume on %s since %s:%d: %s", r.channel, r.epoch, r.last, p))
			return
		}
		if !bytes.HasPrefix(p, benchPrefix) {
			continue
		}
		_, off, ok := positionOf(p)
		switch {
		case !ok:
			b.fail(fmt.Errorf("event without a position on %s: %.200s", r.channel, p))
		case off > r.want(n):
			r.live = !r.caughtUp.IsZero()
			return
		case r.record(off):
			b.delivered.Add(1)
			if r.got == n {
				r.caughtUp = time.Now()
				_ = r.c.nc.SetReadDeadline(time.Time{})
				settle()
			}
		}
	}
}

// record notes the arrival of offset (at most want) and reports whether
// it is a missed event not seen before. An offset at or before the
// resume position, or seen already, is a duplicate; one lower than an
// offset already seen is out of order.
func (r *resumer) record(offset uint64) bool {
	if offset <= r.last || r.seen[offset-r.last-1] {
		r.dups++
		return false
	}
	r.seen[offset-r.last-1] = true
	r.got++
	if offset < r.high {
		r.disorder++
	}
	r.high = max(r.high, offset)
	return true
}

// positionOf returns the epoch and offset Herald appends to an event of a
// channel with history: `…,"epoch":"abcd1","offset":7}`.
func positionOf(p []byte) (epoch []byte, offset uint64, ok bool) {
	i := bytes.LastIndex(p, offsetMarker)
	if i < 0 || !bytes.HasSuffix(p, []byte("}")) {
		return nil, 0, false
	}
	j := bytes.LastIndex(p[:i], epochMarker)
	if j < 0 || p[i-1] != '"' {
		return nil, 0, false
	}
	off, ok := parseInt(p[i+len(offsetMarker) : len(p)-1])
	return p[j+len(epochMarker) : i-1], uint64(off), ok
}

// nextEvent reads frames until a text frame and returns its payload,
// valid until the next call. It answers WebSocket and Pusher pings on the
// way; a close frame is recorded and ends the connection with an error.
func (c *conn) nextEvent() ([]byte, error) {
	for {
		p, op, err := readFrameInto(c.br, c.buf)
		if err != nil {
			return nil, err
		}
		c.buf = p[:cap(p)]
		switch {
		case op == ws.OpClose:
			c.mu.Lock()
			c.closeCode = statusOf(p)
			c.mu.Unlock()
			return nil, fmt.Errorf("closed by the server with %s", closeText(p))
		case op == ws.OpPing:
			_ = wsutil.WriteClientMessage(c.nc, ws.OpPong, p)
		case op == ws.OpText && bytes.HasPrefix(p, pingPrefix):
			_ = wsutil.WriteClientText(c.nc, []byte(`{"event":"pusher:pong","data":{}}`))
		case op == ws.OpText:
			return p, nil
		}
	}
}
