package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Transports of the fan-out scenario's subscribers (Options.Transport).
const (
	// TransportWS subscribers hold a WebSocket each (the default).
	TransportWS = "ws"
	// TransportXHRStreaming subscribers are pusher-js's xhr_streaming:
	// one long POST …/xhr_streaming response each that the session's
	// frames arrive on, sends through POST …/xhr_send.
	TransportXHRStreaming = "xhr_streaming"
	// TransportXHRPolling subscribers are pusher-js's xhr_polling: they
	// loop on POST …/xhr, one answer per batch, asking again at once.
	TransportXHRPolling = "xhr_polling"
)

// xhrQuery is the query of pusher-js 8.4's receive requests.
const xhrQuery = "?protocol=7&client=js&version=8.4.0"

// maxStreamBytes is how much of one xhr_streaming response pusher-js
// reads before it aborts it and opens the next (its MAX_BUFFER_LENGTH).
const maxStreamBytes = 256 * 1024

// checkTransport validates Options.Transport.
func (o *Options) checkTransport() error {
	switch o.Transport {
	case "", TransportWS:
		return nil
	case TransportXHRStreaming, TransportXHRPolling:
	default:
		return fmt.Errorf("unknown transport %q: want %s, %s or %s", o.Transport, TransportWS, TransportXHRStreaming, TransportXHRPolling)
	}
	if o.Presence || o.Slow > 0 || o.Resume > 0 || o.Readers != "" {
		return errors.New("an xhr transport runs the fan-out scenario only: not with presence, slow subscribers, resume or readers")
	}
	return nil
}

// xhr reports whether the run's subscribers use pusher-js's HTTP
// transports.
func (b *bench) xhr() bool {
	return b.o.Transport == TransportXHRStreaming || b.o.Transport == TransportXHRPolling
}

// xhrTarget is where a run's xhr clients go.
type xhrTarget struct {
	host string      // host:port
	tls  *tls.Config // for wss, else nil
	base string      // {prefix}/pusher/app/{key}/: pusher-js's default httpPath
	// nonce starts every session name of the run: the sessions of an
	// earlier run linger on the server for a while after their client
	// went, and one of them must not be taken for a new session.
	nonce string
}

// newXHRTarget is the target of xhr clients of the server at u (the ws://
// or wss:// URL of the run).
func newXHRTarget(u *url.URL, key string) *xhrTarget {
	t := &xhrTarget{host: u.Host, base: strings.TrimSuffix(u.Path, "/") + "/pusher/app/" + url.PathEscape(key) + "/"}
	port := "80"
	if u.Scheme == "wss" {
		port = "443"
		t.tls = &tls.Config{ServerName: u.Hostname()}
	}
	if u.Port() == "" {
		t.host = net.JoinHostPort(u.Hostname(), port)
	}
	const digits = "0123456789abcdefghijklmnopqrstuvwxyz"
	for range 4 {
		t.nonce += string(digits[rand.IntN(len(digits))])
	}
	return t
}

// sessionPath is client i's session: {base}{server}/{session}/, a server
// number below 1000 and an 8-character name (longer past 36⁴ clients),
// as pusher-js picks them.
func (t *xhrTarget) sessionPath(i int) string {
	n := strconv.FormatInt(int64(i), 36)
	if len(n) < 4 {
		n = strings.Repeat("0", 4-len(n)) + n
	}
	return t.base + strconv.Itoa(i%1000) + "/" + t.nonce + n + "/"
}

// xhrClient is one subscriber over pusher-js's HTTP transports, HTTP/1.1
// written by hand: a receive connection holding its stream
// (xhr_streaming) or its polls, one after the other (xhr_polling), and a
// connection for xhr_send dialed when there is something to send and
// closed once subscribed. An idle session so holds one connection, as a
// pusher-js client does once its browser closed the idle keep-alive
// connection of its sends.
//
// Its fields are written by the goroutine that dials it, then by its
// reader goroutine only, except that close may come from any goroutine:
// cmu orders the swaps of the connections with it. The tally is read
// under its own mutex.
type xhrClient struct {
	tally
	b       *bench
	i       int
	polling bool
	path    string        // the session's path, up to the verb
	req     []byte        // the receive request
	rx      net.Conn      // the receive connection (TLS over rxTCP, or rxTCP)
	rxBuf   *bufio.Reader // rx's
	body    *bufio.Reader // the answer being read, reset for each
	read    int           // bytes of the current stream read so far
	tx      net.Conn      // the xhr_send connection, nil while there is none
	txBuf   *bufio.Reader

	cmu          sync.Mutex // guards the TCP connections against close
	rxTCP, txTCP net.Conn
	closed       bool
}

var _ subscriber = (*xhrClient)(nil)

func (x *xhrClient) results() *tally { return &x.tally }

// errClientClosed ends a client the run closed.
var errClientClosed = errors.New("client closed")

// dialXHR opens client i's session, subscribes it to its channel and
// starts its reader.
func dialXHR(ctx context.Context, b *bench, i int) (*xhrClient, error) {
	x := &xhrClient{b: b, i: i, polling: b.o.Transport == TransportXHRPolling, path: b.xt.sessionPath(i)}
	verb := "xhr_streaming"
	if x.polling {
		verb = "xhr"
	}
	x.req = fmt.Appendf(nil, "POST %s%s%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: herald-bench\r\nContent-Length: 0\r\n\r\n",
		x.path, verb, xhrQuery, b.xt.host)
	if err := x.subscribe(ctx); err != nil {
		x.close()
		return nil, err
	}
	go x.readLoop()
	return x, nil
}

// subscribe waits for connection_established (the first batch), sends
// pusher:subscribe through xhr_send and waits for subscription_succeeded.
func (x *xhrClient) subscribe(ctx context.Context) error {
	if err := x.openReceive(ctx); err != nil {
		return err
	}
	_ = x.rx.SetReadDeadline(time.Now().Add(15 * time.Second))
	if err := x.await("pusher:connection_established"); err != nil {
		return err
	}
	sub, _ := json.Marshal(map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": channelName(x.i, x.b.o.Channels)}})
	if err := x.send(ctx, sub); err != nil {
		return fmt.Errorf("xhr_send of pusher:subscribe: %w", err)
	}
	if err := x.await("pusher_internal:subscription_succeeded"); err != nil {
		return err
	}
	x.closeSend()
	return x.rx.SetReadDeadline(time.Time{})
}

// openReceive dials a receive connection and sends the first receive
// request on it; a connection the client had is reset first.
func (x *xhrClient) openReceive(ctx context.Context) error {
	tcp, nc, err := x.b.dialHTTP(ctx, x.i, x.b.xt.host, x.b.xt.tls)
	if err != nil {
		return err
	}
	x.cmu.Lock()
	if x.closed {
		x.cmu.Unlock()
		resetClose(tcp)
		return errClientClosed
	}
	if x.rxTCP != nil {
		resetClose(x.rxTCP)
	}
	x.rxTCP, x.rx = tcp, nc
	x.cmu.Unlock()
	if x.rxBuf == nil {
		x.rxBuf, x.body = bufio.NewReaderSize(nc, 4096), bufio.NewReaderSize(nil, 4096)
	} else {
		x.rxBuf.Reset(nc)
	}
	return x.request()
}

// request sends a receive request (the stream, or the next poll) and
// reads its answer's head: nextLine reads its body.
func (x *xhrClient) request() error {
	if _, err := x.rx.Write(x.req); err != nil {
		return err
	}
	resp, err := http.ReadResponse(x.rxBuf, nil)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return &RefusedError{Reason: fmt.Sprintf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(body)), Waiting: "a receive request's answer"}
	}
	if resp.Close && x.polling {
		// A bench client does not redial between polls: say so.
		return errors.New("a poll answered with Connection: close")
	}
	x.body.Reset(resp.Body)
	x.read = 0
	return nil
}

// send posts msg through xhr_send, as pusher-js does (a JSON array of one
// string), on the send connection, dialed when there is none.
func (x *xhrClient) send(ctx context.Context, msg []byte) error {
	if x.tx == nil {
		if err := x.openSend(ctx); err != nil {
			return err
		}
	}
	body, _ := json.Marshal([]string{string(msg)})
	_, err := fmt.Fprintf(x.tx, "POST %sxhr_send HTTP/1.1\r\nHost: %s\r\nUser-Agent: herald-bench\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		x.path, x.b.xt.host, len(body), body)
	if err != nil {
		x.closeSend()
		return err
	}
	resp, err := http.ReadResponse(x.txBuf, nil)
	if err != nil {
		x.closeSend()
		return err
	}
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	if resp.Close {
		x.closeSend()
	}
	if resp.StatusCode != http.StatusNoContent {
		return &RefusedError{Reason: fmt.Sprintf("xhr_send: HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(answer)), Waiting: "xhr_send's answer"}
	}
	return nil
}

// openSend dials the send connection.
func (x *xhrClient) openSend(ctx context.Context) error {
	tcp, nc, err := x.b.dialHTTP(ctx, x.i, x.b.xt.host, x.b.xt.tls)
	if err != nil {
		return err
	}
	x.cmu.Lock()
	defer x.cmu.Unlock()
	if x.closed {
		resetClose(tcp)
		return errClientClosed
	}
	x.txTCP, x.tx = tcp, nc
	x.txBuf = bufio.NewReaderSize(nc, 512)
	return nil
}

// closeSend resets the send connection, if any.
func (x *xhrClient) closeSend() {
	x.cmu.Lock()
	defer x.cmu.Unlock()
	if x.txTCP != nil {
		resetClose(x.txTCP)
	}
	x.txTCP, x.tx, x.txBuf = nil, nil, nil
}

// close resets the client's connections, which ends its reader.
func (x *xhrClient) close() {
	x.cmu.Lock()
	defer x.cmu.Unlock()
	x.closed = true
	for _, c := range []net.Conn{x.rxTCP, x.txTCP} {
		if c != nil {
			resetClose(c)
		}
	}
}
