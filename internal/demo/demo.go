// Package demo is the backend of `herald demo`: a small helpdesk and a
// marketplace seller dashboard that publish to Herald the way a Laravel
// app does, and the pages that show the events arrive live.
//
// The backend reaches Herald over HTTP only, never in process: ticket
// creations go through POST /broadcast with the app's bearer token (what
// a listener posting {type, data} does), status and assignee changes,
// orders and notifications through the Pusher HTTP API, signed as
// Laravel's broadcasters sign. The helpdesk page ("All tickets", GET /)
// uses herald.js; the dashboard (GET /marketplace) uses stock Laravel
// Echo and pusher-js with the herald-echo plugin, and authorizes its
// private channel at /broadcasting/auth like Laravel, CSRF token included.
//
// Routes:
//
//	GET  /                            the helpdesk page
//	GET  /marketplace                 the seller dashboard
//	GET  /static/…                    CSS, scripts, vendored Echo and pusher-js
//	GET  /api/tickets                 every ticket, and the statuses, priorities and agents
//	POST /api/tickets                 create a ticket: ticket_created via /broadcast
//	POST /api/tickets/{id}/status     ticket_status_changed via the HTTP API
//	POST /api/tickets/{id}/assignee   ticket_assigned via the HTTP API
//	GET  /api/orders                  every order
//	POST /api/orders                  a made-up order: order.created via the HTTP API
//	POST /api/notifications           a notification to the demo user via the HTTP API
//	POST /broadcasting/auth           Laravel-like channel authorization
//
// Every POST needs the page's CSRF token in X-CSRF-TOKEN, else 419, as in
// Laravel. Everything lives in memory and is lost at exit.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"
)

// The channels and events the demo publishes, as a Laravel app would name
// them.
const (
	// TicketsChannel carries the helpdesk's events: the app's default
	// broadcast channel, which herald.js's on(type) subscribes to.
	TicketsChannel = "broadcast"
	// OrdersChannel is the seller dashboard's public channel.
	OrdersChannel = "company.1.marketplace.2.orders"
	// UserID is the signed-in demo user; UserChannel its private channel
	// (Echo's private("App.Models.User.1")).
	UserID      = 1
	UserChannel = "private-App.Models.User.1"
	// NotificationEvent is the event Laravel broadcasts a notification as
	// (Echo's .notification() listens to it).
	NotificationEvent = `Illuminate\Notifications\Events\BroadcastNotificationCreated`
)

// Options configure the backend.
type Options struct {
	// HeraldURL is Herald's base URL, e.g. "http://127.0.0.1:8080" (with
	// server.path, if any): the backend publishes there, and the pages load
	// herald.js from there and connect to it.
	HeraldURL string
	// The app the demo publishes for: credentials and broadcast token.
	AppID, Key, Secret, BroadcastToken string
	// Log gets a line per failed publish; nil discards.
	Log *slog.Logger
	// Client makes the requests to Herald; nil means a default client.
	Client *http.Client
}

// Handler is the demo backend. Safe for concurrent use.
type Handler struct {
	opts  Options
	store *store
	pub   *publisher
	log   *slog.Logger
	csrf  string // the CSRF token every page carries
	run   string // prefixes idempotency keys: unique to this process
	mux   *http.ServeMux

	// writeMu serializes each change with its publish, so that events
	// leave in the order the changes were made (the pages also keep the
	// highest ticket version, but an order list is shown as it arrives).
	writeMu sync.Mutex
}

// New builds the backend.
func New(opts Options) (*Handler, error) {
	base, err := url.Parse(opts.HeraldURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("demo: Herald URL %q: want http(s)://host:port", opts.HeraldURL)
	}
	if opts.AppID == "" || opts.Key == "" || opts.Secret == "" || opts.BroadcastToken == "" {
		return nil, errors.New("demo: the app id, key, secret and broadcast token are all required")
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	client := opts.Client
	if client == nil {
		client = &http.Client{}
	}
	h := &Handler{
		opts:  opts,
		store: newStore(time.Now),
		pub: &publisher{base: base, appID: opts.AppID, key: opts.Key, secret: opts.Secret, token: opts.BroadcastToken,
			client: client, now: time.Now, retryWait: 200 * time.Millisecond},
		log:  log,
		csrf: rand.Text(),
		run:  rand.Text()[:8],
	}
	h.routes()
	return h, nil
}

func (h *Handler) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /{$}", h.page("helpdesk.html"))
	m.HandleFunc("GET /marketplace", h.page("marketplace.html"))
	m.Handle("GET /static/", http.StripPrefix("/static", staticFiles()))
	m.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/static/favicon.svg", http.StatusMovedPermanently)
	})
	m.HandleFunc("GET /api/tickets", h.listTickets)
	m.HandleFunc("POST /api/tickets", h.csrfOnly(h.createTicket))
	m.HandleFunc("POST /api/tickets/{id}/status", h.csrfOnly(h.setStatus))
	m.HandleFunc("POST /api/tickets/{id}/assignee", h.csrfOnly(h.setAssignee))
	m.HandleFunc("GET /api/orders", h.listOrders)
	m.HandleFunc("POST /api/orders", h.csrfOnly(h.createOrder))
	m.HandleFunc("POST /api/notifications", h.csrfOnly(h.notify))
	m.HandleFunc("POST /broadcasting/auth", h.csrfOnly(h.authorize))
	h.mux = m
}

// ServeHTTP routes a request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "same-origin")
	h.mux.ServeHTTP(w, r)
}

// CSRFToken is the token the pages carry (for tests).
func (h *Handler) CSRFToken() string { return h.csrf }

// ---- tickets

func (h *Handler) listTickets(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"tickets": h.store.Tickets(), "statuses": statuses, "priorities": priorities, "agents": agents,
	})
}

// createTicket stores the ticket and announces it through /broadcast.
func (h *Handler) createTicket(w http.ResponseWriter, r *http.Request) {
	var in struct {
		TicketInput
		By string `json:"by"`
	}
	if !decode(w, r, &in) {
		return
	}
	clean, err := in.TicketInput.clean()
	if err != nil {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"message": err.Error()})
		return
	}
	h.writeMu.Lock()
	defer h.writeMu.Unlock()
	t := h.store.CreateTicket(clean)
	err = h.pub.broadcast(context.WithoutCancel(r.Context()), TicketsChannel, "ticket_created",
		map[string]any{"ticket": t, "by": agent(in.By), "socket_id": socketOf(r)}, h.key("ticket", t.ID, t.Version))
	h.answer(w, http.StatusCreated, "ticket", t, err)
}

// setStatus changes a ticket's status and announces it through the HTTP API.
func (h *Handler) setStatus(w http.ResponseWriter, r *http.Request) {
	var in struct{ Status, By string }
	if !decode(w, r, &in) {
		return
	}
	if !slices.Contains(statuses, in.Status) {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"message": "status: one of new, open, pending, resolved"})
		return
	}
	h.changeTicket(w, r, agent(in.By), func(t *Ticket) { t.Status = in.Status },
		func(before, after Ticket) (string, map[string]any) {
			return "ticket_status_changed", map[string]any{"status": after.Status, "previous_status": before.Status}
		})
}

// setAssignee changes a ticket's assignee ("" unassigns) and announces it
// through the HTTP API.
func (h *Handler) setAssignee(w http.ResponseWriter, r *http.Request) {
	var in struct{ Assignee, By string }
	if !decode(w, r, &in) {
		return
	}
	if in.Assignee != "" && !slices.Contains(agents, in.Assignee) {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"message": "assignee: one of the agents, or empty"})
		return
	}
	h.changeTicket(w, r, agent(in.By), func(t *Ticket) { t.Assignee = in.Assignee },
		func(before, after Ticket) (string, map[string]any) {
			return "ticket_assigned", map[string]any{"assignee": after.Assignee, "previous_assignee": before.Assignee}
		})
}

// changeTicket applies change to the ticket of the path's id and, unless
// that left it as it was, publishes the event describe names, with
// describe's fields plus the ticket's id, the ticket and who changed it.
func (h *Handler) changeTicket(w http.ResponseWriter, r *http.Request, by string, change func(*Ticket),
	describe func(before, after Ticket) (string, map[string]any)) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "no such ticket"})
		return
	}
	h.writeMu.Lock()
	defer h.writeMu.Unlock()
	before, t, ok := h.store.UpdateTicket(id, func(t *Ticket) bool {
		was := *t
		change(t)
		return *t != was
	})
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "no such ticket"})
		return
	}
	if t.Version == before.Version { // a no-op: nothing to announce
		h.answer(w, http.StatusOK, "ticket", t, nil)
		return
	}
	event, data := describe(before, t)
	data["id"], data["ticket"], data["by"], data["socket_id"] = t.ID, t, by, socketOf(r)
	err = h.pub.trigger(context.WithoutCancel(r.Context()), TicketsChannel, event, data, h.key("ticket", t.ID, t.Version))
	h.answer(w, http.StatusOK, "ticket", t, err)
}

// socketOf is the X-Socket-ID of the page that made a change (Laravel's
// axios setup sends Echo's socket id so): the events carry it back as
// "socket_id", so that the page can tell its own changes from the others'
// and notify only of the others'. (Laravel's toOthers() would keep an
// HTTP API event from that socket instead; /broadcast has no such option.)
func socketOf(r *http.Request) string {
	if id := r.Header.Get("X-Socket-ID"); socketIDPattern.MatchString(id) {
		return id
	}
	return ""
}

// agent is name when it is one of the demo's agents, else "".
func agent(name string) string {
	if slices.Contains(agents, name) {
		return name
	}
	return ""
}

// ---- orders and notifications

func (h *Handler) listOrders(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"orders": h.store.Orders()})
}

// createOrder makes up an order and publishes order.created on the orders
// channel, as Laravel's OrderCreated event with broadcastAs() would.
func (h *Handler) createOrder(w http.ResponseWriter, r *http.Request) {
	h.writeMu.Lock()
	defer h.writeMu.Unlock()
	o := h.store.CreateOrder()
	err := h.pub.trigger(context.WithoutCancel(r.Context()), OrdersChannel, "order.created", o, h.key("order", o.ID, 1))
	h.answer(w, http.StatusCreated, "order", o, err)
}

var notifications = []struct{ kind, title, body string }{
	{`App\Notifications\StockRunningLow`, "Stock running low", "Wireless mouse: 3 left in the Berlin warehouse."},
	{`App\Notifications\SyncFinished`, "Marketplace sync finished", "128 products updated, 2 prices changed."},
	{`App\Notifications\PayoutSent`, "Payout sent", "EUR 1,284.50 is on its way to your bank."},
}

// notify sends the demo user a notification, shaped as Laravel's
// BroadcastNotificationCreated: the notification's data plus id and type.
func (h *Handler) notify(w http.ResponseWriter, r *http.Request) {
	id := rand.Text()
	n := notifications[int(id[0])%len(notifications)]
	data := map[string]any{"id": id, "type": n.kind, "title": n.title, "body": n.body, "created_at": time.Now().UTC()}
	err := h.pub.trigger(context.WithoutCancel(r.Context()), UserChannel, NotificationEvent, data, h.run+"-notification-"+id)
	h.answer(w, http.StatusCreated, "notification", data, err)
}

// ---- answers

// key is the idempotency key of version v of a record: a retry of the
// same publish reaches browsers once.
func (h *Handler) key(kind string, id, v int) string {
	return fmt.Sprintf("%s-%s-%d-v%d", h.run, kind, id, v)
}

// answer writes {name: v} with status, or, when the publish failed, 502
// with the message and v (the change is saved: a queued Laravel listener
// would retry; the page refetches).
func (h *Handler) answer(w http.ResponseWriter, status int, name string, v any, pubErr error) {
	if pubErr != nil {
		h.log.Warn("demo: publish failed", "err", pubErr)
		writeJSON(w, http.StatusBadGateway, map[string]any{"message": "saved, but Herald did not take the event: " + pubErr.Error(), name: v})
		return
	}
	writeJSON(w, status, map[string]any{name: v})
}

// maxBody bounds a request body: the forms are a few hundred bytes.
const maxBody = 16 << 10

// decode reads a JSON body into v, answering 400 or 413 itself when it
// cannot.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody)).Decode(v)
	var tooBig *http.MaxBytesError
	switch {
	case err == nil:
		return true
	case errors.As(err, &tooBig):
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"message": "body too large"})
	default:
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "invalid JSON body: " + err.Error()})
	}
	return false
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
