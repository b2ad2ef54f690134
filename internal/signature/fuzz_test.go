package signature_test

import (
	"bytes"
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/herald-ws/herald/internal/signature"
)

var requestSentinels = []error{signature.ErrBadRequest, signature.ErrUnknownKey, signature.ErrAuthVersion,
	signature.ErrStaleTimestamp, signature.ErrBodyMD5, signature.ErrSignature}

// normalize is what a signature must pin down: the query as a map from
// lowercased key to its values, auth_signature included.
func normalize(q url.Values) map[string][]string {
	m := make(map[string][]string, len(q))
	for k, vs := range q {
		lk := strings.ToLower(k)
		m[lk] = append(m[lk], vs...)
	}
	for _, vs := range m {
		slices.Sort(vs)
	}
	return m
}

func sameQuery(a, b url.Values) bool {
	na, nb := normalize(a), normalize(b)
	if len(na) != len(nb) {
		return false
	}
	for k, va := range na {
		if vb, ok := nb[k]; !ok || !slices.Equal(va, vb) {
			return false
		}
	}
	return true
}

// FuzzVerifyRequest signs a request built from the inputs, checks that it
// round-trips through the wire encoding, then changes one byte of the wire
// query, the body or the path. VerifyRequest must never panic, must file
// every failure under exactly one sentinel, and may accept the changed
// request only when the change means nothing (a key's case, an escape).
func FuzzVerifyRequest(f *testing.F) {
	f.Add("POST", "/apps/3/events", "", []byte(docBody), uint8(0), uint16(30), byte('x'))
	f.Add("POST", "/apps/3/events", "", []byte(docBody), uint8(1), uint16(5), byte('y'))
	f.Add("GET", "/apps/3/channels", "filter_by_prefix=presence-&info=user_count", []byte(nil), uint8(0), uint16(3), byte('&'))
	f.Add("GET", "/apps/3/channels/presence-room/users", "", []byte(nil), uint8(2), uint16(9), byte('%'))
	f.Add("GET", "/apps/3/channels/private-a", "info=subscription_count", []byte(nil), uint8(3), uint16(0), byte('A'))
	f.Add("POST", "/apps/3/batch_events", "socket_id=1.2", []byte(`{"batch":[]}`), uint8(3), uint16(100), byte('='))
	f.Add("POST", "/apps/3/users/u1/terminate_connections", "", []byte("{}"), uint8(1), uint16(0), byte('}'))
	f.Fuzz(func(t *testing.T, method, path, rawQuery string, body []byte, target uint8, pos uint16, b byte) {
		if len(body) > 1<<12 || len(rawQuery) > 1<<10 || len(path) > 1<<10 {
			t.Skip()
		}
		q, _ := url.ParseQuery(rawQuery) // a partial parse is still a query to sign
		signed := signature.SignRequest(testKey, testSecret, method, path, q, body, testNow)
		wire := signed.Encode()
		orig, err := url.ParseQuery(wire)
		if err != nil {
			t.Fatalf("ParseQuery(Encode()) = %v", err)
		}
		err = signature.VerifyRequest(testKey, testSecret, method, path, orig, body, testNow, 0)
		if err != nil && !errors.Is(err, signature.ErrBadRequest) {
			t.Fatalf("signed request refused: %v\nmethod %q path %q query %q", err, method, path, wire)
		}
		m2, p2, w2, b2 := method, path, []byte(wire), bytes.Clone(body)
		switch target % 4 {
		case 0:
			w2[int(pos)%len(w2)] = b
		case 1:
			if len(b2) == 0 {
				b2 = []byte{b}
			} else {
				b2[int(pos)%len(b2)] = b
			}
		case 2:
			p2 = mutate(path, pos, b)
		case 3:
			w2 = slices.Insert(w2, int(pos)%(len(w2)+1), b)
		}
		mq, err := url.ParseQuery(string(w2))
		if err != nil {
			return // the HTTP layer would refuse it before us
		}
		err = signature.VerifyRequest(testKey, testSecret, m2, p2, mq, b2, testNow, 0)
		if err == nil {
			if p2 != path || !bytes.Equal(b2, body) || !sameQuery(mq, orig) {
				t.Fatalf("changed request accepted:\n path %q -> %q\n query %q -> %q\n body %q -> %q", path, p2, wire, w2, body, b2)
			}
			return
		}
		n := 0
		for _, s := range requestSentinels {
			if errors.Is(err, s) {
				n++
			}
		}
		if n != 1 || err.Error() == "" {
			t.Fatalf("error %q matches %d sentinels", err, n)
		}
		// Nothing in the message may depend on the secret: with another
		// secret a failure of the same kind must read the same.
		other := signature.VerifyRequest(testKey, "another secret", m2, p2, mq, b2, testNow, 0)
		// An app that does not exist reads exactly as one whose secret the
		// caller lacks.
		if refused := signature.RefuseRequest(m2, p2, mq, testNow, 0); refused == nil || refused.Error() != other.Error() {
			t.Fatalf("no such app: %v\nwrong secret: %v", refused, other)
		}
		for _, s := range requestSentinels {
			if errors.Is(err, s) && errors.Is(other, s) && other.Error() != err.Error() {
				t.Fatalf("message depends on the secret:\n %v\n %v", err, other)
			}
		}
	})
}

func mutate(s string, pos uint16, b byte) string {
	if s == "" {
		return string(b)
	}
	buf := []byte(s)
	buf[int(pos)%len(buf)] = b
	return string(buf)
}

// FuzzVerifyChannelAuth checks that a value from ChannelAuth verifies, that an
// arbitrary or one-byte-changed value is refused under exactly one sentinel
// unless it is the genuine value, and that no message depends on the secret
// (so none can reveal the expected digest).
func FuzzVerifyChannelAuth(f *testing.F) {
	f.Add(docSocket, "private-foobar", "", "", uint16(0), byte('0'))
	f.Add(docSocket, "presence-foobar", docPresenceData, docKey+":afaed3695da2ffd16931f457e338e6c9f2921fa133ce7dac49f529792be6304c", uint16(70), byte('b'))
	f.Add("1.1", "private-encrypted-x", "", "k:"+strings.Repeat("a", 64), uint16(3), byte(':'))
	f.Add("1.1", "private-x", "", ":::", uint16(1), byte('A'))
	f.Fuzz(func(t *testing.T, socketID, channel, channelData, auth string, pos uint16, b byte) {
		genuine := signature.ChannelAuth(docKey, docSecret, socketID, channel, channelData)
		msg := socketID + ":" + channel
		if channelData != "" {
			msg += ":" + channelData
		}
		expected := refHMAC(docSecret, msg)
		if genuine != docKey+":"+expected {
			t.Fatalf("ChannelAuth = %s, want %s:%s", genuine, docKey, expected)
		}
		if err := signature.VerifyChannelAuth(docKey, docSecret, socketID, channel, channelData, genuine); err != nil {
			t.Fatalf("genuine value refused: %v", err)
		}
		for _, candidate := range []string{auth, mutate(genuine, pos, b)} {
			err := signature.VerifyChannelAuth(docKey, docSecret, socketID, channel, channelData, candidate)
			if err == nil {
				if candidate != genuine {
					t.Fatalf("forged value %q accepted (genuine %q)", candidate, genuine)
				}
				continue
			}
			n := 0
			for _, s := range []error{signature.ErrAuthFormat, signature.ErrAuthKey, signature.ErrAuthSignature} {
				if errors.Is(err, s) {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("error %q matches %d sentinels", err, n)
			}
			// Nothing in the message may depend on the secret: with another
			// secret the same value must fail with the same words.
			if other := signature.VerifyChannelAuth(docKey, "another secret", socketID, channel, channelData, candidate); other == nil || other.Error() != err.Error() {
				t.Fatalf("message depends on the secret:\n %v\n %v", err, other)
			}
		}
	})
}
