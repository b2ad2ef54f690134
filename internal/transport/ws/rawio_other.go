//go:build !unix

package ws

import "errors"

// run fails: the epoll transport, the only user of raw socket calls,
// exists on Linux alone (elsewhere New picks the goroutine transport and
// refuses TransportEpoll), so this only keeps the package building.
func (o *rawOp) run(uintptr) bool {
	o.n, o.err = 0, errors.ErrUnsupported
	return true
}
