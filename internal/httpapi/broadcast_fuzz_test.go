package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/herald-ws/herald/internal/apps"
	"github.com/herald-ws/herald/internal/node"
	"github.com/herald-ws/herald/internal/pusher"
)

// FuzzBroadcastBody checks that any /broadcast body is either refused with
// 400 or 413, or turned into an event that is within the app's limits,
// whose data is the compact JSON of message.data, and whose channels are
// valid and distinct.
func FuzzBroadcastBody(f *testing.F) {
	for _, seed := range []string{
		`{"message":{"type":"ticket_created","data":{"id":7,"subject":"Printer"}}}`,
		`{"message":{"type":"ticket_created","data":{"id":7}},"channel":"tickets"}`,
		`{"message":{"type":"e","data":"hello"},"channels":["a","private-b","presence-c"]}`,
		`{"message":{"type":"e","data":[1,2.5,null,true]},"channels":["a","a"]}`,
		`{"message":{"type":"e"}}`,
		`{"message":{"type":"pusher:ping","data":{}}}`,
		`{"message":{"type":5}}`,
		`{"message":{"type":"e","data":{"a":"\u00e9\"<>"}}, "channel":"private-encrypted-x"}`,
		`{"message":{"type":"e"},"channel":"a","channels":["b"]}`,
		`{"message":{"type":"e"}} trailing`,
		`{"message":{"type":"e"},"idempotency_key":"job-42"}`,
		`{"message":{"type":"e"},"idempotency_key":""}`,
		`{"message":{"type":"e"},"idempotency_key":"a\u0000"}`,
		`{"message":{"type":"e"},"idempotency_key":5}`,
		`[]`,
		``,
	} {
		f.Add([]byte(seed))
	}
	lim := apps.DefaultLimits
	lim.MaxEventPayloadBytes, lim.MaxChannelsPerEvent = 64, 3
	a := &node.App{App: &apps.App{ID: "1", Limits: lim, BroadcastChannel: "news"}}
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := parseBroadcast(a, body)
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) || (ae.status != http.StatusBadRequest && ae.status != http.StatusRequestEntityTooLarge) || ae.msg == "" {
				t.Fatalf("refusal %#v for %q, want a 400 or 413 apiError", err, body)
			}
			return
		}
		if pusher.ValidateEventName(ev.name, lim.MaxEventNameLength) != nil {
			t.Fatalf("event name %q accepted", ev.name)
		}
		if len(ev.data) > lim.MaxEventPayloadBytes || !json.Valid([]byte(ev.data)) {
			t.Fatalf("data %q accepted", ev.data)
		}
		var b struct {
			Message struct{ Data json.RawMessage }
		}
		if err := json.Unmarshal(body, &b); err != nil {
			t.Fatalf("accepted a body encoding/json refuses: %v", err)
		}
		want := []byte("null")
		if len(b.Message.Data) > 0 {
			var buf bytes.Buffer
			_ = json.Compact(&buf, b.Message.Data)
			want = buf.Bytes()
		}
		if ev.data != string(want) {
			t.Fatalf("data %q, want %q", ev.data, want)
		}
		if len(ev.channels) == 0 || len(ev.channels) > lim.MaxChannelsPerEvent {
			t.Fatalf("%d channels accepted", len(ev.channels))
		}
		if k := ev.key; len(k) > maxIdempotencyKey || strings.IndexFunc(k, func(r rune) bool { return r < ' ' || r > '~' }) >= 0 {
			t.Fatalf("idempotency key %q accepted", k)
		}
		seen := map[string]bool{}
		for _, ch := range ev.channels {
			if pusher.ValidateChannelName(ch, lim.MaxChannelNameLength) != nil || seen[ch] ||
				pusher.ParseChannel(ch).Kind == pusher.PrivateEncrypted {
				t.Fatalf("channels %q accepted", ev.channels)
			}
			seen[ch] = true
		}
	})
}
