package httpapi

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/herald-ws/herald/internal/node"
)

// rate is an app's API request budget: a token bucket kept as one
// timestamp (GCRA), taken with a compare-and-swap so that concurrent
// requests never wait on a lock.
type rate struct {
	cost  int64 // nanoseconds per request at the sustained rate
	slack int64 // how far ahead of now tat may run: (burst-1) × cost
	tat   atomic.Int64
}

func newRate(perSecond, burst int) *rate {
	cost := int64(time.Second) / int64(max(perSecond, 1))
	return &rate{cost: cost, slack: int64(max(burst, 1)-1) * cost}
}

// take spends one request at now; when over budget it returns how long
// until one is available again, and spends nothing.
func (r *rate) take(now int64) (wait time.Duration, ok bool) {
	for {
		old := r.tat.Load()
		tat := max(old, now)
		if tat-now > r.slack {
			return time.Duration(tat - now - r.slack), false
		}
		if r.tat.CompareAndSwap(old, tat+r.cost) {
			return 0, true
		}
	}
}

// spend takes one request from a's budget, or answers 429 with the
// seconds until the next one may come.
func (h *Handler) spend(a *node.App) error {
	r := h.rates[a]
	if r == nil {
		return nil
	}
	wait, ok := r.take(h.now().UnixNano())
	if ok {
		return nil
	}
	secs := int64((wait + time.Second - 1) / time.Second) // rounded up: at least 1
	return &apiError{status: http.StatusTooManyRequests, retryAfter: strconv.FormatInt(secs, 10),
		msg:    "over the app's API request rate (max_api_requests_per_second " + strconv.Itoa(a.Limits.MaxAPIRequestsPerSecond) + "); retry after " + strconv.FormatInt(secs, 10) + " s",
		reason: "over max_api_requests_per_second"}
}
