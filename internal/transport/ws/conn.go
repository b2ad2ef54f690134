package ws

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/gobwas/ws"

	"github.com/herald-ws/herald/internal/pusher"
	"github.com/herald-ws/herald/internal/session"
)

// closeGrace bounds how long a closing socket waits for the client's close
// frame before the TCP connection is dropped.
const closeGrace = 3 * time.Second

// conn is one WebSocket connection.
//
// Concurrency: readPump and writePump are the only goroutines touching the
// socket, one reading and one writing. mu guards ctrl and done, which the
// reader hands to the writer (pong and close replies).
type conn struct {
	srv    *Server
	nc     net.Conn
	remote string // the client's address (see RemoteAddr)
	sess   *session.Session
	wakeC  chan struct{} // capacity 1: a pending wake-up for writePump
	// stripe is the connection's stripe of the server's traffic counters.
	stripe uint32

	mu   sync.Mutex
	ctrl []ws.Frame // control frames the writer must send first
	done bool       // the reader has ended; the writer should stop

	writerDone chan struct{} // closed when writePump returns
}

func newConn(srv *Server, nc net.Conn) *conn {
	return &conn{srv: srv, nc: nc, wakeC: make(chan struct{}, 1), writerDone: make(chan struct{}), stripe: srv.stripes.Add(1)}
}

// Wake implements session.Transport.
func (c *conn) Wake() { c.wake() }

// RemoteAddr is the client's address (the request's, which a trusted
// proxy's X-Forwarded-For may have set), for logs and per-address limits.
func (c *conn) RemoteAddr() string { return c.remote }

func (c *conn) wake() {
	select {
	case c.wakeC <- struct{}{}:
	default:
	}
}

// reject answers a refused connection on the handler's goroutine (no
// session exists, in either transport): pusher:error (for a Pusher code,
// 4000 and up), then a close frame; it then half-closes and drains the
// socket briefly so the client reads our close frame instead of a reset.
func (s *Server) reject(nc net.Conn, pe *pusher.Error) {
	s.mgr.CountClose(pe.Code)
	_ = nc.SetWriteDeadline(time.Now().Add(s.WriteTimeout))
	bw := bufio.NewWriter(nc)
	if pe.Code >= 4000 {
		_ = ws.WriteFrame(bw, ws.NewTextFrame(pusher.ErrorFrame(pe.Code, pe.Message)))
	}
	_ = ws.WriteFrame(bw, closeFrame(pe.Code, pe.Message))
	_ = bw.Flush()
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	_ = nc.SetReadDeadline(time.Now().Add(closeGrace))
	_, _ = io.Copy(io.Discard, io.LimitReader(nc, 1<<20))
	_ = nc.Close()
}

// readPump reads frames until the socket ends, hands complete text or
// binary messages to the session, and answers pings and closes. A frame
// that breaks RFC 6455 fails the connection (see frame.go).
func (c *conn) readPump() {
	defer c.finish()
	br := bufio.NewReaderSize(c.nc, 2048)
	defer c.recoverRead(br) // before finish: the session's close goes out first
	max := int64(c.sess.App().MaxMessageBytes)
	var msg []byte
	var op ws.OpCode // the opcode of the message being assembled, 0 between messages
	for {
		h, err := ws.ReadHeader(br)
		if errors.Is(err, ws.ErrHeaderLengthMSB) {
			c.fail(br, ws.StatusProtocolError, "frame length out of range")
			return
		}
		if err != nil {
			return
		}
		if code, reason := validateHeader(h, op != 0); code != 0 {
			c.fail(br, code, reason)
			return
		}
		if h.OpCode.IsControl() {
			if !c.control(br, h) {
				return
			}
			continue
		}
		if int64(len(msg))+h.Length > max {
			c.sess.Close(pusher.CodeMessageTooBig, "message too big: the limit is "+itoa(int(max))+" bytes")
			_, _ = io.CopyN(io.Discard, br, min(h.Length, 16<<20))
			c.waitClose(br)
			return
		}
		if op == 0 {
			op = h.OpCode
		}
		start := len(msg)
		msg = append(msg, make([]byte, h.Length)...)
		if _, err := io.ReadFull(br, msg[start:]); err != nil {
			return
		}
		ws.Cipher(msg[start:], h.Mask, 0)
		if !h.Fin {
			continue
		}
		if !validText(op, msg) {
			c.fail(br, ws.StatusInvalidFramePayloadData, invalidUTF8)
			return
		}
		c.srv.handle(c.sess, c.stripe, msg)
		msg, op = msg[:0], 0
		if cap(msg) > 4096 {
			msg = nil
		}
	}
}

// control handles a control frame (validated: final, at most 125 bytes);
// false means the connection is over.
func (c *conn) control(br *bufio.Reader, h ws.Header) bool {
	p := make([]byte, h.Length)
	if _, err := io.ReadFull(br, p); err != nil {
		return false
	}
	ws.Cipher(p, h.Mask, 0)
	return answerControl(h.OpCode, p, c.sendControl)
}

// fail fails the connection: the writer sends our close frame and
// half-closes, and we discard what the client still sends until it closes
// too (or the grace ends), so that closing a socket with unread data does
// not reset the connection before the client has read our close.
func (c *conn) fail(br *bufio.Reader, code ws.StatusCode, reason string) {
	c.sess.ProtocolFailure(int(code), reason)
	c.srv.mgr.CountClose(int(code))
	c.sendControl(closeFrame(int(code), reason))
	c.discard(br)
}

func (c *conn) discard(br *bufio.Reader) {
	_ = c.nc.SetReadDeadline(time.Now().Add(closeGrace))
	_, _ = io.Copy(io.Discard, io.LimitReader(br, 1<<20))
}

func (c *conn) sendControl(f ws.Frame) {
	c.mu.Lock()
	c.ctrl = append(c.ctrl, f)
	c.mu.Unlock()
	c.wake()
}

// waitClose reads until the client's close frame or the grace period ends.
func (c *conn) waitClose(br *bufio.Reader) {
	_ = c.nc.SetReadDeadline(time.Now().Add(closeGrace))
	for {
		h, err := ws.ReadHeader(br)
		if err != nil {
			return
		}
		if _, err := io.CopyN(io.Discard, br, h.Length); err != nil || h.OpCode == ws.OpClose {
			return
		}
	}
}

// recoverRead turns a panic on the read path (the session's handling of a
// message, most likely) into a logged, counted close of this connection
// alone: the session queues pusher:error 4200 and its close, the writer
// sends them and half-closes, and we wait for the client to close.
func (c *conn) recoverRead(br *bufio.Reader) {
	r := recover()
	if r == nil {
		return
	}
	c.srv.panicked(c.sess.Log(), "read", r)
	c.sess.Close(pusher.CodeGeneric, "internal server error")
	c.discard(br)
}

// finish runs when readPump ends: the writer sends what it still has (a
// close echo) and stops, bounded by its write deadline; then the socket is
// closed and the session cleaned up. readPump owns the final Close.
func (c *conn) finish() {
	c.mu.Lock()
	c.done = true
	c.mu.Unlock()
	c.wake()
	<-c.writerDone
	_ = c.nc.Close()
	c.sess.Closed()
}

// writePump writes queued frames, coalesced into one flush per wake-up,
// and performs the closing handshake when the session or the reader asks
// for it.
func (c *conn) writePump() {
	bw := bufio.NewWriterSize(c.nc, 4096)
	var frames [][]byte
	defer close(c.writerDone)
	defer c.recoverWrite()
	for range c.wakeC {
		c.mu.Lock()
		ctrl, done := c.ctrl, c.done
		c.ctrl = nil
		c.mu.Unlock()
		var closed bool
		var err error
		frames, closed, err = c.write(bw, ctrl, frames)
		if err != nil { // closing unblocks readPump, which then finishes
			if errors.Is(err, os.ErrDeadlineExceeded) {
				c.srv.stalled.Add(1)
			}
			c.sess.Log().Info("write failed; dropping connection", "err", err)
			_ = c.nc.Close()
			return
		}
		if bw.Size() > 4096 {
			bw = bufio.NewWriterSize(c.nc, 4096)
		}
		if closed && !done {
			// Half-close: readPump ends when the client answers our close
			// frame (or hangs up) or the grace expires, and closes the
			// socket then.
			if tc, ok := c.nc.(*net.TCPConn); ok {
				_ = tc.CloseWrite()
			}
			_ = c.nc.SetReadDeadline(time.Now().Add(closeGrace))
		}
		if closed || done {
			return
		}
	}
}

// write sends the control frames, then the session's frames and its close,
// in one flush; closed reports that a close frame went out. Nothing may
// follow a close frame, so once ctrl holds one (an echo, or a failed
// connection) the session's frames are dropped.
func (c *conn) write(bw *bufio.Writer, ctrl []ws.Frame, dst [][]byte) (frames [][]byte, closed bool, err error) {
	frames, closing, code, reason := c.sess.Drain(dst)
	defer clear(frames)
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.srv.WriteTimeout))
	for _, f := range ctrl {
		if err := ws.WriteFrame(bw, f); err != nil {
			return frames, false, err
		}
		if f.Header.OpCode == ws.OpClose {
			return frames, true, bw.Flush()
		}
	}
	n := 0
	for _, f := range frames {
		if err := ws.WriteHeader(bw, ws.Header{Fin: true, OpCode: ws.OpText, Length: int64(len(f))}); err != nil {
			return frames, false, err
		}
		if _, err := bw.Write(f); err != nil {
			return frames, false, err
		}
		n += len(f) + headerLen(len(f))
	}
	if len(frames) > 0 {
		c.srv.traffic.Out(c.stripe, len(frames), n)
	}
	if closing {
		_ = ws.WriteFrame(bw, closeFrame(code, reason))
	}
	return frames, closing, bw.Flush()
}

// recoverWrite turns a panic on the write path into a logged, counted drop
// of this connection alone. What reached the socket may end mid-frame, so
// no close frame can follow: closing the socket ends readPump, which
// cleans up.
func (c *conn) recoverWrite() {
	r := recover()
	if r == nil {
		return
	}
	c.srv.panicked(c.sess.Log(), "write", r)
	_ = c.nc.Close()
}

func itoa(n int) string {
	b := make([]byte, 0, 12)
	return string(appendInt(b, n))
}

func appendInt(b []byte, n int) []byte {
	if n >= 10 {
		b = appendInt(b, n/10)
	}
	return append(b, byte('0'+n%10))
}
