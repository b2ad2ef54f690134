package signature_test

import (
	"net/url"
	"testing"

	"github.com/herald-ws/herald/internal/signature"
)

func BenchmarkVerifyRequest(b *testing.B) {
	body := []byte(docBody)
	q := signature.SignRequest(testKey, testSecret, "POST", testPath, url.Values{"socket_id": {"1.2"}}, body, testNow)
	b.ReportAllocs()
	for b.Loop() {
		if err := signature.VerifyRequest(testKey, testSecret, "POST", testPath, q, body, testNow, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyChannelAuth(b *testing.B) {
	auth := signature.ChannelAuth(docKey, docSecret, docSocket, "presence-foobar", docPresenceData)
	b.ReportAllocs()
	for b.Loop() {
		if err := signature.VerifyChannelAuth(docKey, docSecret, docSocket, "presence-foobar", docPresenceData, auth); err != nil {
			b.Fatal(err)
		}
	}
}
