package cli

import (
	"strings"
	"testing"

	"github.com/herald-ws/herald/internal/config"
	"github.com/herald-ws/herald/internal/server/servertest"
)

// --resume reports, as JSON, every client caught up without a gap.
func TestBenchResume(t *testing.T) {
	var r struct {
		Connections int   `json:"connections"`
		Published   int64 `json:"published"`
		Lost        int64 `json:"lost"`
		Resume      struct {
			Events       int     `json:"events_per_client"`
			Clients      int     `json:"clients"`
			CaughtUp     int     `json:"caught_up"`
			Gaps         int64   `json:"gaps"`
			Duplicates   int64   `json:"duplicates"`
			ResumeFailed int     `json:"resume_failed"`
			AllCaughtUp  float64 `json:"all_caught_up_seconds"`
		}
	}
	benchJSON(t, &r, "--conns", "20", "--channels", "3", "--resume", "30")
	res := r.Resume
	if r.Connections != 20 || r.Published != 90 || r.Lost != 0 || res.Events != 30 || res.Clients != 20 || res.CaughtUp != 20 ||
		res.Gaps+res.Duplicates != 0 || res.ResumeFailed != 0 || res.AllCaughtUp <= 0 {
		t.Fatalf("report %+v", r)
	}
}

// The text report of resume rounds, a failing resume (more events than
// the history keeps) shown loudly with exit code 1, and flag checks.
func TestBenchResumeText(t *testing.T) {
	cfg := config.Default()
	cfg.Apps[0].History.MaxEvents = 20
	s := servertest.Start(t, cfg)
	args := []string{"bench", "ws://" + s.Addr, "--app-id", config.DefaultAppID, "--key", config.DefaultAppKey, "--secret", config.DefaultAppSecret,
		"--conns", "10", "--channels", "2"}
	code, out, errOut := run(append(args, "--resume", "20", "--rounds", "2")...)
	if code != 0 || !strings.Contains(out, "all caught up") || !strings.Contains(out, "in order, then the live one over all rounds") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = run(append(args, "--resume", "21", "--drain", "1s")...)
	if code != 1 || !strings.Contains(out, "RESUME FAILED: 10 of 10 clients not caught up") || !strings.Contains(out, "10 resume_failed") {
		t.Fatalf("past history: exit %d\n%s%s", code, out, errOut)
	}
	for _, bad := range [][]string{{"--resume", "5", "--presence"}, {"--resume", "5", "--slow", "1"}, {"--resume", "-1"}} {
		if code, _, errOut := run(append(args, bad...)...); code != 2 || !strings.Contains(errOut, "--resume") {
			t.Fatalf("%v: exit %d %q", bad, code, errOut)
		}
	}
}

// --readers reports, as JSON, every reader of each kind got every event
// once; the text report of rounds says so; bad combinations are refused.
func TestBenchReaders(t *testing.T) {
	for _, kind := range []string{"longpoll", "sse"} {
		var r struct {
			Connections int   `json:"connections"`
			Published   int64 `json:"published"`
			Expected    int64 `json:"expected_deliveries"`
			Delivered   int64 `json:"delivered"`
			Lost        int64 `json:"lost"`
			P99         int64 `json:"latency_p99_ns"`
			Readers     struct {
				Kind       string `json:"kind"`
				Readers    int    `json:"readers"`
				Complete   int    `json:"complete"`
				Duplicates int64  `json:"duplicates"`
				Ended      int    `json:"ended"`
			}
		}
		benchJSON(t, &r, "--readers", kind, "--conns", "30", "--channels", "3", "--rate", "60", "--duration", "250ms")
		res := r.Readers
		if r.Connections != 30 || r.Published != 15 || r.Expected != 150 || r.Delivered != 150 || r.Lost != 0 || r.P99 <= 0 ||
			res.Kind != kind || res.Readers != 30 || res.Complete != 30 || res.Duplicates != 0 || res.Ended != 0 {
			t.Fatalf("%s: report %+v", kind, r)
		}
	}
	s := servertest.Start(t, config.Default())
	args := []string{"bench", "ws://" + s.Addr, "--app-id", config.DefaultAppID, "--key", config.DefaultAppKey, "--secret", config.DefaultAppSecret,
		"--conns", "10", "--channels", "2", "--rate", "40", "--duration", "100ms"}
	code, out, errOut := run(append(args, "--readers", "sse", "--rounds", "2")...)
	if code != 0 || !strings.Contains(out, "10 SSE readers on 2 channels") || !strings.Contains(out, "exactly once, in offset order over all rounds") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = run(append(args, "--readers", "longpoll")...)
	if code != 0 || !strings.Contains(out, "10 long-poll readers held") || !strings.Contains(out, "long-poll answers") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, bad := range [][]string{{"--readers", "ws"}, {"--readers", "sse", "--presence"}, {"--readers", "sse", "--slow", "1"}, {"--readers", "longpoll", "--resume", "5"}} {
		if code, _, errOut := run(append(args, bad...)...); code != 2 || !strings.Contains(errOut, "--readers") {
			t.Fatalf("%v: exit %d %q", bad, code, errOut)
		}
	}
}

// Readers refused past the server's max_readers fail the run loudly.
func TestBenchReadersRefused(t *testing.T) {
	cfg := config.Default()
	cfg.History.MaxReaders = 5
	s := servertest.Start(t, cfg)
	code, out, errOut := run("bench", "ws://"+s.Addr, "--app-id", config.DefaultAppID, "--key", config.DefaultAppKey, "--secret", config.DefaultAppSecret,
		"--readers", "sse", "--conns", "10", "--rate", "20", "--duration", "100ms", "--drain", "1s")
	if code != 1 || !strings.Contains(out, "refused            5 connections: HTTP 503") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
}

// --transport xhr_streaming|xhr_polling runs the publishing scenario over
// pusher-js's HTTP fallbacks: the JSON report has every event delivered
// once, the text report of rounds names the transport, and bad values or
// combinations are refused.
func TestBenchTransport(t *testing.T) {
	for _, transport := range []string{"xhr_streaming", "xhr_polling"} {
		var r struct {
			Transport  string `json:"transport"`
			Conns      int    `json:"connections"`
			Expected   int64  `json:"expected_deliveries"`
			Delivered  int64  `json:"delivered"`
			Duplicates int64  `json:"duplicates"`
			Lost       int64  `json:"lost"`
			Batches    int64  `json:"xhr_batches"`
		}
		benchJSON(t, &r, "--transport", transport, "--conns", "20", "--channels", "2", "--rate", "40", "--duration", "250ms")
		if r.Transport != transport || r.Conns != 20 || r.Expected != 100 || r.Delivered != 100 || r.Duplicates != 0 || r.Lost != 0 || r.Batches == 0 {
			t.Fatalf("%s: report %+v", transport, r)
		}
	}
	s := servertest.Start(t, config.Default())
	args := []string{"bench", "ws://" + s.Addr, "--app-id", config.DefaultAppID, "--key", config.DefaultAppKey, "--secret", config.DefaultAppSecret,
		"--conns", "10", "--rate", "40", "--duration", "100ms"}
	code, out, errOut := run(append(args, "--transport", "xhr_polling", "--rounds", "2")...)
	if code != 0 || !strings.Contains(out, "transport          xhr_polling") || !strings.Contains(out, "(poll answers)") || !strings.Contains(out, "nothing lost in any round") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = run(append(args, "--transport", "xhr_streaming")...)
	if code != 0 || !strings.Contains(out, "stream batches") || !strings.Contains(out, "nothing lost") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, bad := range [][]string{{"--transport", "sockjs"}, {"--transport", "xhr_polling", "--presence"}, {"--transport", "xhr_streaming", "--slow", "1"},
		{"--transport", "xhr_streaming", "--resume", "5"}, {"--transport", "xhr_polling", "--readers", "sse"}} {
		if code, _, errOut := run(append(args, bad...)...); code != 2 || !strings.Contains(errOut, "--transport") {
			t.Fatalf("%v: exit %d %q", bad, code, errOut)
		}
	}
}
