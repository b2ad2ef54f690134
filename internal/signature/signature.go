// Package signature holds every HMAC Herald checks or makes: the auth values
// of private and presence subscriptions, user sign-in, the signed query of the
// Pusher HTTP API, and the X-Pusher-Signature header of webhooks.
//
// Every signature is a lowercase hex HMAC-SHA256 keyed with the app secret,
// exactly as Pusher's SDKs write it; comparisons run in constant time. The
// package is pure: no I/O, no clock (callers pass now), no shared state, so
// every function is safe to call from any number of goroutines.
//
// Failures are values wrapping one of the exported sentinels (ErrAuthFormat,
// ErrSignature, …), so callers branch with errors.Is and show Error() to the
// client: the message says what was wrong without ever revealing the digest
// Herald expected, which would hand a forger a valid signature.
package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"io"
)

// Sign returns hex(HMAC-SHA256(secret, msg)).
func Sign(secret, msg string) string {
	m := hmac.New(sha256.New, []byte(secret))
	_, _ = io.WriteString(m, msg) // a hash.Hash never returns an error
	return hex.EncodeToString(m.Sum(nil))
}

// Webhook returns the X-Pusher-Signature header value for a webhook body:
// hex HMAC-SHA256 of the body, keyed with the app secret.
func Webhook(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	_, _ = m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Equal compares two hex signatures in constant time, so the time a check
// takes tells a forger nothing about how many leading characters were right.
// Only the lengths leak, and a signature's length is public. The comparison is
// exact: Pusher's SDKs all write lowercase hex.
func Equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// isSigHex reports whether s has the shape of a signature: 64 lowercase hex
// digits, the hex form of a SHA-256 HMAC.
func isSigHex(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
