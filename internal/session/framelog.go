package session

import (
	"bytes"
	"regexp"
	"strconv"
)

// Frame logging (herald serve --debug): every frame in and out of every
// session at debug level, like reverb:start --debug. It is for a developer
// watching one app, not for production: it is off unless the Manager's
// LogFrames is set, and then costs one bool check per frame.
//
// The log must never hold a credential, so each frame is redacted before
// it is clipped: an auth value keeps its app key (public, and what tells a
// wrong key from a wrong signature) and loses its signature; a
// shared_secret (private-encrypted- channels) is dropped whole; any 64-hex
// run (an HMAC-SHA256 in any other field) and the app's secret, should a
// client ever send it, are replaced too. channel_data and user_data stay:
// they are what a developer debugs, and the signature is over them, not in
// them.

// maxLoggedFrame is how much of a frame is logged; the rest is counted.
const maxLoggedFrame = 1024

const redacted = "[redacted]"

var (
	// "auth":"key:signature", also inside a JSON-encoded data string
	// (\"auth\":\"key:signature\").
	authValue = regexp.MustCompile(`(\\?"auth\\?"\s*:\s*\\?")([^"\\:]*:)?[^"\\]*`)
	// "shared_secret":"base64", likewise.
	sharedSecretValue = regexp.MustCompile(`(\\?"shared_secret\\?"\s*:\s*\\?")[^"\\]*`)
	// An HMAC-SHA256 in hex, wherever it is.
	hexSignature = regexp.MustCompile(`[0-9a-fA-F]{64}`)
)

// logFrame logs one frame; dir is "in" or "out". Callers check
// s.mgr.LogFrames first, so that nothing is formatted when it is off.
func (s *Session) logFrame(dir string, frame []byte) {
	text, size := redactFrame(frame, s.app.Secret), len(frame)
	attrs := []any{"dir", dir, "frame", text}
	if size > maxLoggedFrame {
		attrs = append(attrs, "bytes", size)
	}
	s.log.Debug("frame", attrs...)
}

// redactFrame returns frame with its credentials replaced (see above),
// clipped to maxLoggedFrame bytes.
func redactFrame(frame []byte, secret string) string {
	out := authValue.ReplaceAll(frame, []byte("${1}${2}"+redacted))
	out = sharedSecretValue.ReplaceAll(out, []byte("${1}"+redacted))
	out = hexSignature.ReplaceAllLiteral(out, []byte(redacted))
	if len(secret) >= 8 { // a shorter one would redact common words
		out = bytes.ReplaceAll(out, []byte(secret), []byte(redacted))
	}
	if len(out) > maxLoggedFrame {
		return string(bytes.ToValidUTF8(out[:maxLoggedFrame], nil)) + "…"
	}
	return string(out)
}

// closeLogKey keys the rate limit of close lines by code alone: the reason
// may hold client text (a channel name), and keys must be bounded.
func closeLogKey(code int) string { return "closing connection: " + strconv.Itoa(code) }
