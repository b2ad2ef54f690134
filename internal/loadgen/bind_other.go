//go:build !linux

package loadgen

import "syscall"

// bindNoPort is Linux-only (IP_BIND_ADDRESS_NO_PORT); elsewhere the source
// port is chosen at bind, which limits a run to about 28k connections per
// source address.
func bindNoPort(_, _ string, _ syscall.RawConn) error { return nil }
