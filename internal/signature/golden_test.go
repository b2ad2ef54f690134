package signature_test

import (
	"net/url"
	"testing"
	"time"

	"github.com/herald-ws/herald/internal/signature"
)

// Pusher's published worked examples: credentials, inputs and the exact
// digests from pusher.com/docs/channels/library_auth_reference/auth-signatures
// and .../rest-api. They check the strings being signed, which a test that
// signs with the code under test cannot.
const (
	docKey    = "278d425bdf160c739803"
	docSecret = "7ad3773142a6692b25b8"
	docSocket = "1234.1234"

	// docPresenceData is the presence example's channel_data. The page now
	// prints the name as "Mr. Channels" next to this digest, but the digest
	// is of "Mr. Pusher" (the example predates the product rename; every SDK
	// test suite uses "Mr. Pusher").
	docPresenceData = `{"user_id":10,"user_info":{"name":"Mr. Pusher"}}`
	docUserData     = `{"id":"12345"}`

	docBody      = `{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}`
	docTimestamp = 1353088179
	docBodyMD5   = "ec365a775a4cd0599faeb73354201b6f"
	docRESTSig   = "da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"
)

func TestGoldenChannelAuth(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, channel, data, want string
	}{
		{"private", "private-foobar", "", docKey + ":58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"},
		{"presence", "presence-foobar", docPresenceData, docKey + ":afaed3695da2ffd16931f457e338e6c9f2921fa133ce7dac49f529792be6304c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := signature.ChannelAuth(docKey, docSecret, docSocket, tt.channel, tt.data); got != tt.want {
				t.Fatalf("ChannelAuth = %s, want %s", got, tt.want)
			}
			if err := signature.VerifyChannelAuth(docKey, docSecret, docSocket, tt.channel, tt.data, tt.want); err != nil {
				t.Fatalf("VerifyChannelAuth(docs value) = %v", err)
			}
		})
	}
}

func TestGoldenUserAuth(t *testing.T) {
	t.Parallel()
	const want = docKey + ":4708d583dada6a56435fb8bc611c77c359a31eebde13337c16ab43aa6de336ba"
	if got := signature.UserAuth(docKey, docSecret, docSocket, docUserData); got != want {
		t.Fatalf("UserAuth = %s, want %s", got, want)
	}
	if err := signature.VerifyUserAuth(docKey, docSecret, docSocket, docUserData, want); err != nil {
		t.Fatalf("VerifyUserAuth(docs value) = %v", err)
	}
}

func TestGoldenRESTRequest(t *testing.T) {
	t.Parallel()
	now := time.Unix(docTimestamp, 0)
	got := signature.SignRequest(docKey, docSecret, "POST", "/apps/3/events", nil, []byte(docBody), now)
	want := url.Values{
		"auth_key":       {docKey},
		"auth_timestamp": {"1353088179"},
		"auth_version":   {"1.0"},
		"body_md5":       {docBodyMD5},
		"auth_signature": {docRESTSig},
	}
	if got.Encode() != want.Encode() {
		t.Fatalf("SignRequest =\n %s\nwant\n %s", got.Encode(), want.Encode())
	}
	// The request exactly as the docs write it on the wire.
	q, err := url.ParseQuery("auth_key=" + docKey + "&auth_timestamp=1353088179&auth_version=1.0&body_md5=" + docBodyMD5 + "&auth_signature=" + docRESTSig)
	if err != nil {
		t.Fatal(err)
	}
	if err := signature.VerifyRequest(docKey, docSecret, "POST", "/apps/3/events", q, []byte(docBody), now, 0); err != nil {
		t.Fatalf("VerifyRequest(docs request) = %v", err)
	}
}
