package webhook

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"

	"github.com/herald-ws/herald/internal/broker"
)

// wireEvent is one element of "events", with Pusher's field names in the
// order of Pusher's examples. Which fields appear depends on the name (see
// encodeEvent); the pointers make "data":"" and "subscription_count":0
// appear when they are the value, not vanish.
type wireEvent struct {
	Name              string  `json:"name"`
	Channel           string  `json:"channel"`
	Event             string  `json:"event,omitempty"`
	Data              *string `json:"data,omitempty"`
	SocketID          string  `json:"socket_id,omitempty"`
	UserID            string  `json:"user_id,omitempty"`
	SubscriptionCount *int    `json:"subscription_count,omitempty"`
}

// encodeEvent encodes e once, on Observe; the same bytes go into the body
// of every endpoint that wants it. Fields by name, as Pusher sends them:
//
//	channel_occupied, channel_vacated, cache_miss: name, channel
//	member_added, member_removed:                  + user_id
//	client_event:                                  + event, data, socket_id, user_id (presence only)
//	subscription_count:                            + subscription_count
func encodeEvent(e broker.Lifecycle) []byte {
	w := wireEvent{Name: e.Name, Channel: e.Channel}
	switch e.Name {
	case broker.MemberAdded, broker.MemberRemoved:
		w.UserID = e.UserID
	case broker.ClientEvent:
		data := e.Data
		w.Event, w.Data, w.SocketID, w.UserID = e.Event, &data, e.SocketID, e.UserID
	case broker.SubscriptionCount:
		n := e.SubscriptionCount
		w.SubscriptionCount = &n
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	// Client event data is JSON text the receiver parses again; keep it
	// byte-for-byte rather than turning < > & into \u003c….
	enc.SetEscapeHTML(false)
	_ = enc.Encode(w) // strings and ints only: cannot fail
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// encodeBody builds {"time_ms":…,"events":[…]} from encoded events.
func encodeBody(now time.Time, events [][]byte) []byte {
	size := 40
	for _, e := range events {
		size += len(e) + 1
	}
	b := make([]byte, 0, size)
	b = append(b, `{"time_ms":`...)
	b = strconv.AppendInt(b, now.UnixMilli(), 10)
	b = append(b, `,"events":[`...)
	for i, e := range events {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, e...)
	}
	return append(b, "]}"...)
}
