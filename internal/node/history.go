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
// before the next one is). When the history cannot serve since (another
// epoch, too old, ahead, or no history on the channel) s gets
// herald:resume_failed with the channel's position instead; the
// subscription stands either way. On a cache channel a successful resume
// replaces the cached event (the replay ends with it); after a failed one
// the cached event follows resume_failed as usual. Resuming an existing
// subscription replays nothing: the socket has had every event.
//
// Without since, position asks for a herald:position frame at that same
// point (after subscription_succeeded and the cached event): the position
// the live events continue from, so that a client can resume a channel
// that stays quiet. Channels without history send none.
func (a *App) Subscribe(name string, info pusher.ChannelInfo, s hub.Subscriber, m *pusher.Member, maxMembers int, since *pusher.Since, position bool) (hub.SubscribeResult, error) {
	res, err := a.subscribe(name, info, s, m, maxMembers, since, position)
	a.subscribed(name, m, res, err)
	return res, err
}

func (a *App) subscribe(name string, info pusher.ChannelInfo, s hub.Subscriber, m *pusher.Member, maxMembers int, since *pusher.Since, position bool) (hub.SubscribeResult, error) {
	if since == nil && (!position || !a.History.Covers(name)) {
		return a.Hub.Subscribe(name, info, s, m, maxMembers)
	}
	if !a.History.Covers(name) {
		res, err := a.Hub.Subscribe(name, info, s, m, maxMembers)
		if err == nil && !res.AlreadySubscribed {
			a.resumeFailed.Add(1)
			s.Send(pusher.ResumeFailed(name, "", 0))
		}
		return res, err
	}
	var (
		res  hub.SubscribeResult
		err  error
		from broker.Position // zero without since: the reader ignores the events
	)
	if since != nil {
		from = broker.Position{Epoch: since.Epoch, Offset: since.Offset}
	}
	a.history.Read(a.ID, name, a.historyLimits(), from,
		func(cur broker.Position, events []broker.Event, ok bool) {
			if since != nil && ok {
				// The replay ends with the cache channel's last event, or
				// the client has it already: replaying the cached event
				// too would be a duplicate.
				info.Cache = false
			}
			res, err = a.Hub.Subscribe(name, info, s, m, maxMembers)
			switch {
			case err != nil || res.AlreadySubscribed:
			case since == nil:
				s.Send(pusher.PositionFrame(name, cur.Epoch, cur.Offset))
			case !ok:
				a.resumeFailed.Add(1)
				s.Send(pusher.ResumeFailed(name, cur.Epoch, cur.Offset))
			default:
				a.resumed.Add(1)
				a.replayed.Add(int64(len(events)))
				for _, e := range events {
					s.Send(e.Frame)
				}
			}
		})
	return res, err
}

// ResumeStats are the app's resumes so far: served with a replay
// (resumed), answered with herald:resume_failed (failed), and the events
// replayed.
func (a *App) ResumeStats() (resumed, failed, events int64) {
	return a.resumed.Load(), a.resumeFailed.Load(), a.replayed.Load()
}

// ReadHistory returns channel's current position and, when since can be
// served, the events after it, oldest first (ok false: another epoch, an
// offset older than history holds or ahead of the channel; then events is
// nil and the caller should refetch its state from pos). The zero since
// is "nothing seen yet" (see broker.History.Read). enabled is false when
// the channel has no history. Events' frames are shared and read-only.
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

// Position is channel's current position: its epoch and last offset, the
// zero Position while it has no history; enabled is false when the
// channel keeps none.
func (a *App) Position(channel string) (pos broker.Position, enabled bool) {
	if !a.History.Covers(channel) {
		return broker.Position{}, false
	}
	a.history.Read(a.ID, channel, a.historyLimits(), broker.Position{}, func(cur broker.Position, _ []broker.Event, _ bool) {
		pos = cur
	})
	return pos, true
}
