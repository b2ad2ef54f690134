package signature

import (
	"strconv"
	"strings"
)

// ChannelAuth returns the "key:hexsig" auth value a subscription to a private
// channel (channelData == "") or a presence channel carries. The string signed
// is "socketID:channel", with ":channelData" appended for presence, byte for
// byte as the client will send channel_data.
func ChannelAuth(key, secret, socketID, channel, channelData string) string {
	return key + ":" + Sign(secret, channelMessage(socketID, channel, channelData))
}

// VerifyChannelAuth checks the auth value of a pusher:subscribe against the
// socket, channel and channel_data it came with. The error wraps ErrAuthFormat,
// ErrAuthKey or ErrAuthSignature; its message follows Pusher's wording and
// names the string that should have been signed, never the expected digest.
func VerifyChannelAuth(key, secret, socketID, channel, channelData, auth string) error {
	return verifyAuth("subscription", key, secret, channelMessage(socketID, channel, channelData), auth)
}

// UserAuth returns the "key:hexsig" auth value of a pusher:signin, signed
// over "socketID::user::userData".
func UserAuth(key, secret, socketID, userData string) string {
	return key + ":" + Sign(secret, userMessage(socketID, userData))
}

// VerifyUserAuth checks the auth value of a pusher:signin against the socket
// and the user_data string it came with; errors as for VerifyChannelAuth.
func VerifyUserAuth(key, secret, socketID, userData, auth string) error {
	return verifyAuth("sign-in", key, secret, userMessage(socketID, userData), auth)
}

func channelMessage(socketID, channel, channelData string) string {
	if channelData == "" {
		return socketID + ":" + channel
	}
	return socketID + ":" + channel + ":" + channelData
}

func userMessage(socketID, userData string) string {
	return socketID + "::user::" + userData
}

// verifyAuth checks a "key:hexsig" value against msg. The signature is what
// follows the last colon, so a key that itself holds a colon is reported as
// the wrong key rather than as a malformed value.
func verifyAuth(what, key, secret, msg, auth string) error {
	i := strings.LastIndexByte(auth, ':')
	if i < 0 {
		return fail(ErrAuthFormat, "Invalid %s auth data %s: expected \"<key>:<signature>\"", what, clip(auth))
	}
	gotKey, sig := auth[:i], auth[i+1:]
	if !isSigHex(sig) {
		return fail(ErrAuthFormat, "Invalid %s auth data: the signature %s is not 64 lowercase hex digits (HMAC SHA256)", what, clip(sig))
	}
	if gotKey != key {
		return fail(ErrAuthKey, "Invalid key in %s auth data: %s", what, clip(gotKey))
	}
	if !Equal(sig, Sign(secret, msg)) {
		return fail(ErrAuthSignature, "Invalid signature: Expected HMAC SHA256 hex digest of %s, but got %s", msg, sig)
	}
	return nil
}

// clip quotes s for an error message, cut short so a client cannot make the
// server echo kilobytes back at it.
func clip(s string) string {
	const limit = 80
	if len(s) > limit {
		return strconv.Quote(s[:limit]) + "…"
	}
	return strconv.Quote(s)
}
