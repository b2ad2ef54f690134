package session

import (
	"net/netip"
	"time"

	"github.com/herald-ws/herald/internal/peer"
	"github.com/herald-ws/herald/internal/pusher"
)

// Per-address connection limits (server.max_connections_per_ip and
// server.max_new_connections_per_ip). A refused connection is closed with
// 4100, over capacity: pusher-js and Echo reconnect after a backoff, where
// 4004 (the app's own quota) would make them give up.

// clientAddr is the transport's client address, when it has one.
func clientAddr(t Transport) (netip.Addr, bool) {
	ra, ok := t.(remoteAddresser)
	if !ok {
		return netip.Addr{}, false
	}
	ap, err := netip.ParseAddrPort(ra.RemoteAddr())
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}

// acquireIP takes a slot for t's address; held says whether one was
// taken (no limits, or no address: none).
func (m *Manager) acquireIP(t Transport, now time.Time) (held bool, err error) {
	if m.IPLimits == nil {
		return false, nil
	}
	a, ok := clientAddr(t)
	if !ok {
		return false, nil
	}
	switch m.IPLimits.Acquire(a, now) {
	case peer.TooMany:
		m.ipRefused.Add(1)
		return false, pusher.Fatalf(pusher.CodeOverCapacity, "over capacity: too many connections from your address (server.max_connections_per_ip); reconnect later")
	case peer.TooFast:
		m.ipRefused.Add(1)
		return false, pusher.Fatalf(pusher.CodeOverCapacity, "over capacity: too many new connections from your address (server.max_new_connections_per_ip); reconnect later")
	}
	return true, nil
}

// releaseIP gives back the slot acquireIP took for t.
func (m *Manager) releaseIP(t Transport, held bool) {
	if !held {
		return
	}
	if a, ok := clientAddr(t); ok {
		m.IPLimits.Release(a, m.now())
	}
}

// IPRefused is how many connections the per-address limits refused.
func (m *Manager) IPRefused() int64 { return m.ipRefused.Load() }
