package broker

// Lifecycle event names, exactly Pusher's webhook event names.
const (
	ChannelOccupied   = "channel_occupied"
	ChannelVacated    = "channel_vacated"
	MemberAdded       = "member_added"
	MemberRemoved     = "member_removed"
	ClientEvent       = "client_event"
	CacheMiss         = "cache_miss"
	SubscriptionCount = "subscription_count"
)

// Lifecycle is one thing that happened to a channel, as Pusher's webhooks
// report it. Fields not used by an event name are empty.
type Lifecycle struct {
	Name    string // one of the constants above
	Channel string
	UserID  string // member_added, member_removed; client_event on presence channels
	Event   string // client_event: the event name
	Data    string // client_event: the data as sent (JSON text)
	// SocketID is the socket that sent a client_event.
	SocketID string
	// SubscriptionCount is the count of a subscription_count event.
	SubscriptionCount int
}

// Observer is told of channel lifecycle events: the seam for webhooks.
// On a single node the node reports its own; in cluster mode the shared
// state reports each once for the cluster. Observe must not block: it is
// called on the paths that subscribe, unsubscribe and publish.
type Observer interface {
	Observe(appID string, e Lifecycle)
}
