package probe_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/herald-ws/herald/internal/config"
	"github.com/herald-ws/herald/internal/probe"
	"github.com/herald-ws/herald/internal/server/servertest"
)

func opts(url string) probe.Options {
	return probe.Options{URL: url, AppID: config.DefaultAppID, Key: config.DefaultAppKey, Secret: config.DefaultAppSecret, Timeout: 3 * time.Second}
}

func failedStep(t *testing.T, r *probe.Result) probe.Step {
	t.Helper()
	if r.OK {
		t.Fatalf("probe succeeded: %+v", r.Steps)
	}
	last := r.Steps[len(r.Steps)-1]
	if last.Err == "" {
		t.Fatalf("last step has no error: %+v", r.Steps)
	}
	return last
}

func TestPingSucceeds(t *testing.T) {
	s := servertest.Start(t, config.Default())
	o := opts("ws://" + s.Addr)
	o.Count = 5
	r := probe.Run(context.Background(), o)
	if !r.OK {
		t.Fatalf("probe failed: %+v", r.Steps)
	}
	var names []string
	for _, st := range r.Steps {
		names = append(names, st.Name)
	}
	if len(r.Latencies) != 5 || !strings.HasPrefix(names[0], "connect") || names[len(names)-1] != "receive" {
		t.Fatalf("steps %v latencies %v", names, r.Latencies)
	}
	if r.Percentile(50) <= 0 || r.Percentile(99) < r.Percentile(50) {
		t.Fatalf("percentiles p50=%v p99=%v", r.Percentile(50), r.Percentile(99))
	}
}

func TestPingWrongKey(t *testing.T) {
	s := servertest.Start(t, config.Default())
	o := opts("ws://" + s.Addr)
	o.Key = "nope"
	st := failedStep(t, probe.Run(context.Background(), o))
	if st.Name != "connect" || !strings.Contains(st.Cause, "4001") {
		t.Fatalf("got %+v", st)
	}
}

func TestPingWrongSecret(t *testing.T) {
	s := servertest.Start(t, config.Default())
	o := opts("ws://" + s.Addr)
	o.Secret = "wrong"
	st := failedStep(t, probe.Run(context.Background(), o))
	if !strings.HasPrefix(st.Name, "subscribe private-") || !strings.Contains(st.Cause, "secret") {
		t.Fatalf("got %+v", st)
	}
}

func TestPingWrongSecretAtAPI(t *testing.T) {
	s := servertest.Start(t, config.Default())
	// A wrong app id: the socket works, the API refuses it as it refuses a
	// bad signature (401), and ping names the app id.
	o := opts("ws://" + s.Addr)
	o.AppID = "other"
	st := failedStep(t, probe.Run(context.Background(), o))
	if st.Name != "publish" || !strings.Contains(st.Cause, "401") || !strings.Contains(st.Cause, "REVERB_APP_ID") {
		t.Fatalf("got %+v", st)
	}
}

func TestPingClosedPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	st := failedStep(t, probe.Run(context.Background(), opts("ws://"+addr)))
	if st.Name != "connect" || !strings.Contains(st.Cause, "nothing listens") {
		t.Fatalf("got %+v", st)
	}
}

func TestPingPlainHTTPServer(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "welcome to nginx", http.StatusOK)
	}))
	defer hs.Close()
	st := failedStep(t, probe.Run(context.Background(), opts("ws://"+strings.TrimPrefix(hs.URL, "http://"))))
	if st.Name != "connect" || !strings.Contains(st.Cause, "instead of upgrading") {
		t.Fatalf("got %+v", st)
	}
}

func TestPingEventNeverReceived(t *testing.T) {
	a := servertest.Start(t, config.Default())
	b := servertest.Start(t, config.Default())
	o := opts("ws://" + a.Addr)
	o.APIURL = "http://" + b.Addr // API and sockets on different, unconnected servers
	o.Timeout = 500 * time.Millisecond
	st := failedStep(t, probe.Run(context.Background(), o))
	if st.Name != "receive" || !strings.Contains(st.Cause, "different servers") {
		t.Fatalf("got %+v", st)
	}
}

func TestPingTLSAgainstPlainServer(t *testing.T) {
	s := servertest.Start(t, config.Default())
	st := failedStep(t, probe.Run(context.Background(), opts("wss://"+s.Addr)))
	if st.Name != "connect" || !strings.Contains(st.Cause, "TLS: wss:// against a server that does not speak TLS") {
		t.Fatalf("got %+v", st)
	}
}

func TestPingUntrustedCertificate(t *testing.T) {
	hs := httptest.NewTLSServer(http.NotFoundHandler())
	defer hs.Close()
	st := failedStep(t, probe.Run(context.Background(), opts("wss://"+strings.TrimPrefix(hs.URL, "https://"))))
	if st.Name != "connect" || !strings.Contains(st.Cause, "certificate") {
		t.Fatalf("got %+v", st)
	}
}
