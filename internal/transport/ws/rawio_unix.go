//go:build unix

package ws

import "syscall"

// run is the system call of a rawOp, retried only on EINTR.
func (o *rawOp) run(fd uintptr) bool {
	for {
		if o.write {
			o.n, o.err = syscall.Write(int(fd), o.b)
		} else {
			o.n, o.err = syscall.Read(int(fd), o.b)
		}
		if o.err != syscall.EINTR {
			return true // done, never park in the poller
		}
	}
}
