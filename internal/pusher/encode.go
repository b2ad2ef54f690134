package pusher

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// Server frames. Every pusher:* and pusher_internal:* event carries its data
// JSON-encoded as a string (the "double encoding" pusher-js expects);
// channel events carry the publisher's data string untouched.

// Fixed frames.
var (
	PongFrame = []byte(`{"event":"pusher:pong","data":"{}"}`)
	PingFrame = []byte(`{"event":"pusher:ping","data":"{}"}`)
)

// ConnectionEstablished is the first frame of every connection.
func ConnectionEstablished(socketID string, activityTimeoutSeconds int) []byte {
	inner := `{"socket_id":"` + socketID + `","activity_timeout":` + strconv.Itoa(activityTimeoutSeconds) + `}`
	return internalEvent("pusher:connection_established", "", []byte(inner))
}

// ErrorFrame is a pusher:error carrying code and message.
func ErrorFrame(code int, message string) []byte {
	inner := make([]byte, 0, len(message)+32)
	inner = append(inner, `{"code":`...)
	inner = strconv.AppendInt(inner, int64(code), 10)
	inner = append(inner, `,"message":`...)
	inner = AppendString(inner, message)
	inner = append(inner, '}')
	return internalEvent("pusher:error", "", inner)
}

// SubscriptionSucceeded confirms a subscription; data is the inner JSON
// object ("{}" for non-presence channels).
func SubscriptionSucceeded(channel string, data []byte) []byte {
	if data == nil {
		data = []byte("{}")
	}
	return internalEvent("pusher_internal:subscription_succeeded", channel, data)
}

// PresenceData is the subscription_succeeded payload of a presence channel.
func PresenceData(members []Member) []byte {
	b := []byte(`{"presence":{"ids":[`)
	for i, m := range members {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendString(b, m.UserID)
	}
	b = append(b, `],"hash":{`...)
	for i, m := range members {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendString(b, m.UserID)
		b = append(b, ':')
		b = appendInfo(b, m.Info)
	}
	b = append(b, `},"count":`...)
	b = strconv.AppendInt(b, int64(len(members)), 10)
	return append(b, `}}`...)
}

// MemberAdded announces a user's first socket on a presence channel.
func MemberAdded(channel string, m Member) []byte {
	b := []byte(`{"user_id":`)
	b = AppendString(b, m.UserID)
	b = append(b, `,"user_info":`...)
	b = appendInfo(b, m.Info)
	return internalEvent("pusher_internal:member_added", channel, append(b, '}'))
}

// MemberRemoved announces a user's last socket leaving a presence channel.
func MemberRemoved(channel, userID string) []byte {
	b := AppendString([]byte(`{"user_id":`), userID)
	return internalEvent("pusher_internal:member_removed", channel, append(b, '}'))
}

// CacheMiss tells a cache-channel subscriber there is no cached event.
func CacheMiss(channel string) []byte {
	b := append([]byte(`{"event":"pusher:cache_miss","channel":`), quote(channel)...)
	return append(b, '}')
}

// SubscriptionCount tells a channel's subscribers how many connections
// are subscribed to it (pusher-js emits it as pusher:subscription_count).
func SubscriptionCount(channel string, count int) []byte {
	inner := strconv.AppendInt([]byte(`{"subscription_count":`), int64(count), 10)
	return internalEvent("pusher_internal:subscription_count", channel, append(inner, '}'))
}

// SigninSuccess confirms pusher:signin.
func SigninSuccess(userData string) []byte {
	b := AppendString([]byte(`{"user_data":`), userData)
	return internalEvent("pusher:signin_success", "", append(b, '}'))
}

// WatchlistEvents tells a signed-in user that watched users went online or
// offline (name is "online" or "offline").
func WatchlistEvents(name string, userIDs []string) []byte {
	b := []byte(`{"events":[{"name":`)
	b = AppendString(b, name)
	b = append(b, `,"user_ids":[`...)
	for i, id := range userIDs {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendString(b, id)
	}
	return internalEvent("pusher_internal:watchlist_events", "", append(b, "]}]}"...))
}

// Event is a channel event published through the HTTP API: data is the
// publisher's string, sent untouched. This is the one place a broadcast is
// serialized; the result is shared read-only by every recipient.
func Event(channel, event, data string) []byte {
	b := make([]byte, 0, len(channel)+len(event)+len(data)+48+positionRoom)
	b = append(b, `{"event":`...)
	b = AppendString(b, event)
	b = append(b, `,"channel":`...)
	b = AppendString(b, channel)
	b = append(b, `,"data":`...)
	b = AppendString(b, data)
	return append(b, '}')
}

// ClientEvent relays a client event: data is the sender's raw JSON value,
// kept verbatim; userID is added on presence channels.
func ClientEvent(channel, event string, data json.RawMessage, userID string) []byte {
	b := make([]byte, 0, len(channel)+len(event)+len(data)+64+positionRoom)
	b = append(b, `{"event":`...)
	b = AppendString(b, event)
	b = append(b, `,"channel":`...)
	b = AppendString(b, channel)
	if len(data) > 0 {
		b = append(b, `,"data":`...)
		b = append(b, data...)
	}
	if userID != "" {
		b = append(b, `,"user_id":`...)
		b = AppendString(b, userID)
	}
	return append(b, '}')
}

// positionRoom is the spare capacity Event and ClientEvent leave for
// AppendPosition, so that numbering a publish does not copy its frame: 11
// bytes of field names and quotes, an epoch of up to 16 and an offset of
// up to 20 digits.
const positionRoom = 48

// AppendPosition turns an event frame (a JSON object ending in '}') into
// the same frame with top-level "epoch" and "offset" fields appended. It
// writes into frame's spare capacity when there is enough (Event and
// ClientEvent leave it), so frame must not be used afterwards.
func AppendPosition(frame []byte, epoch string, offset uint64) []byte {
	b := frame[:len(frame)-1]
	b = append(b, `,"epoch":`...)
	b = AppendString(b, epoch)
	b = append(b, `,"offset":`...)
	b = strconv.AppendUint(b, offset, 10)
	return append(b, '}')
}

// FramePosition reads back the position AppendPosition appended to frame;
// ok is false for a frame without one. It looks only at the frame's end,
// where AppendPosition put the fields, so the data before cannot fool it.
func FramePosition(frame []byte) (epoch string, offset uint64, ok bool) {
	const offKey, epochKey = `,"offset":`, `,"epoch":"`
	if len(frame) == 0 || frame[len(frame)-1] != '}' {
		return "", 0, false
	}
	i := bytes.LastIndex(frame, []byte(offKey))
	if i < 0 {
		return "", 0, false
	}
	off, err := strconv.ParseUint(string(frame[i+len(offKey):len(frame)-1]), 10, 64)
	if err != nil {
		return "", 0, false
	}
	j := bytes.LastIndex(frame[:i], []byte(epochKey))
	if j < 0 || frame[i-1] != '"' {
		return "", 0, false
	}
	epoch = string(frame[j+len(epochKey) : i-1])
	if !validEpoch(epoch) {
		return "", 0, false
	}
	return epoch, off, true
}

// ResumeFailed tells a subscriber that asked to resume a channel from a
// position the history cannot serve (another epoch, too old, ahead) where
// the channel is now, so it can refetch its state and carry on from there.
func ResumeFailed(channel, epoch string, offset uint64) []byte {
	inner := AppendString([]byte(`{"epoch":`), epoch)
	inner = append(inner, `,"offset":`...)
	inner = strconv.AppendUint(inner, offset, 10)
	return internalEvent("herald:resume_failed", channel, append(inner, '}'))
}

// PositionFrame tells a subscriber that asked for it (subscribe with
// "position": true) where the channel is as its subscription starts: the
// live events that follow have higher offsets, with no gap.
func PositionFrame(channel, epoch string, offset uint64) []byte {
	inner := AppendString([]byte(`{"epoch":`), epoch)
	inner = append(inner, `,"offset":`...)
	inner = strconv.AppendUint(inner, offset, 10)
	return internalEvent("herald:position", channel, append(inner, '}'))
}

func internalEvent(event, channel string, inner []byte) []byte {
	b := make([]byte, 0, len(inner)+len(event)+len(channel)+48)
	b = append(b, `{"event":`...)
	b = AppendString(b, event)
	if channel != "" {
		b = append(b, `,"channel":`...)
		b = AppendString(b, channel)
	}
	b = append(b, `,"data":`...)
	b = appendStringBytes(b, inner)
	return append(b, '}')
}

func appendInfo(b []byte, info json.RawMessage) []byte {
	if len(info) == 0 {
		return append(b, "null"...)
	}
	return append(b, info...)
}

func quote(s string) []byte { return AppendString(nil, s) }

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string literal. Invalid UTF-8 becomes
// U+FFFD, as encoding/json does.
func AppendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func appendStringBytes(b, s []byte) []byte { return AppendString(b, string(s)) }
