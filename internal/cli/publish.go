package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/herald-ws/herald/internal/probe"
)

const publishUsage = `Usage: herald publish --channel C [--channel C2 …] --event E --data JSON [--env .env] [flags]

Publishes one event through the Pusher HTTP API, signed like Laravel's
broadcaster. Credentials default to REVERB_APP_ID, REVERB_APP_KEY,
REVERB_APP_SECRET and the API URL to http://127.0.0.1:${REVERB_SERVER_PORT:-8080},
read as Laravel reads them: from the environment, then the --env file.

Flags:
`

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

func publish(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("herald publish", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, publishUsage); fs.PrintDefaults() }
	var channels multiFlag
	fs.Var(&channels, "channel", "channel to publish on (repeatable)")
	event := fs.String("event", "", "event name")
	data := fs.String("data", "", "event data (JSON text, sent as the data string)")
	socketID := fs.String("socket-id", "", "socket id to exclude")
	api := &probe.API{}
	fs.StringVar(&api.BaseURL, "url", "", "HTTP API base URL (default http://127.0.0.1:${REVERB_SERVER_PORT:-8080})")
	fs.StringVar(&api.AppID, "app-id", "", "app id (default REVERB_APP_ID)")
	fs.StringVar(&api.Key, "key", "", "app key (default REVERB_APP_KEY)")
	fs.StringVar(&api.Secret, "secret", "", "app secret (default REVERB_APP_SECRET)")
	envPath := fs.String("env", "", "Laravel .env file to read REVERB_* from")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := fs.Parse(args); err != nil {
		return exitForParse(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "herald publish: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	env, err := envLookup(*envPath)
	if err != nil {
		fmt.Fprintf(stderr, "herald publish: %v\n", err)
		return 1
	}
	fill(env, map[*string]string{&api.AppID: "REVERB_APP_ID", &api.Key: "REVERB_APP_KEY", &api.Secret: "REVERB_APP_SECRET"})
	if api.BaseURL == "" {
		port := env("REVERB_SERVER_PORT")
		if port == "" {
			port = "8080"
		}
		api.BaseURL = "http://127.0.0.1:" + port
	}
	var missing []string
	for name, v := range map[string]string{"--event": *event, "--data": *data, "--app-id": api.AppID, "--key": api.Key, "--secret": api.Secret} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if len(channels) == 0 {
		missing = append(missing, "--channel")
	}
	if len(missing) > 0 {
		fmt.Fprintf(stderr, "herald publish: missing %s\n", strings.Join(sorted(missing), ", "))
		return 2
	}
	if !json.Valid([]byte(*data)) {
		fmt.Fprintf(stderr, "herald publish: --data is not valid JSON: %s\n", *data)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	body, err := api.Trigger(ctx, probe.Event{Name: *event, Data: *data, Channels: channels, SocketID: *socketID})
	o := newOut(stdout)
	if err != nil {
		var ae *probe.APIError
		if *asJSON {
			status := 0
			if errors.As(err, &ae) {
				status = ae.Status
			}
			_ = writeJSON(stdout, map[string]any{"ok": false, "status": status, "error": err.Error()})
		} else {
			o.printf("%s %s\n", o.paint(red, "✗ publish failed:"), err)
		}
		return 1
	}
	if *asJSON {
		_ = writeJSON(stdout, map[string]any{"ok": true, "response": json.RawMessage(body), "duration_ns": time.Since(start)})
	} else {
		o.printf("%s %s on %s (%s)\n", o.paint(green, "✓ published"), *event, strings.Join(channels, ", "), ms(time.Since(start)))
	}
	return 0
}
