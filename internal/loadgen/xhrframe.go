package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// The framing of pusher-js's HTTP transports (SockJS's), one frame a
// line: "o" opens the session, "a" carries a JSON array of messages, each
// a Pusher frame in a JSON string, "h" is a heartbeat and "c" closes the
// session with [code, "reason"]. A bench event is recognized, and its
// data read, without unquoting its string: these markers are the plain
// ones (conn.go) as they appear quoted.
var (
	quotedBenchPrefix = []byte(`{\"event\":\"bench\"`)
	quotedDataMarker  = []byte(`\"data\":\"`)
)

// readLoop reads the session until its connection fails or is closed, or
// the server closes the session.
func (x *xhrClient) readLoop() {
	for {
		line, err := x.nextLine()
		if err != nil {
			return
		}
		if _, err := x.handleLine(line, ""); err != nil {
			return
		}
	}
}

// await reads the session until a message with event want arrives.
func (x *xhrClient) await(want string) error {
	for {
		line, err := x.nextLine()
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", want, err)
		}
		if found, err := x.handleLine(line, want); err != nil || found {
			return err
		}
	}
}

// nextLine returns the session's next line without its newline, valid
// until the next call. At the end of a poll's answer it sends the next
// poll at once; a stream read past maxStreamBytes is aborted, once what
// arrived of it is read, and the next one opened: both as pusher-js does.
func (x *xhrClient) nextLine() ([]byte, error) {
	for {
		if !x.polling && x.read > maxStreamBytes && x.body.Buffered() == 0 {
			if err := x.openReceive(context.Background()); err != nil {
				return nil, err
			}
		}
		line, err := readLine(x.body)
		switch {
		case err == nil:
			x.read += len(line) + 1
			return line, nil
		case errors.Is(err, io.EOF) && x.polling:
			if err := x.request(); err != nil {
				return nil, err
			}
		case errors.Is(err, io.EOF):
			return nil, errors.New("the server ended the stream")
		default:
			return nil, err
		}
	}
}

// handleLine handles one line: the messages of an "a" line (counting the
// bench events, answering pings), the code of a "c" line. It reports
// whether a message with event want arrived (want "": none is waited
// for); a "c" line ends the session with an error, and so does a
// pusher:error while waiting.
func (x *xhrClient) handleLine(line []byte, want string) (found bool, err error) {
	if len(line) == 0 {
		return false, nil
	}
	switch line[0] {
	case 'a':
		return x.handleBatch(line, want)
	case 'c':
		code, reason := parseClose(line)
		x.mu.Lock()
		x.closeCode = code
		x.mu.Unlock()
		return false, &RefusedError{Reason: fmt.Sprintf("closed with %d %s", code, reason), Waiting: want}
	}
	return false, nil // "o", "h"
}

// handleBatch handles the messages of an "a" line (see handleLine).
func (x *xhrClient) handleBatch(line []byte, want string) (found bool, err error) {
	now := time.Now().UnixNano()
	events := 0
	err = eachMessage(line, func(m []byte) error {
		if bytes.HasPrefix(m, quotedBenchPrefix) {
			if i := bytes.Index(m, quotedDataMarker); i >= 0 {
				x.deliver(x.b, now, m[i+len(quotedDataMarker):])
				events++
			}
			return nil
		}
		f, err := unquote(m)
		if err != nil {
			return err
		}
		ok, err := x.control(f, want)
		found = found || ok
		return err
	})
	if events > 0 {
		x.b.batches.Add(1)
	}
	return found, err
}

// control handles a message other than a bench event (f: the Pusher
// frame): it reports whether it is the one awaited, answers a
// pusher:ping, and turns an error into a RefusedError while waiting.
func (x *xhrClient) control(f []byte, want string) (bool, error) {
	switch {
	case want != "" && bytes.Contains(f, []byte(`"event":"`+want+`"`)):
		return true, nil
	case bytes.HasPrefix(f, pingPrefix):
		if err := x.send(context.Background(), []byte(`{"event":"pusher:pong","data":{}}`)); err != nil {
			x.b.fail(fmt.Errorf("xhr_send of pusher:pong: %w", err)) // not fatal: the server may ping again
		}
	case want != "" && (bytes.Contains(f, []byte(`"event":"pusher:error"`)) || bytes.Contains(f, []byte(`"event":"pusher:subscription_error"`))):
		return false, &RefusedError{Reason: errorText(f), Waiting: want}
	}
	return false, nil
}

// errBatch is an "a" line that is not a JSON array of strings.
var errBatch = errors.New(`an "a" line is not a JSON array of strings`)

// eachMessage calls f with each message of an "a" line, as it is in the
// line: a JSON string's content, quoted, without its quotes.
func eachMessage(line []byte, f func(m []byte) error) error {
	if len(line) < 3 || line[1] != '[' || line[len(line)-1] != ']' {
		return errBatch
	}
	rest := line[2 : len(line)-1]
	for len(rest) > 0 {
		end := closingQuote(rest)
		if end < 0 {
			return errBatch
		}
		if err := f(rest[1:end]); err != nil {
			return err
		}
		rest = rest[end+1:]
		if len(rest) > 0 {
			if rest[0] != ',' {
				return errBatch
			}
			rest = rest[1:]
		}
	}
	return nil
}

// closingQuote is the index of the quote that ends the JSON string s
// starts with; -1 when s does not start with a whole string.
func closingQuote(s []byte) int {
	if len(s) == 0 || s[0] != '"' {
		return -1
	}
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return -1
}

// unquote returns the message m of an "a" line (see eachMessage) as the
// Pusher frame it carries.
func unquote(m []byte) ([]byte, error) {
	q := make([]byte, 0, len(m)+2)
	q = append(append(append(q, '"'), m...), '"')
	var s string
	if err := json.Unmarshal(q, &s); err != nil {
		return nil, errBatch
	}
	return []byte(s), nil
}

// parseClose reads a "c" line: c[code,"reason"].
func parseClose(line []byte) (code int, reason string) {
	var v []json.RawMessage
	if json.Unmarshal(line[1:], &v) != nil || len(v) != 2 {
		return 0, string(line)
	}
	_ = json.Unmarshal(v[0], &code)
	_ = json.Unmarshal(v[1], &reason)
	return code, reason
}
