// Package apps holds the application model: the credentials, switches and
// limits of one Pusher-style app, and a read-only registry to find an app by
// id (HTTP API) or by key (WebSocket path).
//
// Apps are immutable once a Registry is built; every field may be read from
// any goroutine without locking.
package apps

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Client-event acceptance modes, named after Reverb's accept_client_events_from.
const (
	ClientEventsMembers = "members" // only sockets subscribed to the channel
	ClientEventsAll     = "all"     // any socket of the app (still private/presence channels only)
	ClientEventsNone    = "none"    // client events switched off
)

// Limits are the per-app bounds. Zero values are replaced by the defaults in
// DefaultLimits by WithDefaults.
type Limits struct {
	MaxEventPayloadBytes    int `yaml:"max_event_payload_bytes" json:"max_event_payload_bytes"`         // event data, HTTP and client events (Pusher: 10 KB)
	MaxChannelsPerEvent     int `yaml:"max_channels_per_event" json:"max_channels_per_event"`           // channels in one trigger (100)
	MaxBatchEvents          int `yaml:"max_batch_events" json:"max_batch_events"`                       // events in one batch (10)
	MaxChannelNameLength    int `yaml:"max_channel_name_length" json:"max_channel_name_length"`         // 164 (Pusher's documented bound)
	MaxEventNameLength      int `yaml:"max_event_name_length" json:"max_event_name_length"`             // 200
	MaxPresenceMembers      int `yaml:"max_presence_members" json:"max_presence_members"`               // 100 per channel
	MaxPresenceUserIDLength int `yaml:"max_presence_user_id_length" json:"max_presence_user_id_length"` // 128
	MaxPresenceInfoBytes    int `yaml:"max_presence_info_bytes" json:"max_presence_info_bytes"`         // 1 KB
	MaxRequestBytes         int `yaml:"max_request_bytes" json:"max_request_bytes"`                     // HTTP body; room for a full batch of 10 KB events
	ClientEventsPerSecond   int `yaml:"client_events_per_second" json:"client_events_per_second"`       // per connection (10)
	MaxWatchlist            int `yaml:"max_watchlist" json:"max_watchlist"`                             // watchlist entries at sign-in (100)
	// MaxChannelsPerConnection bounds one socket's subscriptions (Pusher's
	// practice: 100); the server-to-user channel of a sign-in is not counted.
	MaxChannelsPerConnection int `yaml:"max_channels_per_connection" json:"max_channels_per_connection"`
	// MaxChannels bounds the app's distinct occupied channels on this node
	// (100,000): the channel table's memory, whatever the connection count.
	MaxChannels int `yaml:"max_channels" json:"max_channels"`
	// MaxMessagesPerSecond and MaxMessagesBurst are one connection's
	// inbound message budget, every kind of message counted (100/s, bursts
	// of 200); over it the connection is closed with 4100.
	MaxMessagesPerSecond int `yaml:"max_messages_per_second" json:"max_messages_per_second"`
	MaxMessagesBurst     int `yaml:"max_messages_burst" json:"max_messages_burst"`
	// MaxAPIRequestsPerSecond and MaxAPIRequestsBurst are the app's HTTP
	// API budget (the REST API and /broadcast together, counted once the
	// request is authenticated); over it, 429 with Retry-After.
	MaxAPIRequestsPerSecond int `yaml:"max_api_requests_per_second" json:"max_api_requests_per_second"`
	MaxAPIRequestsBurst     int `yaml:"max_api_requests_burst" json:"max_api_requests_burst"`
}

// DefaultLimits are Pusher's documented limits, and Herald's own where
// Pusher documents none.
var DefaultLimits = Limits{
	MaxEventPayloadBytes:    10240,
	MaxChannelsPerEvent:     100,
	MaxBatchEvents:          10,
	MaxChannelNameLength:    164,
	MaxEventNameLength:      200,
	MaxPresenceMembers:      100,
	MaxPresenceUserIDLength: 128,
	MaxPresenceInfoBytes:    1024,
	MaxRequestBytes:         131072,
	ClientEventsPerSecond:   10,
	MaxWatchlist:            100,
	// A Pusher connection may subscribe to 100 channels.
	MaxChannelsPerConnection: 100,
	// About 0.5 KB of hub memory per channel: ~50 MB at the limit, while an
	// app whose every online user has a private channel can have 100,000
	// users on one node. Raise it for bigger nodes.
	MaxChannels: 100_000,
	// Far above what a client does (pusher-js pings every two minutes, a
	// page subscribes to at most 100 channels at once, client events are
	// held to 10/s) and far below a flood.
	MaxMessagesPerSecond: 100,
	MaxMessagesBurst:     200,
	// A ceiling, not a throttle: above what one node serves (about 20,000
	// requests a second measured on 2 cores); set lower to cap a runaway
	// publisher before it costs everyone else.
	MaxAPIRequestsPerSecond: 50_000,
	MaxAPIRequestsBurst:     100_000,
}

// WithDefaults returns l with every zero field set to its default.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits
	set := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	set(&l.MaxEventPayloadBytes, d.MaxEventPayloadBytes)
	set(&l.MaxChannelsPerEvent, d.MaxChannelsPerEvent)
	set(&l.MaxBatchEvents, d.MaxBatchEvents)
	set(&l.MaxChannelNameLength, d.MaxChannelNameLength)
	set(&l.MaxEventNameLength, d.MaxEventNameLength)
	set(&l.MaxPresenceMembers, d.MaxPresenceMembers)
	set(&l.MaxPresenceUserIDLength, d.MaxPresenceUserIDLength)
	set(&l.MaxPresenceInfoBytes, d.MaxPresenceInfoBytes)
	set(&l.MaxRequestBytes, d.MaxRequestBytes)
	set(&l.ClientEventsPerSecond, d.ClientEventsPerSecond)
	set(&l.MaxWatchlist, d.MaxWatchlist)
	set(&l.MaxChannelsPerConnection, d.MaxChannelsPerConnection)
	set(&l.MaxChannels, d.MaxChannels)
	set(&l.MaxMessagesPerSecond, d.MaxMessagesPerSecond)
	set(&l.MaxMessagesBurst, d.MaxMessagesBurst)
	set(&l.MaxAPIRequestsPerSecond, d.MaxAPIRequestsPerSecond)
	set(&l.MaxAPIRequestsBurst, d.MaxAPIRequestsBurst)
	return l
}

// App is one application: what a Laravel app calls REVERB_APP_ID/KEY/SECRET
// plus its switches and limits.
type App struct {
	ID     string
	Key    string
	Secret string

	// Enabled false refuses WebSocket connections (4003) and API calls (403).
	Enabled bool
	// AllowedOrigins are host patterns matched against the Origin header's
	// host, as Reverb does; "*" allows any, "*.example.com" a subdomain.
	AllowedOrigins []string
	// MaxConnections bounds concurrent sockets; 0 means unlimited (4004 when hit).
	MaxConnections int
	// ClientEvents is one of ClientEventsMembers, ClientEventsAll, ClientEventsNone.
	ClientEvents string
	// UserAuthentication enables pusher:signin.
	UserAuthentication bool
	// AuthorizedConnectionsTimeout, when > 0, closes (4009) sockets that neither
	// sign in nor subscribe to a private or presence channel in time.
	AuthorizedConnectionsTimeout time.Duration
	// ActivityTimeout is sent to clients in connection_established (seconds).
	ActivityTimeout time.Duration
	// PingInterval is how long a socket may stay silent before the server
	// sends pusher:ping; PongTimeout how long it then waits (4201).
	PingInterval time.Duration
	PongTimeout  time.Duration
	// MaxMessageBytes bounds one inbound WebSocket message (Reverb max_message_size).
	MaxMessageBytes int
	// SubscriptionCount sends pusher_internal:subscription_count to the
	// subscribers of a non-presence channel when its subscriber count
	// changes (Pusher's "subscription counting", off by default).
	SubscriptionCount bool
	// BroadcastToken is the bearer token of POST /broadcast for this app;
	// "" leaves the endpoint closed for it. Unique across apps: the token
	// alone says which app a request is for.
	BroadcastToken string
	// BroadcastChannel is where POST /broadcast publishes when the request
	// names no channel; "" means DefaultBroadcastChannel.
	BroadcastChannel string
	Limits           Limits
	// History numbers the events of the channels it covers and keeps their
	// recent past so subscribers can resume (Herald's extension). The zero
	// value is off; config.NewApp turns it on for every channel.
	History History
	// Webhooks are where the app's channel lifecycle events are posted,
	// in Pusher's webhook format.
	Webhooks []Webhook
}

// Webhook is one webhook endpoint of an app.
type Webhook struct {
	URL string
	// Events are the lifecycle event names it wants (channel_occupied,
	// channel_vacated, member_added, member_removed, client_event,
	// cache_miss, subscription_count); empty means all.
	Events []string
}

// WebhookEvents are the event names a webhook can ask for, Pusher's.
var WebhookEvents = []string{"channel_occupied", "channel_vacated", "member_added", "member_removed", "client_event", "cache_miss", "subscription_count"}

// History is an app's channel-history settings.
type History struct {
	Enabled bool
	// Channels are the channels with history: "*" for all, "name" for
	// one, "prefix*" for every channel starting with prefix.
	Channels []string
	// MaxEvents is how many events a channel keeps (default 100).
	MaxEvents int
	// TTL is how long an event is kept (default 5 minutes).
	TTL time.Duration
}

// Covers reports whether channel has history.
func (h *History) Covers(channel string) bool {
	if !h.Enabled {
		return false
	}
	for _, p := range h.Channels {
		if p == "*" || p == channel {
			return true
		}
		if prefix, ok := strings.CutSuffix(p, "*"); ok && strings.HasPrefix(channel, prefix) {
			return true
		}
	}
	return false
}

// DefaultBroadcastChannel is the channel of a POST /broadcast that names
// none, unless the app sets BroadcastChannel.
const DefaultBroadcastChannel = "broadcast"

// BroadcastChannelOrDefault is the channel a POST /broadcast without one
// publishes to.
func (a *App) BroadcastChannelOrDefault() string {
	if a.BroadcastChannel != "" {
		return a.BroadcastChannel
	}
	return DefaultBroadcastChannel
}

// OriginAllowed reports whether a connection from origin (an Origin header
// value, possibly empty) is allowed.
func (a *App) OriginAllowed(origin string) bool {
	if len(a.AllowedOrigins) == 0 || slices.Contains(a.AllowedOrigins, "*") {
		return true
	}
	host := origin
	if i := strings.Index(host, "://"); i >= 0 {
		host = host[i+3:]
	}
	if i := strings.IndexAny(host, ":/"); i >= 0 {
		host = host[:i]
	}
	host = strings.ToLower(host)
	for _, p := range a.AllowedOrigins {
		p = strings.ToLower(p)
		if i := strings.Index(p, "://"); i >= 0 {
			p = p[i+3:]
		}
		if i := strings.IndexAny(p, ":/"); i >= 0 {
			p = p[:i]
		}
		if p == host {
			return true
		}
		if suffix, ok := strings.CutPrefix(p, "*."); ok && strings.HasSuffix(host, "."+suffix) {
			return true
		}
	}
	return false
}

// Registry finds apps by id and by key. It is read-only after New and safe
// for concurrent use.
type Registry struct {
	byID  map[string]*App
	byKey map[string]*App
	list  []*App
}

// NewRegistry indexes list; ids and keys must be unique and non-empty.
func NewRegistry(list []*App) (*Registry, error) {
	r := &Registry{byID: map[string]*App{}, byKey: map[string]*App{}}
	for i, a := range list {
		switch {
		case a.ID == "" || a.Key == "" || a.Secret == "":
			return nil, fmt.Errorf("app %d: id, key and secret are required", i+1)
		case r.byID[a.ID] != nil:
			return nil, fmt.Errorf("app %d: duplicate app id %q", i+1, a.ID)
		case r.byKey[a.Key] != nil:
			return nil, fmt.Errorf("app %d: duplicate app key %q", i+1, a.Key)
		}
		r.byID[a.ID] = a
		r.byKey[a.Key] = a
		r.list = append(r.list, a)
	}
	return r, nil
}

// ByID returns the app with id, or nil.
func (r *Registry) ByID(id string) *App { return r.byID[id] }

// ByKey returns the app with key, or nil.
func (r *Registry) ByKey(key string) *App { return r.byKey[key] }

// All returns the apps in configuration order.
func (r *Registry) All() []*App { return r.list }
