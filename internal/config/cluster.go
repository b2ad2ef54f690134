package config

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Cluster is the scale-out engine that several Herald nodes share. With no
// URL (the default) Herald is a single node and pays nothing for it.
type Cluster struct {
	// URL is redis://[user:password@]host:port[/db] or rediss:// (TLS).
	// nats:// is refused for now.
	URL string
	// Prefix starts every key and channel name Herald uses in the engine,
	// so that several clusters can share one; "" means "herald".
	Prefix string
}

// Redacted is the URL without its password, for logs.
func (c Cluster) Redacted() string {
	u, err := url.Parse(c.URL)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

func (r *fileReader) clusterField(path, key string, k, v *yaml.Node) {
	switch key {
	case "url":
		r.str(v, path, &r.cfg.Cluster.URL)
	case "prefix":
		r.str(v, path, &r.cfg.Cluster.Prefix)
	default:
		r.errorf(k, path, "unknown key")
		return
	}
	r.note(path, k)
}

// The variables Laravel's config/reverb.php reads for scaling.
const (
	reverbScaling = "REVERB_SCALING_ENABLED"
	redisURL      = "REDIS_URL"
	redisHost     = "REDIS_HOST"
)

// reverbCluster turns Reverb's scaling variables into cluster.url, as
// config/reverb.php reads them: REVERB_SCALING_ENABLED on, and REDIS_URL,
// or REDIS_HOST with REDIS_PORT (6379), REDIS_USERNAME, REDIS_PASSWORD
// and REDIS_DB (0). Reverb would fall back to 127.0.0.1 without
// REDIS_HOST; Herald wants the Redis named (warnings says so), so that
// a switch copied from a .env never joins whatever listens on this
// machine. HERALD_CLUSTER_URL and --cluster, when given, win.
func reverbCluster(g *gathered) {
	on, ok := g.vars[reverbScaling]
	if !ok || !Truthy(on.value) || !g.redisGiven() {
		return
	}
	if _, given := g.set["cluster.url"]; given {
		return
	}
	if u := g.value(redisURL); u != "" {
		g.set["cluster.url"] = given{u, g.vars[redisURL].src}
		return
	}
	port := g.value("REDIS_PORT")
	if port == "" {
		port = "6379"
	}
	u := url.URL{Scheme: "redis", Host: net.JoinHostPort(g.value(redisHost), port), Path: "/" + g.value("REDIS_DB")}
	if u.Path == "/" {
		u.Path = "/0"
	}
	if user, pass := g.value("REDIS_USERNAME"), g.value("REDIS_PASSWORD"); pass != "" {
		u.User = url.UserPassword(user, pass)
	} else if user != "" {
		u.User = url.User(user)
	}
	g.set["cluster.url"] = given{u.String(), g.vars[redisHost].src}
}

// redisGiven reports whether REDIS_URL or REDIS_HOST names a Redis.
func (g *gathered) redisGiven() bool { return g.value(redisURL) != "" || g.value(redisHost) != "" }

// value is a variable of the .env file or the environment as Laravel's
// env() reads it: "null", "(null)" and "" are unset.
func (g *gathered) value(name string) string {
	v := strings.TrimSpace(g.vars[name].value)
	switch strings.ToLower(v) {
	case "null", "(null)":
		return ""
	}
	return v
}

// cluster checks cluster.url: a Redis URL Herald can use.
func (v *validator) cluster() {
	c := v.c.Cluster
	if c.URL == "" {
		return
	}
	if msg := checkClusterURL(c.URL); msg != "" {
		v.bad("cluster.url", "%s", msg)
	}
	for _, r := range c.Prefix {
		if r <= ' ' || r == 0x7f {
			v.bad("cluster.prefix", "must not contain spaces or control characters (got %q)", c.Prefix)
			break
		}
	}
}

// checkClusterURL explains what is wrong with a cluster URL, or is "".
// The password is never shown.
func checkClusterURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "must be a URL like redis://127.0.0.1:6379/0 (it does not parse)"
	}
	switch u.Scheme {
	case "redis", "rediss":
	case "nats":
		return "NATS is not supported yet: use a redis:// URL (got " + u.Redacted() + ")"
	default:
		return fmt.Sprintf("must be a redis:// or rediss:// URL, like redis://127.0.0.1:6379/0 (got %s)", u.Redacted())
	}
	if u.Hostname() == "" {
		return "names no host: use redis://host:port/db (got " + u.Redacted() + ")"
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "has a bad port (got " + u.Redacted() + ")"
		}
	}
	if db := strings.TrimPrefix(u.Path, "/"); db != "" {
		if n, err := strconv.Atoi(db); err != nil || n < 0 {
			return "must end in a database number, like /0 (got " + u.Redacted() + ")"
		}
	}
	return ""
}
