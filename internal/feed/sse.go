package feed

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/herald-ws/herald/internal/broker"
	"github.com/herald-ws/herald/internal/node"
	"github.com/herald-ws/herald/internal/pusher"
)

// stream serves a channel as Server-Sent Events: each event as
//
//	id: {epoch}:{offset}
//	event: {name}
//	data: {data}
//
// from since on (or from now), then live, with a comment line as a
// heartbeat while idle. A stream started without a position begins with
// a herald:position event (id and data the channel's position). An
// EventSource reconnects by itself with
// Last-Event-ID, which resumes exactly like since. When since cannot be
// served the stream says so with a herald:resume_failed event (data
// {"epoch":…,"offset":N}, id the channel's position) and goes on from
// there, as a socket would: EventSource gives up on a non-200 answer.
//
// With format=frames every event is an unnamed SSE message (EventSource's
// onmessage) whose data is the whole frame exactly as a socket gets it,
// herald:position and herald:resume_failed included as Pusher frames: a
// client that cannot know every event name in advance (EventSource has no
// wildcard) still reads them all.
func (h *Handler) stream(w http.ResponseWriter, r *http.Request, a *node.App, channel string, since pusher.Since, hasSince, frames bool) {
	if !h.hold(w) {
		return
	}
	defer h.waiting.Add(-1)
	watch := a.Watch(channel) // before the first read: nothing slips between
	defer watch.Stop()

	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)

	b := []byte("retry: " + strconv.Itoa(RetryMillis) + "\n\n")
	at := broker.Position{Epoch: since.Epoch, Offset: since.Offset}
	if !hasSince {
		// Start from now, and say where that is, so that a reconnect
		// before the first event still resumes from here. An id-only
		// block would do for browsers, but some SSE libraries ignore it:
		// an event nobody listens to sets Last-Event-ID everywhere.
		at, _ = a.Position(channel)
		b = h.appendPosition(b, frames, channel, "herald:position", at)
	}
	heartbeat := h.Heartbeat
	if heartbeat <= 0 {
		heartbeat = DefaultHeartbeat
	}
	idle := time.NewTimer(heartbeat)
	defer idle.Stop()
	for {
		ready := watch.Ready()
		pos, evs, ok, _ := a.ReadHistory(channel, at)
		switch {
		case !ok:
			b = h.appendPosition(b, frames, channel, "herald:resume_failed", pos)
			at = pos
		case len(evs) > 0:
			for _, e := range evs {
				if frames {
					b = appendFrame(b, broker.Position{Epoch: pos.Epoch, Offset: e.Offset}, e.Frame)
				} else {
					b = append(b, h.blocks.get(pos.Epoch, e)...)
				}
			}
			at = broker.Position{Epoch: pos.Epoch, Offset: evs[len(evs)-1].Offset}
		}
		if len(b) > 0 {
			if !h.flush(w, rc, b) {
				return
			}
			b = b[:0]
			idle.Reset(heartbeat)
		}
		select {
		case <-ready:
		case <-idle.C:
			b = append(b, ": heartbeat\n\n"...)
		case <-h.done:
			return
		case <-r.Context().Done():
			return
		}
	}
}

// flush writes b and pushes it to the client, within the write timeout.
func (h *Handler) flush(w http.ResponseWriter, rc *http.ResponseController, b []byte) bool {
	timeout := h.WriteTimeout
	if timeout <= 0 {
		timeout = DefaultWriteTimeout
	}
	_ = rc.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := w.Write(b); err != nil {
		return false
	}
	return rc.Flush() == nil
}

func appendID(b []byte, pos broker.Position) []byte {
	b = append(b, "id: "...)
	b = append(b, pos.Epoch...)
	b = append(b, ':')
	b = strconv.AppendUint(b, pos.Offset, 10)
	return append(b, '\n')
}

// appendEvent appends one stored frame as an SSE event. Its data is the
// Pusher event's data: a JSON string's content (what Laravel broadcasts),
// or the raw JSON of a client event's object.
func appendEvent(b []byte, epoch string, e broker.Event) []byte {
	var f struct {
		Event string          `json:"event"`
		Data  json.RawMessage `json:"data"`
	}
	if json.Unmarshal(e.Frame, &f) != nil {
		return b // stored frames are Herald's own JSON: cannot happen
	}
	data := []byte(f.Data)
	if len(data) > 0 && data[0] == '"' {
		var s string
		if json.Unmarshal(data, &s) == nil {
			data = []byte(s)
		}
	}
	b = appendID(b, broker.Position{Epoch: epoch, Offset: e.Offset})
	b = append(b, "event: "...)
	b = append(b, oneLine(f.Event)...)
	b = append(b, '\n')
	return appendData(b, data)
}

// appendPosition appends the herald event name (herald:position or
// herald:resume_failed) for pos: as a named SSE event whose data is pos,
// or with frames as the Pusher frame a socket would get.
func (h *Handler) appendPosition(b []byte, frames bool, channel, name string, pos broker.Position) []byte {
	if !frames {
		return appendNamedPosition(b, name, pos)
	}
	if name == "herald:position" {
		return appendFrame(b, pos, pusher.PositionFrame(channel, pos.Epoch, pos.Offset))
	}
	return appendFrame(b, pos, pusher.ResumeFailed(channel, pos.Epoch, pos.Offset))
}

// appendFrame appends an unnamed SSE message carrying frame (one line of
// JSON: its strings escape every line break) with id pos.
func appendFrame(b []byte, pos broker.Position, frame []byte) []byte {
	b = appendID(b, pos)
	b = append(b, "data: "...)
	b = append(b, frame...)
	return append(b, "\n\n"...)
}

// appendNamedPosition appends an event named name whose id and data are pos.
func appendNamedPosition(b []byte, name string, pos broker.Position) []byte {
	b = appendID(b, pos)
	b = append(b, "event: "...)
	b = append(b, name...)
	b = append(b, "\ndata: "...)
	b = append(b, `{"epoch":`...)
	b = pusher.AppendString(b, pos.Epoch)
	b = append(b, `,"offset":`...)
	b = strconv.AppendUint(b, pos.Offset, 10)
	return append(b, "}\n\n"...)
}

// appendData writes data as SSE data lines (one per line of data; the
// client joins them with "\n") and ends the event. SSE cannot carry a
// carriage return: "\r\n" and a lone "\r" become line breaks, as an SSE
// parser would read them anyway.
func appendData(b, data []byte) []byte {
	data = bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
	data = bytes.ReplaceAll(data, []byte("\r"), []byte("\n"))
	for {
		line, rest, more := bytes.Cut(data, []byte("\n"))
		b = append(b, "data: "...)
		b = append(b, line...)
		b = append(b, '\n')
		if !more {
			return append(b, '\n')
		}
		data = rest
	}
}

// oneLine keeps an event name on its line (names are checked on publish,
// but a newline would end the field).
func oneLine(s string) string {
	return string(bytes.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, []byte(s)))
}

// blockCache renders each stored event as an SSE block once for all the
// streams that send it: with thousands of streams on one channel,
// decoding the same frame again for each stream was a quarter of the
// server's CPU. Entries are keyed by the frame itself (which holds the
// channel, epoch and offset, so it names one event) and leave oldest
// first past blockCacheBytes.
//
// Concurrency: safe for concurrent use; mu guards everything.
type blockCache struct {
	mu    sync.Mutex
	m     map[string][]byte
	order []string // keys, oldest first, from head
	head  int
	bytes int
}

const blockCacheBytes = 4 << 20

func (c *blockCache) get(epoch string, e broker.Event) []byte {
	c.mu.Lock()
	b, ok := c.m[string(e.Frame)]
	c.mu.Unlock()
	if ok {
		return b
	}
	b = appendEvent(nil, epoch, e)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[string(e.Frame)]; ok {
		return b
	}
	if c.m == nil {
		c.m = map[string][]byte{}
	}
	k := string(e.Frame)
	c.m[k] = b
	c.order = append(c.order, k)
	c.bytes += len(k) + len(b)
	for c.bytes > blockCacheBytes && c.head < len(c.order) {
		old := c.order[c.head]
		c.bytes -= len(old) + len(c.m[old])
		delete(c.m, old)
		c.order[c.head] = ""
		c.head++
	}
	if c.head > 1024 && c.head*2 > len(c.order) {
		c.order = append([]string(nil), c.order[c.head:]...)
		c.head = 0
	}
	return b
}
