package redis

import (
	"errors"
	"strconv"
	"strings"

	"github.com/herald-ws/herald/internal/broker"
)

// The envelope is what crosses Redis pub/sub: a kind byte, then fields
// each written as <decimal length>:<bytes>, then (for a message) the
// frame as the rest of the payload. The header is built in Go; the
// append script only concatenates the numbered frame to it, so Lua never
// has to parse or escape anything.
//
//	m <app> <channel> <exclude> <flags> frame…   a message ("c" in flags: cache channel)
//	r <app> <channel> <token>                    a read marker (see Read)
const (
	kindMessage = 'm'
	kindMarker  = 'r'
)

// messageHeader is the envelope of m without its frame.
func messageHeader(m broker.Message) string {
	flags := ""
	if m.Cache {
		flags = "c"
	}
	var b strings.Builder
	b.Grow(16 + len(m.App) + len(m.Channel) + len(m.Exclude))
	b.WriteByte(kindMessage)
	for _, f := range [...]string{m.App, m.Channel, m.Exclude, flags} {
		writeField(&b, f)
	}
	return b.String()
}

// markerEnvelope is the read marker for token on app's channel.
func markerEnvelope(app, channel string, token uint64) string {
	var b strings.Builder
	b.WriteByte(kindMarker)
	writeField(&b, app)
	writeField(&b, channel)
	writeField(&b, strconv.FormatUint(token, 10))
	return b.String()
}

func writeField(b *strings.Builder, f string) {
	b.WriteString(strconv.Itoa(len(f)))
	b.WriteByte(':')
	b.WriteString(f)
}

// envelope is a decoded payload: a message, or a marker (token != 0).
type envelope struct {
	msg   broker.Message
	token uint64
}

var errEnvelope = errors.New("malformed envelope")

// decodeEnvelope parses a payload. Strings in the result share p's
// memory; the frame is a copy (it outlives the payload in socket queues,
// and a Frame is []byte).
func decodeEnvelope(p string) (envelope, error) {
	if p == "" {
		return envelope{}, errEnvelope
	}
	kind, rest := p[0], p[1:]
	var f [4]string
	n := 4
	if kind == kindMarker {
		n = 3
	} else if kind != kindMessage {
		return envelope{}, errEnvelope
	}
	for i := range n {
		var ok bool
		if f[i], rest, ok = readField(rest); !ok {
			return envelope{}, errEnvelope
		}
	}
	if kind == kindMarker {
		tok, err := strconv.ParseUint(f[2], 10, 64)
		if err != nil || tok == 0 || rest != "" {
			return envelope{}, errEnvelope
		}
		return envelope{msg: broker.Message{App: f[0], Channel: f[1]}, token: tok}, nil
	}
	return envelope{msg: broker.Message{App: f[0], Channel: f[1], Exclude: f[2], Cache: f[3] == "c", Frame: []byte(rest)}}, nil
}

func readField(s string) (field, rest string, ok bool) {
	i := strings.IndexByte(s, ':')
	if i <= 0 || i > 10 {
		return "", "", false
	}
	n, err := strconv.Atoi(s[:i])
	if err != nil || n < 0 || n > len(s)-i-1 {
		return "", "", false
	}
	return s[i+1 : i+1+n], s[i+1+n:], true
}
