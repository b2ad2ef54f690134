// Package httpapi serves the Pusher HTTP API: signed requests to publish
// events, read channel state and terminate user connections; and Herald's
// POST /broadcast, which publishes JSON with a bearer token. Every refusal
// is a JSON error {"error": "…"} with the status code Pusher uses.
//
// The handler protects the server from the requests it refuses: it
// authenticates a request before reading its body, reads the body under a
// deadline, serves at most MaxInFlight requests at once, answers an unknown
// app exactly as a wrong signature (so app ids cannot be enumerated), and
// logs each refused request at warn, rate-limited per reason.
package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/herald-ws/herald/internal/node"
	"github.com/herald-ws/herald/internal/ratelog"
)

// MaxTimestampSkew is how far auth_timestamp may be from the server clock.
const MaxTimestampSkew = 600 * time.Second

// Defaults of the Handler's settings.
const (
	// DefaultReadTimeout bounds reading one request's body: an API body is
	// at most a few hundred KB, sent at once by a server SDK.
	DefaultReadTimeout = 10 * time.Second
	// DefaultMaxInFlight bounds the requests served at once. Each holds a
	// goroutine, a socket and up to max_request_bytes of body; a
	// legitimate publisher's request takes well under a millisecond.
	DefaultMaxInFlight = 256
	// refusalLinger is how long a refused request's connection may go on
	// delivering the body nobody will read, so that the client is reading
	// the answer, not still writing, when the socket closes.
	refusalLinger = time.Second
	// retryAfter is the Retry-After (seconds) of a 503 for overload.
	retryAfter = "1"
)

// Handler serves /apps/{id}/… below an optional path prefix, and
// /broadcast through ServeBroadcast.
//
// Concurrency: ServeHTTP is safe for concurrent use. ReadTimeout and
// MaxInFlight are set before the handler serves and only read after.
type Handler struct {
	// ReadTimeout bounds reading a request's body, from the moment the
	// handler gets the request; <= 0 means DefaultReadTimeout. (The
	// http.Server's ReadHeaderTimeout bounds the header before it.)
	ReadTimeout time.Duration
	// MaxInFlight is how many requests may be served at once; over it a
	// request gets 503 with Retry-After at once. <= 0 means
	// DefaultMaxInFlight.
	MaxInFlight int

	node   *node.Node
	prefix string
	log    *slog.Logger
	warns  *ratelog.Limiter
	now    func() time.Time
	tokens []appToken // the apps with a broadcast token

	inFlight atomic.Int64
	busy     atomic.Int64        // requests refused for MaxInFlight
	rates    map[*node.App]*rate // read-only after New
}

// New returns the API handler.
func New(n *node.Node, prefix string, log *slog.Logger) *Handler {
	h := &Handler{node: n, prefix: prefix, log: log, warns: ratelog.New(0, 0), now: time.Now, tokens: broadcastTokens(n), rates: map[*node.App]*rate{}}
	for _, a := range n.Apps() {
		h.rates[a] = newRate(a.Limits.MaxAPIRequestsPerSecond, a.Limits.MaxAPIRequestsBurst)
	}
	return h
}

// Busy is the number of requests refused with 503 because MaxInFlight
// requests were already being served.
func (h *Handler) Busy() int64 { return h.busy.Load() }

// apiError is a refusal with its HTTP status. reason, when set, marks a
// refusal the operator should see (authentication, overload, a stalled
// body): a fixed phrase from this package, never client text, used as the
// log's reason and its rate-limit key. detail is what the log adds to it.
type apiError struct {
	status int
	msg    string
	reason string
	detail string
	// retryAfter, when set, is the Retry-After header's seconds.
	retryAfter string
}

func (e *apiError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) *apiError {
	return &apiError{status: status, msg: fmt.Sprintf(format, args...)}
}

// WriteError writes {"error": msg} with status.
func WriteError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]string{"error": msg})
	_, _ = w.Write(append(b, '\n'))
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	b, err := json.Marshal(v)
	if err != nil {
		WriteError(w, http.StatusInternalServerError, "encoding response failed")
		return
	}
	_, _ = w.Write(b)
}

// request is an API call: parsed, then authenticated.
type request struct {
	r        *http.Request
	rc       *http.ResponseController
	deadline time.Time // for reading the body
	appID    string    // from the path, before it is known to exist
	app      *node.App
	rest     []string // path segments after /apps/{id}/
	body     []byte
	bodyRead bool // the body was read to its end
}

// ServeHTTP bounds, routes, authenticates and dispatches one API request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req, ok := h.admit(w, r)
	if !ok {
		return
	}
	defer h.inFlight.Add(-1)
	err := h.authenticate(req)
	if err == nil {
		err = h.dispatch(w, req)
	}
	if err != nil {
		h.refuse(w, req, err)
	}
}

// admit starts serving r: it puts the body's read deadline on and counts
// the request against MaxInFlight. Over it, admit answers 503 and reports
// false; otherwise the caller ends with h.inFlight.Add(-1).
func (h *Handler) admit(w http.ResponseWriter, r *http.Request) (*request, bool) {
	req := &request{r: r, rc: http.NewResponseController(w), deadline: time.Now().Add(h.readTimeout())}
	// Not supported by every ResponseWriter (httptest's); the real server's is.
	_ = req.rc.SetReadDeadline(req.deadline)
	if h.inFlight.Add(1) > int64(h.maxInFlight()) {
		h.inFlight.Add(-1)
		h.busy.Add(1)
		w.Header().Set("Retry-After", retryAfter)
		h.refuse(w, req, &apiError{status: http.StatusServiceUnavailable, msg: "too many API requests at once; retry later",
			reason: "too many requests at once"})
		return nil, false
	}
	return req, true
}

func (h *Handler) readTimeout() time.Duration {
	if h.ReadTimeout > 0 {
		return h.ReadTimeout
	}
	return DefaultReadTimeout
}

func (h *Handler) maxInFlight() int {
	if h.MaxInFlight > 0 {
		return h.MaxInFlight
	}
	return DefaultMaxInFlight
}

// refuse logs and writes a refusal. When the body was not read, the
// connection closes after the answer rather than reading it: net/http
// would otherwise read up to 256 KiB of it before answering, as slowly as
// the client cares to send it.
func (h *Handler) refuse(w http.ResponseWriter, req *request, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = errorf(http.StatusInternalServerError, "%s", err.Error())
	}
	h.logRefusal(req, ae)
	if ae.retryAfter != "" {
		w.Header().Set("Retry-After", ae.retryAfter)
	}
	if !req.bodyRead && req.r.ContentLength != 0 {
		w.Header().Set("Connection", "close")
		_ = req.rc.SetReadDeadline(earliest(req.deadline, time.Now().Add(refusalLinger)))
	}
	WriteError(w, ae.status, ae.msg)
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// maxLogged bounds client text (an app id, a message quoting the query) in
// a log line.
const maxLogged = 200

// logRefusal logs a refusal with a reason at warn, at most a burst per
// reason and minute, with the number held back since; others at debug.
// Neither the secret nor the expected signature is ever in the log: no
// message of this package or of package signature holds them.
func (h *Handler) logRefusal(req *request, ae *apiError) {
	r := req.r
	if ae.reason == "" {
		h.log.Debug("api request refused", "method", r.Method, "path", clip(r.URL.Path), "status", ae.status, "err", clip(ae.msg))
		return
	}
	ok, suppressed := h.warns.Allow("api: " + ae.reason)
	attrs := []any{"reason", ae.reason, "app", clip(req.appID), "remote", r.RemoteAddr, "method", r.Method, "status", ae.status}
	if ae.detail != "" {
		attrs = append(attrs, "detail", clip(ae.detail))
	}
	if !ok { // over the rate: at debug (--debug, the dashboard's console)
		h.log.Debug("api request refused", attrs...)
		return
	}
	if suppressed > 0 {
		attrs = append(attrs, "suppressed", suppressed)
	}
	h.log.Warn("api request refused", attrs...)
}

func clip(s string) string {
	if len(s) > maxLogged {
		return s[:maxLogged] + "…(" + strconv.Itoa(len(s)) + " bytes)"
	}
	return s
}

func (h *Handler) dispatch(w http.ResponseWriter, req *request) error {
	rest, method := req.rest, req.r.Method
	switch {
	case len(rest) == 1 && rest[0] == "events":
		return onlyMethod(method, http.MethodPost, func() error { return h.events(w, req) })
	case len(rest) == 1 && rest[0] == "batch_events":
		return onlyMethod(method, http.MethodPost, func() error { return h.batchEvents(w, req) })
	case len(rest) == 1 && rest[0] == "channels":
		return onlyMethod(method, http.MethodGet, func() error { return h.channels(w, req) })
	case len(rest) == 2 && rest[0] == "channels":
		return onlyMethod(method, http.MethodGet, func() error { return h.channel(w, req, rest[1]) })
	case len(rest) == 3 && rest[0] == "channels" && rest[2] == "users":
		return onlyMethod(method, http.MethodGet, func() error { return h.users(w, req, rest[1]) })
	case len(rest) == 3 && rest[0] == "users" && rest[2] == "terminate_connections":
		return onlyMethod(method, http.MethodPost, func() error { return h.terminate(w, req, rest[1]) })
	}
	return errorf(http.StatusNotFound, "path %s not found", req.r.URL.Path)
}

func onlyMethod(got, want string, f func() error) error {
	if got != want {
		return errorf(http.StatusMethodNotAllowed, "method %s not allowed; use %s", got, want)
	}
	return f()
}
