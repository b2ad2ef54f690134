package cli

import (
	"context"
	"crypto/rand"
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

const serveUsage = `Usage: herald serve [--config herald.yaml] [--env path/to/.env] [flags]

Runs the server. Settings come from, in rising priority: built-in defaults,
the config file (--config), a Laravel .env (--env), the process
environment (Reverb's REVERB_* names) and these flags; a bad value stops
Herald at start, naming its source. With no app configured anywhere, Herald
runs the built-in development app and listens on 127.0.0.1 only: give
--host 0.0.0.0 to reach it from other machines or containers (Sail, Docker).

Flags:
`

// serveOptions are serve's flags beyond the config overrides.
type serveOptions struct {
	file, envFile string
	o             config.Overrides
	given         []func(*flag.Flag) // set an override from a given flag
}

// serveFlags defines serve's flags. With overview (herald --help, herald
// help) the usage starts with the list of commands.
func serveFlags(w io.Writer, overview bool) (*flag.FlagSet, *serveOptions) {
	fs := flag.NewFlagSet("herald serve", flag.ContinueOnError)
	fs.SetOutput(w)
	fs.Usage = func() {
		if overview {
			fmt.Fprint(w, usage, "\nherald serve, the default command:\n\n")
		}
		fmt.Fprint(w, serveUsage)
		fs.PrintDefaults()
	}
	so := &serveOptions{}
	fs.StringVar(&so.file, "config", "", "config file (YAML)")
	fs.StringVar(&so.envFile, "env", "", "Laravel .env file to read REVERB_* settings from")
	o := &so.o
	// A flag that is not given leaves its override nil, so that the
	// sources below it apply.
	str := func(dst **string, name, help string) {
		v := fs.String(name, "", help)
		so.given = append(so.given, func(f *flag.Flag) {
			if f.Name == name {
				*dst = v
			}
		})
	}
	str(&o.Host, "host", "listen address (REVERB_SERVER_HOST; default 0.0.0.0, or 127.0.0.1 with the built-in development app)")
	port := fs.Int("port", 0, "listen port (REVERB_SERVER_PORT; default 8080)")
	so.given = append(so.given, func(f *flag.Flag) {
		if f.Name == "port" {
			o.Port = port
		}
	})
	str(&o.Path, "path", "path prefix (REVERB_SERVER_PATH)")
	str(&o.AppID, "app-id", "first app's id (REVERB_APP_ID)")
	str(&o.AppKey, "app-key", "first app's key (REVERB_APP_KEY)")
	str(&o.AppSecret, "app-secret", "first app's secret (REVERB_APP_SECRET)")
	str(&o.LogLevel, "log-level", "debug, info, warn or error")
	str(&o.LogFormat, "log-format", "text or json")
	debug := fs.Bool("debug", false, "log at debug level, with every frame in and out of every connection (auth signatures and secrets redacted); for development")
	so.given = append(so.given, func(f *flag.Flag) {
		if f.Name == "debug" {
			o.Debug = debug
		}
	})
	str(&o.Transport, "transport", "epoll (event-driven, default on Linux) or goroutine")
	str(&o.DebugAddr, "debug-addr", "serve pprof on this address (e.g. 127.0.0.1:6060; keep it private)")
	str(&o.MetricsAddr, "metrics-addr", "serve GET /metrics (Prometheus) on this address (HERALD_METRICS_ADDR; e.g. 127.0.0.1:9100)")
	str(&o.Cluster, "cluster", "share events and history with other nodes through Redis: redis://[user:password@]host:port/db or rediss:// (HERALD_CLUSTER_URL)")
	str(&o.TLSCert, "tls-cert", "serve https:// and wss:// with this PEM certificate chain (HERALD_TLS_CERT; with --tls-key; reloaded on SIGHUP)")
	str(&o.TLSKey, "tls-key", "the certificate's PEM private key (HERALD_TLS_KEY)")
	str(&o.PIDFile, "pid-file", "write the process id here for herald restart (default $XDG_RUNTIME_DIR or /tmp/herald-PORT.pid; off for none)")
	return fs, so
}

func serve(args []string, stdout, stderr io.Writer, implicit bool) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serveContext(ctx, args, stdout, stderr, implicit)
}

// serveContext runs the server until ctx is done.
func serveContext(ctx context.Context, args []string, stdout, stderr io.Writer, implicit bool) int {
	fs, so := serveFlags(stderr, implicit)
	if err := fs.Parse(args); err != nil {
		return exitForParse(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "herald serve: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	fs.Visit(func(f *flag.Flag) {
		for _, set := range so.given {
			set(f)
		}
	})
	cfg, err := config.Load(config.Options{File: so.file, EnvFile: so.envFile, Environ: os.Environ(), Flags: so.o})
	if err != nil {
		fmt.Fprintf(stderr, "herald: invalid configuration:\n%s\n", indent(err.Error()))
		return 1
	}
	if cfg.DefaultApp && cfg.Apps[0].BroadcastToken == "" {
		// The development app's POST /broadcast works out of the box, with
		// a token nobody else knows (the banner shows it).
		cfg.Apps[0].BroadcastToken = rand.Text()
	}
	log := newLogger(cfg.Log, stderr)
	logStart(log, cfg, so)
	if limit, err := server.RaiseFileLimit(); err != nil {
		log.Warn("could not raise the open-file limit", "err", err, "limit", limit)
	} else if limit > 64 { // 0: no such limit on this system (Windows)
		log.Info("open-file limit", "limit", limit, "max_connections_approx", limit-64)
	}
	srv, err := server.New(cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "herald: %v\n", err)
		return 1
	}
	srv.Version = strings.TrimPrefix(versionString(), "herald ")
	if err := srv.Listen(); err != nil {
		fmt.Fprintf(stderr, "herald: %v\n", err)
		return 1
	}
	if cfg.DefaultApp {
		log.Warn("no app configured: running the built-in development app; its credentials are public, do not use them in production")
		printBanner(stdout, cfg, srv.Addr().String())
	}
	defer lifecycle(ctx, cfg, srv, log)()
	if err := srv.Serve(ctx); err != nil {
		log.Error("server failed", "err", err)
		return 1
	}
	return 0
}

// logStart says where the configuration came from, what Load noticed, and
// which apps are served (ids and keys are public; secrets never logged).
func logStart(log *slog.Logger, cfg *config.Config, so *serveOptions) {
	log.Info("configuration", "config_file", orNone(so.file), "env_file", orNone(so.envFile))
	for _, w := range cfg.Warnings {
		log.Warn(w)
	}
	for _, a := range cfg.Apps {
		log.Info("serving app", "app", a.ID, "key", a.Key, "enabled", a.Enabled, "built_in", cfg.DefaultApp)
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	if c.Debug {
		level = slog.LevelDebug // the frames are logged at debug
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
