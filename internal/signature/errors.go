package signature

import (
	"errors"
	"fmt"
)

// Sentinels for errors.Is. The errors this package returns wrap exactly one of
// them and carry their own message, so Error() is the precise explanation for
// the client and the sentinel is the category for the caller.
var (
	// ErrAuthFormat: a subscription or sign-in auth value is not "key:hex".
	ErrAuthFormat = errors.New("malformed auth value")
	// ErrAuthKey: the key part of an auth value is not the app's key.
	ErrAuthKey = errors.New("wrong key in auth value")
	// ErrAuthSignature: the HMAC in an auth value does not match.
	ErrAuthSignature = errors.New("invalid auth signature")

	// ErrBadRequest: the HTTP API request cannot be signed unambiguously
	// (a repeated parameter, keys differing only in case, a newline in the
	// method or path, …). It is the one request error that means 400
	// rather than 401.
	ErrBadRequest = errors.New("malformed signed request")
	// ErrUnknownKey: auth_key is missing or is not the app's key.
	ErrUnknownKey = errors.New("unknown auth_key")
	// ErrAuthVersion: auth_version is missing or is not "1.0".
	ErrAuthVersion = errors.New("unsupported auth_version")
	// ErrStaleTimestamp: auth_timestamp is missing, not an integer, or too
	// far from the server's clock. Pusher reads a non-integer as 0, which is
	// always stale, so all three are the same failure.
	ErrStaleTimestamp = errors.New("auth_timestamp out of range")
	// ErrBodyMD5: body_md5 is missing for a non-empty body, or does not match.
	ErrBodyMD5 = errors.New("body_md5 mismatch")
	// ErrSignature: auth_signature is missing or does not match.
	ErrSignature = errors.New("invalid auth_signature")

	// ErrSessionFormat: a socket id is not a reader session's.
	ErrSessionFormat = errors.New("not a session id")
	// ErrSessionSignature: a session id was not minted with the app secret.
	ErrSessionSignature = errors.New("session id not issued here")
	// ErrSessionExpired: a session id is past its end.
	ErrSessionExpired = errors.New("session expired")
)

// failure is a precise message filed under a sentinel.
type failure struct {
	kind error
	msg  string
}

func (f *failure) Error() string { return f.msg }
func (f *failure) Unwrap() error { return f.kind }

func fail(kind error, format string, args ...any) error {
	return &failure{kind: kind, msg: fmt.Sprintf(format, args...)}
}
