// Package redistest starts a private redis-server for tests: on a free
// loopback port, without persistence, stopped when the test ends. Tests
// never touch a Redis they did not start (the system one on 6379 may hold
// somebody's data).
//
// Without a redis-server binary the test is skipped, unless
// HERALD_TEST_REQUIRE_ENGINES=1 (scripts/test sets it, after installing
// Debian's redis-server): then it fails.
package redistest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Server is a running redis-server.
type Server struct {
	Port int
	cmd  *exec.Cmd
	exit chan struct{} // closed when the process has exited
}

// URL is the server's redis:// URL (database 0).
func (s *Server) URL() string { return "redis://127.0.0.1:" + strconv.Itoa(s.Port) + "/0" }

// Addr is host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// Start runs a redis-server for the test t and stops it in t.Cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("HERALD_TEST_REQUIRE_ENGINES") == "1" {
			t.Fatal("redis-server is not installed (HERALD_TEST_REQUIRE_ENGINES=1): apt-get install redis-server")
		}
		t.Skip("redis-server is not installed: skipping (install Debian's redis-server, or set HERALD_TEST_REQUIRE_ENGINES=1 to fail instead)")
	}
	var last error
	for range 5 { // the free port may be taken between probing and binding
		s := &Server{Port: freePort(t)}
		if last = s.run(bin); last == nil {
			t.Cleanup(s.Stop)
			return s
		}
	}
	t.Fatalf("redis-server: %v", last)
	return nil
}

// Restart stops the server and starts it again on the same port, empty
// (no persistence): what a Redis crash and restart looks like to Herald.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	bin, _ := exec.LookPath("redis-server")
	if err := s.run(bin); err != nil {
		t.Fatalf("redis-server restart: %v", err)
	}
}

// Stop kills the server and waits for it to exit.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exit
	s.cmd = nil
}

// run starts redis-server on s.Port and returns once it accepts
// connections (it says so on its log), or with why it did not.
func (s *Server) run(bin string) error {
	cmd := exec.Command(bin, "--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--protected-mode", "yes", "--loglevel", "notice")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return err
	}
	ready := make(chan struct{})
	var log strings.Builder
	exit := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		signalled := false
		for sc.Scan() {
			if !signalled {
				log.WriteString(sc.Text() + "\n")
				if strings.Contains(sc.Text(), "Ready to accept connections") {
					signalled = true
					close(ready)
				}
			}
		}
		_, _ = io.Copy(io.Discard, out)
		_ = cmd.Wait()
		close(exit)
	}()
	select {
	case <-ready:
		s.cmd, s.exit = cmd, exit
		return nil
	case <-exit:
		return fmt.Errorf("exited at start:\n%s", log.String())
	case <-time.After(10 * time.Second): // a hang guard: it starts in milliseconds
		_ = cmd.Process.Kill()
		<-exit
		return fmt.Errorf("not ready after 10 s:\n%s", log.String())
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
