//go:build linux

package ws

import (
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// poller watches idle sockets with epoll so that no goroutine waits on an
// idle connection. Each registration is one-shot: after an fd reports
// readable it stays silent until rearm, so one socket is never read by two
// workers at once.
//
// Concurrency: mu guards byFD; the wait loop runs on its own goroutine and
// hands events to the worker pool.
type poller struct {
	epfd int
	pool *pool

	mu   sync.RWMutex
	byFD map[int32]*econn
}

func newPoller(p *pool) (*poller, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	pl := &poller{epfd: fd, pool: p, byFD: map[int32]*econn{}}
	go pl.wait()
	return pl, nil
}

const pollEvents = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT

func (p *poller) add(c *econn) error {
	p.mu.Lock()
	p.byFD[c.fd] = c
	p.mu.Unlock()
	ev := unix.EpollEvent{Events: pollEvents, Fd: c.fd, Pad: c.gen}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, int(c.fd), &ev); err != nil {
		p.forget(c)
		return fmt.Errorf("epoll_ctl add: %w", err)
	}
	return nil
}

// rearm asks for the next readable event of c.
func (p *poller) rearm(c *econn) error {
	ev := unix.EpollEvent{Events: pollEvents, Fd: c.fd, Pad: c.gen}
	return unix.EpollCtl(p.epfd, unix.EPOLL_CTL_MOD, int(c.fd), &ev)
}

// remove unregisters c; call it before the socket is closed.
func (p *poller) remove(c *econn) {
	_ = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, int(c.fd), nil)
	p.forget(c)
}

func (p *poller) forget(c *econn) {
	p.mu.Lock()
	if p.byFD[c.fd] == c {
		delete(p.byFD, c.fd)
	}
	p.mu.Unlock()
}

func (p *poller) wait() {
	events := make([]unix.EpollEvent, 256)
	for {
		n, err := unix.EpollWait(p.epfd, events, -1)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return // epfd closed
		}
		p.mu.RLock()
		for i := range n {
			// The generation guards against an event collected for a
			// closed socket whose fd a new connection already reuses.
			if c := p.byFD[events[i].Fd]; c != nil && c.gen == events[i].Pad {
				p.pool.submit(task{c: c, read: true})
			}
		}
		p.mu.RUnlock()
	}
}

// supported reports whether this platform has the event-driven transport.
const pollerSupported = true
