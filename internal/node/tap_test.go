package node

import (
	"context"
	"strings"
	"testing"
)

// A tap sees the deliveries of its channel (or of all), with the excluded
// socket, drops what does not fit without blocking the publisher, and
// sees nothing once stopped.
func TestTap(t *testing.T) {
	n, a := newNode(t, allHistory)
	one, all, small := a.Tap("news", 10), a.Tap("", 10), a.Tap("news", 1)
	defer all.Stop()
	defer small.Stop()
	ctx := context.Background()
	if err := n.Publish(ctx, a, []string{"news"}, "e", `{"n":1}`, "1.2"); err != nil {
		t.Fatal(err)
	}
	if err := n.Publish(ctx, a, []string{"other"}, "e", `{"n":2}`, ""); err != nil {
		t.Fatal(err)
	}
	if err := n.Publish(ctx, a, []string{"news"}, "e", `{"n":3}`, ""); err != nil {
		t.Fatal(err)
	}
	got := func(tp *Tap) (out []string) {
		for {
			select {
			case f := <-tp.C():
				out = append(out, f.Channel+" "+f.Exclude+" "+string(f.Frame))
			default:
				return out
			}
		}
	}
	if g := got(one); len(g) != 2 || !strings.HasPrefix(g[0], "news 1.2 ") || !strings.Contains(g[0], `\"n\":1`) || !strings.Contains(g[1], `\"n\":3`) {
		t.Errorf("news tap got %q", g)
	}
	if g := got(all); len(g) != 3 || !strings.HasPrefix(g[1], "other  ") {
		t.Errorf("tap of all got %q", g)
	}
	if g := got(small); len(g) != 1 || small.Dropped() != 1 {
		t.Errorf("full tap got %q, dropped %d; want 1 and 1", g, small.Dropped())
	}
	one.Stop()
	one.Stop() // twice is harmless
	if err := n.Publish(ctx, a, []string{"news"}, "e", `{"n":4}`, ""); err != nil {
		t.Fatal(err)
	}
	if g := got(one); len(g) != 0 {
		t.Errorf("stopped tap got %q", g)
	}
	if a.taps.n.Load() != 2 {
		t.Errorf("live taps %d, want 2", a.taps.n.Load())
	}
}
