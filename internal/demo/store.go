package demo

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// The helpdesk's vocabulary. The pages read it from GET /api/tickets.
var (
	statuses   = []string{"new", "open", "pending", "resolved"}
	priorities = []string{"low", "normal", "high", "urgent"}
	agents     = []string{"Alex Kim", "Maria Lopez", "Sam Okafor", "Priya Shah"}
)

// Limits that keep a demo left running from growing without bound: past
// them the oldest records are dropped.
const (
	maxTickets = 500
	maxOrders  = 1000
)

// Ticket is one helpdesk ticket. Version grows by one at every change, so
// a page that gets the same ticket from an event and from an answer keeps
// the newer one whatever the order they arrive in.
type Ticket struct {
	ID        int       `json:"id"`
	Subject   string    `json:"subject"`
	Requester string    `json:"requester"`
	Priority  string    `json:"priority"`
	Status    string    `json:"status"`
	Assignee  string    `json:"assignee"` // "" when unassigned
	Version   int       `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Order is one marketplace order.
type Order struct {
	ID        int       `json:"id"`
	Number    string    `json:"number"`
	Customer  string    `json:"customer"`
	Product   string    `json:"product"`
	Quantity  int       `json:"quantity"`
	Total     string    `json:"total"` // "49.90", in Currency
	Currency  string    `json:"currency"`
	CreatedAt time.Time `json:"created_at"`
}

// store is the demo's database: tickets and orders in memory. Safe for
// concurrent use.
type store struct {
	mu      sync.Mutex
	tickets []Ticket // by id, ascending
	orders  []Order  // by id, ascending
	nextT   int
	nextO   int
	now     func() time.Time
}

func newStore(now func() time.Time) *store {
	s := &store{nextT: 1, nextO: 1, now: now}
	t0 := now()
	seed := []struct {
		subject, requester, priority, status, assignee string
		age                                            time.Duration
	}{
		{"Cannot log in after the password reset", "Olga Ivanova", "high", "open", "Maria Lopez", 3 * time.Hour},
		{"Invoice #4821 shows the wrong VAT rate", "Daniel Novak", "normal", "pending", "Alex Kim", 95 * time.Minute},
		{"Export to CSV times out for large reports", "Lena Fischer", "normal", "new", "", 40 * time.Minute},
		{"Printer on the 3rd floor is on fire", "Tom Baker", "urgent", "new", "", 12 * time.Minute},
	}
	for _, x := range seed {
		at := t0.Add(-x.age)
		s.tickets = append(s.tickets, Ticket{ID: s.nextT, Subject: x.subject, Requester: x.requester, Priority: x.priority,
			Status: x.status, Assignee: x.assignee, Version: 1, CreatedAt: at, UpdatedAt: at})
		s.nextT++
	}
	for i := range 3 {
		s.orders = append(s.orders, s.newOrder(t0.Add(time.Duration(i-3)*7*time.Minute)))
	}
	return s
}

// TicketInput is what the "New ticket" form sends.
type TicketInput struct {
	Subject   string `json:"subject"`
	Requester string `json:"requester"`
	Priority  string `json:"priority"`
}

// clean trims the input, fills defaults and checks it; the error names the
// field at fault.
func (in TicketInput) clean() (TicketInput, error) {
	in.Subject = strings.TrimSpace(in.Subject)
	in.Requester = strings.TrimSpace(in.Requester)
	if in.Priority == "" {
		in.Priority = "normal"
	}
	switch {
	case in.Subject == "" || utf8.RuneCountInString(in.Subject) > 120:
		return in, fmt.Errorf("subject: 1 to 120 characters")
	case in.Requester == "" || utf8.RuneCountInString(in.Requester) > 60:
		return in, fmt.Errorf("requester: 1 to 60 characters")
	case !slices.Contains(priorities, in.Priority):
		return in, fmt.Errorf("priority: one of %s", strings.Join(priorities, ", "))
	}
	return in, nil
}

// Tickets returns every ticket, oldest first.
func (s *store) Tickets() []Ticket {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.tickets)
}

// CreateTicket stores a new ticket from a cleaned input.
func (s *store) CreateTicket(in TicketInput) Ticket {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	t := Ticket{ID: s.nextT, Subject: in.Subject, Requester: in.Requester, Priority: in.Priority,
		Status: "new", Version: 1, CreatedAt: now, UpdatedAt: now}
	s.nextT++
	s.tickets = append(s.tickets, t)
	if len(s.tickets) > maxTickets {
		s.tickets = slices.Delete(s.tickets, 0, len(s.tickets)-maxTickets)
	}
	return t
}

// UpdateTicket applies change to ticket id and returns it before and after;
// ok is false when there is no such ticket. change reports whether it
// changed anything: a no-op keeps the version.
func (s *store) UpdateTicket(id int, change func(*Ticket) bool) (before, after Ticket, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, found := slices.BinarySearchFunc(s.tickets, id, func(t Ticket, id int) int { return t.ID - id })
	if !found {
		return Ticket{}, Ticket{}, false
	}
	before = s.tickets[i]
	t := &s.tickets[i]
	if change(t) {
		t.Version++
		t.UpdatedAt = s.now()
	}
	return before, *t, true
}

// Orders returns every order, oldest first.
func (s *store) Orders() []Order {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.orders)
}

// CreateOrder stores a new order (the demo makes its content up).
func (s *store) CreateOrder() Order {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.newOrder(s.now())
	s.orders = append(s.orders, o)
	if len(s.orders) > maxOrders {
		s.orders = slices.Delete(s.orders, 0, len(s.orders)-maxOrders)
	}
	return o
}

var (
	customers = []string{"Anna Petrova", "James Carter", "Yuki Tanaka", "Omar Haddad", "Sofia Rossi", "Lucas Martin", "Ivan Sokolov"}
	products  = []struct {
		name  string
		cents int
	}{
		{"Wireless mouse", 2490}, {"USB-C hub, 7 ports", 3990}, {"Mechanical keyboard", 8900},
		{"27\" monitor arm", 5450}, {"Noise-cancelling headphones", 14900}, {"Laptop stand", 3200},
	}
)

// newOrder makes up order s.nextO; the caller holds s.mu (or owns s).
func (s *store) newOrder(at time.Time) Order {
	n := s.nextO
	s.nextO++
	p := products[(n*5)%len(products)]
	qty := 1 + n%3
	total := p.cents * qty
	return Order{ID: n, Number: fmt.Sprintf("MP-%05d", 10240+n), Customer: customers[(n*3)%len(customers)],
		Product: p.name, Quantity: qty, Total: fmt.Sprintf("%d.%02d", total/100, total%100), Currency: "EUR", CreatedAt: at}
}
