package config

import (
	"slices"
	"strings"
)

// Variables are the variable names of a Laravel .env that concern
// broadcasting: those Herald reads, those Laravel's reverb and pusher
// connections and Echo's Vite build read, and Reverb's own. A name is
// checked against them to catch a misspelling, which Laravel and Herald
// would both silently ignore; a correct name must never be taken for one,
// so the list includes names Herald does not use.
var Variables = []string{
	"BROADCAST_CONNECTION", "BROADCAST_DRIVER",
	"REVERB_APP_ID", "REVERB_APP_KEY", "REVERB_APP_SECRET",
	"REVERB_HOST", "REVERB_PORT", "REVERB_SCHEME",
	"REVERB_SERVER", "REVERB_SERVER_HOST", "REVERB_SERVER_PORT", "REVERB_SERVER_PATH",
	"REVERB_APP_PING_INTERVAL", "REVERB_APP_ACTIVITY_TIMEOUT", "REVERB_APP_MAX_MESSAGE_SIZE",
	"REVERB_APP_MAX_CONNECTIONS", "REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM",
	"REVERB_ALLOWED_ORIGINS", "REVERB_MAX_REQUEST_SIZE",
	"REVERB_SCALING_ENABLED", "REVERB_SCALING_CHANNEL",
	"REDIS_URL", "REDIS_HOST", "REDIS_PORT", "REDIS_USERNAME", "REDIS_PASSWORD", "REDIS_DB",
	"HERALD_CLUSTER_URL", "HERALD_CLUSTER_PREFIX",
	"REVERB_PULSE_INGEST_INTERVAL", "REVERB_TELESCOPE_INGEST_INTERVAL",
	"HERALD_BROADCAST_TOKEN", "HERALD_WEBHOOK_URL", "HERALD_WEBHOOK_EVENTS",
	"HERALD_METRICS_ADDR", "HERALD_METRICS_TOKEN",
	"HERALD_TLS_CERT", "HERALD_TLS_KEY", "REVERB_TLS_CERT_PATH", "REVERB_TLS_KEY_PATH", "REVERB_TLS_CA_PATH",
	"HERALD_DASHBOARD_TOKEN", "HERALD_DASHBOARD_USER", "HERALD_DASHBOARD_PASSWORD",
	"HERALD_TRUSTED_PROXIES",
	"VITE_REVERB_APP_KEY", "VITE_REVERB_HOST", "VITE_REVERB_PORT", "VITE_REVERB_SCHEME",
	"PUSHER_APP_ID", "PUSHER_APP_KEY", "PUSHER_APP_SECRET", "PUSHER_APP_CLUSTER",
	"PUSHER_HOST", "PUSHER_PORT", "PUSHER_SCHEME",
	"VITE_PUSHER_APP_KEY", "VITE_PUSHER_APP_CLUSTER", "VITE_PUSHER_HOST", "VITE_PUSHER_PORT", "VITE_PUSHER_SCHEME",
}

// maxTypoDistance is how many edits (a wrong, missing or extra letter, two
// letters swapped) a misspelling may be away from the name it means.
const maxTypoDistance = 2

// Misspelling returns the name in Variables that name most likely means
// to be, when name is not itself one of them but is within two edits of
// one (compared in upper case: "reverb_app_key" is a misspelling too).
// Of equally near names the first in Variables wins.
func Misspelling(name string) (string, bool) {
	if slices.Contains(Variables, name) {
		return "", false
	}
	return Closest(strings.ToUpper(name), Variables)
}

// Closest returns the candidate within two edits of s (a wrong, missing or
// extra byte, or two adjacent bytes swapped, each count one), the nearest
// one, and of equally near ones the first. An exact match counts.
func Closest(s string, candidates []string) (string, bool) {
	best, bestDist := "", maxTypoDistance+1
	for _, v := range candidates {
		// The length difference alone bounds the distance from below.
		if abs(len(v)-len(s)) >= bestDist {
			continue
		}
		if d := editDistance(s, v); d < bestDist {
			best, bestDist = v, d
		}
	}
	return best, best != ""
}

// editDistance is the optimal-string-alignment distance: insertions,
// deletions, substitutions and swaps of adjacent bytes each count one.
func editDistance(a, b string) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// Truthy reports whether a .env value enables a switch as Laravel's env()
// and PHP read it: "false", "(false)", "0", "null", "(null)", "empty",
// "(empty)" and "" are off, anything else is on.
func Truthy(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "false", "(false)", "0", "null", "(null)", "empty", "(empty)":
		return false
	}
	return true
}
