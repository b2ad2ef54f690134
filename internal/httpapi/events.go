package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/herald-ws/herald/internal/node"
	"github.com/herald-ws/herald/internal/pusher"
)

// eventBody is one event as the API receives it. Data is normally a
// string; any other JSON value is taken as its JSON text.
type eventBody struct {
	Name     string          `json:"name"`
	Data     json.RawMessage `json:"data"`
	Channels []string        `json:"channels"`
	Channel  string          `json:"channel"`
	SocketID string          `json:"socket_id"`
	Info     string          `json:"info"`
	// IdempotencyKey is Herald's extension: see validIdempotencyKey.
	IdempotencyKey *string `json:"idempotency_key"`
}

// event is a validated eventBody.
type event struct {
	name, data, socketID string
	key                  string // idempotency key; empty: none
	channels             []string
	info                 infoFields
}

// maxIdempotencyKey is the longest idempotency key, in bytes.
const maxIdempotencyKey = 128

// validIdempotencyKey checks an idempotency key given as field (nil: not
// given). A key is 1 to 128 printable ASCII characters (space to '~'):
// enough for a UUID, a job id or a hash, and safe to log and to send as a
// header. A publish with a key is answered like the first publish with it
// on each of its channels whose history still holds that event, and not
// delivered again.
func validIdempotencyKey(field string, k *string) (string, error) {
	if k == nil {
		return "", nil
	}
	key := *k
	if key == "" {
		return "", errorf(http.StatusBadRequest, "%s is empty: leave it out, or give 1 to %d printable ASCII characters", field, maxIdempotencyKey)
	}
	if len(key) > maxIdempotencyKey {
		return "", errorf(http.StatusBadRequest, "%s is %d bytes; the limit is %d", field, len(key), maxIdempotencyKey)
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x20 || key[i] > 0x7e {
			return "", errorf(http.StatusBadRequest, "%s has a byte 0x%02x at %d: only printable ASCII characters (space to '~') are allowed", field, key[i], i)
		}
	}
	return key, nil
}

type infoFields struct{ userCount, subscriptionCount, cache bool }

func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return errorf(http.StatusBadRequest, "invalid JSON body: %v", err)
	}
	if dec.More() {
		return errorf(http.StatusBadRequest, "invalid JSON body: trailing data after the object")
	}
	return nil
}

func validateEvent(a *node.App, b eventBody, batch bool) (event, error) {
	lim := a.Limits
	if b.Name == "" {
		return event{}, errorf(http.StatusBadRequest, "missing event name (\"name\")")
	}
	if len(b.Name) > lim.MaxEventNameLength {
		return event{}, errorf(http.StatusBadRequest, "event name is %d characters long; the limit is %d", len(b.Name), lim.MaxEventNameLength)
	}
	data, err := eventData(b.Data)
	if err != nil {
		return event{}, err
	}
	if len(data) > lim.MaxEventPayloadBytes {
		return event{}, errorf(http.StatusRequestEntityTooLarge, "event data is %d bytes; the limit is %d", len(data), lim.MaxEventPayloadBytes)
	}
	channels := b.Channels
	if b.Channel != "" {
		if len(channels) > 0 {
			return event{}, errorf(http.StatusBadRequest, "give either \"channel\" or \"channels\", not both")
		}
		channels = []string{b.Channel}
	}
	if batch && len(channels) > 1 {
		return event{}, errorf(http.StatusBadRequest, "a batch event takes one \"channel\"")
	}
	if len(channels) == 0 {
		return event{}, errorf(http.StatusBadRequest, "missing channels (\"channels\" or \"channel\")")
	}
	if len(channels) > lim.MaxChannelsPerEvent {
		return event{}, errorf(http.StatusBadRequest, "event is for %d channels; the limit is %d", len(channels), lim.MaxChannelsPerEvent)
	}
	for _, ch := range channels {
		if err := pusher.ValidateChannelName(ch, lim.MaxChannelNameLength); err != nil {
			return event{}, errorf(http.StatusBadRequest, "%s", err.(*pusher.Error).Message)
		}
		if pusher.ParseChannel(ch).Kind == pusher.PrivateEncrypted && len(channels) > 1 {
			return event{}, errorf(http.StatusBadRequest, "an event for an encrypted channel (%s) must have that channel only", ch)
		}
	}
	if b.SocketID != "" && !pusher.ValidSocketID(b.SocketID) {
		return event{}, errorf(http.StatusBadRequest, "invalid socket_id %q: expected digits.digits", b.SocketID)
	}
	info, err := parseInfo(b.Info, false)
	if err != nil {
		return event{}, err
	}
	key, err := validIdempotencyKey("idempotency_key", b.IdempotencyKey)
	if err != nil {
		return event{}, err
	}
	return event{name: b.Name, data: data, socketID: b.SocketID, key: key, channels: channels, info: info}, nil
}

func eventData(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", errorf(http.StatusBadRequest, "missing event data (\"data\")")
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", errorf(http.StatusBadRequest, "invalid event data: %v", err)
		}
		return s, nil
	}
	return string(raw), nil
}

// parseInfo parses the comma-separated info attributes.
func parseInfo(s string, allowCache bool) (infoFields, error) {
	var f infoFields
	if s == "" {
		return f, nil
	}
	for _, part := range strings.Split(s, ",") {
		switch strings.TrimSpace(part) {
		case "user_count":
			f.userCount = true
		case "subscription_count":
			f.subscriptionCount = true
		case "cache":
			if !allowCache {
				return f, errorf(http.StatusBadRequest, "unknown info attribute %q", part)
			}
			f.cache = true
		default:
			return f, errorf(http.StatusBadRequest, "unknown info attribute %q: use user_count and/or subscription_count", part)
		}
	}
	return f, nil
}

// channelInfo is the per-channel answer to an "info" request.
type channelInfo struct {
	UserCount         *int `json:"user_count,omitempty"`
	SubscriptionCount *int `json:"subscription_count,omitempty"`
}

func statsFor(a *node.App, ch string, f infoFields) channelInfo {
	st, _ := a.Hub.Stats(ch)
	var ci channelInfo
	if f.userCount && pusher.ParseChannel(ch).Kind == pusher.Presence {
		n := st.UserCount
		ci.UserCount = &n
	}
	if f.subscriptionCount {
		n := st.SubscriptionCount
		ci.SubscriptionCount = &n
	}
	return ci
}

// publish is the one call through which the HTTP API publishes an event;
// a retried idempotency key is answered as success, as the first time.
func (h *Handler) publish(ctx context.Context, a *node.App, ev event) error {
	_, err := h.node.PublishOnce(ctx, a, ev.channels, ev.name, ev.data, ev.socketID, ev.key)
	return err
}

func (h *Handler) events(w http.ResponseWriter, req *request) error {
	var b eventBody
	if err := decodeStrict(req.body, &b); err != nil {
		return err
	}
	ev, err := validateEvent(req.app, b, false)
	if err != nil {
		return err
	}
	if err := h.publish(req.r.Context(), req.app, ev); err != nil {
		return errorf(http.StatusInternalServerError, "publish failed: %v", err)
	}
	if ev.info == (infoFields{}) {
		writeJSON(w, struct{}{})
		return nil
	}
	out := map[string]channelInfo{}
	for _, ch := range ev.channels {
		out[ch] = statsFor(req.app, ch, ev.info)
	}
	writeJSON(w, map[string]any{"channels": out})
	return nil
}

func (h *Handler) batchEvents(w http.ResponseWriter, req *request) error {
	var b struct {
		Batch []eventBody `json:"batch"`
	}
	if err := decodeStrict(req.body, &b); err != nil {
		return err
	}
	lim := req.app.Limits
	if len(b.Batch) == 0 {
		return errorf(http.StatusBadRequest, "missing events (\"batch\")")
	}
	if len(b.Batch) > lim.MaxBatchEvents {
		return errorf(http.StatusBadRequest, "batch has %d events; the limit is %d", len(b.Batch), lim.MaxBatchEvents)
	}
	events := make([]event, len(b.Batch))
	wantInfo := false
	for i, eb := range b.Batch {
		ev, err := validateEvent(req.app, eb, true)
		if err != nil {
			ae := err.(*apiError)
			return errorf(ae.status, "batch[%d]: %s", i, ae.msg)
		}
		events[i] = ev
		wantInfo = wantInfo || ev.info != (infoFields{})
	}
	for _, ev := range events {
		if err := h.publish(req.r.Context(), req.app, ev); err != nil {
			return errorf(http.StatusInternalServerError, "publish failed: %v", err)
		}
	}
	if !wantInfo {
		writeJSON(w, struct{}{})
		return nil
	}
	out := make([]channelInfo, len(events))
	for i, ev := range events {
		out[i] = statsFor(req.app, ev.channels[0], ev.info)
	}
	writeJSON(w, map[string]any{"batch": out})
	return nil
}
