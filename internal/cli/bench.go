package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"time"

	"github.com/herald-ws/herald/internal/loadgen"
)

const benchUsage = `Usage: herald bench ws://host:port --app-id ID --key KEY --secret SECRET [flags]

A load generator for any Pusher-compatible server: opens --conns
connections over --channels channels, publishes --rate events per second
for --duration through the HTTP API, and reports connect rate, delivery
throughput, latency percentiles, lost messages and, for a server on this
machine, its memory per connection and CPU per million deliveries.
Exit code 1 when messages were lost, connections failed or publishes
failed. With --rounds N and --json the output is an array of N reports.

With --resume N the run measures reconnection instead: the connections
learn their channel's position, go away, miss N events per channel, and
come back at once asking for them with "since"; it reports the time until
every client caught up and checks each got exactly its missed events, in
order (N must not exceed the app's history max_events, 100 by default).

With --readers longpoll|sse (Herald) the --conns are HTTP readers of
channel history instead of sockets, each on its own TCP connection:
long-polls looping on GET …/events?since=…&wait=30, or one SSE stream
each. It reports the server's memory per held reader, then publishes at
--rate for --duration and reports publish→receive latency and checks that
every reader got every event exactly once, in order.

With --transport xhr_streaming|xhr_polling the subscribers of the
publishing run use pusher-js's HTTP fallbacks instead of WebSockets
(Herald, or any server with pusher-js's HTTP endpoints): one long
POST …/xhr_streaming response each, or POST …/xhr polls one after the
other, subscribing through POST …/xhr_send. Memory per connection is then
per session; every event must arrive exactly once.

Flags:
`

func bench(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("herald bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, benchUsage); fs.PrintDefaults() }
	var o loadgen.Options
	fs.StringVar(&o.AppID, "app-id", "", "app id")
	fs.StringVar(&o.Key, "key", "", "app key")
	fs.StringVar(&o.Secret, "secret", "", "app secret")
	fs.StringVar(&o.APIURL, "api-url", "", "HTTP API base URL (default: the WebSocket URL with http)")
	fs.IntVar(&o.Conns, "conns", 100, "connections")
	fs.IntVar(&o.Channels, "channels", 1, "channels the connections are spread over")
	fs.Float64Var(&o.Rate, "rate", 10, "events published per second (all channels)")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "how long to publish")
	fs.IntVar(&o.Payload, "payload", 100, "event data size in bytes")
	fs.IntVar(&o.Publishers, "publishers", 8, "concurrent HTTP publishers")
	fs.IntVar(&o.Dialers, "dialers", 64, "concurrent connection attempts")
	fs.DurationVar(&o.Drain, "drain", 3*time.Second, "how long to wait for late deliveries")
	fs.IntVar(&o.ServerPID, "server-pid", 0, "pid of a local server (found from the port when omitted)")
	fs.IntVar(&o.Slow, "slow", 0, "extra subscribers that never read (the server should cut them off: 4100 at its queue bound, or dropped after its write timeout)")
	fs.BoolVar(&o.Presence, "presence", false, "join one presence channel as --conns users (needs max_presence_members ≥ --conns) instead of publishing")
	fs.IntVar(&o.Resume, "resume", 0, "events each connection misses while disconnected, then resumes with since and must get in order (≤ the app's history max_events; 0: off)")
	fs.StringVar(&o.Readers, "readers", "", "hold --conns HTTP readers of history instead of sockets: longpoll or sse (Herald; needs history.max_readers ≥ --conns)")
	fs.StringVar(&o.Transport, "transport", loadgen.TransportWS, "what the subscribers connect over: ws, or pusher-js's HTTP fallbacks xhr_streaming or xhr_polling (the publishing run only)")
	rounds := fs.Int("rounds", 1, "repeat the run and report median [min–max] of each figure")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	url, rest := splitPositional(args)
	if err := fs.Parse(rest); err != nil {
		return exitForParse(err)
	}
	if url == "" || o.AppID == "" || o.Key == "" || o.Secret == "" {
		fmt.Fprintln(stderr, "herald bench: a URL, --app-id, --key and --secret are required")
		fs.Usage()
		return 2
	}
	if o.Presence && o.Slow > 0 {
		fmt.Fprintln(stderr, "herald bench: --slow measures a publishing run; it cannot be combined with --presence")
		return 2
	}
	if o.Resume < 0 || o.Resume > 0 && (o.Presence || o.Slow > 0) {
		fmt.Fprintln(stderr, "herald bench: --resume takes a count of events ≥ 0 and cannot be combined with --presence or --slow")
		return 2
	}
	if o.Readers != "" && (o.Readers != loadgen.ReadersLongPoll && o.Readers != loadgen.ReadersSSE || o.Presence || o.Slow > 0 || o.Resume > 0) {
		fmt.Fprintln(stderr, "herald bench: --readers takes longpoll or sse and cannot be combined with --presence, --slow or --resume")
		return 2
	}
	if msg := checkTransport(o); msg != "" {
		fmt.Fprintln(stderr, "herald bench: "+msg)
		return 2
	}
	o.URL = url
	out := newOut(stdout)
	if isTerminal(stderr) && !*asJSON {
		o.Progress = progressBar(stderr)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var reps []*loadgen.Report
	failed := false
	for i := range max(1, *rounds) {
		rep, err := loadgen.Run(ctx, o)
		if o.Progress != nil {
			fmt.Fprintln(stderr)
		}
		if err != nil {
			fmt.Fprintf(stderr, "herald bench: round %d: %v\n", i+1, err)
			return 1
		}
		failed = failed || rep.Lost > 0 || rep.Duplicates > 0 || rep.ConnectFailures > 0 || rep.PublishErrors > 0 || rep.Resume != nil && rep.Resume.Failed() ||
			rep.Readers != nil && rep.Readers.Failed()
		reps = append(reps, rep)
	}
	switch {
	case *asJSON && len(reps) == 1:
		_ = writeJSON(stdout, reps[0])
	case *asJSON:
		_ = writeJSON(stdout, reps)
	case len(reps) == 1 && o.Resume > 0:
		printResume(out, reps[0])
	case len(reps) == 1 && o.Readers != "":
		printReaders(out, reps[0])
	case len(reps) == 1:
		printBench(out, reps[0])
	case o.Resume > 0:
		printResumeRounds(out, reps)
	case o.Readers != "":
		printReadersRounds(out, reps)
	default:
		printRounds(out, reps)
	}
	if failed {
		return 1
	}
	return 0
}

// checkTransport says what is wrong with --transport, "" when nothing.
func checkTransport(o loadgen.Options) string {
	switch o.Transport {
	case loadgen.TransportWS:
		return ""
	case loadgen.TransportXHRStreaming, loadgen.TransportXHRPolling:
		if o.Presence || o.Slow > 0 || o.Resume > 0 || o.Readers != "" {
			return "--transport " + o.Transport + " runs the publishing scenario: it cannot be combined with --presence, --slow, --resume or --readers"
		}
		return ""
	}
	return fmt.Sprintf("--transport takes %s, %s or %s, not %q", loadgen.TransportWS, loadgen.TransportXHRStreaming, loadgen.TransportXHRPolling, o.Transport)
}

// xhrBatches names what carried an xhr run's events, "" for a WebSocket
// run.
func xhrBatches(r *loadgen.Report) string {
	switch r.Transport {
	case loadgen.TransportXHRStreaming:
		return "stream batches"
	case loadgen.TransportXHRPolling:
		return "poll answers"
	}
	return ""
}

// perBatch is the events each xhr batch carried on average.
func perBatch(r *loadgen.Report) float64 {
	if r.Batches == 0 {
		return 0
	}
	return float64(r.Delivered+r.Duplicates) / float64(r.Batches)
}

// printRounds prints median [min–max] of each figure over the rounds, and
// what went wrong in any of them.
func printRounds(o *out, reps []*loadgen.Report) {
	stat := func(f func(*loadgen.Report) float64, unit string, scale float64) string {
		return roundStat(reps, f, unit, scale)
	}
	perMs := float64(time.Millisecond)
	presence := reps[0].MemberAddedWant > 0
	o.printf("rounds             %d (median [min–max])\n", len(reps))
	batches := xhrBatches(reps[0])
	if batches != "" {
		o.printf("transport          %s\n", reps[0].Transport)
	}
	o.printf("connect+subscribe  %s/s\n", stat(func(r *loadgen.Report) float64 { return r.ConnectRate }, "", 1))
	if presence {
		o.printf("member_added       %s delivered of %d\n", stat(func(r *loadgen.Report) float64 { return float64(r.MemberAddedGot) }, "", 1), reps[0].MemberAddedWant)
	} else {
		o.printf("deliveries         %s/s\n", stat(func(r *loadgen.Report) float64 { return r.DeliveryRate }, "", 1))
		if batches != "" {
			o.printf("events per batch   %s (%s)\n", stat(perBatch, "", 1), batches)
		}
		o.printf("latency p50        %s\n", stat(func(r *loadgen.Report) float64 { return float64(r.P50) }, " ms", perMs))
		o.printf("latency p99        %s\n", stat(func(r *loadgen.Report) float64 { return float64(r.P99) }, " ms", perMs))
		o.printf("latency max        %s\n", stat(func(r *loadgen.Report) float64 { return float64(r.Max) }, " ms", perMs))
	}
	if reps[0].ServerPID > 0 && reps[0].RSSPerConnKiB > 0 {
		o.printf("RSS per conn       %s\n", stat(func(r *loadgen.Report) float64 { return r.RSSPerConnKiB }, " KiB", 1))
		if !presence {
			o.printf("CPU per million    %s\n", stat(func(r *loadgen.Report) float64 { return r.CPUPerMillion }, " s", 1))
		}
	}
	sum := sumRounds(reps)
	if sum.ConnectFailures+int(sum.PublishErrors) > 0 {
		o.printf("failures           %d connections, %d publishes over all rounds\n", sum.ConnectFailures, sum.PublishErrors)
	}
	printOutcome(o, sum, " over all rounds", "nothing lost in any round", presence)
}

// roundStat is median [min–max] of f over the rounds, divided by scale.
func roundStat(reps []*loadgen.Report, f func(*loadgen.Report) float64, unit string, scale float64) string {
	v := make([]float64, len(reps))
	for i, r := range reps {
		v[i] = f(r) / scale
	}
	sort.Float64s(v)
	n := len(v)
	median := (v[(n-1)/2] + v[n/2]) / 2
	return fmt.Sprintf("%.1f%s [%.1f–%.1f]", median, unit, v[0], v[n-1])
}

// sumRounds adds up what went wrong over the rounds.
func sumRounds(reps []*loadgen.Report) *loadgen.Report {
	var sum loadgen.Report
	sum.Closed, sum.Refused = map[int]int{}, map[string]int{}
	for _, r := range reps {
		sum.ConnectFailures += r.ConnectFailures
		sum.PublishErrors += r.PublishErrors
		sum.Lost += r.Lost
		sum.Duplicates += r.Duplicates
		sum.Slow += r.Slow
		sum.SlowDropped += r.SlowDropped
		for code, n := range r.Closed {
			sum.Closed[code] += n
		}
		for reason, n := range r.Refused {
			sum.Refused[reason] += n
		}
		if sum.FirstError == "" {
			sum.FirstError = r.FirstError
		}
		if r.Resume != nil {
			sum.Resume = addResume(sum.Resume, r.Resume)
		}
		if r.Readers != nil {
			sum.Readers = addReaders(sum.Readers, r.Readers)
		}
		sum.Expected += r.Expected
		sum.Delivered += r.Delivered
	}
	return &sum
}

// addResume adds b's client counts and failures to a (nil: none yet).
func addResume(a, b *loadgen.ResumeReport) *loadgen.ResumeReport {
	if a == nil {
		a = &loadgen.ResumeReport{Events: b.Events}
	}
	a.Clients += b.Clients
	a.CaughtUp += b.CaughtUp
	a.Gaps += b.Gaps
	a.Duplicates += b.Duplicates
	a.OutOfOrder += b.OutOfOrder
	a.ResumeFailed += b.ResumeFailed
	a.LiveMissed += b.LiveMissed
	return a
}

// printOutcome ends a report: slow subscribers, close codes, the first
// error, and whether anything was lost.
func printOutcome(o *out, r *loadgen.Report, scope, clean string, presence bool) {
	printProblems(o, r, presence)
	if r.Duplicates > 0 {
		o.printf("%s\n", o.paint(red, fmt.Sprintf("DUPLICATES %d deliveries of an event already received%s", r.Duplicates, scope)))
	}
	switch {
	case r.Lost > 0:
		o.printf("%s\n", o.paint(red, fmt.Sprintf("LOST %d messages%s", r.Lost, scope)))
	case r.Duplicates == 0:
		o.printf("%s\n", o.paint(green, clean))
	}
}

// printProblems lists refused connections, slow subscribers, close codes
// and the first error.
func printProblems(o *out, r *loadgen.Report, presence bool) {
	printRefused(o, r, presence)
	if r.Slow > 0 {
		o.printf("slow subscribers   %d never read; %d cut off with 4100, %d dropped without a close frame (write timeout)\n", r.Slow, r.Closed[4100], r.SlowDropped)
	}
	for code, n := range r.Closed {
		o.printf("closed by server   %d connections with code %d\n", n, code)
	}
	if r.FirstError != "" && len(r.Refused) == 0 {
		o.printf("first error        %s\n", r.FirstError)
	}
}

// printRefused lists the connections the server refused, by reason, most
// frequent first; a presence run past the member limit says which limit.
func printRefused(o *out, r *loadgen.Report, presence bool) {
	reasons := make([]string, 0, len(r.Refused))
	for reason := range r.Refused {
		reasons = append(reasons, reason)
	}
	sort.Slice(reasons, func(i, j int) bool { return r.Refused[reasons[i]] > r.Refused[reasons[j]] })
	full := false
	for _, reason := range reasons {
		o.printf("%s\n", o.paint(red, fmt.Sprintf("refused            %d connections: %s", r.Refused[reason], reason)))
		full = full || strings.Contains(reason, "is full")
	}
	if presence && full {
		o.printf("                   --presence joins one channel as --conns users: the server's max_presence_members\n" +
			"                   (apps[].limits in its config) must be at least --conns\n")
	}
}

func progressBar(w io.Writer) func(loadgen.Progress) {
	return func(p loadgen.Progress) {
		frac := 0.0
		if p.Of > 0 {
			frac = float64(p.Done) / float64(p.Of)
		}
		n := int(frac * 30)
		fmt.Fprintf(w, "\r%-8s [%s%s] %3.0f%% %d/%d  delivered %d ", p.Phase,
			strings.Repeat("#", n), strings.Repeat(" ", 30-n), frac*100, p.Done, p.Of, p.Delivered)
	}
}

func printBench(o *out, r *loadgen.Report) {
	o.printf("connections        %d (%d failed) in %.2f s: %.0f connect+subscribe/s\n", r.Conns, r.ConnectFailures, r.ConnectSeconds, r.ConnectRate)
	if r.MemberAddedWant > 0 {
		o.printf("presence           %d of %d member_added delivered\n", r.MemberAddedGot, r.MemberAddedWant)
		if r.ServerPID > 0 && r.RSSPerConnKiB > 0 {
			o.printf("server (pid %d)   %.1f KiB RSS per member (connection included)\n", r.ServerPID, r.RSSPerConnKiB)
		}
	} else {
		o.printf("published          %d events (%d errors) in %.2f s\n", r.Published, r.PublishErrors, r.PublishSeconds)
		o.printf("delivered          %d of %d: %.0f deliveries/s\n", r.Delivered, r.Expected, r.DeliveryRate)
		if batches := xhrBatches(r); batches != "" {
			o.printf("transport          %s: %d %s, %.1f events each\n", r.Transport, r.Batches, batches, perBatch(r))
		}
		o.printf("latency            p50 %s  p90 %s  p99 %s  max %s\n", ms(r.P50), ms(r.P90), ms(r.P99), ms(r.Max))
		if r.ServerPID > 0 {
			rss := "RSS did not grow measurably"
			if r.RSSPerConnKiB > 0 {
				rss = fmt.Sprintf("%.1f KiB RSS per connection", r.RSSPerConnKiB)
			}
			o.printf("server (pid %d)   %s, %.2f CPU s per million deliveries\n", r.ServerPID, rss, r.CPUPerMillion)
		}
	}
	printOutcome(o, r, "", "nothing lost", r.MemberAddedWant > 0)
}

// printResume prints a resume run: how fast everyone came back and caught
// up, and whether each client got exactly the events it missed.
func printResume(o *out, r *loadgen.Report) {
	res := r.Resume
	o.printf("connections        %d (%d failed) in %.2f s: %.0f connect+subscribe/s\n", r.Conns, r.ConnectFailures, r.ConnectSeconds, r.ConnectRate)
	o.printf("missed             %d events per client: %d published while disconnected (%d errors) in %s\n", res.Events, r.Published, r.PublishErrors, ms(seconds(r.PublishSeconds)))
	o.printf("reconnect          %d clients resubscribed with since in %s\n", res.Clients, ms(seconds(res.ReconnectSeconds)))
	o.printf("caught up          %d of %d clients, %d of %d missed events, all in %s\n", res.CaughtUp, res.Clients, r.Delivered, r.Expected, ms(seconds(res.AllCaughtUpSeconds)))
	o.printf("catch-up           p50 %s  p90 %s  p99 %s  max %s per client (dial to last missed event)\n", ms(res.P50), ms(res.P90), ms(res.P99), ms(res.Max))
	if r.ServerPID > 0 {
		rss := "RSS did not grow measurably"
		if r.RSSPerConnKiB > 0 {
			rss = fmt.Sprintf("%.1f KiB RSS per connection", r.RSSPerConnKiB)
		}
		o.printf("server (pid %d)   %s, %.2f CPU s from reconnect to caught up\n", r.ServerPID, rss, res.ServerCPUSeconds)
	}
	printResumeOutcome(o, r, "")
}

// printResumeRounds prints median [min–max] of a resume run's figures over
// the rounds, and what went wrong in any of them.
func printResumeRounds(o *out, reps []*loadgen.Report) {
	stat := func(f func(*loadgen.ResumeReport) float64) string {
		return roundStat(reps, func(r *loadgen.Report) float64 { return f(r.Resume) }, " ms", 1)
	}
	toMs := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	o.printf("rounds             %d (median [min–max]), %d clients × %d missed events\n", len(reps), reps[0].Conns, reps[0].Resume.Events)
	o.printf("connect+subscribe  %s/s\n", roundStat(reps, func(r *loadgen.Report) float64 { return r.ConnectRate }, "", 1))
	o.printf("reconnect          %s\n", stat(func(r *loadgen.ResumeReport) float64 { return r.ReconnectSeconds * 1000 }))
	o.printf("all caught up      %s\n", stat(func(r *loadgen.ResumeReport) float64 { return r.AllCaughtUpSeconds * 1000 }))
	o.printf("catch-up p50       %s\n", stat(func(r *loadgen.ResumeReport) float64 { return toMs(r.P50) }))
	o.printf("catch-up p99       %s\n", stat(func(r *loadgen.ResumeReport) float64 { return toMs(r.P99) }))
	o.printf("catch-up max       %s\n", stat(func(r *loadgen.ResumeReport) float64 { return toMs(r.Max) }))
	o.printf("replayed           %s/s\n", roundStat(reps, func(r *loadgen.Report) float64 { return r.DeliveryRate }, "", 1))
	if reps[0].ServerPID > 0 {
		o.printf("server CPU         %s from reconnect to caught up\n", stat(func(r *loadgen.ResumeReport) float64 { return r.ServerCPUSeconds * 1000 }))
	}
	sum := sumRounds(reps)
	if sum.ConnectFailures+int(sum.PublishErrors) > 0 {
		o.printf("failures           %d connections, %d publishes over all rounds\n", sum.ConnectFailures, sum.PublishErrors)
	}
	printResumeOutcome(o, sum, " over all rounds")
}

// printResumeOutcome ends a resume report: loudly when any client missed,
// repeated or reordered an event, was refused the resume or did not get
// the live event after it.
func printResumeOutcome(o *out, r *loadgen.Report, scope string) {
	printProblems(o, r, false)
	res := r.Resume
	if res == nil || !res.Failed() {
		o.printf("%s\n", o.paint(green, "every client got exactly its missed events, in order, then the live one"+scope))
		return
	}
	o.printf("%s\n", o.paint(red, fmt.Sprintf("RESUME FAILED%s: %d of %d clients not caught up; %d gaps, %d duplicates, %d out of order, %d resume_failed, %d missed the live event after the replay",
		scope, res.Clients-res.CaughtUp, res.Clients, res.Gaps, res.Duplicates, res.OutOfOrder, res.ResumeFailed, res.LiveMissed)))
	if res.ResumeFailed > 0 {
		o.printf("                   herald:resume_failed: --resume (%d) must not exceed the app's history max_events\n"+
			"                   (100 by default), and the channel's history must be on\n", res.Events)
	}
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// readerKinds names the kinds of --readers in reports.
var readerKinds = map[string]string{loadgen.ReadersLongPoll: "long-poll", loadgen.ReadersSSE: "SSE"}

// printReaders prints a readers run: memory per held reader, then the
// deliveries and their latency.
func printReaders(o *out, r *loadgen.Report) {
	res := r.Readers
	o.printf("readers            %d %s readers held (%d failed) on %d channels in %.2f s: %.0f readers/s\n",
		res.Readers, readerKinds[res.Kind], r.ConnectFailures, res.Channels, r.ConnectSeconds, r.ConnectRate)
	if r.ServerPID > 0 {
		rss := "RSS did not grow measurably"
		if r.RSSPerConnKiB > 0 {
			rss = fmt.Sprintf("RSS +%.1f MiB with all held: %.1f KiB per held reader", float64(res.RSSGrowthBytes)/(1<<20), r.RSSPerConnKiB)
		}
		o.printf("server (pid %d)   %s\n", r.ServerPID, rss)
	}
	o.printf("published          %d events (%d errors) in %.2f s\n", r.Published, r.PublishErrors, r.PublishSeconds)
	o.printf("delivered          %d of %d: %.0f deliveries/s", r.Delivered, r.Expected, r.DeliveryRate)
	if res.Answers > 0 {
		o.printf(", in %d long-poll answers (%.2f events each)", res.Answers, float64(r.Delivered)/float64(res.Answers))
	}
	o.printf("\n")
	o.printf("latency            p50 %s  p90 %s  p99 %s  max %s (publish → received)\n", ms(r.P50), ms(r.P90), ms(r.P99), ms(r.Max))
	if r.ServerPID > 0 {
		o.printf("server CPU         %.2f s while publishing and draining (%.0f%% of a core), %.2f s per million deliveries\n",
			res.ServerCPUSeconds, res.ServerCPUCores*100, r.CPUPerMillion)
	}
	printReadersOutcome(o, r, "")
}

// printReadersRounds prints median [min–max] of a readers run's figures
// over the rounds, and what went wrong in any of them.
func printReadersRounds(o *out, reps []*loadgen.Report) {
	stat := func(f func(*loadgen.Report) float64, unit string, scale float64) string {
		return roundStat(reps, f, unit, scale)
	}
	perMs := float64(time.Millisecond)
	res := reps[0].Readers
	o.printf("rounds             %d (median [min–max]), %d %s readers on %d channels\n",
		len(reps), res.Readers, readerKinds[res.Kind], res.Channels)
	o.printf("readers held       %s/s\n", stat(func(r *loadgen.Report) float64 { return r.ConnectRate }, "", 1))
	if reps[0].ServerPID > 0 {
		o.printf("RSS per reader     %s\n", stat(func(r *loadgen.Report) float64 { return r.RSSPerConnKiB }, " KiB", 1))
	}
	o.printf("deliveries         %s/s\n", stat(func(r *loadgen.Report) float64 { return r.DeliveryRate }, "", 1))
	o.printf("latency p50        %s\n", stat(func(r *loadgen.Report) float64 { return float64(r.P50) }, " ms", perMs))
	o.printf("latency p99        %s\n", stat(func(r *loadgen.Report) float64 { return float64(r.P99) }, " ms", perMs))
	o.printf("latency max        %s\n", stat(func(r *loadgen.Report) float64 { return float64(r.Max) }, " ms", perMs))
	if reps[0].ServerPID > 0 {
		o.printf("server CPU         %s of a core while publishing\n", stat(func(r *loadgen.Report) float64 { return r.Readers.ServerCPUCores * 100 }, " %", 1))
		o.printf("CPU per million    %s\n", stat(func(r *loadgen.Report) float64 { return r.CPUPerMillion }, " s", 1))
	}
	sum := sumRounds(reps)
	if sum.ConnectFailures+int(sum.PublishErrors) > 0 {
		o.printf("failures           %d readers, %d publishes over all rounds\n", sum.ConnectFailures, sum.PublishErrors)
	}
	printReadersOutcome(o, sum, " over all rounds")
}

// addReaders adds b's reader counts and failures to a (nil: none yet).
func addReaders(a, b *loadgen.ReadersReport) *loadgen.ReadersReport {
	if a == nil {
		a = &loadgen.ReadersReport{Kind: b.Kind}
	}
	a.Readers += b.Readers
	a.Complete += b.Complete
	a.Duplicates += b.Duplicates
	a.OutOfOrder += b.OutOfOrder
	a.ResumeFailed += b.ResumeFailed
	a.Ended += b.Ended
	return a
}

// printReadersOutcome ends a readers report: loudly when any reader
// missed, repeated or reordered an event, or stopped early.
func printReadersOutcome(o *out, r *loadgen.Report, scope string) {
	printProblems(o, r, false)
	res := r.Readers
	if res != nil && !res.Failed() && r.Lost == 0 {
		o.printf("%s\n", o.paint(green, "every reader got every event exactly once, in offset order"+scope))
		return
	}
	if res == nil {
		res = &loadgen.ReadersReport{}
	}
	o.printf("%s\n", o.paint(red, fmt.Sprintf("READERS FAILED%s: %d of %d readers incomplete; %d of %d deliveries lost, %d duplicates, %d out of order, %d resume failures (410 or herald:resume_failed), %d readers ended early",
		scope, res.Readers-res.Complete, res.Readers, r.Lost, r.Expected, res.Duplicates, res.OutOfOrder, res.ResumeFailed, res.Ended)))
}
