package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/herald-ws/herald/internal/probe"
)

const pingUsage = `Usage: herald ping [ws[s]://host[:port][/path]] [--env .env] [--app-id ID --key KEY --secret SECRET] [flags]

Checks a deployment end to end: connects like pusher-js, subscribes to a
fresh public and private channel, publishes through the HTTP API and waits
for the event. Each step is timed; a failure names the step and its likely
cause. Exit code 0 when every step passed, 1 otherwise, 2 on a usage error.

What the flags and the URL leave out is read as Laravel reads it, from the
environment and then the --env file: the credentials from REVERB_APP_ID,
REVERB_APP_KEY and REVERB_APP_SECRET, the URL from REVERB_SCHEME,
REVERB_HOST and REVERB_PORT (where Echo connects).

Flags:
`

func ping(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("herald ping", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, pingUsage); fs.PrintDefaults() }
	var o probe.Options
	fs.StringVar(&o.AppID, "app-id", "", "app id (default REVERB_APP_ID)")
	fs.StringVar(&o.Key, "key", "", "app key (default REVERB_APP_KEY)")
	fs.StringVar(&o.Secret, "secret", "", "app secret (default REVERB_APP_SECRET)")
	fs.StringVar(&o.APIURL, "api-url", "", "HTTP API base URL (default: the WebSocket URL with http/https)")
	fs.IntVar(&o.Count, "count", 1, "publish→receive round trips to time (p50/p99 when > 1)")
	fs.DurationVar(&o.Timeout, "timeout", 5*time.Second, "time limit of each step")
	envPath := fs.String("env", "", "Laravel .env file to read REVERB_* from")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	url, rest := splitPositional(args)
	if err := fs.Parse(rest); err != nil {
		return exitForParse(err)
	}
	if url == "" && fs.NArg() > 0 {
		url = fs.Arg(0)
	}
	env, err := envLookup(*envPath)
	if err != nil {
		fmt.Fprintf(stderr, "herald ping: %v\n", err)
		return 1
	}
	fill(env, map[*string]string{&o.AppID: "REVERB_APP_ID", &o.Key: "REVERB_APP_KEY", &o.Secret: "REVERB_APP_SECRET"})
	if url == "" {
		url = clientURL(env)
	}
	if url == "" || o.AppID == "" || o.Key == "" || o.Secret == "" {
		fmt.Fprintln(stderr, "herald ping: a URL (or REVERB_HOST), --app-id, --key and --secret (or REVERB_APP_ID, REVERB_APP_KEY, REVERB_APP_SECRET) are required")
		fs.Usage()
		return 2
	}
	o.URL = url
	res := probe.Run(context.Background(), o)
	if *asJSON {
		_ = writeJSON(stdout, res)
	} else {
		printPing(newOut(stdout), res)
	}
	if !res.OK {
		return 1
	}
	return 0
}

func printPing(o *out, r *probe.Result) {
	rounds := 0
	for _, s := range r.Steps {
		if s.Name == "publish" {
			rounds++
		}
		if rounds > 1 && s.Err == "" {
			continue // later round trips are summarised below
		}
		if s.Err != "" {
			o.printf("%s %-40s %s\n", o.paint(red, "✗"), s.Name, o.paint(dim, ms(s.Duration)))
			o.printf("    error: %s\n", s.Err)
			o.printf("    likely cause: %s\n", s.Cause)
			continue
		}
		o.printf("%s %-40s %s\n", o.paint(green, "✓"), s.Name, o.paint(dim, ms(s.Duration)))
	}
	if len(r.Latencies) > 1 {
		o.printf("\nround trips: %d   p50 %s   p99 %s\n", len(r.Latencies), ms(r.Percentile(50)), ms(r.Percentile(99)))
	}
	if r.OK {
		o.printf("%s\n", o.paint(green, "OK: the deployment delivers events end to end"))
	} else {
		o.printf("%s\n", o.paint(red, "FAILED"))
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

// splitPositional takes a leading non-flag argument (the URL) so flags may
// follow it, as users type them.
func splitPositional(args []string) (string, []string) {
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		return args[0], args[1:]
	}
	return "", args
}
