// Package memory is the single-node Broker: a publish is delivered to the
// local handler directly, on the publisher's goroutine.
package memory

import (
	"context"

	"github.com/herald-ws/herald/internal/broker"
)

// Broker is the in-process broker. The handler is set once before use, so
// reads need no lock.
type Broker struct {
	handler broker.Handler
}

var _ broker.Broker = (*Broker)(nil)

// New returns an in-process broker.
func New() *Broker { return &Broker{} }

// SetHandler implements broker.Broker.
func (b *Broker) SetHandler(h broker.Handler) { b.handler = h }

// Publish implements broker.Broker.
func (b *Broker) Publish(_ context.Context, m broker.Message) error {
	b.handler(m)
	return nil
}

// Close implements broker.Broker.
func (b *Broker) Close() error { return nil }
