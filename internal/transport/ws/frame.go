package ws

import (
	"encoding/binary"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// Frame validation and control replies (RFC 6455 §5 and §7), shared by both
// transports so that a client sees the same close code whichever carries
// it. A violation fails the connection: we send a close frame with the
// code (1002 protocol error, 1007 invalid UTF-8), stop reading the
// client's data and drop the socket once the close is out.

// validateHeader checks a client frame header; fragmented reports whether
// a fragmented message is being assembled. It returns 0 for a valid header,
// or the close code to fail the connection with and why. No extension is
// ever negotiated, so every RSV bit must be clear.
func validateHeader(h ws.Header, fragmented bool) (ws.StatusCode, string) {
	switch {
	case !h.Masked:
		return ws.StatusProtocolError, "client frames must be masked"
	case h.Rsv != 0:
		return ws.StatusProtocolError, "reserved bits set with no extension negotiated"
	case h.Length < 0: // a 64-bit length with its most significant bit set
		return ws.StatusProtocolError, "frame length out of range"
	}
	switch h.OpCode {
	case ws.OpClose, ws.OpPing, ws.OpPong:
		if !h.Fin {
			return ws.StatusProtocolError, "fragmented control frame"
		}
		if h.Length > 125 {
			return ws.StatusProtocolError, "control frame too long"
		}
	case ws.OpText, ws.OpBinary:
		if fragmented {
			return ws.StatusProtocolError, "new message inside a fragmented one"
		}
	case ws.OpContinuation:
		if !fragmented {
			return ws.StatusProtocolError, "continuation frame with no message started"
		}
	default:
		return ws.StatusProtocolError, "reserved opcode"
	}
	return 0, ""
}

// validText reports whether a complete message may be handed on: text
// messages must be valid UTF-8 (§8.1); binary ones are not checked. It runs
// once per inbound message, on the reassembled payload.
func validText(op ws.OpCode, msg []byte) bool {
	return op != ws.OpText || utf8.Valid(msg)
}

const invalidUTF8 = "text message is not valid UTF-8"

// validateClose checks an unmasked close payload: empty, or a status code
// a peer may send followed by a UTF-8 reason (§5.5.1, §7.4).
func validateClose(p []byte) (ws.StatusCode, string) {
	switch len(p) {
	case 0:
		return 0, ""
	case 1:
		return ws.StatusProtocolError, "close payload of one byte"
	}
	if !sendableCloseCode(binary.BigEndian.Uint16(p)) {
		return ws.StatusProtocolError, "invalid close code"
	}
	if !utf8.Valid(p[2:]) {
		return ws.StatusInvalidFramePayloadData, "close reason is not valid UTF-8"
	}
	return 0, ""
}

// sendableCloseCode reports whether a peer may put code in a close frame:
// the codes RFC 6455 and the IANA registry define (1004–1006 and 1015 are
// reserved, never sent), and the 3000–4999 ranges for libraries and
// applications. 1016–2999 are unassigned.
func sendableCloseCode(code uint16) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	}
	return code >= 3000 && code <= 4999
}

// closeReply is our answer to a client's close payload: the echo of its
// status code (an empty close for an empty one), or our own close when the
// payload is invalid.
func closeReply(p []byte) ws.Frame {
	if code, reason := validateClose(p); code != 0 {
		return closeFrame(int(code), reason)
	}
	return ws.NewCloseFrame(p[:min(len(p), 2)])
}

// answerControl answers an unmasked control payload through send: a ping
// gets a pong, a close gets closeReply and ends the connection (false).
// Shared by both transports.
func answerControl(op ws.OpCode, p []byte, send func(ws.Frame)) bool {
	switch op {
	case ws.OpPing:
		send(ws.NewPongFrame(p))
	case ws.OpClose:
		send(closeReply(p))
		return false
	}
	return true // pong: nothing to do
}

// closeFrame is a close frame with code and a reason cut to fit a control
// frame, on a character boundary: a client fails the connection on a
// reason that is not UTF-8.
func closeFrame(code int, reason string) ws.Frame {
	if len(reason) > 123 {
		reason = reason[:123]
		for !utf8.ValidString(reason) {
			reason = reason[:len(reason)-1]
		}
	}
	p := make([]byte, 2+len(reason))
	binary.BigEndian.PutUint16(p, uint16(code))
	copy(p[2:], reason)
	return ws.NewCloseFrame(p)
}
