package pusher

import "strings"

// Kind is a channel's type, chosen from its name's prefix.
type Kind uint8

const (
	Public Kind = iota
	Private
	Presence
	PrivateEncrypted
	// ServerToUser is the reserved "#server-to-user-{id}" channel of a
	// signed-in user.
	ServerToUser
)

// Channel name prefixes, most specific first.
const (
	PrefixPrivateEncryptedCache = "private-encrypted-cache-"
	PrefixPrivateEncrypted      = "private-encrypted-"
	PrefixPrivateCache          = "private-cache-"
	PrefixPresenceCache         = "presence-cache-"
	PrefixPrivate               = "private-"
	PrefixPresence              = "presence-"
	PrefixCache                 = "cache-"
	PrefixServerToUser          = "#server-to-user-"
	PrefixClientEvent           = "client-"
)

// ChannelInfo describes a channel name.
type ChannelInfo struct {
	Kind  Kind
	Cache bool // last event replayed on subscribe
}

// Authorized reports whether subscribing needs a signature.
func (c ChannelInfo) Authorized() bool {
	return c.Kind == Private || c.Kind == Presence || c.Kind == PrivateEncrypted
}

// ParseChannel classifies name by prefix, most specific first.
func ParseChannel(name string) ChannelInfo {
	switch {
	case strings.HasPrefix(name, PrefixPrivateEncryptedCache):
		return ChannelInfo{Kind: PrivateEncrypted, Cache: true}
	case strings.HasPrefix(name, PrefixPrivateEncrypted):
		return ChannelInfo{Kind: PrivateEncrypted}
	case strings.HasPrefix(name, PrefixPrivateCache):
		return ChannelInfo{Kind: Private, Cache: true}
	case strings.HasPrefix(name, PrefixPresenceCache):
		return ChannelInfo{Kind: Presence, Cache: true}
	case strings.HasPrefix(name, PrefixPrivate):
		return ChannelInfo{Kind: Private}
	case strings.HasPrefix(name, PrefixPresence):
		return ChannelInfo{Kind: Presence}
	case strings.HasPrefix(name, PrefixCache):
		return ChannelInfo{Cache: true}
	case strings.HasPrefix(name, PrefixServerToUser):
		return ChannelInfo{Kind: ServerToUser}
	}
	return ChannelInfo{Kind: Public}
}

// ValidateChannelName checks Pusher's name rules: 1..maxLen characters from
// A-Z a-z 0-9 _ - = @ , . ; — and the reserved "#server-to-user-{id}" form.
func ValidateChannelName(name string, maxLen int) error {
	if name == "" {
		return Errorf(CodeGeneric, "channel name is empty")
	}
	if len(name) > maxLen {
		return Errorf(CodeGeneric, "channel name is %d characters long; the limit is %d", len(name), maxLen)
	}
	rest := name
	if strings.HasPrefix(name, PrefixServerToUser) {
		rest = name[len(PrefixServerToUser):]
		if rest == "" {
			return Errorf(CodeGeneric, "channel name %q has no user id", name)
		}
	}
	for i := 0; i < len(rest); i++ {
		if !validNameByte(rest[i]) {
			return Errorf(CodeGeneric, "channel name %q contains %q; allowed are A-Z a-z 0-9 _ - = @ , . ;", truncate(name), rest[i])
		}
	}
	return nil
}

// ValidateEventName checks an event name: 1..maxLen bytes.
func ValidateEventName(name string, maxLen int) error {
	if name == "" {
		return Errorf(CodeGeneric, "event name is empty")
	}
	if len(name) > maxLen {
		return Errorf(CodeGeneric, "event name is %d characters long; the limit is %d", len(name), maxLen)
	}
	return nil
}

// ServerToUserChannel is the channel name that carries events to userID.
func ServerToUserChannel(userID string) string { return PrefixServerToUser + userID }

func validNameByte(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("_-=@,.;", c) >= 0
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
