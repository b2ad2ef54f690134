package doctor

import (
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/herald-ws/herald/internal/config"
)

func (c *checker) duplicates() {
	dups := c.o.Env.Duplicates()
	keys := make([]string, 0, len(dups))
	for k := range dups {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return dups[keys[i]][0].Line < dups[keys[j]][0].Line })
	for _, k := range keys {
		es := dups[k]
		last := es[len(es)-1]
		var lines []string
		for _, e := range es {
			l := lineOf(e)
			if e.Line == last.Line {
				l += "   ← takes effect"
			}
			lines = append(lines, l)
		}
		sev := Warning
		if strings.HasPrefix(k, "BROADCAST_") || strings.HasPrefix(k, "REVERB_") || strings.HasPrefix(k, "PUSHER_") {
			sev = Error
		}
		earlier := make([]string, 0, len(es)-1)
		for _, e := range es[:len(es)-1] {
			earlier = append(earlier, fmt.Sprint(e.Line))
		}
		c.add(Finding{
			Severity: sev, Check: "duplicate-key", Line: last.Line, Lines: lines,
			Title: fmt.Sprintf("%s is defined %d times", k, len(es)),
			Why:   fmt.Sprintf("Laravel keeps the last definition (line %d); line %s is silently ignored, so whoever edits it changes nothing.", last.Line, strings.Join(earlier, ", ")),
			Fix:   fmt.Sprintf("Keep one definition of %s and delete the others.", k),
		})
	}
}

// broadcastKeysSet reports whether the .env configures Reverb or Pusher.
func (c *checker) broadcastKeysSet() bool {
	for _, k := range []string{"REVERB_APP_KEY", "REVERB_APP_ID", "PUSHER_APP_KEY", "PUSHER_APP_ID"} {
		if v, _, _ := c.get(k); v != "" {
			return true
		}
	}
	return false
}

func (c *checker) broadcastConnection() {
	conn, connEntry, hasConn := c.get("BROADCAST_CONNECTION")
	_, drv, hasDriver := c.get("BROADCAST_DRIVER")
	if hasDriver {
		sev, why := Warning, "Laravel 11 and later read BROADCAST_CONNECTION; BROADCAST_DRIVER is ignored, so its value ("+drv.Value+") misleads whoever reads the file."
		if !hasConn {
			sev, why = Error, "Laravel 11 and later read BROADCAST_CONNECTION, which is not set: BROADCAST_DRIVER="+drv.Value+" is ignored and broadcasting falls back to the null driver."
		}
		c.add(Finding{Severity: sev, Check: "broadcast-driver", Line: drv.Line, Lines: []string{lineOf(drv)},
			Title: "BROADCAST_DRIVER is set", Why: why,
			Fix: "Delete BROADCAST_DRIVER and set BROADCAST_CONNECTION=reverb (or pusher)."})
	}
	if !c.broadcastKeysSet() {
		return
	}
	switch {
	case !hasConn:
		if hasDriver || c.typoFor["BROADCAST_CONNECTION"] {
			return // reported above
		}
		c.add(Finding{Severity: Error, Check: "broadcast-connection", Title: "BROADCAST_CONNECTION is not set",
			Why: "Reverb/Pusher keys are configured, but Laravel's default broadcaster is null: events are never sent.",
			Fix: "Add BROADCAST_CONNECTION=reverb."})
	case conn == "null" || conn == "log" || conn == "":
		c.add(Finding{Severity: Error, Check: "broadcast-connection", Line: connEntry.Line, Lines: []string{lineOf(connEntry)},
			Title: "BROADCAST_CONNECTION=" + conn + " while Reverb/Pusher keys are set",
			Why:   "With the " + conn + " broadcaster Laravel never sends events to the socket server; pages stay stale.",
			Fix:   "Set BROADCAST_CONNECTION=reverb."})
	}
}

// laravelConnections are the broadcast connections Laravel's
// config/broadcasting.php defines.
var laravelConnections = []string{"reverb", "pusher", "ably", "redis", "log", "null"}

// connectionName flags a BROADCAST_CONNECTION that Laravel does not define
// out of the box: a near miss of one of its names is a typo, and Laravel
// then throws "Broadcast connection [rever] is not defined" on every
// broadcast; another name is fine only if config/broadcasting.php adds it.
func (c *checker) connectionName() {
	conn, e, ok := c.get("BROADCAST_CONNECTION")
	if !ok || conn == "" || slices.Contains(laravelConnections, conn) {
		return
	}
	f := Finding{Check: "broadcast-connection", Line: e.Line, Lines: []string{lineOf(e)}}
	if meant, near := config.Closest(strings.ToLower(conn), laravelConnections); near {
		f.Severity, f.Title = Error, fmt.Sprintf("BROADCAST_CONNECTION=%s is not a broadcast connection: did you mean %s?", conn, meant)
		f.Why = fmt.Sprintf("Laravel's connections are %s (names are case-sensitive): every broadcast fails with \"Broadcast connection [%s] is not defined\".", strings.Join(laravelConnections, ", "), conn)
		f.Fix = "Set BROADCAST_CONNECTION=" + meant + "."
	} else {
		f.Severity, f.Title = Warning, "BROADCAST_CONNECTION="+conn+" is not one of Laravel's connections"
		f.Why = fmt.Sprintf("Laravel defines %s; unless config/broadcasting.php adds a %q connection, every broadcast fails with \"Broadcast connection [%s] is not defined\".", strings.Join(laravelConnections, ", "), conn, conn)
		f.Fix = "Set BROADCAST_CONNECTION=reverb (or check that config/broadcasting.php defines " + conn + ")."
	}
	c.add(f)
}

// prefix is the variable prefix of the active connection: PUSHER with
// BROADCAST_CONNECTION=pusher, REVERB otherwise.
func (c *checker) prefix() string {
	if conn, _, _ := c.get("BROADCAST_CONNECTION"); conn == "pusher" {
		return "PUSHER"
	}
	return "REVERB"
}

// typos flags variables whose names look like misspellings of the ones
// Laravel, Echo's build or Herald read: the misspelled one is ignored, and
// the meant one is missing or keeps a value nobody meant to keep.
func (c *checker) typos() {
	c.typoFor = map[string]bool{}
	seen := map[string]bool{}
	for _, e := range c.o.Env.Entries {
		meant, ok := config.Misspelling(e.Key)
		if !ok || seen[e.Key] {
			continue
		}
		seen[e.Key] = true
		e, _ = c.o.Env.Lookup(e.Key) // the definition that takes effect
		f := Finding{Severity: Warning, Check: "typo", Line: e.Line, Lines: []string{lineOf(e)},
			Title: fmt.Sprintf("%s looks like a misspelling of %s", e.Key, meant),
			Fix:   fmt.Sprintf("Rename %s to %s.", e.Key, meant)}
		if m, me, defined := c.get(meant); defined {
			f.Lines = append(f.Lines, lineOf(me))
			f.Why = fmt.Sprintf("Nothing reads %s; %s (line %d, %q) takes effect, so whoever edits the misspelled line changes nothing.", e.Key, meant, me.Line, m)
			f.Fix = fmt.Sprintf("Delete %s, or merge it into %s.", e.Key, meant)
		} else {
			c.typoFor[meant] = true
			f.Title = fmt.Sprintf("%s is not set, but line %d sets %s: did you mean %s?", meant, e.Line, e.Key, meant)
			f.Why = fmt.Sprintf("Laravel and Herald read %s only; %s is ignored, so %s takes its default.", meant, e.Key, meant)
			if c.critical(meant) {
				f.Severity = Error
				f.Why = fmt.Sprintf("Laravel and Herald read %s only; %s is ignored, so broadcasting runs without it.", meant, e.Key)
			}
		}
		c.add(f)
	}
}

// critical reports whether broadcasting fails without the variable.
func (c *checker) critical(name string) bool {
	p := c.prefix()
	switch name {
	case "BROADCAST_CONNECTION", p + "_APP_ID", p + "_APP_KEY", p + "_APP_SECRET", p + "_HOST", "VITE_" + p + "_APP_KEY", "VITE_" + p + "_HOST":
		return true
	}
	return false
}

// scaling warns that Reverb's scale-out switch does nothing in Herald.
func (c *checker) scaling() {
	v, e, ok := c.get("REVERB_SCALING_ENABLED")
	if !ok || !config.Truthy(v) {
		return
	}
	if _, _, url := c.get("REDIS_URL"); url {
		return
	}
	if _, _, host := c.get("REDIS_HOST"); host {
		return
	}
	c.add(Finding{Severity: Warning, Check: "scaling", Line: e.Line, Lines: []string{lineOf(e)},
		Title: "REVERB_SCALING_ENABLED=" + v + " but neither REDIS_URL nor REDIS_HOST is set: Herald runs as a single node",
		Why:   "Herald shares events between nodes through Redis, and reads where it is from REDIS_URL or REDIS_HOST (it does not guess 127.0.0.1 as Reverb does). Without them each Herald delivers only to its own connections, so behind a load balancer an event published to one server never reaches the sockets of another.",
		Fix:   "Set REDIS_URL (or REDIS_HOST, REDIS_PORT, REDIS_PASSWORD, REDIS_DB) to the Redis every Herald node shares, or REVERB_SCALING_ENABLED=false for one node."})
}

// exampleValues are credentials copied from docs and samples.
var exampleValues = map[string]bool{
	config.DefaultAppID: true, config.DefaultAppKey: true, config.DefaultAppSecret: true, "app-id": true, "app-key": true, "app-secret": true,
	"key": true, "secret": true, "your-app-key": true, "your-app-secret": true, "my-app-key": true, "my-app-secret": true,
	"reverb-key": true, "reverb-secret": true, "changeme": true, "secret123": true, "12345": true, "123456": true,
}

func (c *checker) credentials() {
	prefix := c.prefix()
	for _, k := range []struct {
		name string
		min  int
	}{{prefix + "_APP_KEY", 16}, {prefix + "_APP_SECRET", 20}} {
		v, e, ok := c.get(k.name)
		if !ok {
			if c.broadcastKeysSet() && !c.typoFor[k.name] {
				c.add(Finding{Severity: Error, Check: "credentials", Title: k.name + " is not set",
					Why: "Without it clients cannot connect and Laravel cannot sign API requests.", Fix: "Run `herald keygen` and paste its lines."})
			}
			continue
		}
		switch {
		case v == "":
			c.add(Finding{Severity: Error, Check: "credentials", Line: e.Line, Lines: []string{lineOf(e)}, Title: k.name + " is empty",
				Why: "Clients cannot connect and Laravel cannot sign API requests with an empty value.", Fix: "Run `herald keygen` and paste its lines."})
		case exampleValues[strings.ToLower(v)]:
			// They work, and a development machine is where they belong;
			// in production they are an open door.
			sev, why := Warning, "Fine for development, but anyone who read the same docs knows it: in production, with the secret they could sign subscriptions to private channels and publish events."
			if c.production() {
				sev, why = Error, "APP_ENV=production, and anyone who read the same docs knows it: with the secret they can sign subscriptions to private channels and publish events."
			}
			c.add(Finding{Severity: sev, Check: "credentials", Line: e.Line, Lines: []string{lineOf(e)}, Title: k.name + " is an example value",
				Why: why, Fix: "Run `herald keygen` and use fresh values on both Laravel and Herald."})
		case len(v) < k.min:
			c.add(Finding{Severity: Warning, Check: "credentials", Line: e.Line, Lines: []string{lineOf(e)}, Title: fmt.Sprintf("%s is short (%d characters)", k.name, len(v)),
				Why: fmt.Sprintf("Short values can be guessed; use at least %d random characters.", k.min), Fix: "Run `herald keygen` for strong values."})
		}
	}
}

// vite checks that the client-side variables Vite bakes into the bundle
// follow the server-side ones.
func (c *checker) vite() {
	conn, _, _ := c.get("BROADCAST_CONNECTION")
	prefix, vitePrefix := "REVERB_", "VITE_REVERB_"
	pairs := []string{"APP_KEY", "HOST", "PORT", "SCHEME"}
	if conn == "pusher" {
		prefix, vitePrefix = "PUSHER_", "VITE_PUSHER_"
		pairs = []string{"APP_KEY", "HOST", "PORT", "SCHEME", "APP_CLUSTER"}
	} else if v, _, _ := c.get("REVERB_APP_KEY"); v == "" {
		return
	}
	for _, p := range pairs {
		server, serverEntry, hasServer := c.get(prefix + p)
		if !hasServer {
			continue
		}
		client, e, ok := c.get(vitePrefix + p)
		switch {
		case !ok && c.typoFor[vitePrefix+p]:
			// reported by typos
		case !ok:
			c.add(Finding{Severity: Error, Check: "vite", Title: vitePrefix + p + " is missing",
				Why: "Echo in the browser is built from VITE_* variables; without it the client connects with undefined " + strings.ToLower(p) + ".",
				Fix: fmt.Sprintf("Add %s%s=\"${%s%s}\" and rebuild the assets (npm run build).", vitePrefix, p, prefix, p)})
		case client != server:
			refs := e.References()
			c.add(Finding{Severity: Error, Check: "vite", Line: e.Line, Lines: []string{lineOf(serverEntry), lineOf(e)},
				Title: fmt.Sprintf("%s%s (%q) differs from %s%s (%q)", vitePrefix, p, client, prefix, p, server),
				Why:   "The browser bundle connects with different settings than the server uses" + refNote(refs) + ".",
				Fix:   fmt.Sprintf("Set %s%s=\"${%s%s}\" and rebuild the assets.", vitePrefix, p, prefix, p)})
		}
	}
}

func refNote(refs []string) string {
	if len(refs) == 0 {
		return " (it is a literal value, not \"${...}\")"
	}
	return " (it interpolates " + strings.Join(refs, ", ") + ")"
}

func (c *checker) hostAndPorts() {
	host, hostEntry, hasHost := c.get("REVERB_HOST")
	if !hasHost {
		return
	}
	scheme, schemeEntry, _ := c.get("REVERB_SCHEME")
	port, portEntry, hasPort := c.get("REVERB_PORT")
	serverPort, serverPortEntry, hasServerPort := c.get("REVERB_SERVER_PORT")
	pub := c.publicURL()
	if isLocalHost(host) {
		if pub != nil || c.production() {
			where := "APP_ENV=production"
			if pub != nil {
				where = "the app is served from " + pub.Host
			}
			c.add(Finding{Severity: Error, Check: "localhost", Line: hostEntry.Line, Lines: []string{lineOf(hostEntry)},
				Title: "REVERB_HOST=" + host + " while " + where,
				Why:   "Browsers connect to REVERB_HOST (through VITE_REVERB_HOST): \"" + host + "\" is each visitor's own machine, so no page gets live updates.",
				Fix:   "Set REVERB_HOST to the public host name (e.g. ws." + hostOr(pub, "example.com") + ") and rebuild the assets; Herald itself listens on REVERB_SERVER_HOST/REVERB_SERVER_PORT."})
		}
	}
	if scheme == "https" && hasPort && port == "8080" && (!hasServerPort || serverPort == "8080") {
		c.add(Finding{Severity: Warning, Check: "tls-port", Line: portEntry.Line, Lines: []string{lineOf(schemeEntry), lineOf(portEntry)},
			Title: "REVERB_SCHEME=https with REVERB_PORT=8080",
			Why:   "Herald serves plain HTTP/WebSocket on its port; browsers speaking TLS to port 8080 fail unless a proxy terminates TLS there.",
			Fix:   "Terminate TLS in nginx on 443 and set REVERB_PORT=443 (Herald keeps REVERB_SERVER_PORT=8080)."})
	}
	if scheme == "http" && hasPort && hasServerPort && port != serverPort && isLocalHost(host) {
		c.add(Finding{Severity: Warning, Check: "port-mismatch", Line: portEntry.Line, Lines: []string{lineOf(portEntry), lineOf(serverPortEntry)},
			Title: fmt.Sprintf("REVERB_PORT=%s but Herald listens on REVERB_SERVER_PORT=%s", port, serverPort),
			Why:   "Without a proxy in between, clients and Laravel connect to REVERB_PORT, where nothing listens.",
			Fix:   "Use the same port for both, or put a proxy on REVERB_PORT that forwards to REVERB_SERVER_PORT."})
	}
	if pub != nil && pub.Scheme == "https" && scheme == "http" && !isLocalHost(host) {
		c.add(Finding{Severity: Error, Check: "mixed-content", Line: schemeEntry.Line, Lines: []string{lineOf(schemeEntry)},
			Title: "REVERB_SCHEME=http while the app is served over https",
			Why:   "Browsers block ws:// connections from https pages (mixed content).",
			Fix:   "Serve Herald behind TLS and set REVERB_SCHEME=https, REVERB_PORT=443."})
	}
}

func hostOr(u *url.URL, def string) string {
	if u == nil {
		return def
	}
	return u.Hostname()
}

func (c *checker) queue() {
	if !c.broadcastKeysSet() {
		return
	}
	q, e, ok := c.get("QUEUE_CONNECTION")
	switch {
	case ok && q == "sync" && c.production():
		c.add(Finding{Severity: Warning, Check: "queue", Line: e.Line, Lines: []string{lineOf(e)},
			Title: "QUEUE_CONNECTION=sync in production",
			Why:   "Every broadcast is sent inside the web request: requests slow down and fail when the socket server is unreachable.",
			Fix:   "Use a real queue (redis, database) and run `php artisan queue:work` under supervisor."})
	case !ok || q != "sync":
		name := q
		if !ok {
			name = "database (Laravel's default)"
		}
		f := Finding{Severity: Info, Check: "queue", Title: "broadcasts are queued on " + name,
			Why: "ShouldBroadcast events wait in the queue until a worker sends them: with no `php artisan queue:work` running, nothing reaches Herald.",
			Fix: "Run a queue worker (supervisor) or use ShouldBroadcastNow for events that must go out at once."}
		if ok {
			f.Line, f.Lines = e.Line, []string{lineOf(e)}
		}
		c.add(f)
	}
}

func (c *checker) origins() {
	if !c.production() {
		return
	}
	v, e, ok := c.get("REVERB_ALLOWED_ORIGINS")
	if list := config.ParseOrigins(v); ok && len(list) > 0 && !slices.Contains(list, "*") {
		return
	}
	f := Finding{Severity: Warning, Check: "origins", Title: "allowed origins are open in production",
		Why: "Any web site can open sockets to your server with your public key and listen to public channels.",
		Fix: "Set REVERB_ALLOWED_ORIGINS to your app's host (e.g. app.example.com)."}
	if ok {
		f.Line, f.Lines = e.Line, []string{lineOf(e)}
	}
	c.add(f)
}
