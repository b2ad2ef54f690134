package cli

import (
	"fmt"
	"io"
	"net"

	"github.com/herald-ws/herald/internal/config"
)

// printBanner shows the development app's credentials with a ready-to-paste
// Laravel .env block and Echo snippet.
func printBanner(w io.Writer, cfg *config.Config, addr string) {
	a := cfg.Apps[0]
	host, port, _ := net.SplitHostPort(addr)
	reach := `It listens on this machine only (loopback). To reach it from other machines
or containers (Laravel Sail, Docker), start it with --host 0.0.0.0.`
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		reach = fmt.Sprintf(`It listens beyond this machine (host %s, as configured):
anyone who can reach port %s can use these public credentials.`, host, port)
	}
	fmt.Fprintf(w, `
Herald is running on %s with the built-in development app
(for development only: anyone can read these credentials).
%s

  app id:          %s
  app key:         %s
  app secret:      %s
  broadcast token: %s (new at every start unless HERALD_BROADCAST_TOKEN is set)

Push JSON to the "%s" channel:

curl -X POST http://%s%s/broadcast \
  -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' \
  -d '{"message":{"type":"hello","data":{"text":"Hello from Herald"}}}'

Laravel .env:

BROADCAST_CONNECTION=reverb
REVERB_APP_ID=%s
REVERB_APP_KEY=%s
REVERB_APP_SECRET=%s
REVERB_HOST=127.0.0.1
REVERB_PORT=%s
REVERB_SCHEME=http
HERALD_BROADCAST_TOKEN=%s

VITE_REVERB_APP_KEY="${REVERB_APP_KEY}"
VITE_REVERB_HOST="${REVERB_HOST}"
VITE_REVERB_PORT="${REVERB_PORT}"
VITE_REVERB_SCHEME="${REVERB_SCHEME}"

Echo (resources/js/echo.js):

window.Echo = new Echo({
    broadcaster: 'reverb',
    key: import.meta.env.VITE_REVERB_APP_KEY,
    wsHost: import.meta.env.VITE_REVERB_HOST,
    wsPort: import.meta.env.VITE_REVERB_PORT,
    forceTLS: false,
    enabledTransports: ['ws', 'wss'],
});

`, addr, reach, a.ID, a.Key, a.Secret, a.BroadcastToken, a.BroadcastChannelOrDefault(), curlHost(host, port), cfg.Server.Path, a.BroadcastToken,
		a.ID, a.Key, a.Secret, port, a.BroadcastToken)
}

// curlHost is where a curl on this machine reaches addr's host and port:
// 127.0.0.1 for a wildcard or loopback host.
func curlHost(host, port string) string {
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() || ip.IsLoopback() {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return net.JoinHostPort(host, port)
}
