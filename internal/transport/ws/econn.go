package ws

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gobwas/ws"

	"github.com/herald-ws/herald/internal/pusher"
	"github.com/herald-ws/herald/internal/session"
)

// readTimeout bounds how long a worker waits for the rest of a frame whose
// first bytes arrived (a client dribbling a frame is cut off after it).
const readTimeout = 10 * time.Second

// econn is an event-driven connection: while idle it holds no goroutine
// and no buffers, only its session and this struct. The poller reports it
// readable and a pool worker reads what arrived with a pooled reader; a
// Wake schedules a pool worker to flush the queue in one write.
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

	writing  atomic.Bool // a flush is scheduled or running
	rdl      lazyDeadline
	finished atomic.Bool
	once     sync.Once

	mu        sync.Mutex
	ctrl      [][]byte // encoded control frames to send first
	closeSent bool

	// rmu is held while reading. The one-shot registration already keeps
	// reads apart, but the race detector cannot see that ordering through
	// epoll; the uncontended lock makes it explicit.
	rmu sync.Mutex
	msg []byte // a fragmented message being assembled (guarded by rmu)
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
	if raw.Control(func(fd uintptr) { c.fd = int32(fd) }) != nil {
		return nil, false
	}
	return c, true
}

// Wake implements session.Transport: schedule one flush.
func (c *econn) Wake() {
	if c.writing.CompareAndSwap(false, true) {
		c.srv.pool.submit(c.flush)
	}
}

var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}

// onReadable reads every complete frame that arrived, then rearms.
func (c *econn) onReadable() {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.finished.Load() {
		return
	}
	br := readers.Get().(*bufio.Reader)
	br.Reset(c.nc)
	defer func() {
		br.Reset(nil)
		readers.Put(br)
	}()
	c.rdl.refresh(readTimeout, c.nc.SetReadDeadline)
	for {
		if !c.readFrame(br) {
			c.finish()
			return
		}
		if br.Buffered() == 0 {
			break
		}
	}
	if err := c.srv.poller.rearm(c); err != nil {
		c.finish()
	}
}

// readFrame reads and handles one frame; false means the connection is
// over. c.rmu is held.
func (c *econn) readFrame(br *bufio.Reader) bool {
	h, err := ws.ReadHeader(br)
	if err != nil {
		return false
	}
	if !h.Masked {
		c.sendControl(closeFrame(int(ws.StatusProtocolError), "client frames must be masked"))
		return false
	}
	if h.OpCode.IsControl() {
		return c.control(br, h)
	}
	max := int64(c.sess.App().MaxMessageBytes)
	if int64(len(c.msg))+h.Length > max {
		c.msg = nil
		c.sess.Close(pusher.CodeMessageTooBig, "message too big: the limit is "+itoa(int(max))+" bytes")
		// Skip the payload so the client's close reply can still be read.
		_, err := io.CopyN(io.Discard, br, min(h.Length, 16<<20))
		return err == nil
	}
	start := len(c.msg)
	c.msg = append(c.msg, make([]byte, h.Length)...)
	if _, err := io.ReadFull(br, c.msg[start:]); err != nil {
		return false
	}
	ws.Cipher(c.msg[start:], h.Mask, 0)
	if h.Fin {
		c.sess.Handle(c.msg)
		c.msg = nil // the session may keep references (client event data)
	}
	return true
}

func (c *econn) control(br *bufio.Reader, h ws.Header) bool {
	return readControl(br, h, c.sendControl)
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

// flush writes everything queued, looping while more arrives.
func (c *econn) flush() {
	for {
		res := c.flushOnce()
		if res == flushHandoff {
			return
		}
		c.writing.Store(false)
		if res == flushDone || !c.pending() || !c.writing.CompareAndSwap(false, true) {
			return
		}
	}
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
	clear(frames)
	*fs = frames[:0]
	frameScratch.Put(fs)
	closing = closing || hasCloseBytes(ctrl)
	if closing && !hasCloseBytes(ctrl) {
		cf, _ := ws.CompileFrame(closeFrame(code, reason))
		buf = append(buf, cf...)
	}
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
	c.srv.slowWrites.Add(1)
	if _, err := c.writeWithin(rest, c.srv.WriteTimeout); err != nil {
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
		c.srv.pool.submit(c.flush)
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
func (c *econn) writeNow(b []byte) (n int, err error) {
	cerr := c.raw.Write(func(fd uintptr) bool {
		for {
			n, err = syscall.Write(int(fd), b)
			if err != syscall.EINTR {
				return true // done either way: never park in the poller
			}
		}
	})
	if n < 0 {
		n = 0
	}
	if cerr != nil {
		return n, cerr
	}
	return n, err
}
