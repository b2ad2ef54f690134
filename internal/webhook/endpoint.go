package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/herald-ws/herald/internal/signature"
)

// endpoint is one URL of one app, with its own queue and worker goroutine,
// so a slow endpoint delays nobody else.
//
// Concurrency: d, app, url, name, wants and wake are set at creation and
// only read afterwards; queue and pending are guarded by app.mu. Only the
// worker (run) takes from queue.
type endpoint struct {
	d     *Dispatcher
	app   *app
	url   string
	name  string          // for logs: no credentials
	wants map[string]bool // event names this endpoint receives
	wake  chan struct{}   // capacity 1: "the queue is not empty"

	queue   []queued // events waiting, oldest first
	pending int      // len(queue) plus the batch in flight: what MaxQueue bounds
}

// run is the endpoint's worker. Each batch waits until its oldest event is
// Batch old or MaxBatch events are queued (Pusher: 250 ms or 20 events),
// then goes out in one POST; POSTs are sent one at a time so the receiver
// sees events in order. On Close it flushes without waiting and returns.
func (ep *endpoint) run() {
	d := ep.d
	for {
		select {
		case <-ep.wake:
		case <-d.closing:
			ep.drain()
			return
		}
		if !ep.gather() {
			ep.drain()
			return
		}
		if batch := ep.take(); batch != nil {
			ep.deliver(batch)
		}
		ep.app.mu.Lock()
		more := len(ep.queue) > 0
		ep.app.mu.Unlock()
		if more {
			select {
			case ep.wake <- struct{}{}:
			default:
			}
		}
	}
}

// drain sends everything queued (Close).
func (ep *endpoint) drain() {
	for batch := ep.take(); batch != nil; batch = ep.take() {
		ep.deliver(batch)
	}
}

// gather waits until the next batch is due: its oldest event is Batch old,
// or a full batch is queued. It reports false if the Dispatcher began
// closing.
func (ep *endpoint) gather() bool {
	for {
		ep.app.mu.Lock()
		n := len(ep.queue)
		var oldest time.Time
		if n > 0 {
			oldest = ep.queue[0].at
		}
		ep.app.mu.Unlock()
		if n == 0 || n >= ep.d.opts.MaxBatch {
			return true
		}
		wait := time.Until(oldest.Add(ep.d.opts.Batch))
		if wait <= 0 {
			return true
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
			return true
		case <-ep.wake:
			t.Stop()
		case <-ep.d.closing:
			t.Stop()
			return false
		}
	}
}

// take removes up to MaxBatch events from the queue; nil when it is empty.
// Once Close's deadline has passed it drops the whole queue instead.
func (ep *endpoint) take() [][]byte {
	a := ep.app
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(ep.queue) == 0 {
		return nil
	}
	if ep.d.ctx.Err() != nil {
		n := len(ep.queue)
		ep.queue = nil
		ep.pending -= n
		ep.d.pending.Add(-int64(n))
		ep.d.dropped.Add(int64(n))
		ep.d.warn("webhook: shut down before delivery, events dropped", "app", a.id, "endpoint", ep.name, "events", n)
		return nil
	}
	n := min(len(ep.queue), ep.d.opts.MaxBatch)
	batch := make([][]byte, n)
	for i, q := range ep.queue[:n] {
		batch[i] = q.raw
	}
	clear(ep.queue[:n]) // the backing array outlives this batch
	ep.queue = ep.queue[n:]
	if len(ep.queue) == 0 {
		ep.queue = nil // let the backing array go
	}
	return batch
}

// deliver sends one batch, retrying network errors, 5xx, 408 and 429 with
// exponential backoff until RetryFor has passed since the first attempt.
// The body, time_ms included, is built once: every retry is the same
// signed request, and time_ms tells the receiver how late it is.
func (ep *endpoint) deliver(batch [][]byte) {
	d, a := ep.d, ep.app
	body := encodeBody(d.opts.Now(), batch)
	sig := signature.Webhook(a.secret, body)
	start := time.Now()
	wait := d.opts.RetryMin
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			d.retried.Add(1)
		}
		err := ep.post(body, sig)
		if err == nil {
			ep.done(len(batch), true)
			return
		}
		d.failed.Add(1)
		if !retryable(err) {
			ep.done(len(batch), false)
			d.warn("webhook: rejected by endpoint, events dropped", "app", a.id, "endpoint", ep.name, "events", len(batch), "err", err)
			return
		}
		if time.Since(start)+wait > d.opts.RetryFor {
			ep.done(len(batch), false)
			d.warn("webhook: retry window over, events dropped", "app", a.id, "endpoint", ep.name, "events", len(batch), "err", err)
			return
		}
		d.warn("webhook: delivery failed, retrying", "app", a.id, "endpoint", ep.name, "err", err, "retry_in", wait)
		t := time.NewTimer(jitter(wait))
		select {
		case <-t.C:
		case <-d.ctx.Done():
			t.Stop()
			ep.done(len(batch), false)
			d.warn("webhook: shut down before delivery, events dropped", "app", a.id, "endpoint", ep.name, "events", len(batch))
			return
		}
		wait = min(2*wait, d.opts.RetryMax)
	}
}

// jitter adds up to a fifth to a backoff, so the nodes of a cluster that
// failed together do not all retry in the same instant.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	return d + rand.N(d/5+1)
}

// done settles a batch: it leaves the queue bound and is counted delivered
// or dropped.
func (ep *endpoint) done(n int, ok bool) {
	ep.app.mu.Lock()
	ep.pending -= n
	ep.app.mu.Unlock()
	ep.d.pending.Add(-int64(n))
	if ok {
		ep.d.delivered.Add(int64(n))
	} else {
		ep.d.dropped.Add(int64(n))
	}
}

// queued is an encoded event and when it was queued (for the batch window).
type queued struct {
	raw []byte
	at  time.Time
}

// statusError is a non-2xx answer.
type statusError struct{ code int }

func (e *statusError) Error() string { return fmt.Sprintf("endpoint answered %d", e.code) }

// errPermanent marks a request that can never succeed (a URL net/http
// refuses): retrying would only delay the drop.
var errPermanent = errors.New("webhook: request cannot be built")

// retryable: network errors and timeouts (the endpoint may come back),
// 5xx, 408 and 429. Other answers (a 401 from a wrong secret, a 404, a
// 419 from CSRF middleware) will not change by resending the same body, so
// they are dropped at once, where Pusher would retry them for 5 minutes.
func retryable(err error) bool {
	if errors.Is(err, errPermanent) {
		return false
	}
	var se *statusError
	if errors.As(err, &se) {
		return se.code >= 500 || se.code == http.StatusRequestTimeout || se.code == http.StatusTooManyRequests
	}
	return true
}

// post makes one attempt, bounded by Timeout and aborted by Close's
// deadline. The answer's body is read (a little of it) so the connection
// can be reused.
func (ep *endpoint) post(body []byte, sig string) error {
	d := ep.d
	ctx, cancel := context.WithTimeout(d.ctx, d.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: %v", errPermanent, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Pusher-Key", ep.app.key)
	req.Header.Set("X-Pusher-Signature", sig)
	resp, err := d.opts.Client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &statusError{code: resp.StatusCode}
	}
	return nil
}
