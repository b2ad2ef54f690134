package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"strconv"
	"strings"
	"time"
)

// Reader sessions. An HTTP reader of a private, presence or encrypted
// channel's history (polling, long-polling, SSE) has no socket, but the
// app's auth endpoint signs "socket_id:channel": so Herald issues it a
// socket id to have signed. The id is self-certifying, in the
// "digits.digits" form every Pusher server SDK validates:
//
//	{random}.{expires:10 digits}{mac:17 digits}
//
// random is up to 19 digits (63 random bits), expires the unix second the
// session ends, and mac the first 56 bits of an HMAC-SHA256, keyed with
// the app secret, of "herald-session:{random}.{expires}". Any node of the
// app can check one without shared state, nobody without the secret can
// make one, and a signature obtained for it stops working when it
// expires, so a leaked (socket id, auth) pair is not good forever.

const (
	expiresDigits = 10
	macDigits     = 17 // 2^56 < 10^17
)

// SessionID returns the reader-session socket id for random (its low 63
// bits are used) ending at expires.
func SessionID(secret string, random uint64, expires time.Time) string {
	r := strconv.FormatUint(random&(1<<63-1), 10)
	exp := pad(strconv.FormatInt(max(expires.Unix(), 0), 10), expiresDigits)
	return r + "." + exp + pad(strconv.FormatUint(sessionMAC(secret, r, exp), 10), macDigits)
}

// VerifySessionID checks that id is a session socket id minted with
// secret that has not expired at now. The error wraps ErrSessionFormat
// (not a session id), ErrSessionSignature (not minted with this secret)
// or ErrSessionExpired.
func VerifySessionID(secret, id string, now time.Time) error {
	r, rest, ok := strings.Cut(id, ".")
	if !ok || len(r) == 0 || len(r) > 19 || !digits(r) || len(rest) != expiresDigits+macDigits || !digits(rest) {
		return fail(ErrSessionFormat, "socket_id %s is not a session id: create one with POST /app/{key}/sessions", clip(id))
	}
	exp, macText := rest[:expiresDigits], rest[expiresDigits:]
	mac, err := strconv.ParseUint(macText, 10, 64)
	if err != nil || !hmac.Equal(u64(mac), u64(sessionMAC(secret, r, exp))) {
		return fail(ErrSessionSignature, "socket_id %s was not issued by this server for this app", clip(id))
	}
	if end, _ := strconv.ParseInt(exp, 10, 64); now.Unix() >= end {
		return fail(ErrSessionExpired, "session %s expired at %s: create a new one", clip(id), time.Unix(end, 0).UTC().Format(time.RFC3339))
	}
	return nil
}

func sessionMAC(secret, random, expires string) uint64 {
	m := hmac.New(sha256.New, []byte(secret))
	_, _ = m.Write([]byte("herald-session:" + random + "." + expires))
	return binary.BigEndian.Uint64(m.Sum(nil)) >> 8 // 56 bits
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func pad(s string, n int) string {
	if len(s) >= n {
		return s
	}
	return strings.Repeat("0", n-len(s)) + s
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
