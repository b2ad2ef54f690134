// Package httpapi serves the Pusher HTTP API: signed requests to publish
// events, read channel state and terminate user connections. Every refusal
// is a JSON error {"error": "…"} with the status code Pusher uses.
package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/herald-ws/herald/internal/node"
	"github.com/herald-ws/herald/internal/signature"
)

// MaxTimestampSkew is how far auth_timestamp may be from the server clock.
const MaxTimestampSkew = 600 * time.Second

// Handler serves /apps/{id}/… below an optional path prefix.
type Handler struct {
	node   *node.Node
	prefix string
	log    *slog.Logger
	now    func() time.Time
}

// New returns the API handler.
func New(n *node.Node, prefix string, log *slog.Logger) *Handler {
	return &Handler{node: n, prefix: prefix, log: log, now: time.Now}
}

// apiError is a refusal with its HTTP status.
type apiError struct {
	status int
	msg    string
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

// request is a parsed, authenticated API call.
type request struct {
	app  *node.App
	rest []string // path segments after /apps/{id}/
	body []byte
	r    *http.Request
}

// ServeHTTP routes, authenticates and dispatches one API request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req, err := h.authenticate(r)
	if err == nil {
		err = h.dispatch(w, req)
	}
	if err != nil {
		var ae *apiError
		if !errors.As(err, &ae) {
			ae = errorf(http.StatusInternalServerError, "%s", err.Error())
		}
		h.log.Debug("api request refused", "method", r.Method, "path", r.URL.Path, "status", ae.status, "err", ae.msg)
		WriteError(w, ae.status, ae.msg)
	}
}

func (h *Handler) authenticate(r *http.Request) (*request, error) {
	path := strings.TrimPrefix(r.URL.Path, h.prefix)
	parts := strings.Split(strings.TrimPrefix(path, "/apps/"), "/")
	if !strings.HasPrefix(path, "/apps/") || len(parts) < 2 || parts[0] == "" {
		return nil, errorf(http.StatusNotFound, "path %s not found", r.URL.Path)
	}
	a := h.node.AppByID(parts[0])
	if a == nil {
		return nil, errorf(http.StatusNotFound, "app %s not found", parts[0])
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, int64(a.Limits.MaxRequestBytes)))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errorf(http.StatusRequestEntityTooLarge, "request body is over %d bytes", a.Limits.MaxRequestBytes)
		}
		return nil, errorf(http.StatusBadRequest, "reading request body: %v", err)
	}
	q := r.URL.Query()
	if err := h.verify(a, r, q, body); err != nil {
		if errors.Is(err, signature.ErrBadRequest) {
			return nil, errorf(http.StatusBadRequest, "%s", err.Error())
		}
		return nil, errorf(http.StatusUnauthorized, "%s", err.Error())
	}
	if !a.Enabled {
		return nil, errorf(http.StatusForbidden, "app %s is disabled", a.ID)
	}
	return &request{app: a, rest: parts[1:], body: body, r: r}, nil
}

// verify checks the request signature against the path as sent; a client
// that percent-encoded its path signed the encoded form.
func (h *Handler) verify(a *node.App, r *http.Request, q map[string][]string, body []byte) error {
	now := h.now()
	err := signature.VerifyRequest(a.Key, a.Secret, r.Method, r.URL.Path, q, body, now, MaxTimestampSkew)
	if err != nil && errors.Is(err, signature.ErrSignature) && r.URL.RawPath != "" {
		if err2 := signature.VerifyRequest(a.Key, a.Secret, r.Method, r.URL.RawPath, q, body, now, MaxTimestampSkew); err2 == nil {
			return nil
		}
	}
	return err
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
