package config

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/herald-ws/herald/internal/apps"
)

// fileReader applies a YAML config file, collecting located errors.
type fileReader struct {
	path string
	cfg  *Config
	errs []error
}

func (r *fileReader) errorf(n *yaml.Node, key, format string, args ...any) {
	r.errs = append(r.errs, fmt.Errorf("%s:%d: %s: %s", r.path, n.Line, key, fmt.Sprintf(format, args...)))
}

// readFile applies path to cfg. It returns whether the file defines apps.
func readFile(path string, cfg *Config) (bool, []error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return false, []error{fmt.Errorf("config file: %w", err)}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return false, []error{fmt.Errorf("%s:%s", path, yamlError(err))}
	}
	r := &fileReader{path: path, cfg: cfg}
	if len(doc.Content) == 0 {
		return false, nil // an empty file configures nothing
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		r.errorf(root, "(top level)", "must be a mapping with server, log and apps")
		return false, r.errs
	}
	hasApps := false
	r.mapping(root, "", func(key string, k, v *yaml.Node) {
		switch key {
		case "server":
			r.mapping(v, "server", r.serverField)
		case "log":
			r.mapping(v, "log", r.logField)
		case "apps":
			hasApps = r.apps(v)
		default:
			r.errorf(k, key, "unknown key (expected server, log or apps)")
		}
	})
	return hasApps, r.errs
}

// yamlError turns yaml.v3's "yaml: line 3: …" into "3: …" (to follow
// the file name), and anything else into " …".
func yamlError(err error) string {
	s := strings.TrimPrefix(err.Error(), "yaml: ")
	if rest, ok := strings.CutPrefix(s, "line "); ok {
		return rest
	}
	return " " + s
}

// mapping walks a mapping node, calling f for each key.
func (r *fileReader) mapping(n *yaml.Node, path string, f func(key string, k, v *yaml.Node)) {
	if n.Kind != yaml.MappingNode {
		r.errorf(n, orTop(path), "must be a mapping")
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		full := join(path, k.Value)
		if seen[k.Value] {
			r.errorf(k, full, "defined twice")
			continue
		}
		seen[k.Value] = true
		f(k.Value, k, v)
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func orTop(p string) string {
	if p == "" {
		return "(top level)"
	}
	return p
}

func (r *fileReader) note(path string, n *yaml.Node) {
	r.cfg.origin[path] = fmt.Sprintf("%s:%d", r.path, n.Line)
}

func (r *fileReader) serverField(key string, k, v *yaml.Node) {
	s := &r.cfg.Server
	p := "server." + key
	r.note(p, v)
	switch key {
	case "host":
		r.str(v, p, &s.Host)
	case "port":
		r.integer(v, p, &s.Port)
	case "path":
		r.str(v, p, &s.Path)
	case "shutdown_timeout":
		r.duration(v, p, &s.ShutdownTimeout)
	case "transport":
		r.str(v, p, &s.Transport)
	default:
		r.errorf(k, p, "unknown key (expected host, port, path, shutdown_timeout or transport)")
	}
}

func (r *fileReader) logField(key string, k, v *yaml.Node) {
	p := "log." + key
	r.note(p, v)
	switch key {
	case "level":
		r.str(v, p, &r.cfg.Log.Level)
	case "format":
		r.str(v, p, &r.cfg.Log.Format)
	default:
		r.errorf(k, p, "unknown key (expected level or format)")
	}
}

func (r *fileReader) apps(n *yaml.Node) bool {
	if n.Kind != yaml.SequenceNode {
		r.errorf(n, "apps", "must be a list of apps")
		return false
	}
	r.cfg.Apps = nil
	for i, an := range n.Content {
		a := NewApp()
		p := fmt.Sprintf("apps[%d]", i)
		r.note(p, an)
		r.mapping(an, p, func(key string, k, v *yaml.Node) { r.appField(a, p, key, k, v) })
		r.cfg.Apps = append(r.cfg.Apps, a)
	}
	return len(n.Content) > 0
}

func (r *fileReader) appField(a *apps.App, p, key string, k, v *yaml.Node) {
	full := p + "." + key
	r.note(full, v)
	switch key {
	case "id":
		r.str(v, full, &a.ID)
	case "key":
		r.str(v, full, &a.Key)
	case "secret":
		r.str(v, full, &a.Secret)
	case "enabled":
		r.boolean(v, full, &a.Enabled)
	case "allowed_origins":
		r.strList(v, full, &a.AllowedOrigins)
	case "max_connections":
		r.integer(v, full, &a.MaxConnections)
	case "client_events":
		r.str(v, full, &a.ClientEvents)
	case "user_authentication":
		r.boolean(v, full, &a.UserAuthentication)
	case "authorized_connections_timeout":
		r.duration(v, full, &a.AuthorizedConnectionsTimeout)
	case "activity_timeout":
		r.duration(v, full, &a.ActivityTimeout)
	case "ping_interval":
		r.duration(v, full, &a.PingInterval)
	case "pong_timeout":
		r.duration(v, full, &a.PongTimeout)
	case "max_message_bytes":
		r.integer(v, full, &a.MaxMessageBytes)
	case "limits":
		fields := limitFields(&a.Limits)
		r.mapping(v, full, func(lk string, lkn, lv *yaml.Node) {
			lp := full + "." + lk
			r.note(lp, lv)
			if f, ok := fields[lk]; ok {
				r.integer(lv, lp, f)
			} else {
				r.errorf(lkn, lp, "unknown limit")
			}
		})
	default:
		r.errorf(k, full, "unknown key")
	}
}

func (r *fileReader) scalar(n *yaml.Node, path, want string) bool {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		r.errorf(n, path, "must be %s", want)
		return false
	}
	return true
}

func (r *fileReader) str(n *yaml.Node, path string, dst *string) {
	// Numbers are accepted as strings: an app id is often written 12345.
	if r.scalar(n, path, "a string") {
		if n.Tag == "!!bool" || n.Tag == "!!map" || n.Tag == "!!seq" {
			r.errorf(n, path, "must be a string (got %s)", n.Value)
			return
		}
		*dst = n.Value
	}
}

func (r *fileReader) integer(n *yaml.Node, path string, dst *int) {
	if !r.scalar(n, path, "an integer") {
		return
	}
	v, err := strconv.Atoi(n.Value)
	if n.Tag != "!!int" || err != nil {
		r.errorf(n, path, "must be an integer (got %q)", n.Value)
		return
	}
	*dst = v
}

func (r *fileReader) boolean(n *yaml.Node, path string, dst *bool) {
	if !r.scalar(n, path, "true or false") {
		return
	}
	if n.Tag != "!!bool" {
		r.errorf(n, path, "must be true or false (got %q)", n.Value)
		return
	}
	*dst = n.Value == "true" || n.Value == "True" || n.Value == "TRUE"
}

func (r *fileReader) duration(n *yaml.Node, path string, dst *time.Duration) {
	if !r.scalar(n, path, "a duration") {
		return
	}
	d, err := parseDuration(n.Value)
	if err != nil {
		r.errorf(n, path, "%v", err)
		return
	}
	*dst = d
}

func (r *fileReader) strList(n *yaml.Node, path string, dst *[]string) {
	if n.Kind != yaml.SequenceNode {
		r.errorf(n, path, "must be a list of strings")
		return
	}
	out := []string{}
	for _, item := range n.Content {
		var s string
		r.str(item, path, &s)
		out = append(out, s)
	}
	*dst = out
}

// parseDuration reads integer seconds ("30") or a Go duration ("1.5s").
func parseDuration(s string) (time.Duration, error) {
	if n, err := strconv.Atoi(s); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, errors.New("must be seconds (30) or a duration (500ms, 1.5s, 2m) (got " + strconv.Quote(s) + ")")
	}
	return d, nil
}
