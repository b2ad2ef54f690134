package probe

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// wsClient is a minimal Pusher WebSocket client: it answers pings and
// hands out decoded frames.
type wsClient struct {
	conn      net.Conn
	br        *bufio.Reader
	socketID  string
	closeCode int
}

type frame struct {
	Event   string          `json:"event"`
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
}

func (f frame) dataString() string {
	var s string
	if json.Unmarshal(f.Data, &s) == nil {
		return s
	}
	return string(f.Data)
}

// closedError is the server closing the socket with a code.
type closedError struct {
	Code   int
	Reason string
}

func (e *closedError) Error() string {
	return fmt.Sprintf("closed by the server with %d: %s", e.Code, e.Reason)
}

// protocolError is a pusher:error the server sent.
type protocolError struct {
	Code    int
	Message string
}

func (e *protocolError) Error() string { return fmt.Sprintf("pusher:error %d: %s", e.Code, e.Message) }

func dialWS(ctx context.Context, url string) (*wsClient, error) {
	d := ws.Dialer{Timeout: 10 * time.Second}
	conn, br, _, err := d.Dial(ctx, url)
	if err != nil {
		return nil, err
	}
	if br == nil {
		br = bufio.NewReader(conn)
	}
	return &wsClient{conn: conn, br: br}, nil
}

func (c *wsClient) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return wsutil.WriteClientText(c.conn, b)
}

// next returns the next data frame before deadline.
func (c *wsClient) next(deadline time.Time) (frame, error) {
	_ = c.conn.SetReadDeadline(deadline)
	for {
		h, err := ws.ReadHeader(c.br)
		if err != nil {
			return frame{}, err
		}
		p := make([]byte, h.Length)
		if _, err := io.ReadFull(c.br, p); err != nil {
			return frame{}, err
		}
		switch h.OpCode {
		case ws.OpClose:
			ce := &closedError{}
			if len(p) >= 2 {
				ce.Code, ce.Reason = int(p[0])<<8|int(p[1]), string(p[2:])
			}
			c.closeCode = ce.Code
			return frame{}, ce
		case ws.OpPing:
			_ = wsutil.WriteClientMessage(c.conn, ws.OpPong, p)
			continue
		case ws.OpText, ws.OpBinary:
		default:
			continue
		}
		var f frame
		if err := json.Unmarshal(p, &f); err != nil {
			return frame{}, fmt.Errorf("server sent a frame that is not JSON: %q", truncate(string(p)))
		}
		if f.Event == "pusher:ping" {
			_ = c.send(map[string]any{"event": "pusher:pong", "data": map[string]any{}})
			continue
		}
		return f, nil
	}
}

// await reads until a frame matching want arrives; a pusher:error is
// returned as an error.
func (c *wsClient) await(deadline time.Time, want func(frame) bool) (frame, error) {
	for {
		f, err := c.next(deadline)
		if err != nil {
			return frame{}, err
		}
		if want(f) {
			return f, nil
		}
		if f.Event == "pusher:error" {
			var e struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			}
			_ = json.Unmarshal([]byte(f.dataString()), &e)
			return frame{}, &protocolError{Code: e.Code, Message: e.Message}
		}
	}
}

func (c *wsClient) close() { _ = c.conn.Close() }

func truncate(s string) string {
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}

func jsonUnmarshalString(s string, v any) error { return json.Unmarshal([]byte(s), v) }
