//go:build !unix

package server

// RaiseFileLimit has nothing to raise where there is no open-file rlimit
// (Windows); 0 means the limit is unknown.
func RaiseFileLimit() (uint64, error) { return 0, nil }
