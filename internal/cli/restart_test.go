package cli

import (
	"bytes"
	"crypto/tls"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/herald-ws/herald/internal/server/servertest"
)

// heraldBinary builds the binary from this tree into the test's
// directory (the build cache makes all but the first build a link).
func heraldBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the herald binary")
	}
	bin := filepath.Join(t.TempDir(), "herald")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/herald-ws/herald/cmd/herald").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// isolatePIDDirs points the pid file directories (and so restart's
// search) at a new directory, so that the test never finds, let alone
// signals, a Herald someone else runs on this host.
func isolatePIDDirs(t *testing.T) string {
	dir := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", dir)
	t.Setenv("TMPDIR", dir)
	return dir
}

// heraldProc is a herald serve subprocess.
type heraldProc struct {
	cmd    *exec.Cmd
	stderr *logWatch
	exited chan error
}

// logWatch collects a subprocess's log and lets the test wait for a line.
type logWatch struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{} // closed and replaced on every write
}

func newLogWatch() *logWatch { return &logWatch{changed: make(chan struct{})} }

func (w *logWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	close(w.changed)
	w.changed = make(chan struct{})
	return w.b.Write(p)
}

func (w *logWatch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// await waits until the log holds s or done fires; it reports whether
// the log holds s.
func (w *logWatch) await(s string, done <-chan time.Time) bool {
	for {
		w.mu.Lock()
		has, changed := strings.Contains(w.b.String(), s), w.changed
		w.mu.Unlock()
		if has {
			return true
		}
		select {
		case <-changed:
		case <-done:
			return false
		}
	}
}

// startServe runs herald serve with args and waits until it listens.
func startServe(t *testing.T, args ...string) *heraldProc {
	t.Helper()
	bin := heraldBinary(t)
	cmd := exec.Command(bin, append([]string{"serve", "--log-level", "debug"}, args...)...)
	cmd.Env = append(os.Environ(), "REVERB_APP_ID=", "REVERB_APP_KEY=", "REVERB_APP_SECRET=")
	p := &heraldProc{cmd: cmd, stderr: newLogWatch(), exited: make(chan error, 1)}
	cmd.Stderr, cmd.Stdout = p.stderr, &bytes.Buffer{}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.exited
	})
	if !p.stderr.await("herald listening", time.After(10*time.Second)) {
		t.Fatalf("herald serve not listening after 10 s\n%s", p.stderr)
	}
	return p
}

// wait returns how the process ended, failing after timeout.
func (p *heraldProc) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case err := <-p.exited:
		p.exited <- err // for the cleanup
		return err
	case <-time.After(timeout):
		t.Fatalf("herald serve still running after %v\n%s", timeout, p.stderr)
		return nil
	}
}

// herald restart finds the server by its default pid file, sends it
// SIGTERM, and the server drains and exits 0, removing its pid file.
func TestRestartStopsRunningServer(t *testing.T) {
	dir := isolatePIDDirs(t)
	port := freePort(t)
	p := startServe(t, "--port", port)
	pidFile := filepath.Join(dir, "herald-"+port+".pid")
	if pid, err := readPIDFile(pidFile); err != nil || pid != p.cmd.Process.Pid {
		t.Fatalf("pid file %s: %d, %v; want %d", pidFile, pid, err, p.cmd.Process.Pid)
	}
	code, out, errOut := run("restart")
	if code != 0 || !strings.Contains(out, "asked herald serve (process "+strconv.Itoa(p.cmd.Process.Pid)+") to drain and exit") {
		t.Fatalf("restart: exit %d\n%s%s", code, out, errOut)
	}
	if err := p.wait(t, 15*time.Second); err != nil {
		t.Fatalf("herald serve: %v\n%s", err, p.stderr)
	}
	log := p.stderr.String()
	for _, want := range []string{"shutting down", "msg=stopped"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if _, err := os.Stat(pidFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid file left behind: %v", err)
	}
	code, out, _ = run("restart")
	if code != 0 || !strings.Contains(out, "No Herald server is running") {
		t.Errorf("restart with none running: exit %d %q", code, out)
	}
}

// A pid file naming a process that is not herald serve (its number
// reused) or no process at all gets nobody signalled.
func TestRestartLeavesOtherProcessesAlone(t *testing.T) {
	dir := isolatePIDDirs(t)
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Skip("no true(1):", err)
	}
	for name, pid := range map[string]int{"herald-1.pid": os.Getpid(), "herald-2.pid": gone.Process.Pid} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errOut := run("restart") // this test process is not herald: it must survive
	if code != 0 || !strings.Contains(out, "stale pid file: process "+strconv.Itoa(os.Getpid())) ||
		!strings.Contains(out, "not running: nothing to restart") || !strings.Contains(out, "No Herald server is running.") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	code, _, errOut = run("restart", "--pid-file", filepath.Join(dir, "missing.pid"))
	if code != 0 {
		t.Errorf("missing pid file: exit %d %s", code, errOut)
	}
	if err := os.WriteFile(filepath.Join(dir, "junk.pid"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut = run("restart", "--pid-file", filepath.Join(dir, "junk.pid")); code != 1 || !strings.Contains(errOut, "does not hold a process id") {
		t.Errorf("junk pid file: exit %d %s", code, errOut)
	}
}

func TestIsHeraldServe(t *testing.T) {
	for args, want := range map[string]bool{
		"/usr/local/bin/herald serve --env /app/.env": true,
		"herald":                                 true,
		"./herald --port 8080":                   true,
		"herald-v2 serve":                        true,
		"herald restart":                         false,
		"/usr/bin/php artisan reverb:start":      false,
		"/tmp/go-build1/b001/cli.test -test.v=1": false,
	} {
		if got := isHeraldServe(strings.Fields(args)); got != want {
			t.Errorf("%q: %v, want %v", args, got, want)
		}
	}
}

// SIGHUP to a real server reloads its certificate: a new connection gets
// the renewed one and the process keeps serving; a server without a pid
// file (off) is not found by restart.
func TestSIGHUPReloadsCertificate(t *testing.T) {
	isolatePIDDirs(t)
	ca := servertest.NewCA(t)
	dir := t.TempDir()
	certFile, keyFile := ca.Issue(t, dir, servertest.Leaf{Serial: 7})
	port := freePort(t)
	p := startServe(t, "--port", port, "--host", "127.0.0.1", "--tls-cert", certFile, "--tls-key", keyFile, "--pid-file", "off")
	serial := func() int64 {
		t.Helper()
		conn, err := tls.Dial("tcp", "127.0.0.1:"+port, ca.TLSConfig())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	}
	if n := serial(); n != 7 {
		t.Fatalf("serial %d, want 7", n)
	}
	ca.Issue(t, dir, servertest.Leaf{Serial: 8})
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if !p.stderr.await("TLS certificate reloaded", time.After(10*time.Second)) {
		t.Fatalf("no reload logged\n%s", p.stderr)
	}
	if n := serial(); n != 8 {
		t.Fatalf("after SIGHUP: serial %d, want 8", n)
	}
	if code, out, _ := run("restart"); code != 0 || !strings.Contains(out, "No Herald server is running") {
		t.Errorf("restart found a server without a pid file: %d %q", code, out)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.wait(t, 15*time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, p.stderr)
	}
}
