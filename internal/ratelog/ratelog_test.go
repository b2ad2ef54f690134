package ratelog

import (
	"strconv"
	"testing"
	"time"
)

func TestBurstThenSuppressedThenReported(t *testing.T) {
	clock := time.Unix(1000, 0)
	l := New(2, time.Minute)
	l.now = func() time.Time { return clock }
	for i := range 2 {
		if ok, n := l.Allow("bad signature"); !ok || n != 0 {
			t.Fatalf("event %d: got (%v, %d), want allowed with nothing suppressed", i, ok, n)
		}
	}
	for range 5 {
		if ok, _ := l.Allow("bad signature"); ok {
			t.Fatal("an event over the burst was allowed")
		}
	}
	if ok, _ := l.Allow("unknown app"); !ok {
		t.Fatal("another key must have its own budget")
	}
	clock = clock.Add(time.Minute)
	ok, n := l.Allow("bad signature")
	if !ok || n != 5 {
		t.Fatalf("next window: got (%v, %d), want allowed reporting 5 suppressed", ok, n)
	}
}

func TestKeysAreBounded(t *testing.T) {
	l := New(1, time.Hour)
	for i := range 3 * maxKeys {
		l.Allow("k" + strconv.Itoa(i))
	}
	if len(l.keys) > maxKeys {
		t.Fatalf("limiter holds %d keys, more than %d", len(l.keys), maxKeys)
	}
}
