package poll

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/herald-ws/herald/internal/pusher"
)

// The framing pusher-js's HTTP transports read (SockJS's, one frame per
// line): "o" opens the session, "a" carries a JSON array of messages (each
// a Pusher frame as a JSON string), "h" is a heartbeat, and "c" closes the
// session with [code, "reason"].
var (
	openFrame      = []byte("o\n")
	heartbeatFrame = []byte("h\n")
)

// appendBatch appends an "a" frame carrying frames.
func appendBatch(b []byte, frames [][]byte) []byte {
	b = append(b, "a["...)
	for i, f := range frames {
		if i > 0 {
			b = append(b, ',')
		}
		b = pusher.AppendString(b, string(f))
	}
	return append(b, "]\n"...)
}

// appendClose appends a "c" frame.
func appendClose(b []byte, code int, reason string) []byte {
	b = append(b, "c["...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ',')
	b = pusher.AppendString(b, reason)
	return append(b, "]\n"...)
}

// errSendBody is the error of parseSend.
var errSendBody = errors.New(`xhr_send body must be a JSON array of strings, each one Pusher message`)

// parseSend reads an xhr_send body: a JSON array of messages, each a
// string holding one Pusher frame (pusher-js sends JSON.stringify([msg]));
// an empty array is pusher-js's heartbeat. A message longer than max
// bytes is refused with errTooBig and its index.
func parseSend(body []byte, max int) (msgs [][]byte, err error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '[' {
		return nil, errSendBody
	}
	var raw []string
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, errSendBody
	}
	msgs = make([][]byte, 0, len(raw))
	for _, m := range raw {
		if len(m) > max {
			return nil, errTooBig
		}
		msgs = append(msgs, []byte(m))
	}
	return msgs, nil
}

var errTooBig = errors.New("message too big")
