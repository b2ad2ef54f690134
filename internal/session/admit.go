package session

import (
	"net/url"
	"strconv"

	"github.com/herald-ws/herald/internal/node"
	"github.com/herald-ws/herald/internal/pusher"
)

// Admit checks what every transport checks before opening a session: the
// app key, that the app is enabled, the protocol version of the query
// (Pusher's ?protocol=7) and the Origin header (empty: not a browser). The
// error is a closing *pusher.Error with the code Pusher clients expect.
func (m *Manager) Admit(key string, query url.Values, origin string) (*node.App, *pusher.Error) {
	a := m.node.AppByKey(key)
	if a == nil {
		return nil, pusher.Fatalf(pusher.CodeAppNotFound, "app key %s does not exist", key)
	}
	if !a.Enabled {
		return nil, pusher.Fatalf(pusher.CodeAppDisabled, "app %s is disabled", a.ID)
	}
	if !query.Has("protocol") {
		return nil, pusher.Fatalf(pusher.CodeNoProtocol, "no protocol version given: add ?protocol=7")
	}
	v, err := strconv.Atoi(query.Get("protocol"))
	if err != nil {
		return nil, pusher.Fatalf(pusher.CodeInvalidVersion, "invalid protocol version %q", query.Get("protocol"))
	}
	if v < 5 || v > 7 {
		return nil, pusher.Fatalf(pusher.CodeUnsupportedProtocol, "unsupported protocol version %d (supported: 5 to 7)", v)
	}
	if origin != "" && !a.OriginAllowed(origin) {
		return nil, pusher.Fatalf(pusher.CodeUnauthorized, "origin %s is not allowed", origin)
	}
	return a, nil
}
