package loadgen

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// bindNoPort defers the choice of the source port from bind to connect, so
// that ports are shared across destinations instead of reserved per bind.
func bindNoPort(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
