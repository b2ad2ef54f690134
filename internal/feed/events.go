package feed

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/herald-ws/herald/internal/broker"
	"github.com/herald-ws/herald/internal/node"
	"github.com/herald-ws/herald/internal/pusher"
	"github.com/herald-ws/herald/internal/signature"
)

// events serves GET …/channels/{channel}/events: a poll, a long-poll, or
// (Accept: text/event-stream) an SSE stream.
func (h *Handler) events(w http.ResponseWriter, r *http.Request, a *node.App, channel string) {
	if err := pusher.ValidateChannelName(channel, a.Limits.MaxChannelNameLength); err != nil {
		writeError(w, http.StatusBadRequest, err.(*pusher.Error).Message)
		return
	}
	if !a.HasHistory(channel) {
		writeError(w, http.StatusNotFound, "channel "+channel+" keeps no history, so it cannot be read over HTTP: enable history for it (apps[].history)")
		return
	}
	if status, msg := h.authorize(r, a, channel); status != 0 {
		writeError(w, status, msg)
		return
	}
	q := r.URL.Query()
	since, hasSince, err := parseSince(q.Get("since"), q.Has("since"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "since: "+err.Error())
		return
	}
	if strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
		if id := r.Header.Get("Last-Event-ID"); id != "" {
			// EventSource reconnects to the same URL: its last id is
			// later than the since it started from.
			if since, err = pusher.ParseSince(id); err != nil {
				writeError(w, http.StatusBadRequest, "Last-Event-ID: "+err.Error())
				return
			}
			hasSince = true
		}
		frames := false
		switch f := q.Get("format"); f {
		case "", "events":
		case "frames":
			frames = true
		default:
			writeError(w, http.StatusBadRequest, "format: must be events (the default) or frames, not "+strconv.Quote(clip(f)))
			return
		}
		h.stream(w, r, a, channel, since, hasSince, frames)
		return
	}
	wait, err := h.parseWait(q.Get("wait"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "wait: "+err.Error())
		return
	}
	h.poll(w, r, a, channel, since, hasSince, wait)
}

func parseSince(v string, given bool) (pusher.Since, bool, error) {
	if !given {
		return pusher.Since{}, false, nil
	}
	s, err := pusher.ParseSince(v)
	return s, err == nil, err
}

// parseWait reads the wait parameter: whole seconds, 0 or more, capped.
func (h *Handler) parseWait(v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return 0, errors.New("must be a whole number of seconds, 0 or more")
	}
	capped := h.MaxWait
	if capped <= 0 {
		capped = DefaultMaxWait
	}
	return min(time.Duration(n)*time.Second, capped), nil
}

// authorize checks a private, presence or encrypted channel's reader: a
// reader session's socket_id and the auth value the app's auth endpoint
// signed for it (channel_data too for presence), exactly as a socket's
// subscription would be checked. It returns 0 when the reader may read.
func (h *Handler) authorize(r *http.Request, a *node.App, channel string) (status int, msg string) {
	info := pusher.ParseChannel(channel)
	if info.Kind == pusher.ServerToUser {
		return http.StatusForbidden, "a user's server-to-user channel is not readable over HTTP"
	}
	if !info.Authorized() {
		return 0, ""
	}
	q := r.URL.Query()
	socketID, auth := q.Get("socket_id"), q.Get("auth")
	if socketID == "" || auth == "" {
		return http.StatusUnauthorized, channel + " needs authorization: create a session (POST " + h.prefix + "/app/" + a.Key + "/sessions), have your auth endpoint sign its socket_id for the channel, and pass socket_id and auth (and channel_data for presence)"
	}
	if err := signature.VerifySessionID(a.Secret, socketID, h.now()); err != nil {
		h.warn(r, a, "bad session", err.Error())
		return http.StatusUnauthorized, err.Error()
	}
	if err := signature.VerifyChannelAuth(a.Key, a.Secret, socketID, channel, q.Get("channel_data"), auth); err != nil {
		h.warn(r, a, "bad channel auth", channel)
		return http.StatusForbidden, "reading " + channel + " refused: " + err.Error()
	}
	return 0, ""
}

// poll answers a poll or long-poll: the events after since and the
// channel's position; without since, only the position (a starting
// point). A long-poll with nothing new waits for the next delivery, up to
// wait.
func (h *Handler) poll(w http.ResponseWriter, r *http.Request, a *node.App, channel string, since pusher.Since, hasSince bool, wait time.Duration) {
	if !hasSince {
		pos, _ := a.Position(channel)
		writePoll(w, pos, nil)
		return
	}
	var watch *node.Watch
	if wait > 0 {
		watch = a.Watch(channel) // before the read: nothing slips between
		defer watch.Stop()
	}
	at := broker.Position{Epoch: since.Epoch, Offset: since.Offset}
	var timer *time.Timer
	for {
		var ready <-chan struct{}
		if watch != nil {
			ready = watch.Ready()
		}
		pos, evs, ok, _ := a.ReadHistory(channel, at)
		if !ok {
			writeGone(w, pos)
			return
		}
		if len(evs) > 0 || watch == nil {
			writePoll(w, pos, evs)
			return
		}
		if timer == nil {
			if !h.hold(w) {
				return
			}
			defer h.waiting.Add(-1)
			timer = time.NewTimer(wait)
			defer timer.Stop()
		}
		select {
		case <-ready:
		case <-timer.C:
			writePoll(w, pos, nil)
			return
		case <-h.done:
			writePoll(w, pos, nil)
			return
		case <-r.Context().Done():
			return
		}
	}
}

// hold counts a request about to be held, refusing it (503) when
// MaxWaiting are; the caller decrements waiting when it reported true.
// The request's read deadline is cleared: net/http cancels a request
// whose connection hits it, and a held request reads nothing more.
func (h *Handler) hold(w http.ResponseWriter) bool {
	limit := h.MaxWaiting
	if limit <= 0 {
		limit = DefaultMaxWaiting
	}
	if h.waiting.Add(1) > int64(limit) {
		h.waiting.Add(-1)
		h.busy.Add(1)
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "too many held requests on this node ("+strconv.Itoa(limit)+"): retry later")
		return false
	}
	_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
	if h.held != nil {
		h.held()
	}
	return true
}

// writePoll writes {"epoch":…,"offset":N,"events":[…]}: each event is its
// frame exactly as sockets got it (event, channel, data, epoch, offset,
// and user_id on a presence member's client event), not re-encoded.
func writePoll(w http.ResponseWriter, pos broker.Position, evs []broker.Event) {
	n := 64
	for _, e := range evs {
		n += len(e.Frame) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, `{"epoch":`...)
	b = pusher.AppendString(b, pos.Epoch)
	b = append(b, `,"offset":`...)
	b = strconv.AppendUint(b, pos.Offset, 10)
	b = append(b, `,"events":[`...)
	for i, e := range evs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, e.Frame...)
	}
	b = append(b, "]}\n"...)
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Cache-Control", "no-store")
	_, _ = w.Write(b)
}

// writeGone answers 410: since cannot be served (another epoch, older than
// history, ahead of the channel); the reader refetches its state and
// carries on from pos.
func writeGone(w http.ResponseWriter, pos broker.Position) {
	b := []byte(`{"error":"history cannot resume from this position (another epoch, or older than the history kept): refetch your state and continue from epoch:offset","epoch":`)
	b = pusher.AppendString(b, pos.Epoch)
	b = append(b, `,"offset":`...)
	b = strconv.AppendUint(b, pos.Offset, 10)
	b = append(b, "}\n"...)
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusGone)
	_, _ = w.Write(b)
}
