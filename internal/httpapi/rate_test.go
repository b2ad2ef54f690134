package httpapi

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/herald-ws/herald/internal/apps"
	"github.com/herald-ws/herald/internal/broker/memory"
	"github.com/herald-ws/herald/internal/node"
)

func TestRateTake(t *testing.T) {
	r := newRate(10, 3) // one per 100 ms, bursts of 3
	now := time.Unix(1000, 0).UnixNano()
	for i := range 3 {
		if _, ok := r.take(now); !ok {
			t.Fatalf("burst %d refused", i)
		}
	}
	wait, ok := r.take(now)
	if ok || wait != 100*time.Millisecond {
		t.Fatalf("over the burst: %v %v, want refused for 100ms", wait, ok)
	}
	if _, ok := r.take(now + int64(100*time.Millisecond)); !ok {
		t.Fatal("refused once a request's worth of time passed")
	}
}

// An app over its API rate gets 429 with Retry-After, from the REST API
// and /broadcast alike (one budget); another app is unaffected, and a
// request that fails authentication spends nothing.
func TestAPIRate(t *testing.T) {
	slow := apps.DefaultLimits
	slow.MaxAPIRequestsPerSecond, slow.MaxAPIRequestsBurst = 1, 2
	reg, err := apps.NewRegistry([]*apps.App{
		{ID: "1", Key: "key1", Secret: "s1", Enabled: true, Limits: slow, BroadcastToken: token1},
		{ID: "2", Key: "key2", Secret: "s2", Enabled: true, Limits: apps.DefaultLimits},
	})
	if err != nil {
		t.Fatal(err)
	}
	h := New(node.New(reg, memory.New(), quiet()), "", quiet())
	now := time.Unix(1000, 0)
	h.now = func() time.Time { return now }
	publish := func(id, key, secret string) *http.Response {
		body := []byte(`{"name":"e","channel":"c","data":"{}"}`)
		return serve(h, "POST", signedTarget("POST", "/apps/"+id+"/events", "/apps/"+id+"/events", key, secret, body, now), body).Result()
	}
	if res := publish("1", "key1", "wrong-secret"); res.StatusCode != 401 {
		t.Fatalf("bad signature: %d", res.StatusCode)
	}
	for i := range 2 {
		if res := publish("1", "key1", "s1"); res.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, res.StatusCode)
		}
	}
	res := publish("1", "key1", "s1")
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") != "1" {
		t.Fatalf("over the rate: %d, Retry-After %q", res.StatusCode, res.Header.Get("Retry-After"))
	}
	if w := postBroadcast(h, "Bearer "+token1, `{"channel":"c","data":{}}`); w.Code != http.StatusTooManyRequests || !strings.Contains(w.Body.String(), "max_api_requests_per_second") {
		t.Fatalf("/broadcast over the same budget: %d %s", w.Code, w.Body)
	}
	if res := publish("2", "key2", "s2"); res.StatusCode != 200 {
		t.Fatalf("the other app: %d", res.StatusCode)
	}
	now = now.Add(time.Second)
	if res := publish("1", "key1", "s1"); res.StatusCode != 200 {
		t.Fatalf("a second later: %d", res.StatusCode)
	}
}
