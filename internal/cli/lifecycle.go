package cli

import (
	"context"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/herald-ws/herald/internal/config"
	"github.com/herald-ws/herald/internal/server"
)

// lifecycle sets up what a running server needs around it besides
// SIGTERM and SIGINT (which end ctx): the pid file herald restart reads,
// and SIGHUP, which reloads the TLS certificate (and, without a handler,
// would kill the process). The returned function undoes both.
func lifecycle(ctx context.Context, cfg *config.Config, srv *server.Server, log *slog.Logger) (undo func()) {
	removePID := func() {}
	port := cfg.Server.Port
	if a, ok := srv.Addr().(*net.TCPAddr); ok {
		port = a.Port
	}
	if path := pidFilePath(cfg.Server, port); path != "" {
		remove, err := writePIDFile(path)
		if err != nil {
			log.Warn("no pid file: herald restart will not find this server", "pid_file", path, "err", err)
		} else {
			log.Info("pid file written", "pid_file", path, "pid", os.Getpid())
			removePID = remove
		}
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	hupCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-hupCtx.Done():
				return
			case <-hup:
				reload(srv, log)
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		stop()
		<-done
		removePID()
	}
}

// reload is what SIGHUP does: re-read the TLS certificate and key. A pair
// that does not load leaves the current one serving.
func reload(srv *server.Server, log *slog.Logger) {
	if !srv.TLS() {
		log.Info("SIGHUP: nothing to reload (no TLS certificate configured)")
		return
	}
	if err := srv.ReloadTLS(); err != nil {
		log.Error("SIGHUP: TLS reload failed; the current certificate stays", "err", err)
	}
}
