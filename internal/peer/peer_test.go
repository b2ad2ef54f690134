package peer

import (
	"net/netip"
	"testing"
	"time"
)

func TestClient(t *testing.T) {
	trusted, err := ParseTrusted([]string{"10.0.0.0/8", " 127.0.0.1 ", "::1", ""})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, remote string
		xff          []string
		want         string
	}{
		{"direct", "203.0.113.7:5000", nil, "203.0.113.7"},
		{"untrusted peer: header ignored", "203.0.113.7:5000", []string{"198.51.100.1"}, "203.0.113.7"},
		{"trusted proxy", "10.1.2.3:5000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"ipv6 loopback proxy", "[::1]:5000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"spoofed left part", "10.1.2.3:5000", []string{"1.2.3.4, 198.51.100.1"}, "198.51.100.1"},
		{"proxy chain", "127.0.0.1:5000", []string{"198.51.100.1, 10.9.9.9"}, "198.51.100.1"},
		{"several headers", "127.0.0.1:5000", []string{"1.2.3.4", "198.51.100.1, 10.9.9.9"}, "198.51.100.1"},
		{"all trusted", "127.0.0.1:5000", []string{"10.9.9.9"}, "10.9.9.9"},
		{"garbage stops the walk", "10.1.2.3:5000", []string{"198.51.100.1, nonsense"}, "10.1.2.3"},
		{"mapped v4", "[::ffff:10.1.2.3]:5000", []string{"198.51.100.1"}, "198.51.100.1"},
	}
	for _, c := range cases {
		got, ok := trusted.Client(c.remote, c.xff)
		if !ok || got.String() != c.want {
			t.Errorf("%s: got %v %v, want %s", c.name, got, ok, c.want)
		}
	}
	if got, _ := Trusted(nil).Client("10.1.2.3:1", []string{"198.51.100.1"}); got.String() != "10.1.2.3" {
		t.Errorf("no trusted proxies: %v", got)
	}
	if _, ok := trusted.Client("pipe", nil); ok {
		t.Error("a non-IP remote address")
	}
	if _, err := ParseTrusted([]string{"10.0.0.0/8", "nginx"}); err == nil || err.Error() != `trusted proxy "nginx" is neither an IP address nor a CIDR prefix like 10.0.0.0/8` {
		t.Errorf("bad proxy: %v", err)
	}
}

func TestLimiterConnections(t *testing.T) {
	if NewLimiter(Limits{}) != nil {
		t.Fatal("a limiter with every limit off")
	}
	l := NewLimiter(Limits{MaxConns: 2})
	a, b := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2")
	now := time.Unix(1000, 0)
	for i := range 2 {
		if l.Acquire(a, now) != OK {
			t.Fatalf("connection %d refused", i)
		}
	}
	if got := l.Acquire(a, now); got != TooMany {
		t.Fatalf("third: %v, want TooMany", got)
	}
	if l.Acquire(b, now) != OK {
		t.Fatal("another address refused")
	}
	l.Release(a, now)
	if l.Acquire(a, now) != OK {
		t.Fatal("a released slot not reusable")
	}
	for range 2 {
		l.Release(a, now)
	}
	l.Release(b, now)
	if l.Len() != 0 {
		t.Fatalf("%d addresses kept with no connection", l.Len())
	}
}

func TestLimiterRate(t *testing.T) {
	l := NewLimiter(Limits{Rate: 10, Burst: 3}) // one per 100 ms, bursts of 3
	a := netip.MustParseAddr("2001:db8::1")
	now := time.Unix(1000, 0)
	for i := range 3 {
		if got := l.Acquire(a, now); got != OK {
			t.Fatalf("burst %d: %v", i, got)
		}
		l.Release(a, now)
	}
	if got := l.Acquire(a, now); got != TooFast {
		t.Fatalf("over the burst: %v, want TooFast", got)
	}
	if got := l.Acquire(a, now.Add(99*time.Millisecond)); got != TooFast {
		t.Fatalf("before the next token: %v", got)
	}
	if got := l.Acquire(a, now.Add(100*time.Millisecond)); got != OK {
		t.Fatalf("after 100 ms: %v", got)
	}
	l.Release(a, now.Add(100*time.Millisecond))
	if l.Len() != 1 {
		t.Fatal("the budget's state was dropped while not full")
	}
	l.Sweep(now.Add(time.Second))
	if l.Len() != 0 {
		t.Fatal("Sweep kept a full budget")
	}
}
