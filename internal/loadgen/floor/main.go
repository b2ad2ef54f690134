// Command floor is the reference "floor" of BENCHMARKS.md: the least a
// Pusher-compatible server can do for `herald bench`. It answers the
// handshake and subscriptions just enough for the load generator, checks
// no signature, and for each POST /apps/{id}/events writes one
// pre-encoded frame to every subscribed socket from a writer goroutine per
// connection that concatenates whatever queued up meanwhile. Its frames are
// Herald's own encodings (internal/pusher), byte for byte. Measuring it
// beside Herald on the same machine shows what the machine itself costs;
// it is not a server and is only built by scripts/bench.
//
//	go run ./internal/loadgen/floor -addr 127.0.0.1:18701
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/herald-ws/herald/internal/pusher"
)

type conn struct {
	nc  net.Conn
	out chan []byte
}

var (
	mu     sync.RWMutex
	subs   = map[string][]*conn{}
	nextID atomic.Int64
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18701", "listen address")
	flag.Parse()
	http.HandleFunc("/app/", serveWS)
	http.HandleFunc("/apps/", publish)
	http.HandleFunc("/up", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	log.Fatal(http.ListenAndServe(*addr, nil))
}

func serveWS(w http.ResponseWriter, r *http.Request) {
	nc, _, _, err := ws.UpgradeHTTP(r, w)
	if err != nil {
		return
	}
	c := &conn{nc: nc, out: make(chan []byte, 4096)}
	go c.writeLoop()
	id := nextID.Add(1)
	c.out <- frame(pusher.ConnectionEstablished(fmt.Sprintf("%d.%d", id, id), 120))
	var channels []string
	defer func() { // a later round must not publish to this connection
		mu.Lock()
		for _, ch := range channels {
			subs[ch] = slices.DeleteFunc(subs[ch], func(x *conn) bool { return x == c })
		}
		mu.Unlock()
		nc.Close()
	}()
	for {
		p, op, err := wsutil.ReadClientData(nc)
		if err != nil {
			return
		}
		if op != ws.OpText || !strings.Contains(string(p), `"pusher:subscribe"`) {
			continue
		}
		var m struct {
			Data struct {
				Channel string `json:"channel"`
			} `json:"data"`
		}
		_ = json.Unmarshal(p, &m)
		mu.Lock()
		subs[m.Data.Channel] = append(subs[m.Data.Channel], c)
		mu.Unlock()
		channels = append(channels, m.Data.Channel)
		c.out <- frame(pusher.SubscriptionSucceeded(m.Data.Channel, nil))
	}
}

// writeLoop writes each frame, concatenated with any that queued behind it.
func (c *conn) writeLoop() {
	var buf []byte
	for f := range c.out {
		buf = append(buf[:0], f...)
		for more := true; more; {
			select {
			case f := <-c.out:
				buf = append(buf, f...)
			default:
				more = false
			}
		}
		if _, err := c.nc.Write(buf); err != nil {
			return
		}
	}
}

func publish(w http.ResponseWriter, r *http.Request) {
	var ev struct {
		Name     string   `json:"name"`
		Data     string   `json:"data"`
		Channels []string `json:"channels"`
	}
	if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	for _, ch := range ev.Channels {
		f := frame(pusher.Event(ch, ev.Name, ev.Data))
		mu.RLock()
		for _, c := range subs[ch] {
			select {
			case c.out <- f:
			default: // a full queue drops, as the floor does no flow control
			}
		}
		mu.RUnlock()
	}
	io.WriteString(w, "{}")
}

// frame encodes one unmasked text frame.
func frame(payload []byte) []byte {
	b, _ := ws.CompileFrame(ws.NewTextFrame(payload))
	return b
}
