package signature_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/herald-ws/herald/internal/signature"
)

// refHMAC is an independent HMAC-SHA256, to cross-check the package against
// crypto/hmac used directly.
func refHMAC(secret, msg string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}

func TestSignAndEqual(t *testing.T) {
	t.Parallel()
	for _, msg := range []string{"", "a", "1234.1234:private-foobar", strings.Repeat("x", 10000)} {
		if got, want := signature.Sign("s3cret", msg), refHMAC("s3cret", msg); got != want {
			t.Errorf("Sign(%.20q) = %s, want %s", msg, got, want)
		}
	}
	a := signature.Sign("k", "m")
	if !signature.Equal(a, a) {
		t.Error("Equal(a, a) = false")
	}
	for _, b := range []string{"", a[:63], a + "0", strings.ToUpper(a), signature.Sign("k", "n")} {
		if signature.Equal(a, b) {
			t.Errorf("Equal(%s, %s) = true", a, b)
		}
	}
}

func TestUserAuthCrossCheck(t *testing.T) {
	t.Parallel()
	const key, secret, socket = "app-key", "app-secret", "123.456"
	data := `{"id":"u1","user_info":{"name":"Ada"},"watchlist":["u2"]}`
	want := key + ":" + refHMAC(secret, socket+"::user::"+data)
	if got := signature.UserAuth(key, secret, socket, data); got != want {
		t.Fatalf("UserAuth = %s, want %s", got, want)
	}
	if err := signature.VerifyUserAuth(key, secret, socket, data, want); err != nil {
		t.Fatal(err)
	}
	// A channel signature is not a sign-in signature.
	if err := signature.VerifyUserAuth(key, secret, socket, data, signature.ChannelAuth(key, secret, socket, "private-x", "")); !errors.Is(err, signature.ErrAuthSignature) {
		t.Fatalf("channel auth accepted for sign-in: %v", err)
	}
}

func TestWebhookCrossCheck(t *testing.T) {
	t.Parallel()
	body := []byte(`{"time_ms":1327078148132,"events":[{"name":"channel_occupied","channel":"test_channel"}]}`)
	if got, want := signature.Webhook("app-secret", body), refHMAC("app-secret", string(body)); got != want {
		t.Fatalf("Webhook = %s, want %s", got, want)
	}
	if signature.Webhook("app-secret", nil) != refHMAC("app-secret", "") {
		t.Fatal("Webhook(nil) differs from HMAC of the empty string")
	}
}

func TestVerifyChannelAuthFailures(t *testing.T) {
	t.Parallel()
	good := signature.ChannelAuth(docKey, docSecret, docSocket, "private-foobar", "")
	sig := good[len(docKey)+1:]
	tests := []struct {
		name, socket, channel, data, auth string
		want                              error
	}{
		{"no colon", docSocket, "private-foobar", "", sig, signature.ErrAuthFormat},
		{"empty", docSocket, "private-foobar", "", "", signature.ErrAuthFormat},
		{"short signature", docSocket, "private-foobar", "", docKey + ":" + sig[:10], signature.ErrAuthFormat},
		{"uppercase hex", docSocket, "private-foobar", "", docKey + ":" + strings.ToUpper(sig), signature.ErrAuthFormat},
		{"not hex", docSocket, "private-foobar", "", docKey + ":" + strings.Repeat("g", 64), signature.ErrAuthFormat},
		{"wrong key", docSocket, "private-foobar", "", "other:" + sig, signature.ErrAuthKey},
		{"empty key", docSocket, "private-foobar", "", ":" + sig, signature.ErrAuthKey},
		{"other socket", "1234.5678", "private-foobar", "", good, signature.ErrAuthSignature},
		{"other channel", docSocket, "private-foobaz", "", good, signature.ErrAuthSignature},
		{"channel_data added", docSocket, "private-foobar", `{"user_id":"1"}`, good, signature.ErrAuthSignature},
		{"wrong secret", docSocket, "private-foobar", "", signature.ChannelAuth(docKey, "nope", docSocket, "private-foobar", ""), signature.ErrAuthSignature},
		{"presence data changed", docSocket, "presence-foobar", `{"user_id":11}`,
			signature.ChannelAuth(docKey, docSecret, docSocket, "presence-foobar", `{"user_id":10}`), signature.ErrAuthSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := signature.VerifyChannelAuth(docKey, docSecret, tt.socket, tt.channel, tt.data, tt.auth)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			expected := signature.Sign(docSecret, tt.socket+":"+tt.channel)
			if tt.data != "" {
				expected = signature.Sign(docSecret, tt.socket+":"+tt.channel+":"+tt.data)
			}
			if strings.Contains(err.Error(), expected) && !strings.Contains(tt.auth, expected) {
				t.Fatalf("error reveals the expected digest: %v", err)
			}
		})
	}
}

func TestVerifyChannelAuthMessage(t *testing.T) {
	t.Parallel()
	bad := docKey + ":" + strings.Repeat("0", 64)
	err := signature.VerifyChannelAuth(docKey, docSecret, docSocket, "private-foobar", "", bad)
	want := "Invalid signature: Expected HMAC SHA256 hex digest of 1234.1234:private-foobar, but got " + strings.Repeat("0", 64)
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
	err = signature.VerifyChannelAuth(docKey, docSecret, docSocket, "private-foobar", "", "other:"+strings.Repeat("0", 64))
	if want := `Invalid key in subscription auth data: "other"`; err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
	long := strings.Repeat("k", 5000) + ":" + strings.Repeat("0", 64)
	if err := signature.VerifyChannelAuth(docKey, docSecret, docSocket, "private-foobar", "", long); len(err.Error()) > 200 {
		t.Fatalf("error echoes %d bytes of client input", len(err.Error()))
	}
}
