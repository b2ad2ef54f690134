package ws

import (
	"bufio"
	"encoding/binary"
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
	srv   *Server
	nc    net.Conn
	sess  *session.Session
	wakeC chan struct{} // capacity 1: a pending wake-up for writePump

	mu   sync.Mutex
	ctrl []ws.Frame // control frames the writer must send first
	done bool       // the reader has ended; the writer should stop

	writerDone chan struct{} // closed when writePump returns
}

func newConn(srv *Server, nc net.Conn) *conn {
	return &conn{srv: srv, nc: nc, wakeC: make(chan struct{}, 1), writerDone: make(chan struct{})}
}

// Wake implements session.Transport.
func (c *conn) Wake() { c.wake() }

func (c *conn) wake() {
	select {
	case c.wakeC <- struct{}{}:
	default:
	}
}

// reject answers a refused connection on the handler's goroutine (no
// session exists, in either transport): pusher:error, then a close frame;
// it then half-closes and drains the socket briefly so the client reads
// our close frame instead of a reset.
func (s *Server) reject(nc net.Conn, pe *pusher.Error) {
	_ = nc.SetWriteDeadline(time.Now().Add(s.WriteTimeout))
	bw := bufio.NewWriter(nc)
	_ = ws.WriteFrame(bw, ws.NewTextFrame(pusher.ErrorFrame(pe.Code, pe.Message)))
	_ = ws.WriteFrame(bw, closeFrame(pe.Code, pe.Message))
	_ = bw.Flush()
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	_ = nc.SetReadDeadline(time.Now().Add(closeGrace))
	_, _ = io.Copy(io.Discard, io.LimitReader(nc, 1<<20))
	_ = nc.Close()
}

func closeFrame(code int, reason string) ws.Frame {
	if len(reason) > 123 {
		reason = reason[:123]
	}
	p := make([]byte, 2+len(reason))
	binary.BigEndian.PutUint16(p, uint16(code))
	copy(p[2:], reason)
	return ws.NewCloseFrame(p)
}

// readPump reads frames until the socket ends, hands complete text or
// binary messages to the session, and answers pings and closes.
func (c *conn) readPump() {
	defer c.finish()
	br := bufio.NewReaderSize(c.nc, 2048)
	max := int64(c.sess.App().MaxMessageBytes)
	var msg []byte
	for {
		h, err := ws.ReadHeader(br)
		if err != nil {
			return
		}
		if !h.Masked {
			c.protocolClose(ws.StatusProtocolError, "client frames must be masked")
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
		start := len(msg)
		msg = append(msg, make([]byte, h.Length)...)
		if _, err := io.ReadFull(br, msg[start:]); err != nil {
			return
		}
		ws.Cipher(msg[start:], h.Mask, 0)
		if !h.Fin {
			continue
		}
		c.sess.Handle(msg)
		msg = msg[:0]
		if cap(msg) > 4096 {
			msg = nil
		}
	}
}

// control handles a control frame; false means the connection is over.
func (c *conn) control(br *bufio.Reader, h ws.Header) bool {
	if h.Length > 125 {
		c.protocolClose(ws.StatusProtocolError, "control frame too long")
		return false
	}
	p := make([]byte, h.Length)
	if _, err := io.ReadFull(br, p); err != nil {
		return false
	}
	ws.Cipher(p, h.Mask, 0)
	return answerControl(h.OpCode, p, c.sendControl)
}

// answerControl answers an unmasked control payload through send: a ping
// gets a pong, a close is echoed and ends the connection (false). Shared
// by both transports.
func answerControl(op ws.OpCode, p []byte, send func(ws.Frame)) bool {
	switch op {
	case ws.OpPing:
		send(ws.NewPongFrame(p))
	case ws.OpClose:
		send(ws.NewCloseFrame(p))
		return false
	}
	return true // pong: nothing to do
}

func (c *conn) protocolClose(code ws.StatusCode, reason string) {
	c.sendControl(closeFrame(int(code), reason))
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
// and performs the closing handshake when the session asks for it.
func (c *conn) writePump() {
	bw := bufio.NewWriterSize(c.nc, 4096)
	var frames [][]byte
	defer close(c.writerDone)
	fail := func(err error) { // closing unblocks readPump, which then finishes
		if errors.Is(err, os.ErrDeadlineExceeded) {
			c.srv.stalled.Add(1)
		}
		c.sess.Log().Info("write failed; dropping connection", "err", err)
		_ = c.nc.Close()
	}
	for range c.wakeC {
		c.mu.Lock()
		ctrl, done := c.ctrl, c.done
		c.ctrl = nil
		c.mu.Unlock()
		var closing bool
		var code int
		var reason string
		frames, closing, code, reason = c.sess.Drain(frames)
		_ = c.nc.SetWriteDeadline(time.Now().Add(c.srv.WriteTimeout))
		for _, f := range ctrl {
			if err := ws.WriteFrame(bw, f); err != nil {
				fail(err)
				return
			}
		}
		for _, f := range frames {
			if err := ws.WriteHeader(bw, ws.Header{Fin: true, OpCode: ws.OpText, Length: int64(len(f))}); err != nil {
				fail(err)
				return
			}
			if _, err := bw.Write(f); err != nil {
				fail(err)
				return
			}
		}
		clear(frames)
		if closing {
			_ = ws.WriteFrame(bw, closeFrame(code, reason))
		}
		if err := bw.Flush(); err != nil {
			fail(err)
			return
		}
		if bw.Size() > 4096 {
			bw = bufio.NewWriterSize(c.nc, 4096)
		}
		if closing && !done {
			// Half-close: readPump ends when the client answers our close
			// frame or the grace expires, and closes the socket then.
			if tc, ok := c.nc.(*net.TCPConn); ok {
				_ = tc.CloseWrite()
			}
			_ = c.nc.SetReadDeadline(time.Now().Add(closeGrace))
			return
		}
		if done || hasClose(ctrl) {
			return
		}
	}
}

func hasClose(fs []ws.Frame) bool {
	for _, f := range fs {
		if f.Header.OpCode == ws.OpClose {
			return true
		}
	}
	return false
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
