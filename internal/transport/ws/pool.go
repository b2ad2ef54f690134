package ws

import "runtime"

// pool runs short tasks (handle a socket's pending frames, flush its
// queue) on a fixed set of workers, so fan-out spreads over every core
// without a goroutine per connection. Tasks never wait on a socket (reads
// and writes are non-blocking; a write the socket cannot take moves to the
// connection's own goroutine), so a busy pool only ever queues briefly;
// past its queue a task runs on a goroutine of its own.
type pool struct {
	tasks chan func()
}

func newPool(workers int) *pool {
	if workers <= 0 {
		workers = 4 * runtime.GOMAXPROCS(0)
	}
	p := &pool{tasks: make(chan func(), 4096)}
	for range workers {
		go p.work()
	}
	return p
}

func (p *pool) work() {
	for f := range p.tasks {
		f()
	}
}

func (p *pool) submit(f func()) {
	select {
	case p.tasks <- f:
	default:
		go f()
	}
}
