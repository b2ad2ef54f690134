package node

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/herald-ws/herald/internal/broker"
)

func TestWatchWakesOnItsChannelOnly(t *testing.T) {
	n, a := newNode(t, allHistory)
	w := a.Watch("news")
	ready := w.Ready()
	if err := n.Publish(context.Background(), a, []string{"other"}, "e", "1", ""); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ready:
		t.Fatal("woken by another channel's event")
	default:
	}
	if err := n.Publish(context.Background(), a, []string{"news"}, "e", "1", ""); err != nil {
		t.Fatal(err)
	}
	<-ready // would hang (and time the test out) without the wake-up
	if w.Ready() == ready {
		t.Error("Ready after a wake-up returned the closed channel")
	}
	w.Stop()
	sh := a.watch.shard("news")
	if len(sh.m) != 0 || a.watch.n.Load() != 0 {
		t.Errorf("a stopped watch left state: %d channels, %d watches", len(sh.m), a.watch.n.Load())
	}
}

// TestWatchLoopMissesNothing is the long-poll loop under racing
// publishers: each reader takes Ready, reads history after its position,
// and waits; every reader must see every offset exactly once, in order.
func TestWatchLoopMissesNothing(t *testing.T) {
	h := allHistory
	h.MaxEvents = 1000 // readers must not fall out of history
	n, a := newNode(t, h)
	const publishers, each, readers = 8, 50, 20
	total := uint64(publishers * each)
	var wg sync.WaitGroup
	errs := make(chan error, readers)
	start := make(chan struct{})
	for range readers {
		w := a.Watch("c")
		wg.Go(func() {
			defer w.Stop()
			var since broker.Position // nothing seen yet
			<-start
			for since.Offset < total {
				ready := w.Ready()
				pos, evs, ok, _ := a.ReadHistory("c", since)
				if !ok {
					errs <- fmt.Errorf("resume from %+v failed at %+v", since, pos)
					return
				}
				for _, e := range evs {
					if e.Offset != since.Offset+1 {
						errs <- fmt.Errorf("offset %d after %d", e.Offset, since.Offset)
						return
					}
					since = broker.Position{Epoch: pos.Epoch, Offset: e.Offset}
				}
				if len(evs) == 0 {
					<-ready
				}
			}
		})
	}
	close(start)
	for range publishers {
		wg.Go(func() {
			for range each {
				if err := n.Publish(context.Background(), a, []string{"c"}, "e", "x", ""); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
