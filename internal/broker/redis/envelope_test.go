package redis

import (
	"testing"

	"github.com/herald-ws/herald/internal/broker"
)

func TestEnvelopeRoundTrip(t *testing.T) {
	for _, m := range []broker.Message{
		{App: "a", Channel: "c", Frame: []byte(`{"event":"e"}`)},
		{App: "app:1", Channel: "private-cache-x", Frame: []byte(`{}`), Exclude: "123.456", Cache: true},
		{App: "", Channel: "", Frame: []byte{}},
	} {
		env, err := decodeEnvelope(messageHeader(m) + string(m.Frame))
		if err != nil || env.token != 0 || env.msg.App != m.App || env.msg.Channel != m.Channel ||
			env.msg.Exclude != m.Exclude || env.msg.Cache != m.Cache || string(env.msg.Frame) != string(m.Frame) {
			t.Errorf("%+v: decoded %+v, %v", m, env, err)
		}
	}
	env, err := decodeEnvelope(markerEnvelope("a", "c", 42))
	if err != nil || env.token != 42 || env.msg.App != "a" || env.msg.Channel != "c" {
		t.Errorf("marker: %+v, %v", env, err)
	}
	for _, bad := range []string{"", "x1:a", "m", "m1:a1:c0:", "m9:a", "m-1:a", "r1:a1:c1:0", "r1:a1:c2:42extra", "m99999999999:a"} {
		if _, err := decodeEnvelope(bad); err == nil {
			t.Errorf("%q decoded", bad)
		}
	}
}
