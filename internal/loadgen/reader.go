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
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// reader is one HTTP reader of a channel's history, on its own TCP
// connection (HTTP/1.1 written by hand: one connection and one goroutine
// per reader, nothing pooled). Its fields are written by the goroutine
// that opens it, then only by its own goroutine (loop); the run reads
// them after that goroutine ended, except ended (and err once ended is
// set).
type reader struct {
	run *readerRun
	ch  int      // channel index
	tcp net.Conn // the TCP connection, closed to stop the reader
	nc  net.Conn // tcp, or TLS over it
	br  *bufio.Reader
	sse *bufio.Reader // an SSE stream's body

	epoch string // "" until the first event when the channel had no history
	start uint64 // the channel's offset when the reader began
	at    string // a long-poll's next since, "epoch:offset"

	seen      []bool // seen[k]: offset start+1+k arrived
	got       int64  // distinct events received
	high      uint64 // the highest offset received
	data      []byte // an SSE event's data, reused
	latencies []time.Duration
	answers   int64 // long-poll answers with events
	dups      int64
	disorder  int64
	gone      int64 // 410 answers, herald:resume_failed events

	err   error       // why the reader stopped before the run ended
	ended atomic.Bool // set (after err) when it did
}

// pollAnswer is a long-poll's JSON answer (or error).
type pollAnswer struct {
	Epoch  string `json:"epoch"`
	Offset uint64 `json:"offset"`
	Events []struct {
		Event  string          `json:"event"`
		Data   json.RawMessage `json:"data"`
		Epoch  string          `json:"epoch"`
		Offset uint64          `json:"offset"`
	} `json:"events"`
	Error  string `json:"error"`
	status int
}

// open connects reader i and waits until it is waiting: a long-poll
// learns the channel's position and sends its first held request; an SSE
// stream reads its start position.
func (r *reader) open(ctx context.Context, i int) error {
	tcp, nc, err := r.run.b.dialHTTP(ctx, i, r.run.host, r.run.tls)
	if err != nil {
		return err
	}
	r.tcp, r.nc = tcp, nc
	r.br = bufio.NewReaderSize(r.nc, 4096)
	_ = r.nc.SetDeadline(time.Now().Add(15 * time.Second))
	if r.run.kind == ReadersSSE {
		err = r.openStream()
	} else {
		err = r.openPoll()
	}
	if err != nil {
		resetClose(tcp)
		return err
	}
	return r.nc.SetDeadline(time.Time{})
}

// loop reads until the run ends or the reader fails.
func (r *reader) loop() {
	defer r.run.wg.Done()
	var err error
	if r.run.kind == ReadersSSE {
		err = r.readStream()
	} else {
		err = r.longPoll()
	}
	if !r.run.stopping.Load() {
		r.err = fmt.Errorf("%s reader of %s: %w", r.run.kind, channelName(r.ch, r.run.b.o.Channels), err)
		r.run.b.fail(r.err)
		r.ended.Store(true)
	}
	resetClose(r.tcp)
}

// send writes GET …/events: a poll (no since), a long-poll (since, and
// wait), or an SSE stream (sse).
func (r *reader) send(since string, sse bool) error {
	q, accept := "", "application/json"
	if since != "" {
		q = "?since=" + url.QueryEscape(since) + "&wait=" + strconv.Itoa(longPollWait)
	}
	if sse {
		accept = "text/event-stream"
	}
	ch := url.PathEscape(channelName(r.ch, r.run.b.o.Channels))
	_, err := fmt.Fprintf(r.nc, "GET %s%s/events%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: herald-bench\r\nAccept: %s\r\n\r\n",
		r.run.path, ch, q, r.run.host, accept)
	return err
}

// receive reads a poll's answer.
func (r *reader) receive() (pollAnswer, error) {
	var ans pollAnswer
	resp, err := http.ReadResponse(r.br, nil)
	if err != nil {
		return ans, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return ans, err
	}
	if err := json.Unmarshal(body, &ans); err != nil {
		return ans, fmt.Errorf("status %d, not JSON: %.200s", resp.StatusCode, body)
	}
	if resp.Close {
		// Answered, but the server will not take another request here:
		// a bench reader does not reconnect, so say so.
		return ans, fmt.Errorf("status %d with Connection: close", resp.StatusCode)
	}
	ans.status = resp.StatusCode
	return ans, nil
}

// openPoll learns the channel's position (a poll without since) and sends
// the first long-poll from it.
func (r *reader) openPoll() error {
	if err := r.send("", false); err != nil {
		return err
	}
	ans, err := r.receive()
	if err != nil {
		return fmt.Errorf("polling the position: %w", err)
	}
	if ans.status != http.StatusOK {
		return &RefusedError{Reason: fmt.Sprintf("HTTP %d: %s", ans.status, ans.Error), Waiting: "the channel's position"}
	}
	r.epoch, r.start = ans.Epoch, ans.Offset
	r.at = position(ans.Epoch, ans.Offset)
	return r.send(r.at, false)
}

// longPoll reads each long-poll's answer and asks again from the
// position it gave, until the connection fails or is closed.
func (r *reader) longPoll() error {
	for {
		_ = r.nc.SetReadDeadline(time.Now().Add((longPollWait + 15) * time.Second))
		ans, err := r.receive()
		if err != nil {
			return err
		}
		now := time.Now()
		switch ans.status {
		case http.StatusOK:
			if len(ans.Events) > 0 {
				r.answers++
			}
			for _, e := range ans.Events {
				if e.Event == "bench" {
					r.deliver(now, e.Epoch, e.Offset, e.Data)
				}
			}
		case http.StatusGone:
			r.gone++
		default:
			return &RefusedError{Reason: fmt.Sprintf("HTTP %d: %s", ans.status, ans.Error), Waiting: "a held long-poll"}
		}
		r.at = position(ans.Epoch, ans.Offset)
		if err := r.send(r.at, false); err != nil {
			return err
		}
	}
}

// openStream starts the SSE stream from now and reads its start position:
// the herald:position event the server sends first (an id-only block
// from servers before it).
func (r *reader) openStream() error {
	if err := r.send("", true); err != nil {
		return err
	}
	resp, err := http.ReadResponse(r.br, nil)
	if err != nil {
		return fmt.Errorf("opening the stream: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var ans pollAnswer
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		_ = json.Unmarshal(body, &ans)
		return &RefusedError{Reason: fmt.Sprintf("HTTP %d: %s", resp.StatusCode, ans.Error), Waiting: "the event stream"}
	}
	r.sse = bufio.NewReaderSize(resp.Body, 4096)
	for {
		blk, err := r.nextBlock()
		if err != nil {
			return fmt.Errorf("waiting for the stream's position: %w", err)
		}
		if blk.id == "" || blk.event != "" && blk.event != "herald:position" {
			continue // the retry block
		}
		epoch, offset, ok := parsePosition(blk.id)
		if !ok {
			return fmt.Errorf("stream position %q is not epoch:offset", blk.id)
		}
		r.epoch, r.start = epoch, offset
		return nil
	}
}

// readStream reads the SSE stream's events until it fails or is closed.
func (r *reader) readStream() error {
	for {
		blk, err := r.nextBlock()
		if err != nil {
			return err
		}
		switch blk.event {
		case "bench":
			epoch, offset, ok := parsePosition(blk.id)
			if !ok {
				return fmt.Errorf("event id %q is not epoch:offset", blk.id)
			}
			r.deliver(time.Now(), epoch, offset, blk.data)
		case "herald:resume_failed":
			r.gone++
		}
	}
}

// sseBlock is the fields of one SSE block (up to a blank line).
type sseBlock struct {
	id, event string
	data      []byte // data lines joined with "\n"; valid until the next block
}

// nextBlock reads up to the next blank line and returns the block it
// ends; comments (the heartbeat) and empty blocks are skipped.
func (r *reader) nextBlock() (sseBlock, error) {
	var blk sseBlock
	fields, hasData := 0, false
	r.data = r.data[:0]
	for {
		line, err := r.line()
		if err != nil {
			return blk, err
		}
		switch {
		case len(line) == 0 && fields > 0:
			blk.data = r.data
			return blk, nil
		case len(line) == 0 || line[0] == ':':
			continue
		}
		fields++
		name, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(name) {
		case "id":
			blk.id = string(value)
		case "event":
			blk.event = string(value)
		case "data":
			if hasData {
				r.data = append(r.data, '\n')
			}
			r.data, hasData = append(r.data, value...), true
		}
	}
}

// line reads one line of the stream without its end of line.
func (r *reader) line() ([]byte, error) { return readLine(r.sse) }

// readLine reads one line from br without its end of line, valid until
// the next read; a line longer than br's buffer is copied.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) { // longer than the buffer
		long := append([]byte(nil), line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			line, err = br.ReadSlice('\n')
			long = append(long, line...)
		}
		line = long
	}
	if err != nil {
		return nil, err
	}
	line = bytes.TrimSuffix(line, []byte("\n"))
	return bytes.TrimSuffix(line, []byte("\r")), nil
}

// deliver counts the event at epoch:offset, with data "seq sendtime pad"
// (a JSON string's quotes included or not), received at now.
func (r *reader) deliver(now time.Time, epoch string, offset uint64, data []byte) {
	if epoch != r.epoch {
		if r.epoch != "" || r.start != 0 {
			r.gone++ // the channel's history started over: not this run's event
			return
		}
		r.epoch = epoch // the channel's first events: its epoch starts now
	}
	if !r.record(offset) {
		return
	}
	r.run.b.delivered.Add(1)
	if sent, ok := parseInt(secondField(data)); ok {
		r.latencies = append(r.latencies, now.Sub(time.Unix(0, sent)))
	}
}

// maxTracked bounds the offsets a reader tracks past its start.
const maxTracked = 1 << 20

// record notes the arrival of offset and reports whether it is an event
// not seen before. An offset at or before the start, or seen already, is
// a duplicate; one lower than an offset already seen is out of order.
func (r *reader) record(offset uint64) bool {
	if offset <= r.start || offset-r.start > maxTracked {
		r.dups++
		return false
	}
	k := int(offset - r.start - 1)
	if k >= len(r.seen) {
		r.seen = append(r.seen, make([]bool, k+1-len(r.seen))...)
	}
	if r.seen[k] {
		r.dups++
		return false
	}
	r.seen[k] = true
	r.got++
	if offset < r.high {
		r.disorder++
	}
	r.high = max(r.high, offset)
	return true
}

// position is a position's text form, "epoch:offset".
func position(epoch string, offset uint64) string {
	return epoch + ":" + strconv.FormatUint(offset, 10)
}

// parsePosition parses "epoch:offset" (an SSE id).
func parsePosition(s string) (string, uint64, bool) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return "", 0, false
	}
	n, err := strconv.ParseUint(s[i+1:], 10, 64)
	return s[:i], n, err == nil
}

// dialHTTP opens client i's connection to host (from its share of the
// loopback source addresses), with TLS over it when cfg is set: tcp is
// what resetClose closes, nc what HTTP is spoken on.
func (b *bench) dialHTTP(ctx context.Context, i int, host string, cfg *tls.Config) (tcp, nc net.Conn, err error) {
	tcp, err = b.dialTCP(ctx, i, host)
	if err != nil || cfg == nil {
		return tcp, tcp, err
	}
	tc := tls.Client(tcp, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		resetClose(tcp)
		return nil, nil, err
	}
	return tcp, tc, nil
}

// resetClose closes a TCP connection with a reset (SO_LINGER 0): no
// TIME_WAIT is left behind to slow down and then exhaust the next run's
// connects.
func resetClose(nc net.Conn) {
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = nc.Close()
}
