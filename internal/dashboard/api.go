package dashboard

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/herald-ws/herald/internal/hub"
	"github.com/herald-ws/herald/internal/node"
	"github.com/herald-ws/herald/internal/pusher"
)

// Bounds on what the overview lists: the busiest channels first.
const (
	maxChannelsShown = 200
	maxMembersShown  = 50
)

type appInfo struct {
	ID          string `json:"id"`
	Key         string `json:"key"`
	Connections int64  `json:"connections"`
}

type channelInfo struct {
	Name          string       `json:"name"`
	Kind          string       `json:"kind"`
	Subscriptions int          `json:"subscriptions"`
	Users         int          `json:"users,omitempty"`
	Members       []memberInfo `json:"members,omitempty"`
}

type memberInfo struct {
	ID   string          `json:"id"`
	Info json.RawMessage `json:"info,omitempty"`
}

type overviewAnswer struct {
	Version  string        `json:"version"`
	Apps     []appInfo     `json:"apps"`
	App      string        `json:"app"`
	Channels []channelInfo `json:"channels"`
	// Occupied is every occupied channel of the app; Channels shows the
	// busiest maxChannelsShown of them.
	Occupied int `json:"occupied"`
}

// kindNames name channel kinds in the page.
var kindNames = map[pusher.Kind]string{
	pusher.Public:           "public",
	pusher.Private:          "private",
	pusher.Presence:         "presence",
	pusher.PrivateEncrypted: "encrypted",
	pusher.ServerToUser:     "user",
}

// apps are the node's apps by id.
func (h *Handler) apps() []*node.App {
	list := h.opts.Node.Apps()
	slices.SortFunc(list, func(a, b *node.App) int { return cmp.Compare(a.ID, b.ID) })
	return list
}

// overview answers GET api/overview?app=ID: the apps, and the app's
// occupied channels with subscribers and presence members.
func (h *Handler) overview(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed; use GET")
		return
	}
	a := h.app(w, r.URL.Query().Get("app"))
	if a == nil {
		return
	}
	ans := overviewAnswer{Version: h.opts.Version, App: a.ID, Channels: []channelInfo{}}
	for _, x := range h.apps() {
		ans.Apps = append(ans.Apps, appInfo{ID: x.ID, Key: x.Key, Connections: x.Connections()})
	}
	all := a.Hub.Channels("")
	ans.Occupied = len(all)
	slices.SortFunc(all, func(x, y hub.ChannelStats) int {
		return cmp.Or(cmp.Compare(y.SubscriptionCount, x.SubscriptionCount), cmp.Compare(x.Name, y.Name))
	})
	for _, ch := range all[:min(len(all), maxChannelsShown)] {
		info := pusher.ParseChannel(ch.Name)
		ci := channelInfo{Name: ch.Name, Kind: kindNames[info.Kind], Subscriptions: ch.SubscriptionCount, Users: ch.UserCount}
		if info.Kind == pusher.Presence {
			ms := a.Hub.Members(ch.Name)
			slices.SortFunc(ms, func(x, y pusher.Member) int { return cmp.Compare(x.UserID, y.UserID) })
			for _, m := range ms[:min(len(ms), maxMembersShown)] {
				ci.Members = append(ci.Members, memberInfo{ID: m.UserID, Info: m.Info})
			}
		}
		ans.Channels = append(ans.Channels, ci)
	}
	writeJSON(w, ans)
}

// publishRequest is what the page's form sends.
type publishRequest struct {
	App     string `json:"app"`
	Channel string `json:"channel"`
	Event   string `json:"event"`
	Data    string `json:"data"`
}

// maxPublishBody bounds the form's request.
const maxPublishBody = 1 << 20

// publish answers POST api/publish: a test event from the page, published
// like an HTTP API event. It needs the X-Herald-Dashboard header, which a
// cross-site form cannot send without a preflight this server never
// grants: browsers attach basic-auth credentials to cross-site requests.
func (h *Handler) publish(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed; use POST")
		return
	}
	if r.Header.Get("X-Herald-Dashboard") != "1" {
		writeError(w, http.StatusForbidden, "publishing from the dashboard needs the header X-Herald-Dashboard: 1")
		return
	}
	var req publishRequest
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxPublishBody))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "the request is over 1 MiB")
		return
	}
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, "the body must be JSON {app, channel, event, data}: "+err.Error())
		return
	}
	a := h.app(w, req.App)
	if a == nil {
		return
	}
	lim := a.Limits
	if err := pusher.ValidateChannelName(req.Channel, lim.MaxChannelNameLength); err != nil {
		writeError(w, http.StatusBadRequest, message(err))
		return
	}
	if err := pusher.ValidateEventName(req.Event, lim.MaxEventNameLength); err != nil {
		writeError(w, http.StatusBadRequest, message(err))
		return
	}
	if len(req.Data) > lim.MaxEventPayloadBytes {
		writeError(w, http.StatusRequestEntityTooLarge, "data is over the app's limit of "+strconv.Itoa(lim.MaxEventPayloadBytes)+" bytes")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	if err := h.opts.Node.Publish(ctx, a, []string{req.Channel}, req.Event, req.Data, ""); err != nil {
		writeError(w, http.StatusServiceUnavailable, "publish failed: "+err.Error())
		return
	}
	h.opts.Log.Info("dashboard: test event published", "app", a.ID, "channel", req.Channel, "event", req.Event, "remote", r.RemoteAddr)
	writeJSON(w, map[string]bool{"ok": true})
}

// message is a validation error's text without the Pusher code (this is
// HTTP, not the socket).
func message(err error) string {
	if pe, ok := errors.AsType[*pusher.Error](err); ok {
		return pe.Message
	}
	return err.Error()
}
