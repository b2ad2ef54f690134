//go:build !linux

package ws

import "errors"

type poller struct{}

func newPoller(*pool) (*poller, error) { return nil, errors.New("epoll is only available on Linux") }
func (p *poller) add(*econn) error     { return nil }
func (p *poller) rearm(*econn) error   { return nil }
func (p *poller) remove(*econn)        {}

const pollerSupported = false
