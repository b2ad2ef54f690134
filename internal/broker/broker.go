// Package broker is the cluster seam: how a publish reaches the subscribers
// connected to every Herald node. It holds interfaces only; implementations
// live in sub-packages (memory now, Redis and NATS with scale-out).
package broker

import "context"

// Message is a publish crossing nodes. Frame is already serialized (once,
// by the publishing node) and is delivered to local subscribers as is.
type Message struct {
	App     string // app id
	Channel string
	Frame   []byte
	Exclude string // socket id that must not receive it, or ""
	Cache   bool   // the channel is a cache channel: remember Frame
}

// Handler delivers a message to this node's local subscribers.
type Handler func(Message)

// Broker fans messages out to every node, this one included.
//
// Implementations are safe for concurrent use. Handler calls for messages of
// one channel happen in publish order.
type Broker interface {
	// Publish sends m to every node's Handler.
	Publish(ctx context.Context, m Message) error
	// SetHandler installs the local delivery function; call it once
	// before the first Publish.
	SetHandler(h Handler)
	// Close stops delivery.
	Close() error
}
