package session

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/herald-ws/herald/internal/pusher"
)

// Drain closes one session every window/n, and the
// rest at once when its context ends; a session still open keeps
// receiving, and its queued frames go before its close. The clock is
// synctest's, so the schedule is checked exactly.
func TestDrainSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, nil)
		const n, window = 10, 10 * time.Second
		clients := make([]*client, n)
		for i := range clients {
			clients[i] = h.open()
			clients[i].subscribe("news", "", "")
			clients[i].one("pusher_internal:subscription_succeeded")
		}
		if err := h.mgr.Node().Publish(t.Context(), h.app, []string{"news"}, "before", `{}`, ""); err != nil {
			t.Fatal(err)
		}
		closed := func() (k int) {
			for _, c := range clients {
				if c.dead.Load() {
					k++
				}
			}
			return k
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { h.mgr.Drain(ctx, window); close(done) }()
		synctest.Wait()
		if k := closed(); k != 1 {
			t.Fatalf("%d closed at the start, want 1", k)
		}
		if h.mgr.Accepting() {
			t.Error("still accepting while draining")
		}
		time.Sleep(4*time.Second + time.Millisecond) // turns at 0, 1 s, … 4 s
		synctest.Wait()
		if k := closed(); k != 5 {
			t.Fatalf("%d closed after 4 s, want 5", k)
		}
		cancel() // out of time: the rest go at once
		<-done
		if k := closed(); k != n {
			t.Fatalf("%d closed after the context ended, want %d", k, n)
		}
		for i, c := range clients {
			ev := c.events()
			if len(ev) != 2 || ev[0].Event != "before" || ev[1].Event != "pusher:error" {
				t.Fatalf("client %d frames %+v, want the event then pusher:error", i, ev)
			}
			if closing, code := c.closing(); !closing || code != pusher.CodeGeneric {
				t.Fatalf("client %d: closing %v code %d", i, closing, code)
			}
		}
	})
}
