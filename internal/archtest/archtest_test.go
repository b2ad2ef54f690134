// Package archtest keeps the import graph a readable DAG: each package may
// import only packages of a lower layer.
package archtest

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/herald-ws/herald/"

// layers: a package may import internal packages of strictly lower layers.
var layers = map[string]int{
	"internal/pusher":                 0,
	"internal/peer":                   0, // client addresses through trusted proxies, per-address limits
	"internal/signature":              0,
	"internal/apps":                   0,
	"internal/envfile":                0,
	"internal/broker":                 0,
	"internal/ratelog":                0,
	"internal/web":                    0,
	"internal/metrics":                0, // Prometheus registry and scrape-time collector; imports no Herald package
	"internal/demo":                   1, // the `herald demo` backend: reaches Herald over HTTP only
	"internal/config":                 1,
	"internal/hub":                    1,
	"internal/broker/memory":          1,
	"internal/broker/redis":           1, // the Redis cluster engine: broker and history in one
	"internal/broker/redis/redistest": 1, // starts a private redis-server for tests
	"internal/broker/brokertest":      1, // the conformance suite every engine runs
	"internal/history":                1,
	"internal/webhook":                1, // batching, signing, retries; app data comes through Options.Lookup
	"internal/node":                   2,
	"internal/session":                3,
	"internal/httpapi":                3,
	"internal/feed":                   3,
	"internal/dashboard":              3, // the web dashboard: node state, a log tee, the page
	"internal/transport/ws":           4,
	"internal/transport/poll":         4,
	"internal/probe":                  4,
	"internal/doctor":                 4,
	"internal/loadgen":                5,
	"internal/loadgen/floor":          6, // a reference program for scripts/bench; imports only pusher
	"internal/server":                 5,
	"internal/server/servertest":      6,
	"internal/cli":                    6,
	"cmd/herald":                      7,
	"internal/archtest":               8,
}

func TestImportLayers(t *testing.T) {
	out, err := exec.Command("go", "list", "-json", "github.com/herald-ws/herald/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		rel := strings.TrimPrefix(p.ImportPath, module)
		layer, ok := layers[rel]
		if !ok {
			t.Errorf("package %s has no layer: add it to archtest", rel)
			continue
		}
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, module) {
				continue
			}
			r := strings.TrimPrefix(imp, module)
			if l, ok := layers[r]; ok && l >= layer {
				t.Errorf("%s (layer %d) imports %s (layer %d): imports must point downward", rel, layer, r, l)
			}
		}
	}
}
