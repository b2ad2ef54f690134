package node

import (
	"context"
	"testing"
	"time"

	"github.com/herald-ws/herald/internal/apps"
	"github.com/herald-ws/herald/internal/pusher"
)

// A publish retried with its key reaches subscribers once and answers the
// original positions; on a channel without history the key has no effect;
// a retry of a multi-channel publish dedupes per channel.
func TestPublishOnce(t *testing.T) {
	n, a := newNode(t, apps.History{Enabled: true, Channels: []string{"news*"}, MaxEvents: 10, TTL: time.Minute})
	ctx := context.Background()
	subs := map[string]*recorder{}
	for _, ch := range []string{"news", "news-2", "plain"} {
		r := &recorder{id: "1." + ch}
		if _, err := a.Subscribe(ch, pusher.ParseChannel(ch), r, nil, 0, nil, false); err != nil {
			t.Fatal(err)
		}
		r.take()
		subs[ch] = r
	}
	first, err := n.PublishOnce(ctx, a, []string{"news", "plain"}, "e", "1", "", "job-7")
	if err != nil || first[0].Offset != 1 {
		t.Fatalf("first: %v %v", first, err)
	}
	again, err := n.PublishOnce(ctx, a, []string{"news", "news-2", "plain"}, "e", "1", "", "job-7")
	if err != nil || again[0] != first[0] || again[1].Offset != 1 || again[2].Epoch != "" {
		t.Fatalf("retry: %v %v (first %v)", again, err, first)
	}
	if got := events(subs["news"].take()); len(got) != 1 || got[0].Offset != 1 {
		t.Errorf("news got %+v, want the event once", got)
	}
	if got := events(subs["news-2"].take()); len(got) != 1 {
		t.Errorf("news-2 got %+v, want the event (a channel the first publish missed)", got)
	}
	if got := events(subs["plain"].take()); len(got) != 2 {
		t.Errorf("plain (no history) got %d events, want 2: the key has no effect there", len(got))
	}
	// Unkeyed publishes are never deduplicated.
	_ = n.Publish(ctx, a, []string{"news"}, "e", "1", "")
	_ = n.Publish(ctx, a, []string{"news"}, "e", "1", "")
	if got := events(subs["news"].take()); len(got) != 2 {
		t.Errorf("unkeyed publishes: got %d, want 2", len(got))
	}
}
