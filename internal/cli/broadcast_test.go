package cli

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/herald-ws/herald/internal/config"
)

// The banner shows the development app's broadcast token, a curl that
// works as printed (server.path included, a wildcard host made loopback)
// and the token for Laravel's .env.
func TestBannerBroadcast(t *testing.T) {
	cfg := config.Default()
	cfg.Server.Path = "/ws"
	cfg.Apps[0].BroadcastToken = "banner-token-0123456789"
	var b bytes.Buffer
	printBanner(&b, cfg, "0.0.0.0:8080")
	for _, want := range []string{
		"broadcast token: banner-token-0123456789",
		`Push JSON to the "broadcast" channel`,
		"curl -X POST http://127.0.0.1:8080/ws/broadcast \\\n  -H 'Authorization: Bearer banner-token-0123456789'",
		"\nHERALD_BROADCAST_TOKEN=banner-token-0123456789\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Fatalf("banner lacks %q:\n%s", want, b.String())
		}
	}
}

var bannerToken = regexp.MustCompile(`broadcast token: (\S+)`)

// serve gives the development app a new random token at every start,
// unless HERALD_BROADCAST_TOKEN sets one, and never logs it.
func TestServeDevelopmentToken(t *testing.T) {
	clearLaravelEnv(t)
	t.Setenv("HERALD_BROADCAST_TOKEN", "")
	os.Unsetenv("HERALD_BROADCAST_TOKEN")
	var tokens []string
	for range 2 {
		code, out, errOut := serveUntil(t, "--port", freePort(t))
		m := bannerToken.FindStringSubmatch(out)
		if code != 0 || m == nil || len(m[1]) < config.MinBroadcastTokenLength {
			t.Fatalf("exit %d, no token of %d characters in the banner:\n%s", code, config.MinBroadcastTokenLength, out)
		}
		if strings.Contains(errOut, m[1]) {
			t.Fatalf("the log holds the token:\n%s", errOut)
		}
		tokens = append(tokens, m[1])
	}
	if tokens[0] == tokens[1] {
		t.Fatalf("two starts, one token %q", tokens[0])
	}
	t.Setenv("HERALD_BROADCAST_TOKEN", "fixed-token-0123456789")
	code, out, _ := serveUntil(t, "--port", freePort(t))
	if m := bannerToken.FindStringSubmatch(out); code != 0 || m == nil || m[1] != "fixed-token-0123456789" {
		t.Fatalf("exit %d, with HERALD_BROADCAST_TOKEN set:\n%s", code, out)
	}
}
