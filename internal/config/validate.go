package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/herald-ws/herald/internal/apps"
	"github.com/herald-ws/herald/internal/peer"
	"github.com/herald-ws/herald/internal/pusher"
)

// Validate checks the whole configuration and reports every problem,
// joined, each naming the setting's source when Load recorded it
// ("herald.yaml:12: apps[0].client_events: …") and its path otherwise
// ("apps[0].client_events: …").
func (c *Config) Validate() error {
	return errors.Join(c.problems()...)
}

// problems lists what Validate reports, one error per problem.
func (c *Config) problems() []error {
	v := &validator{c: c}
	v.server()
	v.log()
	v.cluster()
	if c.History.MaxBytes < 0 {
		v.bad("history.max_bytes", "must be 0 (the default, 64 MiB) or more (got %d)", c.History.MaxBytes)
	}
	if c.History.MaxReaders < 0 {
		v.bad("history.max_readers", "must be 0 (the default, 10000) or more (got %d)", c.History.MaxReaders)
	}
	if len(c.Apps) == 0 {
		v.errs = append(v.errs, errors.New("apps: at least one app is required"))
	}
	ids, keys, tokens := map[string]int{}, map[string]int{}, map[string]int{}
	for i, a := range c.Apps {
		p := fmt.Sprintf("apps[%d]", i)
		if a == nil {
			v.bad(p, "must not be nil")
			continue
		}
		v.credentials(a, p)
		if j, ok := ids[a.ID]; ok && a.ID != "" {
			v.bad(p+".id", "duplicate of apps[%d].id", j)
		} else {
			ids[a.ID] = i
		}
		if j, ok := keys[a.Key]; ok && a.Key != "" {
			v.bad(p+".key", "duplicate of apps[%d].key", j)
		} else {
			keys[a.Key] = i
		}
		if j, ok := tokens[a.BroadcastToken]; ok && a.BroadcastToken != "" {
			v.bad(p+".broadcast_token", "same as apps[%d].broadcast_token: the token alone says which app a broadcast is for", j)
		} else {
			tokens[a.BroadcastToken] = i
		}
		v.app(a, p)
	}
	return v.errs
}

type validator struct {
	c    *Config
	errs []error
}

// bad reports a problem with the setting at path, unless Load already
// refused the value given for it.
func (v *validator) bad(path, format string, args ...any) {
	if v.c.wasRefused(path) {
		return
	}
	v.errs = append(v.errs, fmt.Errorf("%s: %s", v.c.label(path), fmt.Sprintf(format, args...)))
}

func (v *validator) server() {
	s := v.c.Server
	if s.Port < 0 || s.Port > 65535 {
		v.bad("server.port", "must be a port number 1-65535 (got %d)", s.Port)
	}
	if msg := checkPath(s.Path); msg != "" {
		v.bad("server.path", "%s (got %q)", msg, s.Path)
	}
	if s.WriteTimeout <= 0 {
		v.bad("server.write_timeout", "must be positive (got %s)", s.WriteTimeout)
	}
	if s.CoalesceWindow < 0 || s.CoalesceWindow > time.Second {
		v.bad("server.coalesce_window", "must be between 0 (off) and 1s (got %s)", s.CoalesceWindow)
	}
	if s.ShutdownTimeout <= 0 {
		v.bad("server.shutdown_timeout", "must be positive (got %s)", s.ShutdownTimeout)
	}
	if s.Transport != "" && !slices.Contains([]string{"epoll", "goroutine"}, s.Transport) {
		v.bad("server.transport", "must be one of epoll, goroutine (got %q)", s.Transport)
	}
	v.metrics()
	v.dashboard()
	v.peers()
	v.tls()
	v.drain()
}

// metrics checks the /metrics settings: a listen address host:port, and a
// token long enough not to be guessed and sendable in an Authorization
// header.
func (v *validator) metrics() {
	s := v.c.Server
	if a := s.MetricsAddr; a != "" {
		_, port, err := net.SplitHostPort(a)
		if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 {
			v.bad("server.metrics_addr", "must be a listen address host:port, like 127.0.0.1:9100 (got %q)", a)
		}
	}
	if t := s.MetricsToken; t != "" {
		switch {
		case len(t) < MinMetricsTokenLength:
			v.bad("server.metrics_token", "must be at least %d characters (got %d); generate one with: openssl rand -hex 24", MinMetricsTokenLength, len(t))
		case strings.IndexFunc(t, func(r rune) bool { return r <= ' ' || r >= 0x7f }) >= 0:
			v.bad("server.metrics_token", "must be printable ASCII without spaces (it is sent as \"Authorization: Bearer <token>\")")
		}
	}
}

// dashboard checks the dashboard's credentials: a token as strong as the
// metrics token, or a user with a password long enough not to be guessed.
func (v *validator) dashboard() {
	s := v.c.Server
	if t := s.DashboardToken; t != "" {
		switch {
		case len(t) < MinMetricsTokenLength:
			v.bad("server.dashboard_token", "must be at least %d characters (got %d); generate one with: openssl rand -hex 24", MinMetricsTokenLength, len(t))
		case strings.IndexFunc(t, func(r rune) bool { return r <= ' ' || r >= 0x7f }) >= 0:
			v.bad("server.dashboard_token", "must be printable ASCII without spaces (it is sent in a URL and as \"Authorization: Bearer <token>\")")
		}
	}
	switch u, p := s.DashboardUser, s.DashboardPassword; {
	case u == "" && p != "":
		v.bad("server.dashboard_password", "is set without server.dashboard_user: basic auth needs both")
	case u != "" && p == "":
		v.bad("server.dashboard_user", "is set without server.dashboard_password: basic auth needs both")
	case strings.Contains(u, ":"):
		v.bad("server.dashboard_user", "must not contain ':' (basic auth separates user and password with it)")
	case p != "" && len(p) < MinDashboardPasswordLength:
		v.bad("server.dashboard_password", "must be at least %d characters (got %d)", MinDashboardPasswordLength, len(p))
	}
}

// peers checks the client-address settings.
func (v *validator) peers() {
	s := v.c.Server
	if _, err := peer.ParseTrusted(s.TrustedProxies); err != nil {
		v.bad("server.trusted_proxies", "%v", err)
	}
	for _, f := range []struct {
		name string
		n    int
	}{{"max_connections_per_ip", s.MaxConnectionsPerIP}, {"max_new_connections_per_ip", s.MaxNewConnectionsPerIP}, {"max_pending_handshakes", s.MaxPendingHandshakes}} {
		if f.n < 0 {
			v.bad("server."+f.name, "must be 0 (no limit) or more (got %d)", f.n)
		}
	}
	if s.HeaderTimeout < 0 {
		v.bad("server.header_timeout", "must be 0 (the default, 10s) or more (got %s)", s.HeaderTimeout)
	}
}

// MinDashboardPasswordLength keeps the dashboard's basic-auth password
// out of guessing range.
const MinDashboardPasswordLength = 12

// DashboardOn reports whether the dashboard has credentials (and so is on).
func (s Server) DashboardOn() bool { return s.DashboardToken != "" || s.DashboardUser != "" }

// checkPath explains what is wrong with a server path, or returns "".
func checkPath(p string) string {
	switch {
	case p == "":
		return ""
	case !strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/"):
		return "must start with / and not end with /"
	case strings.Contains(p, "//") || strings.ContainsAny(p, "?# \t\r\n"):
		return "must be a URL path like /ws, without '//', '?', '#' or spaces"
	}
	return ""
}

func (v *validator) log() {
	if l := v.c.Log.Level; !slices.Contains([]string{"debug", "info", "warn", "error"}, l) {
		v.bad("log.level", "must be one of debug, info, warn, error (got %q)", l)
	}
	if f := v.c.Log.Format; !slices.Contains([]string{"text", "json"}, f) {
		v.bad("log.format", "must be one of text, json (got %q)", f)
	}
}

// credentials checks that id, key and secret are given, and that id and
// key are safe in the URL paths /apps/{id} and /app/{key}. The secret only
// feeds HMACs and may hold anything.
func (v *validator) credentials(a *apps.App, p string) {
	for _, f := range []struct{ name, value string }{{"id", a.ID}, {"key", a.Key}, {"secret", a.Secret}} {
		switch {
		case f.value == "":
			v.bad(p+"."+f.name, "is required")
		case f.name != "secret" && strings.ContainsAny(f.value, " \t\r\n/?#%"):
			v.bad(p+"."+f.name, "must not contain spaces, '/', '?', '#' or '%%' (got %q)", f.value)
		}
	}
}

func (v *validator) app(a *apps.App, p string) {
	if len(a.AllowedOrigins) == 0 {
		v.bad(p+".allowed_origins", "must list at least one origin (\"*\" for any)")
	}
	for _, o := range a.AllowedOrigins {
		if strings.TrimSpace(o) == "" {
			v.bad(p+".allowed_origins", "must not contain an empty origin")
			break
		}
	}
	if a.MaxConnections < 0 {
		v.bad(p+".max_connections", "must be 0 (unlimited) or more (got %d)", a.MaxConnections)
	}
	if !slices.Contains([]string{apps.ClientEventsMembers, apps.ClientEventsAll, apps.ClientEventsNone}, a.ClientEvents) {
		v.bad(p+".client_events", "must be one of members, all, none (got %q)", a.ClientEvents)
	}
	if a.AuthorizedConnectionsTimeout < 0 {
		v.bad(p+".authorized_connections_timeout", "must be 0 (off) or positive (got %s)", a.AuthorizedConnectionsTimeout)
	}
	// Clients receive activity_timeout as whole seconds.
	if a.ActivityTimeout < time.Second || a.ActivityTimeout%time.Second != 0 {
		v.bad(p+".activity_timeout", "must be a whole number of seconds, at least 1 (got %s)", a.ActivityTimeout)
	}
	if a.PingInterval <= 0 {
		v.bad(p+".ping_interval", "must be positive (got %s)", a.PingInterval)
	}
	if a.PongTimeout <= 0 {
		v.bad(p+".pong_timeout", "must be positive (got %s)", a.PongTimeout)
	}
	if a.MaxMessageBytes <= 0 {
		v.bad(p+".max_message_bytes", "must be positive (got %d)", a.MaxMessageBytes)
	}
	v.broadcast(a, p)
	v.webhooks(a, p)
	for _, f := range limitFields(&a.Limits) {
		if *f.v <= 0 {
			v.bad(p+".limits."+f.name, "must be positive (got %d)", *f.v)
		}
	}
	v.history(a.History, p+".history")
}

// maxHistoryEvents bounds history.max_events: a resume queues them all at
// once, and a session's outbound queue holds 4096 frames.
const maxHistoryEvents = 4000

func (v *validator) history(h apps.History, p string) {
	if !h.Enabled {
		return
	}
	if len(h.Channels) == 0 {
		v.bad(p+".channels", "must list at least one channel, prefix* or \"*\" (or set history: off)")
	}
	for _, c := range h.Channels {
		if strings.TrimSpace(c) == "" || strings.Contains(strings.TrimSuffix(c, "*"), "*") {
			v.bad(p+".channels", "must hold channel names, prefixes ending in * or \"*\" (got %q)", c)
			break
		}
	}
	if h.MaxEvents < 1 || h.MaxEvents > maxHistoryEvents {
		v.bad(p+".max_events", "must be between 1 and %d (got %d)", maxHistoryEvents, h.MaxEvents)
	}
	if h.TTL <= 0 {
		v.bad(p+".ttl", "must be positive (got %s)", h.TTL)
	}
}

// limitField is one limit with its config-file name.
type limitField struct {
	name string
	v    *int
}

// limitFields lists l's fields in declaration order.
func limitFields(l *apps.Limits) []limitField {
	return []limitField{
		{"max_event_payload_bytes", &l.MaxEventPayloadBytes},
		{"max_channels_per_event", &l.MaxChannelsPerEvent},
		{"max_batch_events", &l.MaxBatchEvents},
		{"max_channel_name_length", &l.MaxChannelNameLength},
		{"max_event_name_length", &l.MaxEventNameLength},
		{"max_presence_members", &l.MaxPresenceMembers},
		{"max_presence_user_id_length", &l.MaxPresenceUserIDLength},
		{"max_presence_info_bytes", &l.MaxPresenceInfoBytes},
		{"max_request_bytes", &l.MaxRequestBytes},
		{"client_events_per_second", &l.ClientEventsPerSecond},
		{"max_watchlist", &l.MaxWatchlist},
		{"max_channels_per_connection", &l.MaxChannelsPerConnection},
		{"max_channels", &l.MaxChannels},
		{"max_messages_per_second", &l.MaxMessagesPerSecond},
		{"max_messages_burst", &l.MaxMessagesBurst},
		{"max_api_requests_per_second", &l.MaxAPIRequestsPerSecond},
		{"max_api_requests_burst", &l.MaxAPIRequestsBurst},
	}
}

// webhooks checks each endpoint: an absolute http(s) URL, and event names
// Pusher's webhooks have.
func (v *validator) webhooks(a *apps.App, p string) {
	for i, w := range a.Webhooks {
		wp := fmt.Sprintf("%s.webhooks[%d]", p, i)
		if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.bad(wp+".url", "must be an absolute http:// or https:// URL (got %q)", w.URL)
		}
		for j, e := range w.Events {
			if !slices.Contains(apps.WebhookEvents, e) {
				v.bad(fmt.Sprintf("%s.events[%d]", wp, j), "unknown event %q; webhooks have %s", e, strings.Join(apps.WebhookEvents, ", "))
			}
		}
	}
}

// MinBroadcastTokenLength keeps a broadcast token out of guessing range:
// anyone who has it can publish to every channel of the app.
const MinBroadcastTokenLength = 16

// MinMetricsTokenLength keeps the metrics token out of guessing range.
const MinMetricsTokenLength = 16

// broadcast checks the settings of POST /broadcast: a token long enough
// not to be guessed and sendable in an Authorization header, and a
// default channel that exists.
func (v *validator) broadcast(a *apps.App, p string) {
	if t := a.BroadcastToken; t != "" {
		switch {
		case len(t) < MinBroadcastTokenLength:
			v.bad(p+".broadcast_token", "must be at least %d characters (got %d); generate one with: openssl rand -hex 24", MinBroadcastTokenLength, len(t))
		case strings.IndexFunc(t, func(r rune) bool { return r <= ' ' || r >= 0x7f }) >= 0:
			v.bad(p+".broadcast_token", "must be printable ASCII without spaces (it is sent as \"Authorization: Bearer <token>\")")
		}
	}
	if c := a.BroadcastChannel; c != "" {
		if err := pusher.ValidateChannelName(c, a.Limits.MaxChannelNameLength); err != nil {
			v.bad(p+".broadcast_channel", "%s", err.(*pusher.Error).Message)
		} else if pusher.ParseChannel(c).Kind == pusher.PrivateEncrypted {
			v.bad(p+".broadcast_channel", "must not be an encrypted channel: /broadcast publishes plain JSON (got %q)", c)
		}
	}
}
