package httpapi

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/herald-ws/herald/internal/pusher"
)

func (h *Handler) channels(w http.ResponseWriter, req *request) error {
	q := req.r.URL.Query()
	prefix := q.Get("filter_by_prefix")
	info, err := parseInfo(q.Get("info"), false)
	if err != nil {
		return err
	}
	if info.userCount && !strings.HasPrefix(prefix, pusher.PrefixPresence) {
		return errorf(http.StatusBadRequest, "info=user_count needs filter_by_prefix=presence-: it is only available for presence channels")
	}
	out := map[string]channelInfo{}
	for _, st := range req.app.Hub.Channels(prefix) {
		var ci channelInfo
		if info.userCount {
			n := st.UserCount
			ci.UserCount = &n
		}
		if info.subscriptionCount {
			n := st.SubscriptionCount
			ci.SubscriptionCount = &n
		}
		out[st.Name] = ci
	}
	writeJSON(w, map[string]any{"channels": out})
	return nil
}

func (h *Handler) channel(w http.ResponseWriter, req *request, name string) error {
	if err := pusher.ValidateChannelName(name, req.app.Limits.MaxChannelNameLength); err != nil {
		return errorf(http.StatusBadRequest, "%s", err.(*pusher.Error).Message)
	}
	info, err := parseInfo(req.r.URL.Query().Get("info"), true)
	if err != nil {
		return err
	}
	kind := pusher.ParseChannel(name)
	if info.userCount && kind.Kind != pusher.Presence {
		return errorf(http.StatusBadRequest, "info=user_count is only available for presence channels, not %s", name)
	}
	st, occupied := req.app.Hub.Stats(name)
	out := map[string]any{"occupied": occupied}
	if info.userCount {
		out["user_count"] = st.UserCount
	}
	if info.subscriptionCount {
		out["subscription_count"] = st.SubscriptionCount
	}
	if info.cache && kind.Cache {
		if frame, ttl, ok := req.app.Hub.Cached(name); ok {
			var ev struct {
				Data string `json:"data"`
			}
			_ = json.Unmarshal(frame, &ev)
			out["cache"] = map[string]any{"data": ev.Data, "ttl": int(ttl.Seconds())}
		}
	}
	writeJSON(w, out)
	return nil
}

func (h *Handler) users(w http.ResponseWriter, req *request, name string) error {
	if err := pusher.ValidateChannelName(name, req.app.Limits.MaxChannelNameLength); err != nil {
		return errorf(http.StatusBadRequest, "%s", err.(*pusher.Error).Message)
	}
	if pusher.ParseChannel(name).Kind != pusher.Presence {
		return errorf(http.StatusBadRequest, "users are only available for presence channels, not %s", name)
	}
	type user struct {
		ID string `json:"id"`
	}
	members := req.app.Hub.Members(name)
	out := make([]user, len(members))
	for i, m := range members {
		out[i] = user{ID: m.UserID}
	}
	writeJSON(w, map[string]any{"users": out})
	return nil
}

func (h *Handler) terminate(w http.ResponseWriter, req *request, userID string) error {
	if userID == "" {
		return errorf(http.StatusBadRequest, "missing user id")
	}
	n := req.app.Terminate(userID)
	h.log.Info("terminated user connections", "app", req.app.ID, "user_id", userID, "connections", n)
	writeJSON(w, struct{}{})
	return nil
}
