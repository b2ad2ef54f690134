package ws

import (
	"encoding/binary"
	"errors"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gobwas/ws"

	"github.com/herald-ws/herald/internal/pusher"
	"github.com/herald-ws/herald/internal/session"
)

// econn is an event-driven connection: while idle it holds no goroutine
// and no buffers, only its session and this struct. The poller reports it
// readable and a pool worker reads what arrived without waiting, handles
// the complete frames and keeps only an unfinished one; a Wake schedules a
// pool worker to flush the queue in one write. Pool workers never wait on
// a socket, in either direction.
//
// Concurrency: at most one reader (one-shot epoll registration) and at
// most one flusher (the writing flag) run at a time, possibly together.
// mu guards ctrl and closeSent; the reader owns msg.
type econn struct {
	srv  *Server
	nc   net.Conn
	raw  syscall.RawConn
	fd   int32
	gen  int32 // distinguishes this connection from a later one on the same fd
	sess *session.Session

	writing  atomic.Bool  // a flush is scheduled or running
	lastWake atomic.Int64 // nanotime of the last Wake
	finished atomic.Bool
	once     sync.Once

	mu        sync.Mutex
	ctrl      [][]byte // encoded control frames to send first
	closeSent bool

	// rmu is held while reading. The one-shot registration already keeps
	// reads apart, but the race detector cannot see that ordering through
	// epoll; the uncontended lock makes it explicit. It guards:
	rmu     sync.Mutex
	partial []byte // bytes of a frame not complete yet (nil while idle)
	skip    int64  // payload bytes still to discard (an oversized message)
	msg     []byte // a fragmented message being assembled
}

var connGen atomic.Int32

// newEconn wraps a hijacked TCP connection; ok is false when the
// connection exposes no file descriptor (then the goroutine transport is
// used).
func newEconn(srv *Server, nc net.Conn) (*econn, bool) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil, false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil, false
	}
	c := &econn{srv: srv, nc: nc, raw: raw, gen: connGen.Add(1)}
	c.lastWake.Store(nanotime() - 1<<40) // long ago: the first event is never hot
	if raw.Control(func(fd uintptr) { c.fd = int32(fd) }) != nil {
		return nil, false
	}
	return c, true
}

// Wake implements session.Transport: schedule one flush. The gap since
// the previous Wake tells the delayer whether the socket is hot (see
// delayer: a hot socket on a busy server waits the coalescing window so
// that what arrives meanwhile shares the write).
func (c *econn) Wake() {
	var gap int64
	if c.srv.delayer != nil { // no clock read per event when coalescing is off
		now := nanotime()
		gap = now - c.lastWake.Swap(now)
	}
	if c.writing.CompareAndSwap(false, true) {
		c.schedule(gap)
	}
}

// schedule submits a flush, or hands it to the delayer when the socket is
// hot (its last two events came gap apart); the caller has set the writing
// flag.
func (c *econn) schedule(gap int64) {
	if dl := c.srv.delayer; dl != nil && dl.holds(gap) {
		if c.srv.onHold != nil {
			c.srv.onHold()
		}
		dl.add(c)
		return
	}
	c.srv.pool.submit(task{c: c})
}

// readChunk is how much one non-blocking read asks for.
const readChunk = 4096

var readBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2*readChunk); return &b }}

// onReadable reads what the kernel has, handles every complete frame,
// keeps an unfinished one for the next event, then rearms.
func (c *econn) onReadable() {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.finished.Load() {
		return
	}
	bp := readBufs.Get().(*[]byte)
	buf := append((*bp)[:0], c.partial...)
	c.partial = nil
	open := true
	for {
		buf = slices.Grow(buf, readChunk)
		space := cap(buf) - len(buf)
		n, err := c.readNow(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		ended := err == nil && n == 0 || err != nil && !errors.Is(err, syscall.EAGAIN)
		rest, ok := c.consume(buf)
		buf = append(buf[:0], rest...)
		if !ok || ended {
			open = false // end of stream, a broken socket, or a closing frame
			break
		}
		if n < space {
			break // drained
		}
	}
	if open && len(buf) > 0 {
		c.partial = append([]byte(nil), buf...)
	}
	if cap(buf) <= 64<<10 {
		*bp = buf[:0]
		readBufs.Put(bp)
	}
	if !open {
		c.finish()
		return
	}
	if err := c.srv.poller.rearm(c); err != nil {
		c.finish()
	}
}

// consume handles the complete frames at the start of b and returns what
// is left of an unfinished one; false means the connection is over.
func (c *econn) consume(b []byte) ([]byte, bool) {
	for len(b) > 0 {
		if c.skip > 0 {
			k := min(int64(len(b)), c.skip)
			c.skip -= k
			b = b[k:]
			continue
		}
		h, hl, ok := parseHeader(b)
		if !ok {
			return b, true
		}
		if !h.Masked || h.Length < 0 {
			c.sendControl(closeFrame(int(ws.StatusProtocolError), "client frames must be masked"))
			return nil, false
		}
		if h.OpCode.IsControl() {
			if h.Length > 125 {
				c.sendControl(closeFrame(int(ws.StatusProtocolError), "control frame too long"))
				return nil, false
			}
			if int64(len(b)-hl) < h.Length {
				return b, true
			}
			p := append([]byte(nil), b[hl:hl+int(h.Length)]...)
			ws.Cipher(p, h.Mask, 0)
			b = b[hl+int(h.Length):]
			if !answerControl(h.OpCode, p, c.sendControl) {
				return nil, false
			}
			continue
		}
		if limit := int64(c.sess.App().MaxMessageBytes); int64(len(c.msg))+h.Length > limit {
			c.msg = nil
			c.sess.Close(pusher.CodeMessageTooBig, "message too big: the limit is "+itoa(int(limit))+" bytes")
			c.skip = h.Length // so the client's close reply can still be read
			b = b[hl:]
			continue
		}
		if int64(len(b)-hl) < h.Length {
			return b, true
		}
		start := len(c.msg)
		c.msg = append(c.msg, b[hl:hl+int(h.Length)]...)
		ws.Cipher(c.msg[start:], h.Mask, 0)
		b = b[hl+int(h.Length):]
		if h.Fin {
			c.sess.Handle(c.msg)
			c.msg = nil // the session may keep references (client event data)
		}
	}
	return b, true
}

// parseHeader decodes a client frame header at the start of b; ok is false
// when b does not hold all of it yet.
func parseHeader(b []byte) (h ws.Header, n int, ok bool) {
	if len(b) < 2 {
		return h, 0, false
	}
	h.Fin = b[0]&0x80 != 0
	h.Rsv = (b[0] & 0x70) >> 4
	h.OpCode = ws.OpCode(b[0] & 0x0f)
	h.Masked = b[1]&0x80 != 0
	h.Length, n = int64(b[1]&0x7f), 2
	switch h.Length {
	case 126:
		if len(b) < 4 {
			return h, 0, false
		}
		h.Length, n = int64(binary.BigEndian.Uint16(b[2:])), 4
	case 127:
		if len(b) < 10 {
			return h, 0, false
		}
		h.Length, n = int64(binary.BigEndian.Uint64(b[2:])), 10 // negative when absurd
	}
	if h.Masked {
		if len(b) < n+4 {
			return h, 0, false
		}
		copy(h.Mask[:], b[n:n+4])
		n += 4
	}
	return h, n, true
}

func (c *econn) sendControl(f ws.Frame) {
	b, err := ws.CompileFrame(f)
	if err != nil {
		return
	}
	c.mu.Lock()
	c.ctrl = append(c.ctrl, b)
	c.mu.Unlock()
	c.Wake()
}

// writeBufs are pooled per flush, never held by an idle connection.
var writeBufs = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

var frameScratch = sync.Pool{New: func() any { s := make([][]byte, 0, 64); return &s }}

// flushResult says what a flushOnce left to do.
type flushResult int

const (
	flushMore    flushResult = iota // look again: more may have been queued
	flushDone                       // nothing more will ever be written
	flushHandoff                    // a slow-path goroutine now owns writing
)

// flush writes everything queued in one write. Frames that arrive during
// the write mean the socket is busy: they get a flush of their own, held
// back by the coalescing window so that more can join them.
func (c *econn) flush() {
	res := c.flushOnce()
	if res == flushHandoff {
		return
	}
	c.writing.Store(false)
	if res == flushDone || !c.pending() || !c.writing.CompareAndSwap(false, true) {
		return
	}
	c.schedule(0)
}

func (c *econn) pending() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.closeSent && (len(c.ctrl) > 0 || c.sess.Pending())
}

// flushOnce writes the queue once, in a single write.
func (c *econn) flushOnce() flushResult {
	c.mu.Lock()
	if c.closeSent || c.finished.Load() {
		c.mu.Unlock()
		return flushDone
	}
	ctrl := c.ctrl
	c.ctrl = nil
	c.mu.Unlock()

	fs := frameScratch.Get().(*[][]byte)
	frames, closing, code, reason := c.sess.Drain((*fs)[:0])
	bp := writeBufs.Get().(*[]byte)
	buf := (*bp)[:0]
	for _, f := range ctrl {
		buf = append(buf, f...)
	}
	for _, f := range frames {
		buf = appendHeader(buf, len(f))
		buf = append(buf, f...)
	}
	if c.srv.onFlush != nil && len(frames) > 0 {
		c.srv.onFlush(len(frames))
	}
	clear(frames)
	*fs = frames[:0]
	frameScratch.Put(fs)
	echoed := hasCloseBytes(ctrl) // the client closed; our echo is queued
	if closing && !echoed {
		cf, _ := ws.CompileFrame(closeFrame(code, reason))
		buf = append(buf, cf...)
	}
	closing = closing || echoed
	res := flushMore
	if len(buf) > 0 {
		// A pool worker never waits on a socket: what the kernel does not
		// take at once (a client that stopped reading) is finished on a
		// goroutine of the connection's own, so it holds up no one else.
		n, err := c.writeNow(buf)
		if (err == nil && n < len(buf)) || errors.Is(err, syscall.EAGAIN) {
			// Full for now: a busy client usually drains within moments.
			var m int
			m, err = c.writeWithin(buf[n:], briefWait)
			n += m
		}
		switch {
		case err == nil:
		case errors.Is(err, os.ErrDeadlineExceeded):
			rest := append([]byte(nil), buf[n:]...)
			go c.slowFlush(rest, closing)
			res = flushHandoff
		default:
			c.finish()
			res = flushDone
		}
	}
	if cap(buf) <= 1<<20 {
		*bp = buf[:0]
		writeBufs.Put(bp)
	}
	if res == flushMore && closing {
		c.sentClose()
		return flushDone
	}
	return res
}

// slowFlush finishes a write the socket could not take at once, under the
// write timeout, on its own goroutine. It owns the writing flag until it
// hands the connection back to the pool.
func (c *econn) slowFlush(rest []byte, closing bool) {
	if c.srv.onSlowFlush != nil {
		c.srv.onSlowFlush()
	}
	if _, err := c.writeWithin(rest, c.srv.WriteTimeout); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			c.srv.stalled.Add(1)
		}
		c.sess.Log().Info("client stopped reading; dropping connection", "err", err)
		c.finish()
		return
	}
	if closing {
		c.sentClose()
		return
	}
	c.writing.Store(false)
	if c.pending() && c.writing.CompareAndSwap(false, true) {
		c.srv.pool.submit(task{c: c})
	}
}

func (c *econn) sentClose() {
	c.mu.Lock()
	c.closeSent = true
	c.mu.Unlock()
	c.halfClose()
}

// halfClose sends FIN after our close frame and gives the client a grace
// period to answer before the socket is dropped.
func (c *econn) halfClose() {
	if tc, ok := c.nc.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	time.AfterFunc(closeGrace, c.finish)
}

func hasCloseBytes(fs [][]byte) bool {
	for _, f := range fs {
		if len(f) > 0 && ws.OpCode(f[0]&0x0f) == ws.OpClose {
			return true
		}
	}
	return false
}

// appendHeader appends an unmasked, final text-frame header for n bytes.
func appendHeader(b []byte, n int) []byte {
	const finText = 0x80 | byte(ws.OpText)
	switch {
	case n < 126:
		return append(b, finText, byte(n))
	case n <= 0xffff:
		return append(b, finText, 126, byte(n>>8), byte(n))
	}
	b = append(b, finText, 127)
	return binary.BigEndian.AppendUint64(b, uint64(n))
}

// finish ends the connection once: unregister, close, clean the session.
func (c *econn) finish() {
	c.once.Do(func() {
		c.finished.Store(true)
		c.srv.poller.remove(c)
		_ = c.nc.Close()
		c.sess.Closed()
		c.srv.wg.Done()
	})
}

// briefWait is how long a pool worker waits for a full socket before the
// rest of the write moves to a goroutine of the connection's own.
const briefWait = 5 * time.Millisecond

// writeWithin writes b, waiting for the socket up to d, and clears the
// deadline again so it cannot outlive this write.
func (c *econn) writeWithin(b []byte, d time.Duration) (int, error) {
	_ = c.nc.SetWriteDeadline(time.Now().Add(d))
	n, err := c.nc.Write(b)
	_ = c.nc.SetWriteDeadline(time.Time{})
	return n, err
}

// writeNow writes b without waiting: it returns how much the kernel took,
// with EAGAIN when the socket buffer is full.
func (c *econn) writeNow(b []byte) (int, error) { return noWait(c.raw, true, b) }

// readNow reads into b without waiting: EAGAIN when nothing is there,
// n == 0 with no error at the end of the stream.
func (c *econn) readNow(b []byte) (int, error) { return noWait(c.raw, false, b) }

// rawOp is one non-blocking system call run through RawConn. Its run
// method is bound once, when the op is made, and ops are pooled: a closure
// per call would cost three allocations per delivery, a bound op per
// connection memory on every idle socket.
type rawOp struct {
	write bool
	b     []byte
	n     int
	err   error
	fn    func(fd uintptr) bool // o.run
}

var rawOps = sync.Pool{New: func() any { o := &rawOp{}; o.fn = o.run; return o }}

func (o *rawOp) run(fd uintptr) bool {
	for {
		if o.write {
			o.n, o.err = syscall.Write(int(fd), o.b)
		} else {
			o.n, o.err = syscall.Read(int(fd), o.b)
		}
		if o.err != syscall.EINTR {
			return true // done, never park in the poller
		}
	}
}

// noWait runs one read or write system call on the socket through the
// runtime's fd locking (so a concurrent Close cannot hand the fd number to
// another socket mid-call), retrying only on EINTR and never waiting.
func noWait(rc syscall.RawConn, write bool, b []byte) (n int, err error) {
	o := rawOps.Get().(*rawOp)
	o.write, o.b = write, b
	var cerr error
	if write {
		cerr = rc.Write(o.fn)
	} else {
		cerr = rc.Read(o.fn)
	}
	n, err = o.n, o.err
	o.b, o.n, o.err = nil, 0, nil
	rawOps.Put(o)
	if n < 0 {
		n = 0
	}
	if cerr != nil {
		return n, cerr
	}
	return n, err
}
