package node

import (
	"github.com/herald-ws/herald/internal/broker"
	"github.com/herald-ws/herald/internal/hub"
	"github.com/herald-ws/herald/internal/pusher"
)

func (a *App) historyLimits() broker.HistoryLimits {
	return broker.HistoryLimits{MaxEvents: a.History.MaxEvents, TTL: a.History.TTL}
}

// HasHistory reports whether channel's events are numbered and kept.
func (a *App) HasHistory(channel string) bool { return a.History.Covers(channel) }

// Subscribe subscribes s to name like Channels.Subscribe and, when since
// is set, resumes it: right after subscription_succeeded (and the cached
// event of a cache channel) s gets every stored event after since, in
// order, and then live events, with neither a gap nor a duplicate,
// because the subscribe and the replay happen at one point of the
// channel's delivery order (after every replayed event was delivered,
// before the next one is). When the
// history cannot serve since (another epoch, too old, ahead, or no history
// on the channel) s gets herald:resume_failed with the channel's position
// instead; the subscription stands either way. On a cache channel a
// successful resume replaces the cached event (the replay ends with it);
// after a failed one the cached event follows resume_failed as usual. Resuming an existing
// subscription replays nothing: the socket has had every event.
func (a *App) Subscribe(name string, info pusher.ChannelInfo, s hub.Subscriber, m *pusher.Member, maxMembers int, since *pusher.Since) (hub.SubscribeResult, error) {
	if since == nil {
		return a.Hub.Subscribe(name, info, s, m, maxMembers)
	}
	if !a.History.Covers(name) {
		res, err := a.Hub.Subscribe(name, info, s, m, maxMembers)
		if err == nil && !res.AlreadySubscribed {
			s.Send(pusher.ResumeFailed(name, "", 0))
		}
		return res, err
	}
	var (
		res hub.SubscribeResult
		err error
	)
	a.history.Read(a.ID, name, a.historyLimits(), broker.Position{Epoch: since.Epoch, Offset: since.Offset},
		func(cur broker.Position, events []broker.Event, ok bool) {
			if ok {
				// The replay ends with the cache channel's last event, or
				// the client has it already: replaying the cached event
				// too would be a duplicate.
				info.Cache = false
			}
			res, err = a.Hub.Subscribe(name, info, s, m, maxMembers)
			if err != nil || res.AlreadySubscribed {
				return
			}
			if !ok {
				s.Send(pusher.ResumeFailed(name, cur.Epoch, cur.Offset))
				return
			}
			for _, e := range events {
				s.Send(e.Frame)
			}
		})
	return res, err
}

// ReadHistory returns channel's current position and, when since can be
// served, the events after it, oldest first (ok false: another epoch, an
// offset older than history holds or ahead of the channel; then events is
// nil and the caller should refetch its state from pos). A zero since
// asks for the position alone (ok false). enabled is false when the
// channel has no history. Events' frames are shared and read-only.
//
// This is the read side for HTTP polling and SSE; the caller checks the
// channel's authorization first.
func (a *App) ReadHistory(channel string, since broker.Position) (pos broker.Position, events []broker.Event, ok, enabled bool) {
	if !a.History.Covers(channel) {
		return broker.Position{}, nil, false, false
	}
	a.history.Read(a.ID, channel, a.historyLimits(), since, func(cur broker.Position, evs []broker.Event, good bool) {
		pos, ok = cur, good
		if len(evs) > 0 {
			events = append([]broker.Event(nil), evs...)
		}
	})
	return pos, events, ok, true
}

// Position is channel's current position (its epoch and last offset);
// ok is false when the channel has no history.
func (a *App) Position(channel string) (pos broker.Position, ok bool) {
	pos, _, _, ok = a.ReadHistory(channel, broker.Position{})
	return pos, ok
}
