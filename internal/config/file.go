package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/herald-ws/herald/internal/apps"
)

// fileReader applies a YAML config file to a Config. It walks yaml.v3's
// node tree rather than decoding into structs so that every problem names
// its line and unknown keys are caught. A value with a problem is reported
// and not applied.
type fileReader struct {
	path string
	cfg  *Config
	errs []error
}

// readFile applies the config file at path to cfg. definesApps reports
// whether the file lists apps — or may, when it cannot be read, so that
// its absence does not add a misleading error about the environment's app
// credentials.
func readFile(path string, cfg *Config) (definesApps bool, errs []error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return true, []error{fmt.Errorf("config file: %w", err)}
	}
	root, err := parseYAML(path, b)
	if err != nil {
		return true, []error{err}
	}
	if root == nil {
		return false, nil // empty, or only comments
	}
	r := &fileReader{path: path, cfg: cfg}
	definesApps = r.top(root)
	return definesApps, r.errs
}

// parseYAML returns the root node of the single document in b, or nil for
// an empty file.
func parseYAML(path string, b []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, fmt.Errorf("%s:%s", path, yamlError(err, b))
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		return nil, fmt.Errorf("%s:%d: only one YAML document is allowed", path, max(next.Line, 1))
	case !errors.Is(err, io.EOF):
		return nil, fmt.Errorf("%s:%s", path, yamlError(err, b))
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	if root := deref(doc.Content[0]); !isNull(root) {
		return root, nil
	}
	return nil, nil
}

// yamlError turns yaml.v3's "yaml: line 3: …" into "3: …", to follow the
// file name, and anything else into " …". The most common mistake in a
// hand-written file, a tab in the indentation, gets a hint.
func yamlError(err error, b []byte) string {
	s := strings.TrimPrefix(err.Error(), "yaml: ")
	rest, ok := strings.CutPrefix(s, "line ")
	if !ok {
		return " " + s
	}
	num, _, _ := strings.Cut(rest, ":")
	if n, err := strconv.Atoi(num); err == nil && strings.Contains(rest, "cannot start any token") {
		if lines := strings.Split(string(b), "\n"); n >= 1 && n <= len(lines) && strings.Contains(lines[n-1], "\t") {
			rest += " (YAML does not allow tabs for indentation)"
		}
	}
	return rest
}

// deref follows an alias (*name) to its anchored node.
func deref(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

// shownKey is a key as a message shows it: quoted unless it is a plain
// name, so that an odd key cannot garble the message.
func shownKey(k string) string {
	for i := 0; i < len(k); i++ {
		if c := k[i]; !(c == '_' || c == '-' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return strconv.Quote(k)
		}
	}
	if k == "" {
		return `""`
	}
	return k
}

// describe shows a node's value in a message.
func describe(n *yaml.Node) string {
	switch {
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Kind != yaml.ScalarNode:
		return "an alias"
	case isNull(n):
		return "nothing"
	}
	return strconv.Quote(n.Value)
}

// errorf reports a problem at n's line with the setting at path.
func (r *fileReader) errorf(n *yaml.Node, path, format string, args ...any) {
	prefix := fmt.Sprintf("%s:%d: ", r.path, n.Line)
	if path != "" {
		prefix += path + ": "
		r.cfg.refuse(path)
	}
	r.errs = append(r.errs, errors.New(prefix+fmt.Sprintf(format, args...)))
}

// note records that the setting at path is defined at k's line.
func (r *fileReader) note(path string, k *yaml.Node) {
	r.cfg.note(path, source{at: fmt.Sprintf("%s:%d", r.path, k.Line), key: path})
}

// top applies the root mapping and reports whether it lists apps.
func (r *fileReader) top(root *yaml.Node) (definesApps bool) {
	if root.Kind != yaml.MappingNode {
		r.errorf(root, "", "must be a mapping with server, log and apps (got %s)", describe(root))
		return true
	}
	r.mapping(root, "", func(path, key string, k, v *yaml.Node) {
		switch key {
		case "server":
			r.mapping(v, path, r.serverField)
		case "log":
			r.mapping(v, path, r.logField)
		case "apps":
			definesApps = r.apps(v)
		case "history":
			r.mapping(v, path, r.historyField)
		case "cluster":
			r.mapping(v, path, r.clusterField)
		default:
			r.errorf(k, path, "unknown key")
		}
	})
	return definesApps
}

// mapping calls f for each key of the mapping n at path; a null (a
// section whose keys are all commented out) is an empty mapping.
func (r *fileReader) mapping(n *yaml.Node, path string, f func(path, key string, k, v *yaml.Node)) {
	n = deref(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		r.errorf(n, path, "must be a mapping (got %s)", describe(n))
		return
	}
	first := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), deref(n.Content[i+1])
		full := shownKey(k.Value)
		if path != "" {
			full = path + "." + full
		}
		if k.Kind != yaml.ScalarNode {
			r.errorf(k, path, "keys must be names (got %s)", describe(k))
			continue
		}
		if line, dup := first[k.Value]; dup {
			r.errorf(k, full, "defined twice (first at line %d)", line)
			continue
		}
		first[k.Value] = k.Line
		f(full, k.Value, k, v)
	}
}

func (r *fileReader) serverField(path, key string, k, v *yaml.Node) {
	s := &r.cfg.Server
	switch key {
	case "host":
		r.str(v, path, &s.Host)
	case "port":
		r.port(v, path, &s.Port)
	case "path":
		if r.str(v, path, &s.Path) {
			s.Path = normalizePath(s.Path)
		}
	case "shutdown_timeout":
		r.duration(v, path, &s.ShutdownTimeout)
	case "transport":
		r.str(v, path, &s.Transport)
	case "debug_addr":
		r.str(v, path, &s.DebugAddr)
	case "metrics_addr":
		r.str(v, path, &s.MetricsAddr)
	case "metrics_token":
		r.str(v, path, &s.MetricsToken)
	case "dashboard_token":
		r.str(v, path, &s.DashboardToken)
	case "dashboard_user":
		r.str(v, path, &s.DashboardUser)
	case "dashboard_password":
		r.str(v, path, &s.DashboardPassword)
	case "write_timeout":
		r.duration(v, path, &s.WriteTimeout)
	case "coalesce_window":
		r.duration(v, path, &s.CoalesceWindow)
	case "request_timeout":
		r.duration(v, path, &s.RequestTimeout)
	case "xhr_session_timeout":
		r.duration(v, path, &s.XHRSessionTimeout)
	case "tls_cert":
		r.str(v, path, &s.TLSCert)
	case "tls_key":
		r.str(v, path, &s.TLSKey)
	case "drain_window":
		r.duration(v, path, &s.DrainWindow)
	case "pid_file":
		r.str(v, path, &s.PIDFile)
	case "trusted_proxies":
		r.strList(v, path, &s.TrustedProxies)
	case "max_connections_per_ip":
		r.integer(v, path, &s.MaxConnectionsPerIP)
	case "max_new_connections_per_ip":
		r.integer(v, path, &s.MaxNewConnectionsPerIP)
	case "max_pending_handshakes":
		r.integer(v, path, &s.MaxPendingHandshakes)
	case "header_timeout":
		r.duration(v, path, &s.HeaderTimeout)
	default:
		r.errorf(k, path, "unknown key")
		return
	}
	r.note(path, k)
}

func (r *fileReader) logField(path, key string, k, v *yaml.Node) {
	switch key {
	case "level":
		r.str(v, path, &r.cfg.Log.Level)
	case "format":
		r.str(v, path, &r.cfg.Log.Format)
	case "debug":
		r.boolean(v, path, &r.cfg.Log.Debug)
	default:
		r.errorf(k, path, "unknown key")
		return
	}
	r.note(path, k)
}

// apps replaces the configured apps with the file's list, when it has
// one, and reports whether it does.
func (r *fileReader) apps(n *yaml.Node) bool {
	if isNull(n) {
		return false
	}
	if n.Kind != yaml.SequenceNode {
		r.errorf(n, "apps", "must be a list of apps (got %s)", describe(n))
		return true
	}
	if len(n.Content) == 0 {
		return false
	}
	list := make([]*apps.App, 0, len(n.Content))
	for i, item := range n.Content {
		item = deref(item)
		a, p := NewApp(), fmt.Sprintf("apps[%d]", i)
		r.note(p, item)
		if isNull(item) {
			r.errorf(item, p, "must be a mapping with id, key and secret (got nothing)")
		}
		r.mapping(item, p, func(path, key string, k, v *yaml.Node) { r.appField(a, path, key, k, v) })
		list = append(list, a)
	}
	r.cfg.Apps, r.cfg.DefaultApp = list, false
	return true
}

func (r *fileReader) appField(a *apps.App, path, key string, k, v *yaml.Node) {
	switch key {
	case "id":
		r.str(v, path, &a.ID)
	case "key":
		r.str(v, path, &a.Key)
	case "secret":
		r.str(v, path, &a.Secret)
	case "enabled":
		r.boolean(v, path, &a.Enabled)
	case "allowed_origins":
		r.strList(v, path, &a.AllowedOrigins)
	case "max_connections":
		r.integer(v, path, &a.MaxConnections)
	case "client_events":
		r.str(v, path, &a.ClientEvents)
	case "user_authentication":
		r.boolean(v, path, &a.UserAuthentication)
	case "authorized_connections_timeout":
		r.duration(v, path, &a.AuthorizedConnectionsTimeout)
	case "activity_timeout":
		r.duration(v, path, &a.ActivityTimeout)
	case "ping_interval":
		r.duration(v, path, &a.PingInterval)
	case "pong_timeout":
		r.duration(v, path, &a.PongTimeout)
	case "max_message_bytes":
		r.integer(v, path, &a.MaxMessageBytes)
	case "subscription_count":
		r.boolean(v, path, &a.SubscriptionCount)
	case "broadcast_token":
		r.str(v, path, &a.BroadcastToken)
	case "broadcast_channel":
		r.str(v, path, &a.BroadcastChannel)
	case "limits":
		r.limits(&a.Limits, path, v)
	case "history":
		r.appHistory(&a.History, path, v)
	case "webhooks":
		r.webhooks(&a.Webhooks, path, v)
	default:
		r.errorf(k, path, "unknown key")
		return
	}
	r.note(path, k)
}

// webhooks reads an app's list of {url, events} endpoints.
func (r *fileReader) webhooks(dst *[]apps.Webhook, path string, n *yaml.Node) {
	if n.Kind != yaml.SequenceNode {
		r.errorf(n, path, "must be a list of {url: …, events: [...]} (got %s)", describe(n))
		return
	}
	list := make([]apps.Webhook, len(n.Content))
	for i, item := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		w := &list[i]
		r.mapping(deref(item), p, func(fp, key string, k, v *yaml.Node) {
			switch key {
			case "url":
				r.str(v, fp, &w.URL)
			case "events":
				r.strList(v, fp, &w.Events)
			default:
				r.errorf(k, fp, "unknown key")
				return
			}
			r.note(fp, k)
		})
	}
	*dst = list
}

// historyField applies the node-wide history section.
func (r *fileReader) historyField(path, key string, k, v *yaml.Node) {
	switch key {
	case "max_bytes":
		var n int
		if r.integer(v, path, &n) {
			r.cfg.History.MaxBytes = int64(n)
		}
	case "max_readers":
		r.integer(v, path, &r.cfg.History.MaxReaders)
	default:
		r.errorf(k, path, "unknown key")
		return
	}
	r.note(path, k)
}

// appHistory applies an app's history: off/false, on/true, or a mapping
// of enabled, channels, max_events and ttl.
func (r *fileReader) appHistory(h *apps.History, path string, n *yaml.Node) {
	if n.Kind == yaml.ScalarNode && !isNull(n) {
		switch {
		case n.ShortTag() == "!!bool":
			r.boolean(n, path, &h.Enabled)
		case n.Value == "off":
			h.Enabled = false
		case n.Value == "on":
			h.Enabled = true
		default:
			r.errorf(n, path, "must be off, on or a mapping with enabled, channels, max_events, ttl (got %s)", describe(n))
		}
		return
	}
	h.Enabled = true // a mapping switches history on unless it says enabled: false
	r.mapping(n, path, func(path, key string, k, v *yaml.Node) {
		switch key {
		case "enabled":
			r.boolean(v, path, &h.Enabled)
		case "channels":
			r.strList(v, path, &h.Channels)
		case "max_events":
			r.integer(v, path, &h.MaxEvents)
		case "ttl":
			r.duration(v, path, &h.TTL)
		default:
			r.errorf(k, path, "unknown key")
			return
		}
		r.note(path, k)
	})
}

// limits applies the limits mapping. A limit the file sets to 0 or less
// stays set, for Validate to refuse: only an absent limit takes its
// default.
func (r *fileReader) limits(l *apps.Limits, path string, n *yaml.Node) {
	fields := limitFields(l)
	r.mapping(n, path, func(path, key string, k, v *yaml.Node) {
		for _, f := range fields {
			if f.name == key {
				r.integer(v, path, f.v)
				r.note(path, k)
				return
			}
		}
		r.errorf(k, path, "unknown key")
	})
}

// str sets *dst to a scalar's text. Numbers are taken as written: an app
// id is often 884213, a secret may start with 0.
func (r *fileReader) str(n *yaml.Node, path string, dst *string) bool {
	if n.Kind != yaml.ScalarNode || isNull(n) || n.ShortTag() == "!!bool" {
		r.errorf(n, path, "must be a string (got %s)", describe(n))
		return false
	}
	*dst = n.Value
	return true
}

func (r *fileReader) integer(n *yaml.Node, path string, dst *int) bool {
	var v int
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&v) != nil {
		r.errorf(n, path, "must be an integer (got %s)", describe(n))
		return false
	}
	*dst = v
	return true
}

// port is an integer 1-65535: the file names a real port (only code, such
// as tests, asks for port 0).
func (r *fileReader) port(n *yaml.Node, path string, dst *int) {
	var v int
	if !r.integer(n, path, &v) {
		return
	}
	if v < 1 || v > 65535 {
		r.errorf(n, path, "must be a port number 1-65535 (got %d)", v)
		return
	}
	*dst = v
}

func (r *fileReader) boolean(n *yaml.Node, path string, dst *bool) {
	var v bool
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&v) != nil {
		r.errorf(n, path, "must be true or false (got %s)", describe(n))
		return
	}
	*dst = v
}

// duration reads integer seconds (30) or a Go duration string ("1.5s").
func (r *fileReader) duration(n *yaml.Node, path string, dst *time.Duration) {
	if n.Kind == yaml.ScalarNode {
		switch n.ShortTag() {
		case "!!int":
			var secs int64
			if n.Decode(&secs) == nil && secs <= math.MaxInt64/int64(time.Second) && secs >= math.MinInt64/int64(time.Second) {
				*dst = time.Duration(secs) * time.Second
				return
			}
		case "!!str":
			if d, err := time.ParseDuration(n.Value); err == nil {
				*dst = d
				return
			}
		}
	}
	r.errorf(n, path, "must be whole seconds (30) or a duration (500ms, 1.5s, 2m) (got %s)", describe(n))
}

func (r *fileReader) strList(n *yaml.Node, path string, dst *[]string) {
	if n.Kind != yaml.SequenceNode {
		r.errorf(n, path, "must be a list of strings, like [\"*\"] (got %s)", describe(n))
		return
	}
	list, ok := make([]string, len(n.Content)), true
	for i, item := range n.Content {
		ok = r.str(deref(item), fmt.Sprintf("%s[%d]", path, i), &list[i]) && ok
	}
	if ok {
		*dst = list
	}
}

// normalizePath turns "ws", "/ws/" and "/ws" into "/ws", and "/" into "".
func normalizePath(p string) string {
	if p = strings.Trim(p, "/"); p != "" {
		return "/" + p
	}
	return ""
}
