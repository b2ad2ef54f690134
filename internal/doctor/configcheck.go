package doctor

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/herald-ws/herald/internal/apps"
	"github.com/herald-ws/herald/internal/envfile"
)

// configChecks compares the .env with Herald's own configuration.
func (c *checker) configChecks() {
	cfg := c.o.Config
	if id, idEntry, hasID := c.get("REVERB_APP_ID"); hasID && cfg.DefaultApp {
		c.add(Finding{Severity: Info, Check: "config-mismatch", File: "herald config", Title: "Herald's config defines no apps",
			Why: "herald serve then takes the app from REVERB_APP_* in its environment or its --env file, and without either serves only the built-in development app.",
			Fix: "Run `herald serve --env` with this .env, or list app " + id + " in Herald's config."})
	} else if hasID {
		c.appMatches(id, idEntry)
	}
	if sp, e, ok := c.get("REVERB_SERVER_PORT"); ok && sp != strconv.Itoa(cfg.Server.Port) {
		c.add(Finding{Severity: Warning, Check: "config-mismatch", Line: e.Line, Lines: []string{lineOf(e)},
			Title: fmt.Sprintf("REVERB_SERVER_PORT=%s but Herald's config listens on %d", sp, cfg.Server.Port),
			Why:   "Laravel and the proxy expect Herald on REVERB_SERVER_PORT.",
			Fix:   "Make them equal."})
	}
	if !c.production() {
		return
	}
	for i, a := range cfg.Apps {
		if slices.Contains(a.AllowedOrigins, "*") {
			c.add(Finding{Severity: Warning, Check: "origins", File: "herald config", Title: fmt.Sprintf("apps[%d] (%s) allows any origin in production", i, a.ID),
				Why: "Any web site can open sockets with your public key.", Fix: "Set allowed_origins to your app's host."})
		}
	}
}

// appMatches checks that Herald has the app REVERB_APP_ID names, with the
// same key and secret.
func (c *checker) appMatches(id string, idEntry envfile.Entry) {
	list := c.o.Config.Apps
	i := slices.IndexFunc(list, func(a *apps.App) bool { return a.ID == id })
	if i < 0 {
		ids := make([]string, len(list))
		for j, a := range list {
			ids[j] = a.ID
		}
		c.add(Finding{Severity: Error, Check: "config-mismatch", Line: idEntry.Line, Lines: []string{lineOf(idEntry)},
			Title: "REVERB_APP_ID " + id + " is not an app in Herald's config",
			Why:   fmt.Sprintf("Herald knows the apps %v: every API call from Laravel is answered 404.", ids),
			Fix:   "Add the app to Herald's config or correct REVERB_APP_ID."})
		return
	}
	for _, f := range []struct{ key, want string }{{"REVERB_APP_KEY", list[i].Key}, {"REVERB_APP_SECRET", list[i].Secret}} {
		if v, e, ok := c.get(f.key); ok && v != f.want {
			c.add(Finding{Severity: Error, Check: "config-mismatch", Line: e.Line, Lines: []string{lineOf(e)},
				Title: fmt.Sprintf("%s differs from Herald's apps[%d]", f.key, i),
				Why:   "Laravel signs with one value and Herald checks another: connections fail with 4001 or API calls with 401.",
				Fix:   "Use the same value in the .env and Herald's config (or run `herald serve --env` to read the .env directly)."})
		}
	}
}
