package dashboard

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Console is the dashboard's debug console feed: the server's own log
// records (connects and disconnects with their codes, refused requests,
// webhooks, errors), teed off the logger the server runs with.
//
// Records at info and above are always kept in a small ring, so a page
// opened after a refusal still shows it; debug records (every connect and
// disconnect) are produced only while a console stream is watching, so the
// console costs nothing on a server nobody is looking at: the logger's
// Enabled stays false for debug.
//
// Concurrency: safe for concurrent use.
type Console struct {
	watching atomic.Int32 // live streams

	mu   sync.Mutex // guards ring, next, seq, subs
	ring []Entry
	next int // where the next entry goes once the ring is full
	seq  uint64
	subs map[chan Entry]struct{}
}

// Entry is one console line.
type Entry struct {
	Seq   uint64      `json:"seq"`
	Time  time.Time   `json:"time"`
	Level string      `json:"level"`
	Msg   string      `json:"msg"`
	App   string      `json:"app,omitempty"` // the "app" attribute, when the record has one
	Attrs [][2]string `json:"attrs,omitempty"`
}

// consoleRing is how many entries a new console stream starts with.
const consoleRing = 200

// NewConsole returns an empty console.
func NewConsole() *Console { return &Console{subs: map[chan Entry]struct{}{}} }

// Handler returns a slog.Handler that hands every record to base as
// before and copies it to the console.
func (c *Console) Handler(base slog.Handler) slog.Handler {
	return &teeHandler{base: base, c: c}
}

// subscribe starts a stream: the recent entries, and a channel of the
// next ones (dropped when the reader falls more than size behind).
func (c *Console) subscribe(size int) (recent []Entry, ch chan Entry) {
	ch = make(chan Entry, size)
	c.mu.Lock()
	defer c.mu.Unlock()
	recent = append(slices.Clone(c.ring[c.next:]), c.ring[:c.next]...)
	c.subs[ch] = struct{}{}
	c.watching.Add(1)
	return recent, ch
}

func (c *Console) unsubscribe(ch chan Entry) {
	c.mu.Lock()
	delete(c.subs, ch)
	c.watching.Add(-1)
	c.mu.Unlock()
}

func (c *Console) add(e Entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	e.Seq = c.seq
	if len(c.ring) < consoleRing {
		c.ring = append(c.ring, e)
	} else {
		c.ring[c.next] = e
		c.next = (c.next + 1) % consoleRing
	}
	for ch := range c.subs {
		select {
		case ch <- e:
		default: // a stalled page loses lines, never the logger's caller
		}
	}
}

// teeHandler is the logger's handler with the console beside it. attrs
// are the attributes added with WithAttrs (kept as values, formatted only
// when a record is copied), groups the open groups.
type teeHandler struct {
	base   slog.Handler
	c      *Console
	attrs  []slog.Attr
	groups string // "a.b." for WithGroup("a").WithGroup("b")
}

func (h *teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.base.Enabled(ctx, l) || l >= slog.LevelInfo || h.c.watching.Load() > 0
}

func (h *teeHandler) Handle(ctx context.Context, r slog.Record) error {
	var err error
	if h.base.Enabled(ctx, r.Level) {
		err = h.base.Handle(ctx, r)
	}
	if r.Level >= slog.LevelInfo || h.c.watching.Load() > 0 {
		h.c.add(h.entry(r))
	}
	return err
}

func (h *teeHandler) entry(r slog.Record) Entry {
	e := Entry{Time: r.Time, Level: r.Level.String(), Msg: r.Message}
	add := func(prefix string, a slog.Attr) {
		a.Value = a.Value.Resolve()
		if a.Key == "app" && prefix == "" {
			e.App = a.Value.String()
		}
		e.Attrs = append(e.Attrs, [2]string{prefix + a.Key, fmt.Sprint(a.Value.Any())})
	}
	for _, a := range h.attrs {
		add("", a)
	}
	r.Attrs(func(a slog.Attr) bool { add(h.groups, a); return true })
	return e
}

func (h *teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	if len(as) == 0 {
		return h
	}
	n := *h
	n.base = h.base.WithAttrs(as)
	if h.groups == "" {
		n.attrs = append(slices.Clip(h.attrs), as...)
	} else {
		for _, a := range as {
			n.attrs = append(slices.Clip(n.attrs), slog.Attr{Key: h.groups + a.Key, Value: a.Value})
		}
	}
	return &n
}

func (h *teeHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	n := *h
	n.base = h.base.WithGroup(name)
	n.groups = h.groups + name + "."
	return &n
}
