package cli

import (
	"strings"
	"testing"

	"github.com/herald-ws/herald/internal/broker/redis/redistest"
)

// --cluster joins the Redis cluster engine (the log says which, without a
// password); a NATS URL is refused at start, naming the flag.
func TestServeCluster(t *testing.T) {
	clearLaravelEnv(t)
	code, _, errOut := serveUntil(t, "--port", freePort(t), "--cluster", "nats://127.0.0.1:4222")
	if code != 1 || !strings.Contains(errOut, "flag --cluster: NATS is not supported yet") {
		t.Fatalf("nats: exit %d\n%s", code, errOut)
	}
	redis := redistest.Start(t)
	code, _, errOut = serveUntil(t, "--port", freePort(t), "--cluster", redis.URL())
	if code != 0 || !strings.Contains(errOut, `msg="cluster engine" engine=redis url=`+redis.URL()) {
		t.Fatalf("redis: exit %d\n%s", code, errOut)
	}
}
