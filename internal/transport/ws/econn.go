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
// Closing: our close frame always reaches the socket before it is closed.
// A close from the client is answered (see closeReply) and the socket goes
// once the answer is written; a frame that breaks RFC 6455 fails the
// connection: our close is written, the client's data is ignored from then
// on, and the socket goes when the client hangs up or the grace ends.
//
// Concurrency: at most one reader (one-shot epoll registration) and at
// most one flusher (the writing flag) run at a time, possibly together.
// mu guards ctrl, closeQueued, closeSent and readEnded; the reader owns
// msg and the other fields under rmu.
type econn struct {
	srv    *Server
	nc     net.Conn
	remote string // the client's address (see RemoteAddr)
	raw    syscall.RawConn
	fd     int32
	gen    int32 // distinguishes this connection from a later one on the same fd
	sess   *session.Session

	writing  atomic.Bool  // a flush is scheduled or running
	lastWake atomic.Int64 // nanotime of the last Wake
	finished atomic.Bool
	once     sync.Once

	mu          sync.Mutex
	ctrl        [][]byte // encoded control frames to send first
	closeQueued bool     // ctrl holds a close frame (an answer, or a failed connection)
	closeSent   bool
	readEnded   bool // the reader is done: the socket goes once our close is out

	// rmu is held while reading. The one-shot registration already keeps
	// reads apart, but the race detector cannot see that ordering through
	// epoll; the uncontended lock makes it explicit. It guards:
	rmu        sync.Mutex
	partial    []byte    // bytes of a frame not complete yet (nil while idle)
	skip       int64     // payload bytes still to discard (an oversized message)
	msg        []byte    // a fragmented message being assembled
	msgOp      ws.OpCode // its opcode; 0 between messages
	draining   bool      // a message was too big: data frames are skipped until the client's close
	discarding bool      // the connection failed: all the client sends is ignored
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

// RemoteAddr is the client's address (the request's, which a trusted
// proxy's X-Forwarded-For may have set), for logs and per-address limits.
func (c *econn) RemoteAddr() string { return c.remote }

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
		c.endRead()
		return
	}
	if err := c.srv.poller.rearm(c); err != nil {
		c.finish()
	}
}

// consume handles the complete frames at the start of b and returns what
// is left of an unfinished one; false means the reader is done.
func (c *econn) consume(b []byte) ([]byte, bool) {
	for len(b) > 0 && !c.discarding {
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
		if c.draining && !h.OpCode.IsControl() && h.Length >= 0 {
			c.skip = h.Length // only the client's close matters now
			b = b[hl:]
			continue
		}
		if code, reason := validateHeader(h, c.msgOp != 0); code != 0 {
			c.fail(code, reason)
			break
		}
		if h.OpCode.IsControl() {
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
			c.msg, c.msgOp, c.draining = nil, 0, true
			c.sess.Close(pusher.CodeMessageTooBig, "message too big: the limit is "+itoa(int(limit))+" bytes")
			c.skip = h.Length // so the client's close reply can still be read
			b = b[hl:]
			continue
		}
		if int64(len(b)-hl) < h.Length {
			return b, true
		}
		if c.msgOp == 0 {
			c.msgOp = h.OpCode
		}
		start := len(c.msg)
		c.msg = append(c.msg, b[hl:hl+int(h.Length)]...)
		ws.Cipher(c.msg[start:], h.Mask, 0)
		b = b[hl+int(h.Length):]
		if h.Fin {
			c.message()
		}
	}
	if c.discarding {
		return nil, true
	}
	return b, true
}

// message hands the assembled message to the session, or fails the
// connection (1007) for a text message that is not UTF-8.
func (c *econn) message() {
	msg, op := c.msg, c.msgOp
	c.msg, c.msgOp = nil, 0 // the session may keep references (client event data)
	if !validText(op, msg) {
		c.fail(ws.StatusInvalidFramePayloadData, invalidUTF8)
		return
	}
	c.srv.handle(c.sess, uint32(c.gen), msg)
}

// fail fails the connection: our close frame is queued and the reader
// ignores the client from then on, still reading so that the socket is not
// closed with unread data (a reset that can destroy our close in flight).
func (c *econn) fail(code ws.StatusCode, reason string) {
	c.sess.ProtocolFailure(int(code), reason)
	c.srv.mgr.CountClose(int(code))
	c.discarding, c.msg, c.msgOp = true, nil, 0
	c.sendControl(closeFrame(int(code), reason))
}

// endRead runs when the reader is done (the client hung up or sent its
// close): the socket goes now, or, when a close of ours still waits in
// ctrl, as soon as the flush has written it.
func (c *econn) endRead() {
	c.mu.Lock()
	c.readEnded = true
	wait := c.closeQueued && !c.closeSent
	c.mu.Unlock()
	if !wait {
		c.finish()
	}
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
	c.closeQueued = c.closeQueued || f.Header.OpCode == ws.OpClose
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

	bp := writeBufs.Get().(*[]byte)
	buf, closing := c.encode((*bp)[:0], ctrl)
	res := c.write(buf, closing)
	if cap(buf) <= 1<<20 {
		*bp = buf[:0]
		writeBufs.Put(bp)
	}
	return res
}

// encode appends what a flush writes to buf: the control frames, then the
// session's frames and its close; closing reports that a close frame ends
// buf. Nothing may follow a close frame, so once ctrl holds one (an
// answer, or a failed connection) the session's frames stay unsent.
func (c *econn) encode(buf []byte, ctrl [][]byte) ([]byte, bool) {
	for _, f := range ctrl {
		buf = append(buf, f...)
		if ws.OpCode(f[0]&0x0f) == ws.OpClose {
			return buf, true
		}
	}
	fs := frameScratch.Get().(*[][]byte)
	frames, closing, code, reason := c.sess.Drain((*fs)[:0])
	start := len(buf)
	for _, f := range frames {
		buf = appendHeader(buf, len(f))
		buf = append(buf, f...)
	}
	if len(frames) > 0 {
		c.srv.traffic.Out(uint32(c.gen), len(frames), len(buf)-start)
	}
	if c.srv.onFlush != nil && len(frames) > 0 {
		c.srv.onFlush(len(frames))
	}
	clear(frames)
	*fs = frames[:0]
	frameScratch.Put(fs)
	if closing {
		cf, _ := ws.CompileFrame(closeFrame(code, reason))
		buf = append(buf, cf...)
	}
	return buf, closing
}

// write writes buf in one write; closing says it ends with our close.
func (c *econn) write(buf []byte, closing bool) flushResult {
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
			return flushHandoff
		default:
			c.finish()
			return flushDone
		}
	}
	if closing {
		c.sentClose()
		return flushDone
	}
	return flushMore
}

// slowFlush finishes a write the socket could not take at once, under the
// write timeout, on its own goroutine. It owns the writing flag until it
// hands the connection back to the pool.
func (c *econn) slowFlush(rest []byte, closing bool) {
	defer c.recoverTask(false)
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

// sentClose runs once our close frame is written: the socket goes now if
// the reader is done, or after a half-close and the client's answer.
func (c *econn) sentClose() {
	c.mu.Lock()
	c.closeSent = true
	ended := c.readEnded
	c.mu.Unlock()
	if ended {
		c.finish()
		return
	}
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

// recoverTask turns a panic in a pool task (or a slow flush) into a
// logged, counted close of this connection alone; the worker lives on. A
// panic while reading (the session's handling of a message, most likely)
// closes through the session: pusher:error 4200, then the close frame,
// and the reader ignores the client from then on. A flush may have
// stopped mid-frame, so no close frame can follow: the socket is dropped.
func (c *econn) recoverTask(read bool) {
	r := recover()
	if r == nil {
		return
	}
	if !read {
		c.srv.panicked(c.sess.Log(), "write", r)
		c.finish()
		return
	}
	c.srv.panicked(c.sess.Log(), "read", r)
	c.rmu.Lock()
	c.discarding, c.partial, c.msg, c.msgOp = true, nil, nil, 0
	c.rmu.Unlock()
	c.sess.Close(pusher.CodeGeneric, "internal server error")
	if !c.finished.Load() && c.srv.poller.rearm(c) != nil {
		c.finish()
	}
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

// headerLen is the length of appendHeader's header for n bytes.
func headerLen(n int) int {
	switch {
	case n < 126:
		return 2
	case n <= 0xffff:
		return 4
	}
	return 10
}
