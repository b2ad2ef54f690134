package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/herald-ws/herald/internal/signature"
)

// publisher is the demo backend's side of broadcasting, written as a
// Laravel app's would be: it reaches Herald over HTTP only, through
// POST /broadcast with the app's bearer token (what a listener posting
// {type, data} does) or through the Pusher HTTP API, signed as Pusher's
// server SDKs sign (what Laravel's reverb and pusher broadcasters do).
//
// Every publish carries an idempotency key and is retried once when Herald
// could not be reached or answered 5xx: the retry reaches browsers at most
// once (README, "Idempotent publishing"). Safe for concurrent use.
type publisher struct {
	base               *url.URL // Herald's base URL, with its path prefix if any
	appID, key, secret string
	token              string // the app's broadcast_token
	client             *http.Client
	now                func() time.Time
	retryWait          time.Duration
}

// publishTimeout bounds one attempt: Herald answers a publish in a
// millisecond or two.
const publishTimeout = 5 * time.Second

// broadcast posts {message: {type, data}, channel} to /broadcast.
func (p *publisher) broadcast(ctx context.Context, channel, typ string, data any, idempotencyKey string) error {
	body, err := json.Marshal(map[string]any{
		"message":         map[string]any{"type": typ, "data": data},
		"channel":         channel,
		"idempotency_key": idempotencyKey,
	})
	if err != nil {
		return err
	}
	return p.send(ctx, "/broadcast", nil, body)
}

// trigger publishes event on channel through the HTTP API
// (POST /apps/{id}/events), data JSON-encoded into the "data" string.
func (p *publisher) trigger(ctx context.Context, channel, event string, data any, idempotencyKey string) error {
	payload, err := json.Marshal(data)
	if err != nil {
		return err
	}
	body, err := json.Marshal(map[string]any{
		"name":            event,
		"channels":        []string{channel},
		"data":            string(payload),
		"idempotency_key": idempotencyKey,
	})
	if err != nil {
		return err
	}
	return p.send(ctx, "/apps/"+url.PathEscape(p.appID)+"/events", p.sign, body)
}

// sign returns the signed query for a request to path (as sent).
func (p *publisher) sign(method, path string, body []byte) url.Values {
	return signature.SignRequest(p.key, p.secret, method, path, nil, body, p.now())
}

// send POSTs body to path below Herald's base URL, signed by sign (nil: with
// the bearer token), retrying once after a transport error or a 5xx.
func (p *publisher) send(ctx context.Context, path string, sign func(method, path string, body []byte) url.Values, body []byte) error {
	var err error
	for attempt := range 2 {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return errors.Join(err, ctx.Err())
			case <-time.After(p.retryWait):
			}
		}
		var retry bool
		if retry, err = p.post(ctx, path, sign, body); err == nil || !retry {
			return err
		}
	}
	return err
}

// post makes one attempt; retry says whether another might succeed.
func (p *publisher) post(ctx context.Context, path string, sign func(method, path string, body []byte) url.Values, body []byte) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	u := *p.base
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	if sign != nil {
		u.RawQuery = sign(http.MethodPost, u.Path, body).Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	if sign == nil {
		req.Header.Set("Authorization", "Bearer "+p.token)
	}
	res, err := p.client.Do(req)
	if err != nil {
		return true, fmt.Errorf("publish to Herald: %w", err)
	}
	defer res.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	if res.StatusCode/100 != 2 {
		return res.StatusCode >= 500, fmt.Errorf("publish to Herald: %s %s: HTTP %d: %s", req.Method, u.Path, res.StatusCode, bytes.TrimSpace(answer))
	}
	return false, nil
}
