package config

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// LoopbackHost is where Herald listens with the built-in development app
// when no host is given: its credentials are public, so it is reachable
// from this machine only until an operator opens it with --host.
const LoopbackHost = "127.0.0.1"

// AllInterfaces is the listen host when apps are configured and no host is
// given (Reverb's default).
const AllInterfaces = "0.0.0.0"

// defaultHost picks the listen host when no source gave one: loopback for
// the development app, every interface for configured apps.
func (c *Config) defaultHost() {
	if _, given := c.origin["server.host"]; given {
		return
	}
	if c.DefaultApp {
		c.Server.Host = LoopbackHost
	} else {
		c.Server.Host = AllInterfaces
	}
}

// HostGiven reports whether a source (config file, .env, environment or
// flag) set the listen host.
func (c *Config) HostGiven() bool {
	_, ok := c.origin["server.host"]
	return ok
}

// served reports whether Load reads the variable (as a setting or a
// switch it warns about).
func served(name string) bool {
	return name == "REVERB_SCALING_ENABLED" || slices.ContainsFunc(overridable, func(s textSetting) bool { return s.env == name })
}

// misspellings returns the variables whose names look like misspellings
// of meant, sorted by name.
func (g *gathered) misspellings(meant string) []given {
	var out []given
	for name, v := range g.vars {
		if m, ok := Misspelling(name); ok && m == meant {
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].src.key < out[j].src.key })
	return out
}

// misspelledHint adds to "REVERB_APP_SECRET missing" where a variable
// that looks like a misspelling of it is set, or returns "".
func (g *gathered) misspelledHint(meant string) string {
	var hints []string
	for _, v := range g.misspellings(meant) {
		hints = append(hints, fmt.Sprintf("%s sets %s: did you mean %s?", v.src.at, v.src.key, meant))
	}
	if len(hints) == 0 {
		return ""
	}
	return " (" + strings.Join(hints, "; ") + ")"
}

// warnings lists what does not stop Herald but may not be what the
// operator meant: Reverb's scaling switch, and variables whose names look
// like misspellings of the ones Herald reads (Herald ignores them, and so
// would Laravel).
func (g *gathered) warnings() []string {
	var out []string
	if v, ok := g.vars["REVERB_SCALING_ENABLED"]; ok && Truthy(v.value) && !g.redisGiven() {
		out = append(out, fmt.Sprintf("%s=%s but neither REDIS_URL nor REDIS_HOST is set: Herald runs as a single node: "+
			"events published to this server reach only the connections of this server; set REDIS_URL (or REDIS_HOST, REDIS_PORT, REDIS_PASSWORD, REDIS_DB) to share them through Redis", v.src, v.value))
	}
	names := make([]string, 0, len(g.vars))
	for name := range g.vars {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if meant, ok := Misspelling(name); ok && served(meant) {
			out = append(out, fmt.Sprintf("%s is not a variable Herald reads; did you mean %s?", g.vars[name].src, meant))
		}
	}
	return out
}
