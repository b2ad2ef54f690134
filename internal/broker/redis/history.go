package redis

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/herald-ws/herald/internal/broker"
)

// AppendOnce implements broker.History. The engine publishes the numbered
// frame itself (see the package doc), so deliver is never called; the
// message carries no Exclude and is not a cache channel's. A node
// publishes through AppendPublish, which carries both.
func (e *Engine) AppendOnce(app, channel string, lim broker.HistoryLimits, key string, frame []byte, _ broker.Deliver) (broker.Position, bool, error) {
	return e.AppendPublish(context.Background(), broker.Message{App: app, Channel: channel, Frame: frame}, lim, key)
}

// AppendPublish implements broker.Publisher with one script call
// (append.lua). The call does not follow ctx's cancellation, only its
// values and the engine's timeout: a script cut off half-way would leave
// the caller unsure whether it ran (a retry with the same key is safe).
func (e *Engine) AppendPublish(ctx context.Context, m broker.Message, lim broker.HistoryLimits, key string) (broker.Position, bool, error) {
	if e.closed.Load() {
		return broker.Position{}, false, ErrClosed
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.timeout)
	defer cancel()
	meta, stream, idem := e.keys(m.App, m.Channel)
	res, err := appendScript.Run(ctx, e.client, []string{meta, stream, idem},
		e.bus, messageHeader(m), m.Frame, key, max(lim.MaxEvents, 1), ttlMillis(lim.TTL), e.nowArg(), e.newEpoch()).Slice()
	if err != nil {
		return broker.Position{}, false, fmt.Errorf("redis history append: %w", err)
	}
	if len(res) != 3 {
		return broker.Position{}, false, fmt.Errorf("redis history append: unexpected answer %v", res)
	}
	epoch, _ := res[0].(string)
	off, _ := res[1].(int64)
	dup, _ := res[2].(int64)
	return broker.Position{Epoch: epoch, Offset: uint64(off)}, dup == 1, nil
}

// ttlMillis is a TTL as the scripts take it: whole milliseconds, at least
// 1 when set; 0 means no age bound.
func ttlMillis(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return max(d.Milliseconds(), 1)
}

// turn is a Read's place in this node's delivery order: the worker that
// reaches its marker closes now and waits for done; Close closes cancel.
type turn struct{ now, done, cancel chan struct{} }

// Read implements broker.History: the script (read.lua) reads the
// channel and publishes a marker to this node, and fn runs when this
// node's delivery of the channel reaches the marker, with the channel's
// delivery waiting until fn returns. When Redis cannot be asked, or the
// marker does not come within the timeout (the subscriber connection was
// lost: events were lost with it), fn gets ok false, the position read
// (zero when none) and no events: the caller tells the client to refetch.
func (e *Engine) Read(app, channel string, lim broker.HistoryLimits, since broker.Position, fn broker.Reader) {
	token, t := e.await()
	ctx, cancel := context.WithTimeout(context.Background(), e.timeout)
	defer cancel()
	cur, events, ok, err := e.read(ctx, app, channel, lim, since, token)
	if err != nil {
		e.sub.logFailure("history read", err)
		ok, events = false, nil
		if e.take(token) { // no marker will be waited for
			fn(cur, nil, false)
			return
		}
	}
	select {
	case <-t.now:
		defer close(t.done) // the worker waits, even if fn panics
		fn(cur, events, ok)
	case <-ctx.Done():
		if e.take(token) {
			e.log.Warn("redis: a history read's marker did not arrive: answering that the position cannot be served", "app", app, "channel", channel)
			fn(cur, nil, false)
			return
		}
		<-t.now // the worker took it just now
		defer close(t.done)
		fn(cur, events, ok)
	case <-t.cancel:
		fn(cur, nil, false)
	}
}

// await registers a Read waiting for its marker.
func (e *Engine) await() (uint64, *turn) {
	t := &turn{now: make(chan struct{}), done: make(chan struct{}), cancel: make(chan struct{})}
	e.mu.Lock()
	e.token++
	tok := e.token
	e.waiters[tok] = t
	e.mu.Unlock()
	return tok, t
}

// take removes token's waiter; whoever removes it (the worker that met
// the marker, or the Read giving up) owns it.
func (e *Engine) take(token uint64) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.waiters[token]; !ok {
		return false
	}
	delete(e.waiters, token)
	return true
}

// marker runs on the worker that received token's marker: the Read's fn
// runs now, while this worker (and so the channel's delivery) waits.
func (e *Engine) marker(token uint64) {
	e.mu.Lock()
	t := e.waiters[token]
	delete(e.waiters, token)
	e.mu.Unlock()
	if t == nil {
		return // another node's marker, or a Read that gave up
	}
	close(t.now)
	<-t.done
}

// read runs read.lua and decodes its answer.
func (e *Engine) read(ctx context.Context, app, channel string, lim broker.HistoryLimits, since broker.Position, token uint64) (broker.Position, []broker.Event, bool, error) {
	meta, stream, _ := e.keys(app, channel)
	res, err := readScript.Run(ctx, e.client, []string{meta, stream},
		e.self, markerEnvelope(app, channel, token), since.Epoch, since.Offset, ttlMillis(lim.TTL), e.nowArg()).Slice()
	if err != nil {
		return broker.Position{}, nil, false, err
	}
	if len(res) < 3 {
		return broker.Position{}, nil, false, fmt.Errorf("unexpected answer %v", res)
	}
	epoch, _ := res[0].(string)
	last, _ := res[1].(int64)
	ok, _ := res[2].(int64)
	cur := broker.Position{Epoch: epoch, Offset: uint64(last)}
	if ok != 1 || len(res) < 4 {
		return cur, nil, ok == 1, nil
	}
	raw, _ := res[3].([]any)
	events := make([]broker.Event, 0, len(raw))
	for _, r := range raw {
		ev, err := decodeEvent(r)
		if err != nil {
			return cur, nil, false, err
		}
		events = append(events, ev)
	}
	return cur, events, true, nil
}

// decodeEvent decodes one XRANGE entry: [id, [field, value, …]].
func decodeEvent(r any) (broker.Event, error) {
	entry, _ := r.([]any)
	if len(entry) != 2 {
		return broker.Event{}, fmt.Errorf("bad stream entry %v", r)
	}
	id, _ := entry[0].(string)
	off, err := strconv.ParseUint(strings.TrimSuffix(id, "-0"), 10, 64)
	if err != nil {
		return broker.Event{}, fmt.Errorf("bad stream entry id %q", id)
	}
	ev := broker.Event{Offset: off}
	fields, _ := entry[1].([]any)
	for i := 0; i+1 < len(fields); i += 2 {
		name, _ := fields[i].(string)
		val, _ := fields[i+1].(string)
		switch name {
		case "f":
			ev.Frame = []byte(val)
		case "t":
			us, _ := strconv.ParseInt(val, 10, 64)
			ev.Time = us * int64(time.Microsecond)
		}
	}
	if ev.Frame == nil {
		return broker.Event{}, fmt.Errorf("stream entry %s has no frame", id)
	}
	return ev, nil
}
