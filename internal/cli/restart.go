package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"
)

const restartUsage = `Usage: herald restart [--pid-file FILE]

Asks the Herald servers running on this host to stop gracefully, as
SIGTERM does: they stop accepting, close their sockets with 4200 spread
over server.drain_window (clients reconnect), finish in-flight requests
and exit. The process supervisor (systemd, Supervisor) then starts them
again, with the new binary and configuration: run it after a deploy, like
php artisan reverb:restart.

Servers are found by the pid files herald serve writes: by default
herald-PORT.pid in $XDG_RUNTIME_DIR or the temp directory, every one of
which is tried; a server with server.pid_file set needs --pid-file. A pid
is signalled only when it is a running herald serve.

Flags:
`

// restart signals the servers named by pid files; it exits 0 when every
// server found was signalled (none running is no error: a deploy script
// may restart before the first start), 1 when one could not be.
func restart(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("herald restart", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, restartUsage); fs.PrintDefaults() }
	pidFile := fs.String("pid-file", "", "the server's pid file (server.pid_file); default: every herald-*.pid in "+strings.Join(pidDirs(), " and "))
	if err := fs.Parse(args); err != nil {
		return exitForParse(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "herald restart: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	files := []string{*pidFile}
	if *pidFile == "" {
		if files = findPIDFiles(); len(files) == 0 {
			fmt.Fprintf(stdout, "No Herald server is running: no herald-*.pid in %s.\n", strings.Join(pidDirs(), " or "))
			return 0
		}
	}
	signalled, failed := 0, 0
	for _, f := range files {
		pid, err := signalServer(f)
		switch {
		case err == nil:
			signalled++
			fmt.Fprintf(stdout, "%s: asked herald serve (process %d) to drain and exit\n", f, pid)
		case errors.Is(err, errNotRunning) || errors.Is(err, errStale):
			fmt.Fprintf(stdout, "%s: %v: nothing to restart\n", f, err)
		default:
			failed++
			fmt.Fprintf(stderr, "herald restart: %s: %v\n", f, err)
		}
	}
	if signalled == 0 && failed == 0 {
		fmt.Fprintln(stdout, "No Herald server is running.")
	}
	if failed > 0 {
		return 1
	}
	return 0
}

// errStale says a pid file names a process that is not herald serve.
var errStale = errors.New("stale pid file")

// signalServer sends SIGTERM to the server whose pid is in file, and
// returns that pid.
func signalServer(file string) (pid int, err error) {
	pid, err = readPIDFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("no pid file: %w", errNotRunning)
	}
	if err != nil {
		return 0, err
	}
	if err := checkHerald(pid); errors.Is(err, errNotRunning) {
		return pid, fmt.Errorf("process %d is %w", pid, errNotRunning)
	} else if err != nil {
		return pid, fmt.Errorf("%w: %v", errStale, err)
	}
	p, err := os.FindProcess(pid)
	if err == nil {
		err = p.Signal(syscall.SIGTERM)
	}
	switch {
	case errors.Is(err, syscall.EPERM):
		return pid, fmt.Errorf("process %d runs as another user: run herald restart as that user (or root)", pid)
	case errors.Is(err, os.ErrProcessDone):
		return pid, fmt.Errorf("process %d is %w", pid, errNotRunning)
	case err != nil:
		return pid, fmt.Errorf("signal process %d: %w", pid, err)
	}
	return pid, nil
}
