package httpapi

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/herald-ws/herald/internal/signature"
)

// authenticate routes req to its app and checks it, reading the body only
// once everything but the body's MD5 has passed, so that a caller without
// the credentials never gets a byte of its body read.
//
// An app id that is not configured is answered exactly as a wrong
// signature is (status and body), so the answers do not tell which ids
// exist; the log says what really happened.
func (h *Handler) authenticate(req *request) error {
	r := req.r
	path := strings.TrimPrefix(r.URL.Path, h.prefix)
	parts := strings.Split(strings.TrimPrefix(path, "/apps/"), "/")
	if !strings.HasPrefix(path, "/apps/") || len(parts) < 2 || parts[0] == "" {
		return errorf(http.StatusNotFound, "path %s not found", r.URL.Path)
	}
	req.appID, req.rest = parts[0], parts[1:]
	q := r.URL.Query()
	a := h.node.AppByID(req.appID)
	if a == nil {
		err := h.verify(r, func(p string, now time.Time) error {
			return signature.RefuseRequest(r.Method, p, q, now, MaxTimestampSkew)
		})
		ae := signatureError(err)
		if ae.status == http.StatusUnauthorized {
			ae.reason, ae.detail = "unknown app", "no app with this id is configured"
		}
		return ae
	}
	err := h.verify(r, func(p string, now time.Time) error {
		return signature.VerifyRequestHead(a.Key, a.Secret, r.Method, p, q, now, MaxTimestampSkew)
	})
	if err != nil {
		return signatureError(err)
	}
	if !a.Enabled {
		return &apiError{status: http.StatusForbidden, msg: "app " + a.ID + " is disabled", reason: "app disabled"}
	}
	req.app = a
	if err := h.spend(a); err != nil {
		return err
	}
	if err := h.readBody(req); err != nil {
		return err
	}
	if err := signature.VerifyBodyMD5(q, req.body); err != nil {
		return signatureError(err)
	}
	return nil
}

// signatureError turns a failure of package signature into its answer:
// 400 for a request that cannot be signed unambiguously, else 401, with the
// failure's message; the sentinel is the logged reason.
func signatureError(err error) *apiError {
	status := http.StatusUnauthorized
	if errors.Is(err, signature.ErrBadRequest) {
		status = http.StatusBadRequest
	}
	reason := "authentication failed"
	if kind := errors.Unwrap(err); kind != nil {
		reason = kind.Error() // a sentinel's fixed text
	}
	return &apiError{status: status, msg: err.Error(), reason: reason, detail: err.Error()}
}

// verify runs check over the path a client may have signed: the decoded
// path first (what the Node and PHP SDKs sign), then, if that signature is
// wrong, the path exactly as it came on the wire (what a client that signs
// its percent-encoded URL signs). The first failure is the one reported, so
// the answer is the same whichever form the client meant.
func (h *Handler) verify(r *http.Request, check func(path string, now time.Time) error) error {
	now := h.now()
	err := check(r.URL.Path, now)
	if errors.Is(err, signature.ErrSignature) {
		if wire := wirePath(r); wire != r.URL.Path && check(wire, now) == nil {
			return nil
		}
	}
	return err
}

// wirePath is the request's path exactly as the client sent it, from
// RequestURI. Neither URL field is that: net/http leaves URL.RawPath empty
// when the client's encoding is the canonical one ("/a%20b"), and
// URL.EscapedPath re-encodes, turning "/%61b" into "/ab".
func wirePath(r *http.Request) string {
	p := r.RequestURI
	if p != "" && p[0] != '/' { // absolute form, as sent to a proxy
		if u, err := url.Parse(p); err == nil && u.Host != "" {
			p = strings.TrimPrefix(p, u.Scheme+"://"+u.Host)
		}
	}
	p, _, _ = strings.Cut(p, "?")
	if p == "" || p[0] != '/' {
		return r.URL.EscapedPath()
	}
	return p
}

// readBody reads the body of an authenticated request, up to the app's
// max_request_bytes and before the read deadline, then lifts the deadline:
// what is left to do is the handler's own work, which a deadline firing
// in the background read net/http starts after the body would cancel.
func (h *Handler) readBody(req *request) error {
	limit := int64(req.app.Limits.MaxRequestBytes)
	if req.r.ContentLength > limit {
		return errorf(http.StatusRequestEntityTooLarge, "request body is over %d bytes", limit)
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, req.r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		var ne net.Error
		switch {
		case errors.As(err, &mbe):
			return errorf(http.StatusRequestEntityTooLarge, "request body is over %d bytes", limit)
		case errors.As(err, &ne) && ne.Timeout():
			return &apiError{status: http.StatusRequestTimeout, msg: "request body not received in time",
				reason: "request body too slow", detail: err.Error()}
		}
		return errorf(http.StatusBadRequest, "reading request body: %v", err)
	}
	req.body, req.bodyRead = body, true
	_ = req.rc.SetReadDeadline(time.Time{})
	return nil
}
