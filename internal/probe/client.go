package probe

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/herald-ws/herald/internal/signature"
)

// API is a minimal signed client for the Pusher HTTP API, used by
// `herald ping` and `herald publish`.
type API struct {
	BaseURL string // e.g. http://127.0.0.1:8080 (with an optional path prefix)
	AppID   string
	Key     string
	Secret  string
	HTTP    *http.Client
}

// APIError is a non-2xx answer.
type APIError struct {
	Status int
	Body   string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("HTTP %d: %s", e.Status, strings.TrimSpace(e.Body))
}

// Event is one event to trigger.
type Event struct {
	Name     string   `json:"name"`
	Data     string   `json:"data"`
	Channels []string `json:"channels"`
	SocketID string   `json:"socket_id,omitempty"`
}

// Trigger publishes ev and returns the response body.
func (a *API) Trigger(ctx context.Context, ev Event) ([]byte, error) {
	body, err := json.Marshal(ev)
	if err != nil {
		return nil, err
	}
	return a.Do(ctx, http.MethodPost, "/apps/"+a.AppID+"/events", nil, body)
}

// Do sends a signed request to path (below /apps/{id}) and returns the body
// of a 2xx answer, or an *APIError.
func (a *API) Do(ctx context.Context, method, path string, query url.Values, body []byte) ([]byte, error) {
	base, err := url.Parse(a.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("invalid API URL %q: %w", a.BaseURL, err)
	}
	fullPath := strings.TrimSuffix(base.Path, "/") + path
	if query == nil {
		query = url.Values{}
	}
	q := signature.SignRequest(a.Key, a.Secret, method, fullPath, query, body, time.Now())
	u := *base
	u.Path, u.RawQuery = fullPath, q.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if len(body) > 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := a.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return nil, &APIError{Status: resp.StatusCode, Body: string(b)}
	}
	return b, nil
}
