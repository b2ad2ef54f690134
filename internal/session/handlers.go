package session

import (
	"context"

	"github.com/herald-ws/herald/internal/apps"
	"github.com/herald-ws/herald/internal/pusher"
	"github.com/herald-ws/herald/internal/signature"
)

func (s *Session) subscribe(f pusher.Frame) error {
	sub, err := pusher.DecodeSubscribe(f.Data)
	if err != nil {
		return err
	}
	lim := s.app.Limits
	if err := pusher.ValidateChannelName(sub.Channel, lim.MaxChannelNameLength); err != nil {
		return err
	}
	info := pusher.ParseChannel(sub.Channel)
	var member *pusher.Member
	switch info.Kind {
	case pusher.ServerToUser:
		s.mu.Lock()
		u := s.user
		s.mu.Unlock()
		if u == nil || pusher.ServerToUserChannel(u.ID) != sub.Channel {
			return s.refuseSubscription(sub.Channel, "not signed in as that user",
				pusher.Errorf(pusher.CodeUnauthorized, "subscription to %s refused: sign in as that user first", sub.Channel))
		}
	case pusher.Private, pusher.PrivateEncrypted:
		if err := s.verifyChannel(sub.Channel, "", sub.Auth); err != nil {
			return err
		}
	case pusher.Presence:
		if sub.ChannelData == "" {
			return s.refuseSubscription(sub.Channel, "missing channel_data",
				pusher.Errorf(pusher.CodeUnauthorized, "subscription to %s refused: presence channels need channel_data", sub.Channel))
		}
		if err := s.verifyChannel(sub.Channel, sub.ChannelData, sub.Auth); err != nil {
			return err
		}
		m, err := pusher.ParseChannelData(sub.ChannelData, lim.MaxPresenceUserIDLength, lim.MaxPresenceInfoBytes)
		if err != nil {
			return s.refuseSubscription(sub.Channel, "bad channel_data", err)
		}
		member = &m
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	if _, ok := s.subs[sub.Channel]; !ok && s.channelCountLocked() >= lim.MaxChannelsPerConnection {
		return s.refuseSubscription(sub.Channel, "connection channel limit",
			pusher.Errorf(pusher.CodeOverChannelLimit, "subscription to %s refused: this connection is at its limit of %d channels", sub.Channel, lim.MaxChannelsPerConnection))
	}
	if sub.Since != nil || sub.Position {
		s.positions.Store(true)
	}
	res, err := s.app.Subscribe(sub.Channel, info, s, member, lim.MaxPresenceMembers, sub.Since, sub.Position)
	if err != nil {
		if pe, ok := err.(*pusher.Error); ok && pe.Code == pusher.CodeOverChannelLimit {
			return s.refuseSubscription(sub.Channel, "app channel limit", err)
		}
		return err
	}
	if res.AlreadySubscribed {
		var data []byte
		if info.Kind == pusher.Presence {
			data = pusher.PresenceData(s.app.Hub.Members(sub.Channel))
		}
		s.Send(pusher.SubscriptionSucceeded(sub.Channel, data))
		return nil
	}
	uid := ""
	if member != nil {
		uid = member.UserID
	}
	if s.subs == nil {
		s.subs = map[string]string{}
	}
	s.subs[sub.Channel] = uid
	if info.Authorized() {
		s.authorized.Store(true)
	}
	return nil
}

// channelCountLocked is how many channels count against the connection's
// limit: all but the server-to-user channel a sign-in implies. s.mu is held.
func (s *Session) channelCountLocked() int {
	n := len(s.subs)
	if s.user != nil {
		if _, ok := s.subs[pusher.ServerToUserChannel(s.user.ID)]; ok {
			n--
		}
	}
	return n
}

func (s *Session) unsubscribe(f pusher.Frame) error {
	sub, err := pusher.DecodeSubscribe(f.Data)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.leaveLocked(sub.Channel) // unsubscribing twice is harmless, as with Pusher
	return nil
}

// leaveLocked leaves channel if subscribed; s.mu is held.
func (s *Session) leaveLocked(channel string) {
	uid, ok := s.subs[channel]
	if !ok {
		return
	}
	delete(s.subs, channel)
	s.app.Unsubscribe(channel, s, uid)
}

func (s *Session) clientEvent(f pusher.Frame) error {
	a := s.app
	if a.ClientEvents == apps.ClientEventsNone {
		return pusher.Errorf(pusher.CodeClientEventRejected, "client events are disabled for this app")
	}
	if f.Channel == "" {
		return pusher.Errorf(pusher.CodeClientEventRejected, "client event %s has no channel", truncate(f.Event))
	}
	info := pusher.ParseChannel(f.Channel)
	if info.Kind != pusher.Private && info.Kind != pusher.Presence {
		return pusher.Errorf(pusher.CodeClientEventRejected, "client events are only allowed on private and presence channels, not on %s", truncate(f.Channel))
	}
	if err := pusher.ValidateEventName(f.Event, a.Limits.MaxEventNameLength); err != nil {
		return pusher.Errorf(pusher.CodeClientEventRejected, "client event refused: %s", err.(*pusher.Error).Message)
	}
	if len(f.Data) > a.Limits.MaxEventPayloadBytes {
		return pusher.Errorf(pusher.CodeClientEventRejected, "client event data is %d bytes; the limit is %d", len(f.Data), a.Limits.MaxEventPayloadBytes)
	}
	s.mu.Lock()
	uid, subscribed := s.subs[f.Channel]
	s.mu.Unlock()
	if !subscribed && a.ClientEvents == apps.ClientEventsMembers {
		return pusher.Errorf(pusher.CodeClientEventRejected, "client event refused: not subscribed to %s", f.Channel)
	}
	if !s.allowClientEvent() {
		return pusher.Errorf(pusher.CodeClientEventRejected, "client event rate limit exceeded (%d per second)", a.Limits.ClientEventsPerSecond)
	}
	frame := pusher.ClientEvent(f.Channel, f.Event, f.Data, uid)
	if err := s.mgr.node.PublishFrame(context.Background(), a, f.Channel, frame, s.id); err != nil {
		s.log.Error("client event publish failed", "channel", f.Channel, "event", f.Event, "err", err)
		return pusher.Errorf(pusher.CodeGeneric, "client event could not be delivered")
	}
	a.ClientEventSent(f.Channel, f.Event, f.Data, s.id, uid)
	return nil
}

// allowClientEvent applies the per-connection rate limit over one-second
// windows.
func (s *Session) allowClientEvent() bool {
	sec := s.mgr.now().Unix()
	if sec != s.ceSecond {
		s.ceSecond, s.ceCount = sec, 0
	}
	s.ceCount++
	return s.ceCount <= s.app.Limits.ClientEventsPerSecond
}

func (s *Session) signin(f pusher.Frame) error {
	a := s.app
	if !a.UserAuthentication {
		return s.refuseSignin("user authentication disabled", pusher.Fatalf(pusher.CodeUnauthorized, "user authentication is disabled for this app"))
	}
	si, u, err := pusher.DecodeSignin(f.Data)
	if err != nil {
		return s.refuseSignin("bad signin data", err)
	}
	if err := signature.VerifyUserAuth(a.Key, a.Secret, s.id, si.UserData, si.Auth); err != nil {
		return s.refuseSignin(authReason(err), pusher.Fatalf(pusher.CodeUnauthorized, "sign-in refused: %s", err.Error()))
	}
	if len(u.Watchlist) > a.Limits.MaxWatchlist {
		return s.refuseSignin("watchlist over limit",
			pusher.Errorf(pusher.CodeWatchlistOverLimit, "watchlist has %d users; the limit is %d", len(u.Watchlist), a.Limits.MaxWatchlist))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	if prev := s.user; prev != nil {
		a.SignOut(s, *prev)
		s.leaveLocked(pusher.ServerToUserChannel(prev.ID))
	}
	s.user = &u
	s.authorized.Store(true)
	s.Send(pusher.SigninSuccess(si.UserData))
	// Events for the user reach this socket from now on; pusher-js also
	// subscribes explicitly, which is answered as an existing subscription.
	userChannel := pusher.ServerToUserChannel(u.ID)
	a.Hub.Join(userChannel, s)
	if s.subs == nil {
		s.subs = map[string]string{}
	}
	s.subs[userChannel] = ""
	if online := a.SignIn(s, u); len(online) > 0 {
		s.Send(pusher.WatchlistEvents("online", online))
	}
	s.log.Debug("signed in", "user_id", u.ID)
	return nil
}
