package config

import (
	"strings"
	"testing"
)

// The dashboard's credentials come from the file and from
// HERALD_DASHBOARD_*; without any the dashboard is off.
func TestLoadDashboard(t *testing.T) {
	if Default().Server.DashboardOn() {
		t.Fatal("the dashboard is on by default: it must never be open")
	}
	inDir(t, map[string]string{"herald.yaml": "server:\n  dashboard_token: dash-token-0123456789\n"})
	c := load(t, Options{File: "herald.yaml"})
	if c.Server.DashboardToken != "dash-token-0123456789" || !c.Server.DashboardOn() {
		t.Fatalf("file: %+v", c.Server)
	}
	c = load(t, Options{Environ: []string{"HERALD_DASHBOARD_USER=ops", "HERALD_DASHBOARD_PASSWORD=correct-horse-battery"}})
	if c.Server.DashboardUser != "ops" || c.Server.DashboardPassword != "correct-horse-battery" || !c.Server.DashboardOn() {
		t.Fatalf("environment: %+v", c.Server)
	}
	if len(c.Warnings) != 0 {
		t.Fatalf("warnings %v: HERALD_DASHBOARD_* are known names", c.Warnings)
	}
}

func TestValidateDashboard(t *testing.T) {
	cases := []struct {
		name                  string
		token, user, password string
		want                  string // "": valid
	}{
		{"off", "", "", "", ""},
		{"token", "dash-token-0123456789", "", "", ""},
		{"basic auth", "", "ops", "correct-horse-battery", ""},
		{"both", "dash-token-0123456789", "ops", "correct-horse-battery", ""},
		{"short token", "short", "", "", "server.dashboard_token: must be at least 16 characters (got 5)"},
		{"token with a space", "dash token 0123456789", "", "", "server.dashboard_token: must be printable ASCII without spaces"},
		{"user alone", "", "ops", "", "server.dashboard_user: is set without server.dashboard_password"},
		{"password alone", "", "", "correct-horse-battery", "server.dashboard_password: is set without server.dashboard_user"},
		{"short password", "", "ops", "hunter2", "server.dashboard_password: must be at least 12 characters (got 7)"},
		{"colon in user", "", "o:ps", "correct-horse-battery", "server.dashboard_user: must not contain ':'"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			c.Server.DashboardToken, c.Server.DashboardUser, c.Server.DashboardPassword = tc.token, tc.user, tc.password
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate() = %v; want valid", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Validate() = %v; want %q", err, tc.want)
			}
		})
	}
}
