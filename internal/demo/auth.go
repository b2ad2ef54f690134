package demo

import (
	"crypto/subtle"
	"net/http"
	"regexp"

	"github.com/herald-ws/herald/internal/signature"
)

// csrfOnly lets a request through when it carries the page's CSRF token in
// X-CSRF-TOKEN, and answers 419 otherwise, as Laravel's VerifyCsrfToken
// does (herald.js and Echo send the token of <meta name="csrf-token">).
// One token serves every page of this process: the demo has no sessions.
func (h *Handler) csrfOnly(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		got := r.Header.Get("X-CSRF-TOKEN")
		if subtle.ConstantTimeCompare([]byte(got), []byte(h.csrf)) != 1 {
			writeJSON(w, 419, map[string]string{"message": "CSRF token mismatch."})
			return
		}
		next(w, r)
	}
}

var socketIDPattern = regexp.MustCompile(`^\d{1,32}\.\d{1,64}$`)

// authorize is Laravel's /broadcasting/auth for the signed-in demo user:
// the private channel App.Models.User.1 (routes/channels.php would return
// $user->id === (int) $id) is signed for the socket; any other channel is
// refused with 403.
func (h *Handler) authorize(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "invalid form: " + err.Error()})
		return
	}
	socketID, channel := r.PostForm.Get("socket_id"), r.PostForm.Get("channel_name")
	if !socketIDPattern.MatchString(socketID) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "socket_id: missing or malformed"})
		return
	}
	if channel != UserChannel {
		writeJSON(w, http.StatusForbidden, map[string]string{"message": "This action is unauthorized."})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"auth": signature.ChannelAuth(h.opts.Key, h.opts.Secret, socketID, channel, "")})
}
