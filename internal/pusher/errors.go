// Package pusher is Herald's wire model of the Pusher Channels protocol v7:
// decoding client frames, encoding server frames, channel kinds and name
// rules, socket ids, and the protocol's error and close codes as Error
// values. It is pure (no I/O) and safe for concurrent use.
package pusher

import "fmt"

// Pusher error and close codes (see the WebSocket protocol reference).
const (
	CodeSSLOnly             = 4000
	CodeAppNotFound         = 4001
	CodeAppDisabled         = 4003
	CodeOverQuota           = 4004
	CodePathNotFound        = 4005
	CodeInvalidVersion      = 4006
	CodeUnsupportedProtocol = 4007
	CodeNoProtocol          = 4008
	CodeUnauthorized        = 4009
	CodeOverCapacity        = 4100
	CodeGeneric             = 4200
	CodePongNotReceived     = 4201
	CodeInactivity          = 4202
	CodeClientEventRejected = 4301
	CodeWatchlistOverLimit  = 4302
	// CodeOverChannelLimit refuses a subscription, without closing, when
	// the connection or the app is at its channel limit. Pusher documents
	// no code for this; 4303 is Herald's own, in the 4300 range Pusher
	// reserves for errors sent as pusher:error without closing.
	CodeOverChannelLimit = 4303
	// CodeMessageTooBig is the WebSocket close code (RFC 6455) for an
	// inbound message over the app's max_message_bytes.
	CodeMessageTooBig = 1009
)

// Error is a protocol error carrying its Pusher code. Close reports whether
// the connection must be closed with Code after the pusher:error is sent.
type Error struct {
	Code    int
	Message string
	Close   bool
}

func (e *Error) Error() string { return fmt.Sprintf("pusher error %d: %s", e.Code, e.Message) }

// Errorf returns a non-closing protocol error.
func Errorf(code int, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Fatalf returns a protocol error that closes the connection.
func Fatalf(code int, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Close: true}
}
