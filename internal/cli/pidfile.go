package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/herald-ws/herald/internal/config"
)

// pidPattern names the pid files serve writes by default, one per port,
// so that several servers on one host (different ports) each have one.
const pidPattern = "herald-%d.pid"

// pidDirs are where serve writes its pid file by default, first choice
// first, and where restart looks for pid files: the user's runtime
// directory (private, emptied at logout or boot) when there is one, and
// the temp directory.
func pidDirs() []string {
	var dirs []string
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		dirs = append(dirs, d)
	}
	return append(dirs, os.TempDir())
}

// pidFilePath is the pid file serve writes for a server on port: the
// configured one, the default for the port, or "" for none.
func pidFilePath(s config.Server, port int) string {
	switch s.PIDFile {
	case config.PIDFileOff:
		return ""
	case "":
		return filepath.Join(pidDirs()[0], fmt.Sprintf(pidPattern, port))
	}
	return s.PIDFile
}

// writePIDFile writes this process's id to path, replacing the file at
// once (rename) so that restart never reads half of it. remove deletes it
// again, unless another server has written its own id there since.
func writePIDFile(path string) (remove func(), err error) {
	pid := os.Getpid()
	tmp, err := os.CreateTemp(filepath.Dir(path), ".herald-pid-*")
	if err != nil {
		return nil, fmt.Errorf("pid file: %w", err)
	}
	_, werr := fmt.Fprintf(tmp, "%d\n", pid)
	if err := errors.Join(werr, tmp.Chmod(0o644), tmp.Close()); err != nil {
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("pid file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("pid file: %w", err)
	}
	return func() {
		if got, err := readPIDFile(path); err == nil && got == pid {
			os.Remove(path)
		}
	}, nil
}

// readPIDFile reads the process id in path.
func readPIDFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("%s does not hold a process id (got %q)", path, bytes.TrimSpace(b))
	}
	return pid, nil
}

// findPIDFiles lists the default pid files in pidDirs.
func findPIDFiles() []string {
	var out []string
	seen := map[string]bool{}
	for _, d := range pidDirs() {
		matches, _ := filepath.Glob(filepath.Join(d, "herald-*.pid"))
		for _, m := range matches {
			if !seen[m] {
				seen[m] = true
				out = append(out, m)
			}
		}
	}
	return out
}

// errNotRunning says a pid file names no running process.
var errNotRunning = errors.New("not running")

// checkHerald returns nil when pid is a running `herald serve`. Where
// /proc exists (Linux) the command line must be herald's: the program's
// name contains "herald" and its first argument is serve or a flag (serve
// is the default command), so that a pid file left behind, whose number
// the system has since given to another program, never gets that program
// signalled. Elsewhere only the process's existence is checked.
func checkHerald(pid int) error {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat("/proc/self/cmdline"); serr == nil {
			return errNotRunning // /proc works: the process is gone
		}
		return alive(pid)
	}
	if err != nil {
		return err
	}
	args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	if !isHeraldServe(args) {
		return fmt.Errorf("process %d is %q, not herald serve", pid, strings.Join(args, " "))
	}
	return nil
}

// isHeraldServe reports whether args is the command line of herald serve.
func isHeraldServe(args []string) bool {
	if len(args) == 0 || !strings.Contains(filepath.Base(args[0]), "herald") {
		return false
	}
	return len(args) == 1 || args[1] == "serve" || strings.HasPrefix(args[1], "-")
}

// alive reports whether a process pid exists (signal 0 checks without
// signalling); EPERM means it exists under another user.
func alive(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return errNotRunning
	}
	if err := p.Signal(syscall.Signal(0)); err != nil && !errors.Is(err, syscall.EPERM) {
		return errNotRunning
	}
	return nil
}
