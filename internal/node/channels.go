package node

import (
	"time"

	"github.com/herald-ws/herald/internal/hub"
	"github.com/herald-ws/herald/internal/pusher"
)

// Channels is the channel and presence state of one app: who is subscribed
// to what, presence members counted per user, cached events, and the counts
// the HTTP API reports. Sessions and the API use it only through this
// interface; *hub.Hub is the single-node implementation, and a cluster
// implementation (presence and counts shared over Redis or NATS, delivery
// still local) plugs in here without changing its callers.
//
// Implementations are safe for concurrent use and call Subscriber.Send
// without blocking.
type Channels interface {
	Subscribe(name string, info pusher.ChannelInfo, s hub.Subscriber, m *pusher.Member, maxMembers int) (hub.SubscribeResult, error)
	Join(name string, s hub.Subscriber)
	Unsubscribe(name string, s hub.Subscriber, userID string) hub.UnsubscribeResult
	Broadcast(name string, frame []byte, exclude string) int
	BroadcastCached(name string, frame []byte, exclude string) int
	Cached(name string) (frame []byte, ttl time.Duration, ok bool)
	IsSubscribed(name string, s hub.Subscriber) bool
	Stats(name string) (hub.ChannelStats, bool)
	Channels(prefix string) []hub.ChannelStats
	Members(name string) []pusher.Member
	// FlushCounts sends the changed subscription counts (see hub.Hub).
	FlushCounts() []hub.CountChange
	// ChannelCount is the number of occupied channels, read cheaply.
	ChannelCount() int
}

var _ Channels = (*hub.Hub)(nil)
