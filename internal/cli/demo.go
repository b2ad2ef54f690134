package cli

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/herald-ws/herald/internal/config"
	"github.com/herald-ws/herald/internal/demo"
	"github.com/herald-ws/herald/internal/server"
)

const demoUsage = `Usage: herald demo [--port 8080] [--demo-port 8081]

Starts Herald with the built-in development app, and next to it a small demo
backend that publishes to it the way a Laravel app does: a helpdesk whose
"All tickets" page updates live (herald.js), and a seller dashboard on stock
Laravel Echo and pusher-js with the herald-echo plugin. Both listen on this
machine only (127.0.0.1); Ctrl+C stops both.

Flags:
`

func runDemo(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return demoContext(ctx, args, stdout, stderr)
}

// demoContext runs Herald and the demo backend until ctx is done.
func demoContext(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("herald demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, demoUsage); fs.PrintDefaults() }
	port := fs.Int("port", 8080, "Herald's port (0: any free port)")
	demoPort := fs.Int("demo-port", 8081, "the demo pages' port (0: any free port)")
	logLevel := fs.String("log-level", "info", "Herald's log level: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return exitForParse(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "herald demo: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, *logLevel) {
		fmt.Fprintf(stderr, "herald demo: --log-level %q: want debug, info, warn or error\n", *logLevel)
		return 2
	}
	for _, p := range []struct {
		name string
		v    int
	}{{"--port", *port}, {"--demo-port", *demoPort}} {
		if p.v < 0 || p.v > 65535 {
			fmt.Fprintf(stderr, "herald demo: %s %d: want 0-65535\n", p.name, p.v)
			return 2
		}
	}

	// The built-in development app on loopback, as `herald serve` runs it
	// with nothing configured, plus a broadcast token only this run knows.
	cfg := config.Default()
	cfg.Server.Port = *port
	cfg.Server.ShutdownTimeout = 3 * time.Second
	cfg.Log.Level = *logLevel
	app := cfg.Apps[0]
	app.BroadcastToken = rand.Text()
	log := newLogger(cfg.Log, stderr)

	// The demo's listener first: it is the simpler one to give back if
	// Herald's port is taken.
	demoLn, err := net.Listen("tcp", net.JoinHostPort(config.LoopbackHost, strconv.Itoa(*demoPort)))
	if err != nil {
		fmt.Fprintf(stderr, "herald demo: %v\n", err)
		return 1
	}
	defer demoLn.Close()
	srv, err := server.New(cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "herald demo: %v\n", err)
		return 1
	}
	srv.Version = strings.TrimPrefix(versionString(), "herald ")
	if err := srv.Listen(); err != nil {
		fmt.Fprintf(stderr, "herald demo: %v\n", err)
		return 1
	}
	heraldURL := "http://" + srv.Addr().String()
	backend, err := demo.New(demo.Options{HeraldURL: heraldURL, AppID: app.ID, Key: app.Key, Secret: app.Secret,
		BroadcastToken: app.BroadcastToken, Log: log})
	if err != nil {
		fmt.Fprintf(stderr, "herald demo: %v\n", err)
		return 1
	}
	web := &http.Server{Handler: backend, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second}

	// Herald runs on its own context: it stops after the backend, so that
	// nothing publishes to a Herald going away.
	heraldCtx, stopHerald := context.WithCancel(context.Background())
	defer stopHerald()
	heraldDone := make(chan error, 1)
	go func() { heraldDone <- srv.Serve(heraldCtx) }()
	webDone := make(chan error, 1)
	go func() { webDone <- web.Serve(demoLn) }()
	printDemoBanner(stdout, heraldURL, "http://"+demoLn.Addr().String())

	code := 0
	select {
	case <-ctx.Done():
	case err := <-webDone:
		log.Error("demo backend failed", "err", err)
		code = 1
	case err := <-heraldDone:
		heraldDone <- err // read again below
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := web.Shutdown(shutdownCtx); err != nil {
		log.Warn("demo backend shutdown", "err", err)
	}
	stopHerald()
	if err := <-heraldDone; err != nil {
		log.Error("server failed", "err", err)
		code = 1
	}
	return code
}

func printDemoBanner(w io.Writer, heraldURL, demoURL string) {
	fmt.Fprintf(w, `
Herald demo (built-in development app, this machine only)

  Helpdesk, "All tickets"   %[2]s/
  Seller dashboard (Echo)   %[2]s/marketplace
  Herald                    %[1]s

Try it:
  1. Open %[2]s/ in two windows, side by side.
  2. Create a ticket in one: it appears in the other, with a notification.
  3. Change a ticket's status or assignee: every window follows.
  4. Press "Pause live" in one window, make changes in the other, resume:
     the paused page gets everything it missed, once, in order.
  5. Open %[2]s/marketplace: the same with stock Laravel Echo and pusher-js,
     plus the herald-echo plugin.

New tickets are published with POST /broadcast, status and assignee changes,
orders and notifications with the signed Pusher HTTP API. Ctrl+C stops both.

`, heraldURL, demoURL)
}
