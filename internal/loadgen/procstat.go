package loadgen

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// procStats are a local server process's resource counters.
type procStats struct {
	RSSBytes int64
	CPU      time.Duration // user + system
}

// readProc reads /proc/{pid}/status and /proc/{pid}/stat.
func readProc(pid int) (procStats, error) {
	var st procStats
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return st, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			st.RSSBytes = kb * 1024
		}
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return st, err
	}
	// Fields after the parenthesised command name; utime and stime are the
	// 14th and 15th fields overall, in clock ticks (100 Hz on Linux).
	s := string(b)
	rest := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(rest) > 12 {
		ut, _ := strconv.ParseInt(rest[11], 10, 64)
		stt, _ := strconv.ParseInt(rest[12], 10, 64)
		st.CPU = time.Duration(ut+stt) * 10 * time.Millisecond
	}
	return st, nil
}

// findLocalServer returns the pid of the local process listening on addr's
// port, or 0 when addr is not local or the process cannot be found.
func findLocalServer(addr string) int {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return 0
	}
	port, _ := strconv.Atoi(portStr)
	inodes := map[string]bool{}
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != "0A" { // 0A = LISTEN
				continue
			}
			_, p, _ := strings.Cut(f[1], ":")
			if v, _ := strconv.ParseInt(p, 16, 32); int(v) == port {
				inodes["socket:["+f[9]+"]"] = true
			}
		}
	}
	if len(inodes) == 0 {
		return 0
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range procs {
		if target, err := os.Readlink(fd); err == nil && inodes[target] {
			pid, _ := strconv.Atoi(strings.Split(fd, "/")[2])
			return pid
		}
	}
	return 0
}
