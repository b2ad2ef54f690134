// Package peer knows the client behind a request: its address, read
// through trusted proxies, and the per-address limits on connections.
package peer

import (
	"net/netip"
	"strings"
)

// Trusted is the set of proxies whose X-Forwarded-For is believed.
type Trusted []netip.Prefix

// ParseTrusted parses addresses and CIDR prefixes ("10.0.0.0/8",
// "127.0.0.1", "::1"); the error names the first bad one.
func ParseTrusted(list []string) (Trusted, error) {
	var t Trusted
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			t = append(t, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, &BadProxyError{Value: s}
		}
		t = append(t, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return t, nil
}

// BadProxyError is a trusted proxy that is neither an address nor a CIDR
// prefix.
type BadProxyError struct{ Value string }

func (e *BadProxyError) Error() string {
	return "trusted proxy " + quote(e.Value) + " is neither an IP address nor a CIDR prefix like 10.0.0.0/8"
}

func quote(s string) string { return `"` + s + `"` }

// Contains reports whether a is a trusted proxy.
func (t Trusted) Contains(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Client returns the client's address for a request from remoteAddr
// (host:port) carrying the X-Forwarded-For values xff. The header is
// believed only as far as the proxies are trusted: read from the right,
// the first address not a trusted proxy is the client (a client can put
// anything on the left of the list, never on the right of what a trusted
// proxy appended). ok is false when remoteAddr is not an IP address.
func (t Trusted) Client(remoteAddr string, xff []string) (client netip.Addr, ok bool) {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	client = ap.Addr().Unmap()
	if len(t) == 0 || !t.Contains(client) {
		return client, true
	}
	for i := len(xff) - 1; i >= 0; i-- {
		hops := strings.Split(xff[i], ",")
		for j := len(hops) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(hops[j]))
			if err != nil {
				return client, true // garbage: stop at the last address believed
			}
			client = a.Unmap()
			if !t.Contains(client) {
				return client, true
			}
		}
	}
	return client, true
}
