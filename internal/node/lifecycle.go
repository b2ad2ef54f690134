package node

import (
	"encoding/json"

	"github.com/herald-ws/herald/internal/broker"
	"github.com/herald-ws/herald/internal/hub"
	"github.com/herald-ws/herald/internal/pusher"
)

// observe tells the node's observer (webhooks) of e; a no-op without one.
func (a *App) observe(e broker.Lifecycle) {
	if a.observer != nil {
		a.observer.Observe(a.ID, e)
	}
}

// subscribed reports what a subscription did to its channel: occupied it,
// added a presence member, or found a cache channel empty.
func (a *App) subscribed(name string, m *pusher.Member, res hub.SubscribeResult, err error) {
	if a.observer == nil || err != nil || res.AlreadySubscribed {
		return
	}
	if res.Occupied {
		a.observe(broker.Lifecycle{Name: broker.ChannelOccupied, Channel: name})
	}
	if res.MemberAdded && m != nil {
		a.observe(broker.Lifecycle{Name: broker.MemberAdded, Channel: name, UserID: m.UserID})
	}
	if res.CacheMiss {
		a.observe(broker.Lifecycle{Name: broker.CacheMiss, Channel: name})
	}
}

// Unsubscribe removes s from name like Channels.Unsubscribe, and reports a
// presence member's leaving and the channel's vacating.
func (a *App) Unsubscribe(name string, s hub.Subscriber, userID string) hub.UnsubscribeResult {
	res := a.Hub.Unsubscribe(name, s, userID)
	if res.MemberRemoved {
		a.observe(broker.Lifecycle{Name: broker.MemberRemoved, Channel: name, UserID: userID})
	}
	if res.Vacated {
		a.observe(broker.Lifecycle{Name: broker.ChannelVacated, Channel: name})
	}
	return res
}

// ClientEventSent reports a client event that was published: its data as
// the client sent it (the content of a JSON string, else the JSON text),
// the sender's socket and, on a presence channel, its user id.
func (a *App) ClientEventSent(channel, event string, data json.RawMessage, socketID, userID string) {
	if a.observer == nil {
		return
	}
	text := string(data)
	var s string
	if len(data) > 0 && data[0] == '"' && json.Unmarshal(data, &s) == nil {
		text = s
	}
	a.observe(broker.Lifecycle{Name: broker.ClientEvent, Channel: channel, Event: event, Data: text, SocketID: socketID, UserID: userID})
}
