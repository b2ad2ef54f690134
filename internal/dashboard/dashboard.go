// Package dashboard serves Herald's web dashboard at {path}/dashboard: the
// live numbers with small graphs of the last minutes, the occupied
// channels with their subscribers and presence members, and a debug
// console like Pusher's (a live tail of one channel's events or all of an
// app's, of connects, disconnects and refusals from the server's log) with
// a form to publish a test event.
//
// It is off unless the server is given credentials, and never open: every
// path, the page included, needs the token (a bearer token, or once in the
// URL, which trades it for a cookie) or the basic-auth user and password.
// The page is plain HTML, CSS and JavaScript embedded in the binary.
package dashboard

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/herald-ws/herald/internal/node"
)

//go:embed static
var static embed.FS

// Options configure a Handler; Node and Numbers are required.
type Options struct {
	Node   *node.Node
	Prefix string // the server path ("" or "/ws")
	// Token and, or, User with Password are the credentials; New refuses
	// neither.
	Token, User, Password string
	// Numbers reads the server's totals; called once a second.
	Numbers func() Numbers
	// Console is the server's log tee; nil: the console shows events only.
	Console *Console
	// Version is shown in the page's header.
	Version string
	Log     *slog.Logger
}

// Handler serves the dashboard.
//
// Concurrency: safe for concurrent use; Run samples on its own goroutine.
type Handler struct {
	opts    Options
	base    string // {prefix}/dashboard
	cookie  string // the session cookie's value: an HMAC of the token
	sampler *sampler
	static  http.Handler

	done      chan struct{} // closed by Close: live streams end
	closeOnce sync.Once
}

// cookieName is the dashboard's session cookie.
const cookieName = "herald_dashboard"

// New returns the dashboard handler.
func New(o Options) *Handler {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	sub, _ := fs.Sub(static, "static") // embedded: cannot fail
	h := &Handler{opts: o, base: o.Prefix + "/dashboard", sampler: newSampler(o.Numbers), done: make(chan struct{})}
	if o.Token != "" {
		m := hmac.New(sha256.New, []byte(o.Token))
		m.Write([]byte("herald dashboard session"))
		h.cookie = hex.EncodeToString(m.Sum(nil))
	}
	h.static = http.StripPrefix(h.base+"/", http.FileServerFS(sub))
	return h
}

// Run samples the numbers for the graphs until ctx is done.
func (h *Handler) Run(ctx context.Context) { h.sampler.run(ctx) }

// Close ends the live streams (shutdown: the server waits for them).
func (h *Handler) Close() { h.closeOnce.Do(func() { close(h.done) }) }

// Match reports whether path is the dashboard's.
func (h *Handler) Match(path string) bool {
	return path == h.base || strings.HasPrefix(path, h.base+"/")
}

// ServeHTTP serves a dashboard path, once authorized.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
	if !h.authorize(w, r) {
		return
	}
	switch rest := strings.TrimPrefix(r.URL.Path, h.base); rest {
	case "":
		http.Redirect(w, r, h.base+"/", http.StatusFound)
	case "/api/overview":
		h.overview(w, r)
	case "/api/live":
		h.live(w, r)
	case "/api/publish":
		h.publish(w, r)
	default:
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed")
			return
		}
		w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'")
		h.static.ServeHTTP(w, r)
	}
}

// authorize checks the credentials: a bearer token, the session cookie,
// basic auth, or ?token= on a GET (answered with the cookie and a redirect
// to the same page without it, so the token leaves the address bar and the
// history). Anything else gets 401.
func (h *Handler) authorize(w http.ResponseWriter, r *http.Request) bool {
	o := h.opts
	if o.Token != "" {
		if t, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && equal(t, o.Token) {
			return true
		}
		if c, err := r.Cookie(cookieName); err == nil && equal(c.Value, h.cookie) {
			return true
		}
		if t := r.URL.Query().Get("token"); t != "" && r.Method == http.MethodGet && equal(t, o.Token) {
			http.SetCookie(w, &http.Cookie{Name: cookieName, Value: h.cookie, Path: h.base, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
			q := r.URL.Query()
			q.Del("token")
			u := *r.URL
			u.RawQuery = q.Encode()
			http.Redirect(w, r, u.RequestURI(), http.StatusSeeOther)
			return false
		}
	}
	if o.User != "" {
		if u, p, ok := r.BasicAuth(); ok && equal(u, o.User) && equal(p, o.Password) {
			return true
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="herald dashboard", charset="UTF-8"`)
	}
	msg := "the dashboard needs its credentials: "
	switch {
	case o.Token != "" && o.User != "":
		msg += "open " + h.base + "/?token=<server.dashboard_token>, or sign in with server.dashboard_user and server.dashboard_password"
	case o.Token != "":
		msg += "open " + h.base + "/?token=<server.dashboard_token> (or send \"Authorization: Bearer <token>\")"
	default:
		msg += "sign in with server.dashboard_user and server.dashboard_password"
	}
	writeError(w, http.StatusUnauthorized, msg)
	return false
}

// equal compares in constant time (for equal lengths).
func equal(got, want string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]string{"error": msg})
	_, _ = w.Write(append(b, '\n'))
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "encoding the answer failed")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(append(b, '\n'))
}

// app is the app named by the request's app parameter, or the first by id
// when there is none; nil (answered with 404) for an unknown id.
func (h *Handler) app(w http.ResponseWriter, id string) *node.App {
	if id == "" {
		list := h.apps()
		if len(list) > 0 {
			return list[0]
		}
	}
	a := h.opts.Node.AppByID(id)
	if a == nil {
		writeError(w, http.StatusNotFound, "no app with id "+quote(id))
	}
	return a
}

func quote(s string) string {
	if len(s) > 100 {
		s = s[:100] + "…"
	}
	b, _ := json.Marshal(s)
	return string(b)
}
