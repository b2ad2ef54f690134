package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/herald-ws/herald/internal/signature"
)

// conn is one benchmark connection; its reader goroutine counts
// deliveries and records latencies in its tally.
type conn struct {
	tally
	nc   net.Conn
	br   *bufio.Reader
	slow bool   // never reads until the run is over
	buf  []byte // reused by nextEvent
}

var _ subscriber = (*conn)(nil)

func (c *conn) results() *tally { return &c.tally }

func dial(ctx context.Context, b *bench, i int) (*conn, error) {
	nc, br, est, err := open(ctx, b, i)
	if err != nil {
		return nil, err
	}
	channel := channelName(i, b.o.Channels)
	data := map[string]any{"channel": channel}
	if b.o.Presence {
		socketID, err := socketIDOf(est)
		if err != nil {
			nc.Close()
			return nil, err
		}
		channel = presenceChannel
		cd := fmt.Sprintf(`{"user_id":"u%d","user_info":{"name":"bench user %d"}}`, i, i)
		data = map[string]any{"channel": channel, "channel_data": cd,
			"auth": signature.ChannelAuth(b.o.Key, b.o.Secret, socketID, channel, cd)}
	}
	if err := subscribe(nc, br, data); err != nil {
		nc.Close()
		return nil, err
	}
	c := &conn{nc: nc, br: br, slow: i >= b.o.Conns}
	if !c.slow {
		go c.readLoop(br, b)
	}
	return c, nil
}

// open dials connection i (from its share of the loopback source
// addresses) and returns it with the pusher:connection_established frame.
func open(ctx context.Context, b *bench, i int) (net.Conn, *bufio.Reader, []byte, error) {
	d := ws.Dialer{
		Timeout: 10 * time.Second,
		NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) { return b.dialTCP(ctx, i, addr) },
	}
	nc, br, _, err := d.Dial(ctx, b.wsBase+"/app/"+b.o.Key+"?protocol=7&client=herald-bench&version=1.0")
	if err != nil {
		return nil, nil, nil, err
	}
	if br == nil {
		br = bufio.NewReaderSize(nc, 4096)
	}
	est, err := expectFrame(nc, br, "pusher:connection_established")
	if err != nil {
		nc.Close()
		return nil, nil, nil, err
	}
	return nc, br, est, nil
}

// dialTCP opens connection i's TCP connection to addr, from its share of
// the loopback source addresses when there are many connections.
func (b *bench) dialTCP(ctx context.Context, i int, addr string) (net.Conn, error) {
	var nd net.Dialer
	if host, _, _ := net.SplitHostPort(addr); isLoopback(host) && b.o.Conns > perSourceAddr {
		nd = net.Dialer{LocalAddr: sourceAddr(i), Control: bindNoPort}
	}
	return nd.DialContext(ctx, "tcp", addr)
}

// subscribe sends pusher:subscribe with data and waits for
// subscription_succeeded; frames after it stay buffered in br, and the
// connection is left without a read deadline.
func subscribe(nc net.Conn, br *bufio.Reader, data map[string]any) error {
	sub, _ := json.Marshal(map[string]any{"event": "pusher:subscribe", "data": data})
	if err := wsutil.WriteClientText(nc, sub); err != nil {
		return err
	}
	if err := expect(nc, br, "pusher_internal:subscription_succeeded"); err != nil {
		return err
	}
	return nc.SetReadDeadline(time.Time{})
}

func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

// presenceChannel is the channel every connection joins in presence mode.
const presenceChannel = "presence-bench"

// expect reads frames until one with event arrives.
func expect(nc net.Conn, br *bufio.Reader, event string) error {
	_, err := expectFrame(nc, br, event)
	return err
}

// expectFrame reads frames until one with event arrives and returns it.
func expectFrame(nc net.Conn, br *bufio.Reader, event string) ([]byte, error) {
	_ = nc.SetReadDeadline(time.Now().Add(15 * time.Second))
	for {
		p, op, err := readFrame(br)
		if err != nil {
			return nil, fmt.Errorf("waiting for %s: %w", event, err)
		}
		if op == ws.OpClose {
			return nil, &RefusedError{Reason: "closed with " + closeText(p), Waiting: event}
		}
		if bytes.Contains(p, []byte(`"event":"`+event+`"`)) {
			return p, nil
		}
		if bytes.Contains(p, []byte(`"event":"pusher:error"`)) || bytes.Contains(p, []byte(`"event":"pusher:subscription_error"`)) {
			return nil, &RefusedError{Reason: errorText(p), Waiting: event}
		}
	}
}

// RefusedError is a connection or subscription the server refused, with
// the reason it gave.
type RefusedError struct {
	Reason  string // "pusher:error 4009: presence channel presence-bench is full (100 members)"
	Waiting string // the event the connection was waiting for
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("refused by the server while waiting for %s: %s", e.Waiting, e.Reason)
}

// errorText renders a pusher:error (or subscription_error) frame as
// "pusher:error 4009: message"; its data is an object, or one encoded in
// a string.
func errorText(frame []byte) string {
	var f struct {
		Event string          `json:"event"`
		Data  json.RawMessage `json:"data"`
	}
	var d struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Error   string `json:"error"`
		Status  int    `json:"status"`
	}
	if json.Unmarshal(frame, &f) != nil {
		return string(frame)
	}
	data := []byte(f.Data)
	var s string
	if json.Unmarshal(f.Data, &s) == nil {
		data = []byte(s)
	}
	if json.Unmarshal(data, &d) != nil {
		return string(frame)
	}
	code, msg := max(d.Code, d.Status), d.Message
	if msg == "" {
		msg = d.Error
	}
	return fmt.Sprintf("%s %d: %s", f.Event, code, msg)
}

// socketIDOf extracts the socket id from connection_established.
func socketIDOf(frame []byte) (string, error) {
	var f struct {
		Data string `json:"data"`
	}
	var d struct {
		SocketID string `json:"socket_id"`
	}
	if json.Unmarshal(frame, &f) != nil || json.Unmarshal([]byte(f.Data), &d) != nil || d.SocketID == "" {
		return "", fmt.Errorf("no socket_id in %s", frame)
	}
	return d.SocketID, nil
}

var (
	benchPrefix       = []byte(`{"event":"bench"`)
	memberAddedPrefix = []byte(`{"event":"pusher_internal:member_added"`)
	pingPrefix        = []byte(`{"event":"pusher:ping"`)
)

func closeText(p []byte) string {
	if len(p) < 2 {
		return "no code"
	}
	return fmt.Sprintf("%d %s", statusOf(p), p[2:])
}

func readFrame(br *bufio.Reader) ([]byte, ws.OpCode, error) {
	return readFrameInto(br, nil)
}

// readFrameInto reads one frame, reusing buf when it is large enough; the
// payload is valid until the next call with the same buf.
func readFrameInto(br *bufio.Reader, buf []byte) ([]byte, ws.OpCode, error) {
	h, err := ws.ReadHeader(br)
	if err != nil {
		return nil, 0, err
	}
	if int64(cap(buf)) < h.Length {
		buf = make([]byte, h.Length)
	}
	p := buf[:h.Length]
	if _, err := io.ReadFull(br, p); err != nil {
		return nil, 0, err
	}
	return p, h.OpCode, nil
}

var dataMarker = []byte(`"data":"`)

func (c *conn) readLoop(br *bufio.Reader, b *bench) {
	var buf []byte // reused: the generator must not compete for CPU with garbage
	for {
		p, op, err := readFrameInto(br, buf)
		if err != nil {
			return
		}
		buf = p[:cap(p)]
		switch op {
		case ws.OpClose:
			c.mu.Lock()
			c.closeCode = statusOf(p)
			c.mu.Unlock()
			return
		case ws.OpPing:
			_ = wsutil.WriteClientMessage(c.nc, ws.OpPong, p)
			continue
		}
		// Cheapest test first: nearly every frame is a bench event, and
		// only the frame's start says which event it is.
		if !bytes.HasPrefix(p, benchPrefix) {
			switch {
			case bytes.HasPrefix(p, memberAddedPrefix):
				b.memberAdded.Add(1)
			case bytes.HasPrefix(p, pingPrefix):
				_ = wsutil.WriteClientText(c.nc, []byte(`{"event":"pusher:pong","data":{}}`))
			}
			continue
		}
		if i := bytes.Index(p, dataMarker); i >= 0 {
			c.deliver(b, time.Now().UnixNano(), p[i+len(dataMarker):])
		}
	}
}

// close resets the connection (see resetClose).
func (c *conn) close() { resetClose(c.nc) }

func newHTTPClient(publishers int) *http.Client {
	return &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: publishers, MaxConnsPerHost: publishers},
	}
}

// secondField returns the second space-separated field of b (the send
// time in "seq time pad") without allocating; nil when there is none.
func secondField(b []byte) []byte {
	i := bytes.IndexByte(b, ' ')
	if i < 0 {
		return nil
	}
	b = b[i+1:]
	if j := bytes.IndexByte(b, ' '); j >= 0 {
		b = b[:j]
	}
	return b
}

// statusOf is the status code of a close frame's payload, 0 without one.
func statusOf(p []byte) int {
	if len(p) < 2 {
		return 0
	}
	return int(p[0])<<8 | int(p[1])
}

func parseInt(b []byte) (int64, bool) {
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, len(b) > 0
}

// drainUntilClose reads a slow connection's backlog until the server's
// close frame (recording its code) or a quiet period.
func (c *conn) drainUntilClose() {
	for {
		_ = c.nc.SetReadDeadline(time.Now().Add(3 * time.Second))
		p, op, err := readFrame(c.br)
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				c.mu.Lock()
				c.dropped = true
				c.mu.Unlock()
			}
			return
		}
		if op == ws.OpClose {
			c.mu.Lock()
			c.closeCode = statusOf(p)
			c.mu.Unlock()
			return
		}
	}
}
