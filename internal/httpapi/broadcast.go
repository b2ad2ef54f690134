package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"

	"github.com/herald-ws/herald/internal/node"
	"github.com/herald-ws/herald/internal/pusher"
)

// POST /broadcast is for an app that just wants to push JSON: a bearer
// token instead of a signature, and a body of
//
//	{"message":{"type":"ticket_created","data":{…}},"channel":"tickets"}
//
// published as the event "ticket_created" whose data is the JSON text of
// message.data, on "channel", on each of "channels", or on the app's
// broadcast channel when neither is given. The event goes through the
// HTTP API's publish path, so the same limits apply to it.
//
// An optional idempotency key, as "idempotency_key" in the body or as the
// Idempotency-Key header (both: they must be equal, else 400), makes a
// retry safe: on each channel with history still holding the event first
// published with that key, the retry is answered with that event's offset
// and not delivered again.

// notEnabled is the 404 of /broadcast when no app has a token: the
// endpoint is never open, and the answer says how to open it.
const notEnabled = "POST /broadcast is not enabled: give an app a broadcast_token in the config file " +
	"(apps[].broadcast_token), or set HERALD_BROADCAST_TOKEN for the first app, " +
	"and send it as \"Authorization: Bearer <token>\""

// reservedEventPrefixes are event names of the protocol itself, which
// pusher-js handles as such instead of handing them to the app.
var reservedEventPrefixes = []string{"pusher:", "pusher_internal:"}

// appToken is an app with the SHA-256 of its broadcast token. Comparing
// digests, which all have one length, takes the same time whatever the
// length of the token tried or of the real one.
type appToken struct {
	digest [sha256.Size]byte
	app    *node.App
}

func broadcastTokens(n *node.Node) []appToken {
	var out []appToken
	for _, a := range n.Apps() {
		if a.BroadcastToken != "" {
			out = append(out, appToken{sha256.Sum256([]byte(a.BroadcastToken)), a})
		}
	}
	return out
}

// appByToken returns the app whose token is tok, or nil. It compares tok
// with every app's token in constant time, so neither whether it matched
// nor which app it matched shows in how long it takes.
func (h *Handler) appByToken(tok string) *node.App {
	d := sha256.Sum256([]byte(tok))
	var found *node.App
	for _, t := range h.tokens {
		if subtle.ConstantTimeCompare(d[:], t.digest[:]) == 1 {
			found = t.app
		}
	}
	return found
}

// broadcastResult is the answer to a /broadcast. Offsets holds the
// event's offset on each of the channels that keep history; it is {} when
// none does.
type broadcastResult struct {
	OK       bool              `json:"ok"`
	Channels []string          `json:"channels"`
	Offsets  map[string]uint64 `json:"offsets"`
}

// ServeBroadcast serves POST {prefix}/broadcast. The token is checked
// before a byte of the body is read; the body is then read under the same
// deadline and size limit as an API request's, and the request counts
// toward MaxInFlight.
func (h *Handler) ServeBroadcast(w http.ResponseWriter, r *http.Request) {
	req, ok := h.admit(w, r)
	if !ok {
		return
	}
	defer h.inFlight.Add(-1)
	res, err := h.broadcast(req)
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="herald"`)
		} else if errors.As(err, &ae) && ae.status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", http.MethodPost)
		}
		h.refuse(w, req, err)
		return
	}
	writeJSON(w, res)
}

func (h *Handler) broadcast(req *request) (*broadcastResult, error) {
	if len(h.tokens) == 0 {
		return nil, errorf(http.StatusNotFound, "%s", notEnabled)
	}
	if req.r.Method != http.MethodPost {
		return nil, errorf(http.StatusMethodNotAllowed, "method %s not allowed; use POST", req.r.Method)
	}
	a, err := h.bearerApp(req.r)
	if err != nil {
		return nil, err
	}
	req.app, req.appID = a, a.ID
	if !a.Enabled {
		return nil, &apiError{status: http.StatusForbidden, msg: "app " + a.ID + " is disabled", reason: "app disabled"}
	}
	if err := h.spend(a); err != nil {
		return nil, err
	}
	if err := h.readBody(req); err != nil {
		return nil, err
	}
	ev, err := parseBroadcast(a, req.body)
	if err != nil {
		return nil, err
	}
	if ev.key, err = headerIdempotencyKey(req.r.Header, ev.key); err != nil {
		return nil, err
	}
	offsets, err := h.publishBroadcast(req.r.Context(), a, ev)
	if err != nil {
		return nil, errorf(http.StatusInternalServerError, "publish failed: %v", err)
	}
	return &broadcastResult{OK: true, Channels: ev.channels, Offsets: offsets}, nil
}

// publishBroadcast is the one call through which /broadcast publishes:
// the HTTP API's path, which numbers the event on each channel that keeps
// history. It answers those channels' offsets; a channel without history
// has none. A retried idempotency key answers the original offsets.
func (h *Handler) publishBroadcast(ctx context.Context, a *node.App, ev event) (map[string]uint64, error) {
	positions, err := h.node.PublishOnce(ctx, a, ev.channels, ev.name, ev.data, ev.socketID, ev.key)
	if err != nil {
		return nil, err
	}
	offsets := make(map[string]uint64, len(positions))
	for i, p := range positions {
		if p.Epoch != "" {
			offsets[ev.channels[i]] = p.Offset
		}
	}
	return offsets, nil
}

// headerIdempotencyKey merges the Idempotency-Key header with the body's
// key (empty: none). Giving both is allowed when they are equal; a
// mismatch is a client bug, refused rather than guessed at.
func headerIdempotencyKey(hdr http.Header, body string) (string, error) {
	vals := hdr.Values("Idempotency-Key")
	switch {
	case len(vals) == 0:
		return body, nil
	case len(vals) > 1:
		return "", errorf(http.StatusBadRequest, "Idempotency-Key header: give it once, not %d times", len(vals))
	}
	key, err := validIdempotencyKey("Idempotency-Key header", &vals[0])
	if err != nil {
		return "", err
	}
	if body != "" && body != key {
		return "", errorf(http.StatusBadRequest, "idempotency_key: the body's key differs from the Idempotency-Key header; give one, or both equal")
	}
	return key, nil
}

// bearerApp returns the app whose token the Authorization header carries.
// The token itself is never logged nor echoed.
func (h *Handler) bearerApp(r *http.Request) (*node.App, error) {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return nil, &apiError{status: http.StatusUnauthorized, msg: "missing \"Authorization: Bearer <token>\" header",
			reason: "broadcast token missing"}
	}
	scheme, tok, _ := strings.Cut(auth, " ")
	tok = strings.TrimSpace(tok)
	if !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return nil, &apiError{status: http.StatusUnauthorized, msg: "the Authorization header must be \"Bearer <token>\"",
			reason: "broadcast token missing", detail: "Authorization scheme " + clip(scheme)}
	}
	a := h.appByToken(tok)
	if a == nil {
		return nil, &apiError{status: http.StatusUnauthorized, msg: "invalid broadcast token",
			reason: "broadcast token wrong", detail: fmt.Sprintf("no app has this token (%d bytes)", len(tok))}
	}
	return a, nil
}

// broadcastBody is a /broadcast body as received. Pointers and nil slices
// tell a field that is absent from one given empty.
type broadcastBody struct {
	Message *struct {
		Type *string         `json:"type"`
		Data json.RawMessage `json:"data"`
	} `json:"message"`
	Channel        *string  `json:"channel"`
	Channels       []string `json:"channels"`
	IdempotencyKey *string  `json:"idempotency_key"`
	// SocketID excludes that socket, as the HTTP API's socket_id does
	// (Laravel's toOthers: the X-Socket-ID header of the page's request).
	SocketID string `json:"socket_id"`
}

// parseBroadcast validates a /broadcast body for app a. Each refusal names
// the field at fault; unknown fields are ignored, as the HTTP API does.
func parseBroadcast(a *node.App, body []byte) (event, error) {
	var b broadcastBody
	if err := decodeBroadcast(body, &b); err != nil {
		return event{}, err
	}
	if b.Message == nil {
		return event{}, errorf(http.StatusBadRequest, "missing \"message\": the body is {\"message\":{\"type\":\"…\",\"data\":…}}")
	}
	name, err := broadcastName(a, b.Message.Type)
	if err != nil {
		return event{}, err
	}
	data, err := broadcastData(a, b.Message.Data)
	if err != nil {
		return event{}, err
	}
	channels, err := broadcastChannels(a, b.Channel, b.Channels)
	if err != nil {
		return event{}, err
	}
	key, err := validIdempotencyKey("idempotency_key", b.IdempotencyKey)
	if err != nil {
		return event{}, err
	}
	if b.SocketID != "" && !pusher.ValidSocketID(b.SocketID) {
		return event{}, errorf(http.StatusBadRequest, "invalid socket_id %q: expected digits.digits", clip(b.SocketID))
	}
	return event{name: name, data: data, key: key, channels: channels, socketID: b.SocketID}, nil
}

func broadcastName(a *node.App, typ *string) (string, error) {
	if typ == nil || *typ == "" {
		return "", errorf(http.StatusBadRequest, "missing \"message.type\": it is the event name")
	}
	name := *typ
	if err := pusher.ValidateEventName(name, a.Limits.MaxEventNameLength); err != nil {
		return "", errorf(http.StatusBadRequest, "message.type: %s", err.(*pusher.Error).Message)
	}
	for _, p := range reservedEventPrefixes {
		if strings.HasPrefix(name, p) {
			return "", errorf(http.StatusBadRequest, "message.type: %q is reserved for the protocol (%s…)", clip(name), p)
		}
	}
	return name, nil
}

// broadcastData is the event's data: message.data as compact JSON text,
// whatever its JSON type. A string is JSON-encoded too ("hello" becomes
// "\"hello\""), so a client always JSON.parses data back to message.data;
// an absent message.data is null.
func broadcastData(a *node.App, raw json.RawMessage) (string, error) {
	if len(raw) == 0 {
		return "null", nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil { // the decoder checked it; this is a safety net
		return "", errorf(http.StatusBadRequest, "message.data: %v", err)
	}
	if lim := a.Limits.MaxEventPayloadBytes; buf.Len() > lim {
		return "", errorf(http.StatusRequestEntityTooLarge, "message.data is %d bytes as JSON; the limit is %d", buf.Len(), lim)
	}
	return buf.String(), nil
}

// broadcastChannels resolves "channel" or "channels", or the app's
// default, and checks them as the HTTP API does.
func broadcastChannels(a *node.App, one *string, many []string) ([]string, error) {
	lim := a.Limits
	var channels []string
	field := func(i int) string { return fmt.Sprintf("channels[%d]", i) }
	switch {
	case one != nil && many != nil:
		return nil, errorf(http.StatusBadRequest, "give either \"channel\" or \"channels\", not both")
	case one != nil:
		channels, field = []string{*one}, func(int) string { return "channel" }
	case many != nil:
		if len(many) == 0 {
			return nil, errorf(http.StatusBadRequest, "channels: the list is empty; leave it out for the app's channel %q", a.BroadcastChannelOrDefault())
		}
		channels = many
	default:
		channels, field = []string{a.BroadcastChannelOrDefault()}, func(int) string { return "broadcast_channel (the app's setting)" }
	}
	if len(channels) > lim.MaxChannelsPerEvent {
		return nil, errorf(http.StatusBadRequest, "channels: %d channels; the limit is %d", len(channels), lim.MaxChannelsPerEvent)
	}
	seen := make(map[string]bool, len(channels))
	for i, ch := range channels {
		if err := pusher.ValidateChannelName(ch, lim.MaxChannelNameLength); err != nil {
			return nil, errorf(http.StatusBadRequest, "%s: %s", field(i), err.(*pusher.Error).Message)
		}
		if pusher.ParseChannel(ch).Kind == pusher.PrivateEncrypted {
			return nil, errorf(http.StatusBadRequest, "%s: %s is encrypted, and /broadcast publishes plain JSON: publish it encrypted through the HTTP API", field(i), ch)
		}
		if seen[ch] {
			return nil, errorf(http.StatusBadRequest, "%s: %s is listed twice", field(i), ch)
		}
		seen[ch] = true
	}
	return channels, nil
}

// decodeBroadcast decodes one JSON object and nothing after it. A value of
// the wrong type is refused naming its field ("message.type must be a
// string, not number").
func decodeBroadcast(body []byte, b *broadcastBody) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return errorf(http.StatusBadRequest, "empty body: send {\"message\":{\"type\":\"…\",\"data\":…}}")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	err := dec.Decode(b)
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &te) && te.Field == "":
		return errorf(http.StatusBadRequest, "invalid JSON body: it must be an object, not %s", te.Value)
	case errors.As(err, &te):
		return errorf(http.StatusBadRequest, "invalid JSON body: %s must be %s, not %s", te.Field, jsonKind(te.Type), te.Value)
	case err != nil:
		return errorf(http.StatusBadRequest, "invalid JSON body: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errorf(http.StatusBadRequest, "invalid JSON body: trailing data after the object")
	}
	return nil
}

func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.String {
			return "a list of strings"
		}
		return "a list"
	case reflect.Struct:
		return "an object"
	}
	return "a " + t.Kind().String()
}
