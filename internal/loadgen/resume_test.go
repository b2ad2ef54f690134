package loadgen_test

import (
	"context"
	"testing"
	"time"

	"github.com/herald-ws/herald/internal/config"
	"github.com/herald-ws/herald/internal/loadgen"
	"github.com/herald-ws/herald/internal/server/servertest"
)

func resumeOptions(s *servertest.Server) loadgen.Options {
	return loadgen.Options{
		URL: "ws://" + s.Addr, AppID: config.DefaultAppID, Key: config.DefaultAppKey, Secret: config.DefaultAppSecret,
		Conns: 20, Channels: 3, Resume: 30, Dialers: 20, ServerPID: -1, Drain: 5 * time.Second,
	}
}

// Every client comes back and gets exactly the 30 events it missed, in
// order, then the next live one. Two runs against one server: the second
// resumes from offsets past the first run's events.
func TestResumeCatchesUp(t *testing.T) {
	s := servertest.Start(t, config.Default())
	for round := range 2 {
		rep, err := loadgen.Run(context.Background(), resumeOptions(s))
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		r := rep.Resume
		if r == nil || r.Failed() || r.Clients != 20 || r.CaughtUp != 20 || r.Events != 30 {
			t.Fatalf("round %d: resume %+v (first error %q)", round, r, rep.FirstError)
		}
		if rep.ConnectFailures != 0 || rep.PublishErrors != 0 || rep.Published != 90 ||
			rep.Expected != 600 || rep.Delivered != 600 || rep.Lost != 0 {
			t.Fatalf("round %d: report %+v", round, rep)
		}
		if r.P50 <= 0 || r.Max < r.P99 || r.P99 < r.P50 || r.AllCaughtUpSeconds <= 0 || r.ReconnectSeconds <= 0 {
			t.Fatalf("round %d: implausible times %+v", round, r)
		}
	}
}

// Asking for more events than the channel's history keeps is reported as
// resume_failed for every client, not as a clean run.
func TestResumePastHistoryFails(t *testing.T) {
	cfg := config.Default()
	cfg.Apps[0].History.MaxEvents = 10
	s := servertest.Start(t, cfg)
	o := resumeOptions(s)
	o.Drain = time.Second
	rep, err := loadgen.Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Resume
	if !r.Failed() || r.ResumeFailed != 20 || r.CaughtUp != 0 || rep.Lost != 600 || rep.FirstError == "" {
		t.Fatalf("resume %+v, report %+v", r, rep)
	}
}
