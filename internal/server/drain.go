package server

import "time"

// drainWindow is server.drain_window, kept inside the shutdown timeout:
// Load and Validate see to that for configurations read from files, and
// a configuration built in code with a window as long as its timeout gets
// half the timeout, so that the last clients have time to answer their
// close.
func (s *Server) drainWindow(timeout time.Duration) time.Duration {
	w := s.cfg.Server.DrainWindow
	if w >= timeout {
		w = timeout / 2
	}
	return max(w, 0)
}
