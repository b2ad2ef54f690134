// Package cli is Herald's command line: subcommands, flags, exit codes and
// user-facing output. cmd/herald calls Main and nothing else.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/herald-ws/herald/internal/config"
	"github.com/herald-ws/herald/internal/server"
)

// Version is set at build time with -ldflags "-X …/cli.Version=v1.2.3".
var Version = "dev"

const usage = `Herald — a Pusher-protocol broadcasting server for Laravel and the web.

Usage:
  herald [serve] [flags]   run the server (the default command)
  herald doctor            check a Laravel .env for broadcasting mistakes
  herald ping URL …        check a deployment end to end
  herald publish …         publish an event through the HTTP API
  herald keygen            generate an app id, key and secret
  herald bench URL …       load-test a Pusher-compatible server
  herald version           print the version
  herald help              show this help

Run "herald COMMAND --help" for a command's flags.
`

// Main runs the command line and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(args, stdout, stderr)
	case "doctor":
		return runDoctor(args, stdout, stderr)
	case "ping":
		return ping(args, stdout, stderr)
	case "publish":
		return publish(args, stdout, stderr)
	case "keygen":
		return keygen(args, stdout, stderr)
	case "bench":
		return bench(args, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "herald", Version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "herald: unknown command %q\n\n%s", cmd, usage)
	return 2
}

func serve(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("herald serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("config", "", "config file (YAML)")
	envFile := fs.String("env", "", "Laravel .env file to read REVERB_* settings from")
	var o config.Overrides
	host := fs.String("host", "", "listen address (REVERB_SERVER_HOST; default 0.0.0.0)")
	port := fs.Int("port", 0, "listen port (REVERB_SERVER_PORT; default 8080)")
	path := fs.String("path", "", "path prefix (REVERB_SERVER_PATH)")
	appID := fs.String("app-id", "", "first app's id (REVERB_APP_ID)")
	appKey := fs.String("app-key", "", "first app's key (REVERB_APP_KEY)")
	appSecret := fs.String("app-secret", "", "first app's secret (REVERB_APP_SECRET)")
	logLevel := fs.String("log-level", "", "debug, info, warn or error")
	logFormat := fs.String("log-format", "", "text or json")
	transport := fs.String("transport", "", "epoll (event-driven, default on Linux) or goroutine")
	debugAddr := fs.String("debug-addr", "", "serve pprof and /debug/stats on this address (e.g. 127.0.0.1:6060; keep it private)")
	if err := fs.Parse(args); err != nil {
		return exitForParse(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "herald serve: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "host":
			o.Host = host
		case "port":
			o.Port = port
		case "path":
			o.Path = path
		case "app-id":
			o.AppID = appID
		case "app-key":
			o.AppKey = appKey
		case "app-secret":
			o.AppSecret = appSecret
		case "log-level":
			o.LogLevel = logLevel
		case "log-format":
			o.LogFormat = logFormat
		case "transport":
			o.Transport = transport
		case "debug-addr":
			o.DebugAddr = debugAddr
		}
	})
	cfg, err := config.Load(config.Options{File: *file, EnvFile: *envFile, Environ: os.Environ(), Flags: o})
	if err != nil {
		fmt.Fprintf(stderr, "herald: invalid configuration:\n%s\n", indent(err.Error()))
		return 1
	}
	log := newLogger(cfg.Log, stderr)
	if limit, err := server.RaiseFileLimit(); err != nil {
		log.Warn("could not raise the open-file limit", "err", err, "limit", limit)
	} else {
		log.Info("open-file limit", "limit", limit, "max_connections_approx", limit-64)
	}
	srv, err := server.New(cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "herald: %v\n", err)
		return 1
	}
	if err := srv.Listen(); err != nil {
		fmt.Fprintf(stderr, "herald: %v\n", err)
		return 1
	}
	if cfg.DefaultApp {
		log.Warn("no app configured: running the built-in development app; its credentials are public, do not use them in production")
		printBanner(stdout, cfg, srv.Addr().String())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := srv.Serve(ctx); err != nil {
		log.Error("server failed", "err", err)
		return 1
	}
	return 0
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}

// exitForParse maps a flag parse error to an exit code: 0 for --help.
func exitForParse(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}
