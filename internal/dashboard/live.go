package dashboard

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/herald-ws/herald/internal/node"
)

// tapBuffer is how many events a console stream holds for a slow page;
// past it they are dropped and the page is told how many.
const tapBuffer = 512

// heartbeat keeps an idle stream's proxies from timing it out.
const heartbeat = 15 * time.Second

// writeTimeout bounds one write to a page that stopped reading.
const writeTimeout = 10 * time.Second

// tappedEvent is one delivered event as the console shows it.
type tappedEvent struct {
	Time    int64           `json:"t"` // unix milliseconds
	Channel string          `json:"channel"`
	Event   string          `json:"event"`
	Data    json.RawMessage `json:"data,omitempty"`
	UserID  string          `json:"user_id,omitempty"`
	Offset  uint64          `json:"offset,omitempty"`
	Exclude string          `json:"exclude,omitempty"` // the socket a toOthers or client event skipped
	Dropped int64           `json:"dropped"`           // events this stream dropped so far
}

// live answers GET api/live?app=ID&channel=NAME as Server-Sent Events:
// "samples" (the graphs so far) and then "sample" every second, "log" for
// the app's console lines (and the server's own), and "event" for every
// event delivered on channel (every channel of the app when it is empty).
func (h *Handler) live(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed; use GET")
		return
	}
	q := r.URL.Query()
	a := h.app(w, q.Get("app"))
	if a == nil {
		return
	}
	tap := a.Tap(q.Get("channel"), tapBuffer)
	defer tap.Stop()
	samples, sampleCh := h.sampler.subscribe()
	defer h.sampler.unsubscribe(sampleCh)
	var logs chan Entry
	var recent []Entry
	if c := h.opts.Console; c != nil {
		recent, logs = c.subscribe(256)
		defer c.unsubscribe(logs)
	}

	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{}) // the request stays open

	s := sse{w: w, rc: rc}
	s.event("samples", samples)
	for _, e := range recent {
		if e.App == "" || e.App == a.ID {
			s.event("log", e)
		}
	}
	idle := time.NewTimer(heartbeat)
	defer idle.Stop()
	for s.err == nil {
		if !s.flush() {
			return
		}
		idle.Reset(heartbeat)
		select {
		case <-h.done:
			return
		case <-r.Context().Done():
			return
		case <-idle.C:
			s.b = append(s.b, ": heartbeat\n\n"...)
		case p := <-sampleCh:
			s.event("sample", p)
		case e := <-logs:
			if e.App == "" || e.App == a.ID {
				s.event("log", e)
			}
		case f := <-tap.C():
			s.event("event", tapped(f, tap.Dropped()))
			// Take what else is waiting: one flush for a burst.
			for more := true; more && len(s.b) < 64<<10; {
				select {
				case f := <-tap.C():
					s.event("event", tapped(f, tap.Dropped()))
				default:
					more = false
				}
			}
		}
	}
}

// tapped decodes a delivered frame for the console.
func tapped(f node.Tapped, dropped int64) tappedEvent {
	var fr struct {
		Event  string          `json:"event"`
		Data   json.RawMessage `json:"data"`
		UserID string          `json:"user_id"`
		Offset uint64          `json:"offset"`
	}
	_ = json.Unmarshal(f.Frame, &fr) // Herald's own frames
	return tappedEvent{Time: time.Now().UnixMilli(), Channel: f.Channel, Event: fr.Event, Data: fr.Data, UserID: fr.UserID, Offset: fr.Offset, Exclude: f.Exclude, Dropped: dropped}
}

// sse buffers Server-Sent Events and flushes them within writeTimeout.
type sse struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	b   []byte
	err error
}

func (s *sse) event(name string, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		s.err = err
		return
	}
	s.b = append(s.b, "event: "...)
	s.b = append(s.b, name...)
	s.b = append(s.b, "\ndata: "...)
	s.b = append(s.b, data...) // one line: JSON escapes line breaks
	s.b = append(s.b, "\n\n"...)
}

func (s *sse) flush() bool {
	if len(s.b) == 0 {
		return true
	}
	_ = s.rc.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := s.w.Write(s.b); err != nil {
		return false
	}
	s.b = s.b[:0]
	return s.rc.Flush() == nil
}
