package ws

import "runtime"

// pool runs short tasks (handle a socket's pending frames, flush its
// queue) on a fixed set of workers, so fan-out spreads over every core
// without a goroutine per connection. Tasks never wait on a socket (reads
// and writes are non-blocking; a write the socket cannot take moves to the
// connection's own goroutine), so a busy pool only ever queues.
//
// A connection has at most one read and one flush outstanding (the
// one-shot epoll registration and the writing flag), so the queue holds at
// most two tasks per connection; it is sized for the process's connection
// ceiling, and only past it does a task run on a goroutine of its own.
// Tasks are values, not closures, so submitting one allocates nothing.
type pool struct {
	tasks chan task
}

// task is one unit of pool work on a connection.
type task struct {
	c    *econn
	read bool // onReadable; otherwise flush
}

// run runs the task; a panic in it costs only its connection (see
// econn.recoverTask), never the worker.
func (t task) run() {
	defer t.c.recoverTask(t.read)
	if t.read {
		t.c.onReadable()
	} else {
		t.c.flush()
	}
}

// poolQueue covers two tasks for each of the ~19k connections a process
// can hold here (the open-file limit); 16 bytes a slot.
const poolQueue = 1 << 16

func newPool(workers int) *pool {
	if workers <= 0 {
		workers = 4 * runtime.GOMAXPROCS(0)
	}
	p := &pool{tasks: make(chan task, poolQueue)}
	for range workers {
		go p.work()
	}
	return p
}

func (p *pool) work() {
	for t := range p.tasks {
		t.run()
	}
}

func (p *pool) submit(t task) {
	select {
	case p.tasks <- t:
	default:
		go t.run()
	}
}
