// Package doctor is `herald doctor`: it reads a Laravel .env (and Herald's
// own config) and reports the mistakes that silently break broadcasting —
// a key defined twice, BROADCAST_DRIVER instead of BROADCAST_CONNECTION,
// a client pointed at localhost, keys that do not match the server — each
// with its severity, file and line, why it matters and the fix.
package doctor

import (
	"fmt"
	"net"
	"net/url"
	"sort"
	"strings"

	"github.com/herald-ws/herald/internal/config"
	"github.com/herald-ws/herald/internal/envfile"
)

// Severities, most serious first.
const (
	Error   = "error"
	Warning = "warning"
	Info    = "info"
)

// Finding is one problem.
type Finding struct {
	Severity string   `json:"severity"`
	Check    string   `json:"check"` // stable identifier, e.g. "duplicate-key"
	File     string   `json:"file,omitempty"`
	Line     int      `json:"line,omitempty"`
	Title    string   `json:"title"`
	Lines    []string `json:"lines,omitempty"` // the lines involved, as "40: KEY=value"
	Why      string   `json:"why"`
	Fix      string   `json:"fix"`
}

// Options say what to check.
type Options struct {
	Env     *envfile.File  // the Laravel .env; nil when not given
	Config  *config.Config // Herald's config; nil when not given
	AppURL  string         // where browsers load the app (--url); APP_URL when empty
	Environ func(string) (string, bool)
}

// Report is the outcome of a check.
type Report struct {
	Findings []Finding `json:"findings"`
	Verdict  string    `json:"verdict"`
	// OK is true when there is no error: as far as doctor can tell,
	// broadcasting works as configured. Warnings never make it false, so
	// the verdict never contradicts a setup that delivers events.
	OK bool `json:"ok"`
	// Clean is true when there is neither an error nor a warning.
	Clean bool `json:"clean"`
}

// Check runs every check.
func Check(o Options) *Report {
	c := &checker{o: o}
	if o.Env != nil {
		c.vals = o.Env.Effective(o.Environ)
		c.typos() // first: the checks of missing names defer to it
		c.duplicates()
		c.broadcastConnection()
		c.connectionName()
		c.credentials()
		c.vite()
		c.hostAndPorts()
		c.queue()
		c.origins()
		c.scaling()
	}
	if o.Env != nil && o.Config != nil {
		c.configChecks()
	}
	sort.SliceStable(c.findings, func(i, j int) bool { return rank(c.findings[i].Severity) < rank(c.findings[j].Severity) })
	errs, warns := countOf(c.findings, Error), countOf(c.findings, Warning)
	return &Report{Findings: c.findings, Verdict: verdict(c.findings), OK: errs == 0, Clean: errs+warns == 0}
}

func rank(s string) int {
	switch s {
	case Error:
		return 0
	case Warning:
		return 1
	}
	return 2
}

func countOf(fs []Finding, sev string) int {
	n := 0
	for _, f := range fs {
		if f.Severity == sev {
			n++
		}
	}
	return n
}

func verdict(fs []Finding) string {
	e, w, i := countOf(fs, Error), countOf(fs, Warning), countOf(fs, Info)
	switch {
	case e > 0:
		return fmt.Sprintf("%s, %s, %s: broadcasting will not work as configured", plural(e, "error"), plural(w, "warning"), plural(i, "note"))
	case w > 0:
		return fmt.Sprintf("%s, %s: broadcasting should work; fix the warnings before production", plural(w, "warning"), plural(i, "note"))
	case i > 0:
		return fmt.Sprintf("no problems found (%s)", plural(i, "note"))
	}
	return "no problems found"
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

type checker struct {
	o        Options
	vals     map[string]string // resolved .env values
	findings []Finding
	// typoFor holds the names that are not set while a misspelling of
	// them is: typos reported them, and the checks of missing names leave
	// them alone.
	typoFor map[string]bool
}

func (c *checker) add(f Finding) {
	if f.File == "" && f.Line > 0 && c.o.Env != nil {
		f.File = c.o.Env.Path
	}
	c.findings = append(c.findings, f)
}

// get returns the effective value of key and its entry.
func (c *checker) get(key string) (string, envfile.Entry, bool) {
	e, ok := c.o.Env.Lookup(key)
	return c.vals[key], e, ok
}

func lineOf(e envfile.Entry) string { return fmt.Sprintf("%d: %s", e.Line, strings.TrimSpace(e.Raw)) }

func (c *checker) production() bool {
	env, _, _ := c.get("APP_ENV")
	return strings.EqualFold(env, "production") || strings.EqualFold(env, "prod")
}

// publicURL is the app's public URL (--url, else APP_URL) when its host is
// a public name, or nil.
func (c *checker) publicURL() *url.URL {
	raw := c.o.AppURL
	if raw == "" {
		raw, _, _ = c.get("APP_URL")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || isLocalHost(u.Hostname()) {
		return nil
	}
	return u
}

func isLocalHost(h string) bool {
	h = strings.ToLower(h)
	if h == "localhost" || strings.HasSuffix(h, ".localhost") || strings.HasSuffix(h, ".test") || strings.HasSuffix(h, ".local") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && (ip.IsLoopback() || ip.IsUnspecified())
}
