package dashboard

import (
	"context"
	"sync"
	"time"
)

// Numbers are the server's running totals at one moment; the sampler
// turns the cumulative ones into rates.
type Numbers struct {
	Connections int64
	Channels    int64
	// Cumulative since start.
	MessagesIn, MessagesOut, APIRequests int64
}

// Sample is one point of the dashboard's graphs.
type Sample struct {
	Time        int64   `json:"t"` // unix milliseconds
	Connections int64   `json:"connections"`
	Channels    int64   `json:"channels"`
	InPerS      float64 `json:"in_per_s"`
	OutPerS     float64 `json:"out_per_s"`
	APIPerS     float64 `json:"api_per_s"`
}

// samples is the graphs' window: one sample a second for five minutes.
const (
	sampleEvery = time.Second
	maxSamples  = 300
)

// sampler keeps the last maxSamples samples and tells the live streams of
// each new one.
//
// Concurrency: run by one goroutine; the rest is safe for concurrent use.
type sampler struct {
	read func() Numbers

	mu   sync.Mutex // guards all below
	ring []Sample   // oldest first
	subs map[chan Sample]struct{}
}

func newSampler(read func() Numbers) *sampler {
	return &sampler{read: read, subs: map[chan Sample]struct{}{}}
}

// run samples every sampleEvery until ctx is done.
func (s *sampler) run(ctx context.Context) {
	t := time.NewTicker(sampleEvery)
	defer t.Stop()
	last, lastAt := s.read(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			n := s.read()
			s.add(point(last, n, now.Sub(lastAt), now))
			last, lastAt = n, now
		}
	}
}

// point is the sample at now after prev, d earlier.
func point(prev, cur Numbers, d time.Duration, now time.Time) Sample {
	rate := func(a, b int64) float64 {
		if d <= 0 || b < a {
			return 0
		}
		return float64(b-a) / d.Seconds()
	}
	return Sample{
		Time:        now.UnixMilli(),
		Connections: cur.Connections,
		Channels:    cur.Channels,
		InPerS:      rate(prev.MessagesIn, cur.MessagesIn),
		OutPerS:     rate(prev.MessagesOut, cur.MessagesOut),
		APIPerS:     rate(prev.APIRequests, cur.APIRequests),
	}
}

func (s *sampler) add(p Sample) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ring) == maxSamples {
		copy(s.ring, s.ring[1:])
		s.ring = s.ring[:maxSamples-1]
	}
	s.ring = append(s.ring, p)
	for ch := range s.subs {
		select {
		case ch <- p:
		default:
		}
	}
}

// subscribe returns the samples so far and a channel of the next ones.
func (s *sampler) subscribe() ([]Sample, chan Sample) {
	ch := make(chan Sample, 4)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subs[ch] = struct{}{}
	return append([]Sample(nil), s.ring...), ch
}

func (s *sampler) unsubscribe(ch chan Sample) {
	s.mu.Lock()
	delete(s.subs, ch)
	s.mu.Unlock()
}
