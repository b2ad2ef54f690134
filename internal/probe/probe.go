// Package probe is `herald ping`: an end-to-end check of a Pusher-protocol
// deployment. It connects like pusher-js, subscribes to fresh public and
// private channels (signing locally with the secret), publishes through the
// HTTP API and waits for the event, timing each step; a failure names the
// step and its likely cause.
package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/gobwas/ws"

	"github.com/herald-ws/herald/internal/signature"
)

// Options configure a probe run.
type Options struct {
	URL    string // ws[s]://host[:port][/prefix]
	APIURL string // http[s]://…; derived from URL when empty
	AppID  string
	Key    string
	Secret string
	// Count is how many publish→receive round trips to time (default 1).
	Count int
	// Timeout bounds each step (default 5 s).
	Timeout time.Duration
}

// Step is one timed stage.
type Step struct {
	Name     string        `json:"name"`
	Duration time.Duration `json:"duration_ns"`
	Err      string        `json:"error,omitempty"`
	Cause    string        `json:"likely_cause,omitempty"`
}

// Result is a probe run.
type Result struct {
	OK        bool            `json:"ok"`
	Steps     []Step          `json:"steps"`
	Latencies []time.Duration `json:"latencies_ns,omitempty"`
}

// Percentile returns the p-th percentile (0..100) of the round trips.
func (r *Result) Percentile(p float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	s := slices.Clone(r.Latencies)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p / 100)
	return s[i]
}

// Run performs the check.
func Run(ctx context.Context, o Options) *Result {
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Count <= 0 {
		o.Count = 1
	}
	res := &Result{}
	r := &run{o: o, res: res}
	r.do(ctx)
	res.OK = true
	for _, s := range res.Steps {
		if s.Err != "" {
			res.OK = false
		}
	}
	return res
}

type run struct {
	o   Options
	res *Result
	c   *wsClient
	api *API
}

// step times f and records it; it reports whether f succeeded.
func (r *run) step(name string, f func() error, cause func(error) string) bool {
	start := time.Now()
	err := f()
	s := Step{Name: name, Duration: time.Since(start)}
	if err != nil {
		s.Err = err.Error()
		s.Cause = cause(err)
	}
	r.res.Steps = append(r.res.Steps, s)
	return err == nil
}

func (r *run) do(ctx context.Context) {
	wsURL, apiURL, err := urls(r.o.URL, r.o.APIURL)
	if err != nil {
		r.res.Steps = append(r.res.Steps, Step{Name: "parse URL", Err: err.Error(), Cause: "give a URL like ws://127.0.0.1:8080 or wss://ws.example.com"})
		return
	}
	r.api = &API{BaseURL: apiURL, AppID: r.o.AppID, Key: r.o.Key, Secret: r.o.Secret}
	defer func() {
		if r.c != nil {
			r.c.close()
		}
	}()
	if !r.step("connect", func() error { return r.connect(ctx, wsURL) }, connectCause) {
		return
	}
	suffix := fmt.Sprintf("%d", rand.Uint64())
	public, private := "herald-ping-"+suffix, "private-herald-ping-"+suffix
	if !r.step("subscribe "+public, func() error { return r.subscribe(public) }, subscribeCause) {
		return
	}
	if !r.step("subscribe "+private, func() error { return r.subscribe(private) }, subscribeCause) {
		return
	}
	for i := range r.o.Count {
		var sent time.Time
		data := fmt.Sprintf(`{"seq":%d}`, i)
		if !r.step("publish", func() error {
			sent = time.Now()
			_, err := r.api.Trigger(ctx, Event{Name: "herald.ping", Data: data, Channels: []string{public, private}})
			return err
		}, publishCause) {
			return
		}
		if !r.step("receive", func() error { return r.receive(public, private, data) }, receiveCause) {
			return
		}
		r.res.Latencies = append(r.res.Latencies, time.Since(sent))
	}
}

func (r *run) connect(ctx context.Context, wsURL string) error {
	u := strings.TrimSuffix(wsURL, "/") + "/app/" + url.PathEscape(r.o.Key) + "?protocol=7&client=herald-ping&version=1.0"
	c, err := dialWS(ctx, u)
	if err != nil {
		return err
	}
	r.c = c
	f, err := c.await(time.Now().Add(r.o.Timeout), func(f frame) bool { return f.Event == "pusher:connection_established" })
	if err != nil {
		return err
	}
	var est struct {
		SocketID string `json:"socket_id"`
	}
	if err := jsonUnmarshalString(f.dataString(), &est); err != nil || est.SocketID == "" {
		return fmt.Errorf("connection_established without a socket_id: %s", truncate(f.dataString()))
	}
	c.socketID = est.SocketID
	return nil
}

func (r *run) subscribe(channel string) error {
	data := map[string]string{"channel": channel}
	if strings.HasPrefix(channel, "private-") {
		data["auth"] = signature.ChannelAuth(r.o.Key, r.o.Secret, r.c.socketID, channel, "")
	}
	if err := r.c.send(map[string]any{"event": "pusher:subscribe", "data": data}); err != nil {
		return err
	}
	_, err := r.c.await(time.Now().Add(r.o.Timeout), func(f frame) bool {
		return f.Event == "pusher_internal:subscription_succeeded" && f.Channel == channel
	})
	return err
}

func (r *run) receive(public, private, data string) error {
	want := map[string]bool{public: true, private: true}
	deadline := time.Now().Add(r.o.Timeout)
	for len(want) > 0 {
		f, err := r.c.await(deadline, func(f frame) bool { return f.Event == "herald.ping" })
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				missing := make([]string, 0, len(want))
				for ch := range want {
					missing = append(missing, ch)
				}
				return fmt.Errorf("%w: no event on %s within %s", errNotReceived, strings.Join(missing, ", "), r.o.Timeout)
			}
			return err
		}
		if f.dataString() == data {
			delete(want, f.Channel)
		}
	}
	return nil
}

var errNotReceived = errors.New("event published but never received")

// urls derives the WebSocket and API base URLs.
func urls(wsURL, apiURL string) (string, string, error) {
	u, err := url.Parse(wsURL)
	if err != nil {
		return "", "", err
	}
	switch u.Scheme {
	case "ws", "wss":
	case "http", "https":
		u.Scheme = map[string]string{"http": "ws", "https": "wss"}[u.Scheme]
	default:
		return "", "", fmt.Errorf("URL %q must start with ws:// or wss://", wsURL)
	}
	if u.Host == "" {
		return "", "", fmt.Errorf("URL %q has no host", wsURL)
	}
	if apiURL == "" {
		a := *u
		a.Scheme = map[string]string{"ws": "http", "wss": "https"}[u.Scheme]
		apiURL = a.String()
	}
	return u.String(), apiURL, nil
}

func connectCause(err error) string {
	var dns *net.DNSError
	var se ws.StatusError
	var ce *closedError
	var pe *protocolError
	var rh tls.RecordHeaderError
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	switch {
	case errors.As(err, &dns):
		return "DNS: the host name does not resolve; check the host in the URL"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "nothing listens on that host and port: is Herald running, and is the port REVERB_SERVER_PORT (or the proxy's port)?"
	case errors.As(err, &rh):
		return "TLS: wss:// against a server that does not speak TLS; use ws:// or terminate TLS in a proxy"
	case errors.As(err, &ua), errors.As(err, &hn), errors.As(err, &ci):
		return "TLS: the certificate is not valid for this host"
	case errors.As(err, &se):
		return fmt.Sprintf("the server answered HTTP %d instead of upgrading to WebSocket: a proxy that does not forward the Upgrade and Connection headers, or a wrong path", int(se))
	case errors.As(err, &ce) && ce.Code == 4001, errors.As(err, &pe) && pe.Code == 4001:
		return "4001: the app key is unknown to the server; REVERB_APP_KEY differs from Herald's app key"
	case errors.As(err, &ce) && ce.Code == 4003:
		return "4003: the app is disabled in Herald's configuration"
	case errors.As(err, &ce) && ce.Code == 4009:
		return "4009: the origin is not allowed, or the connection was refused as unauthorized"
	case errors.As(err, &ce):
		return fmt.Sprintf("the server closed the connection with %d", ce.Code)
	case isTimeout(err):
		return "timed out: a firewall dropping packets, or a proxy that accepts but never upgrades"
	}
	return "could not connect"
}

func subscribeCause(err error) string {
	var pe *protocolError
	if errors.As(err, &pe) && pe.Code == 4009 {
		return "the channel signature was refused: the secret given here differs from the server's (REVERB_APP_SECRET)"
	}
	if isTimeout(err) {
		return "no subscription_succeeded: the server is not a Pusher-protocol server, or it is overloaded"
	}
	return "subscription failed"
}

func publishCause(err error) string {
	var ae *APIError
	if errors.As(err, &ae) {
		switch ae.Status {
		case 401:
			// The private subscription before this step proved the key and
			// secret; Herald answers an unknown app id exactly like a bad
			// signature (so app ids cannot be probed), hence 401, not 404.
			return "401: the app id is unknown (REVERB_APP_ID) — the key and secret just worked for the private channel — or this machine's clock is more than 10 minutes off"
		case 403:
			return "403: the app is disabled"
		case 404:
			return "404: the app id is unknown (REVERB_APP_ID) or the API URL points at something else"
		case 413:
			return "413: the event is larger than the server allows"
		}
		return fmt.Sprintf("the API answered %d", ae.Status)
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return "nothing listens at the API URL: check --api-url"
	}
	return "the HTTP API request failed"
}

func receiveCause(err error) string {
	if errors.Is(err, errNotReceived) {
		return "the API accepted the event but this socket never got it: the API URL and the WebSocket reach different servers (check --api-url and the load balancer), or the nodes do not share a broker"
	}
	return "the connection failed while waiting for the event"
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
