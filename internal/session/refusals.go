package session

import (
	"context"
	"errors"
	"log/slog"

	"github.com/herald-ws/herald/internal/signature"
)

// Refused channel authorizations and sign-ins are logged at warn level, so
// that a misconfigured auth endpoint or a probing client shows in the log,
// with at most a few lines per reason and minute (the Manager's ratelog):
// a flood of refusals cannot fill the disk. The log never holds the secret,
// the signature sent or the one expected.

// warn logs msg for reason at warn level unless the reason is over its
// rate; then the next line logged for it tells how many were suppressed.
// reason is a fixed string of this package (it keys the rate limit), never
// client text; channel is "" when there is none.
func (s *Session) warn(msg, reason, channel string) {
	ok, suppressed := s.mgr.warns.Allow(msg + ": " + reason)
	attrs := make([]any, 0, 8)
	attrs = append(attrs, "reason", reason)
	if channel != "" {
		attrs = append(attrs, "channel", channel)
	}
	if ra, ok := s.t.(remoteAddresser); ok { // asked only here: refusals are rare
		attrs = append(attrs, "remote", ra.RemoteAddr())
	}
	if !ok { // over the rate: at debug (--debug, the dashboard's console)
		s.log.Debug(msg, attrs...)
		return
	}
	if suppressed > 0 {
		attrs = append(attrs, "suppressed", suppressed)
	}
	s.log.Warn(msg, attrs...)
}

// refuseSubscription logs a refused subscription to channel and returns err.
func (s *Session) refuseSubscription(channel, reason string, err error) error {
	s.warn("subscription refused", reason, channel)
	return err
}

// refuseSignin logs a refused pusher:signin and returns err.
func (s *Session) refuseSignin(reason string, err error) error {
	s.warn("sign-in refused", reason, "")
	return err
}

// authReason names a signature verification failure.
func authReason(err error) string {
	switch {
	case errors.Is(err, signature.ErrAuthFormat):
		return "malformed auth"
	case errors.Is(err, signature.ErrAuthKey):
		return "wrong app key in auth"
	case errors.Is(err, signature.ErrAuthSignature):
		return "bad signature"
	}
	return "bad auth"
}

// logClose logs a close the server initiates, with its code and reason, at
// level: at most a few lines per code and minute (a mass timeout or a
// flood of bad clients cannot fill the disk), the rest at debug. The key is
// the code alone, since the reason may hold client text.
func (s *Session) logClose(level slog.Level, code int, reason string) {
	// A refused auth's reason quotes the signature sent ("but got …").
	reason = hexSignature.ReplaceAllLiteralString(reason, redacted)
	ok, suppressed := s.mgr.warns.Allow(closeLogKey(code))
	if !ok {
		s.log.Debug("closing connection", "code", code, "reason", reason)
		return
	}
	attrs := make([]any, 0, 8)
	attrs = append(attrs, "code", code, "reason", reason)
	if ra, ok := s.t.(remoteAddresser); ok {
		attrs = append(attrs, "remote", ra.RemoteAddr())
	}
	if suppressed > 0 {
		attrs = append(attrs, "suppressed", suppressed)
	}
	s.log.Log(context.Background(), level, "closing connection", attrs...)
}

// ProtocolFailure logs a connection the transport fails for breaking the
// WebSocket protocol (1002, 1007, 1009, …) like a server close: with its
// code and reason at info, rate-limited per code.
func (s *Session) ProtocolFailure(code int, reason string) {
	s.logClose(slog.LevelInfo, code, reason)
}

// describe is the session's transport and remote address, as log
// attributes.
func (s *Session) describe() []any {
	attrs := make([]any, 0, 8)
	attrs = append(attrs, "transport", KindNames[s.kind])
	if ra, ok := s.t.(remoteAddresser); ok {
		attrs = append(attrs, "remote", ra.RemoteAddr())
	}
	return attrs
}
