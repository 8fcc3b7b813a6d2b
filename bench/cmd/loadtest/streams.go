package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The many-streams scenario: -streams N clients each open one server-sent
// event stream at once (their starts spread over streamRamp), each stream
// -stream-events events -stream-gap apart, over HTTPS. Measured straight
// to the streaming upstream (direct), through the forward ref, through
// cassetteproxy record, and through cassetteproxy replay of what record
// recorded, with --replay-timing recorded. Per target and round: time to
// the first event (p50, p99; the client's connection, with its CONNECT and
// TLS handshake, is opened by a small request first, so the latency is the
// stream's own), the proxy's CPU time per event delivered (from the first
// stream's request to the last one's end), and how much its
// resident memory (VmRSS, sampled every 100 ms) rose while the streams were
// open over what it was before the clients connected, per stream.

const streamRamp = time.Second

// streamEvent is event i of every stream: an LLM-style completion chunk.
func streamEvent(i int) string {
	return fmt.Sprintf("data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" %s %03d\"}}]}\n\n",
		words[i%len(words)], i)
}

// streamBody is what every stream must deliver, byte for byte.
func streamBody(events int) []byte {
	var b bytes.Buffer
	for i := range events {
		b.WriteString(streamEvent(i))
	}
	return b.Bytes()
}

// serveStreams is the streaming upstream: /ping answers "ok", /sse streams
// the events, each flushed on its own; over HTTP and HTTPS (HTTP/1.1).
func serveStreams(dir, ready string, events int, gap time.Duration) error {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		switch r.URL.Path {
		case "/ping":
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Content-Length", "2")
			w.Write([]byte("ok"))
		case "/sse":
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("Cache-Control", "no-cache")
			f := w.(http.Flusher)
			t := time.NewTicker(gap)
			defer t.Stop()
			for i := range events {
				if i > 0 {
					select {
					case <-t.C:
					case <-r.Context().Done():
						return
					}
				}
				if _, err := io.WriteString(w, streamEvent(i)); err != nil {
					return
				}
				f.Flush()
			}
		default:
			http.NotFound(w, r)
		}
	})
	return listenUpstreams(handler, dir, ready)
}

// streamResult is one target's run of the scenario in one round.
type streamResult struct {
	target       string
	round        int
	streams      int // streams that delivered every event
	errs         int
	firstErr     string
	firstP50     time.Duration
	firstP99     time.Duration
	p99VsDirect  float64 // this round's p99 over direct's in the same round
	cpuPerEvent  time.Duration
	rssPerStream int64 // (highest VmRSS while streams were open - VmRSS before) / streams
	peakRSS      int64
	wall         time.Duration
}

func (h *harness) streamsPhase(rep *report) error {
	ready := filepath.Join(h.opt.work, "stream-upstream.ready")
	self, err := os.Executable()
	if err != nil {
		return err
	}
	up, err := h.spawn("stream-upstream", []string{self, "-serve-stream", "-up-dir", h.opt.work, "-up-ready", ready,
		"-stream-events", fmt.Sprint(h.opt.streamEvents), "-stream-gap", h.opt.streamGap.String()}, "stream-upstream.log")
	if err != nil {
		return err
	}
	defer h.stop(up)
	line, err := waitReady(up, ready)
	if err != nil {
		return err
	}
	f := strings.Fields(line)
	if len(f) != 2 {
		return fmt.Errorf("stream upstream ready file %q", line)
	}
	base := "https://" + f[1]
	body := streamBody(h.opt.streamEvents)

	direct := &target{name: "direct", rootsFile: h.upCA}
	db := filepath.Join(h.opt.work, "streams.db")
	// Every run gets a proxy of its own, started for it: its resident
	// memory before the clients connect is a fresh process's, whatever
	// earlier runs left behind.
	start := func(kind string, round int) (*target, error) {
		name := fmt.Sprintf("streams-%s-%d", kind, round)
		switch kind {
		case "forward":
			t, err := h.startRef(name, "ref-forward", "-upstream-ca", h.upCA)
			if t != nil {
				t.name = "forward ref"
			}
			return t, err
		case "record":
			extra := []string{}
			if round > 0 {
				extra = append(extra, "--append")
			}
			return h.startCassette("record", name, db, "streams", extra...)
		default:
			return h.startCassette("replay", name, db, "streams", "--replay-timing", "recorded")
		}
	}
	run := func(t *target, round int, directP99 time.Duration) (int, error) {
		if t.p == nil && t.name != "direct" {
			return 0, fmt.Errorf("%s: no process", t.name)
		}
		r := h.streamRun(t, base, body)
		r.round = round
		if directP99 > 0 {
			r.p99VsDirect = float64(r.firstP99) / float64(directP99)
		}
		rep.streams = append(rep.streams, r)
		h.log("%-22s streams %d/%d first event p50 %6.2fms p99 %6.2fms cpu %5.1fµs/event rss +%4.0f KiB/stream peak %s MiB wall %.1fs errors %d %s",
			t.name, r.streams, h.opt.streams, ms(r.firstP50), ms(r.firstP99), µs(r.cpuPerEvent), float64(r.rssPerStream)/1024, mib(r.peakRSS), r.wall.Seconds(), r.errs, r.firstErr)
		if t.p != nil {
			h.stop(t.p)
		}
		return len(rep.streams) - 1, nil
	}
	// Record rounds first (replay needs what they recorded), then replay
	// rounds; direct runs in every round, before the proxies in even
	// rounds and after them in odd ones.
	for _, kinds := range [][]string{{"forward", "record"}, {"replay"}} {
		for round := range h.opt.rounds {
			order := kinds
			if round%2 == 1 && len(kinds) == 2 {
				order = []string{kinds[1], kinds[0]}
			}
			var ours []int // indexes in rep.streams
			d := -1
			if round%2 == 0 {
				if d, err = run(direct, round, 0); err != nil {
					return err
				}
			}
			for _, kind := range order {
				t, err := start(kind, round)
				if err != nil {
					return err
				}
				var dp99 time.Duration
				if d >= 0 {
					dp99 = rep.streams[d].firstP99
				}
				r, err := run(t, round, dp99)
				if err != nil {
					return err
				}
				ours = append(ours, r)
			}
			if d < 0 {
				if d, err = run(direct, round, 0); err != nil {
					return err
				}
				for _, i := range ours {
					rep.streams[i].p99VsDirect = float64(rep.streams[i].firstP99) / float64(rep.streams[d].firstP99)
				}
			}
		}
	}
	return nil
}

// streamRun opens h.opt.streams streams through t at once and waits for
// all of them to end.
func (h *harness) streamRun(t *target, base string, body []byte) streamResult {
	n := h.opt.streams
	r := streamResult{target: t.name}
	var rss0 int64 // before any client connects: a stream's memory includes its connection's
	if t.p != nil {
		rss0 = t.p.status("VmRSS:")
	}
	lat := make([]time.Duration, n)
	errs := make([]error, n)
	timeout := time.Duration(h.opt.streamEvents)*h.opt.streamGap + streamRamp + 60*time.Second
	// Every client's connection is opened first (a small request), so
	// what is measured below is the streams, not n handshakes.
	var opened, wg sync.WaitGroup
	begin := make(chan time.Time)
	var open atomic.Int32
	for i := range n {
		opened.Add(1)
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c := t.client(&workload{})
			c.Timeout = timeout
			defer c.CloseIdleConnections()
			err := getOK(c, base+"/ping")
			opened.Done()
			start := <-begin
			if err != nil {
				errs[i] = fmt.Errorf("ping: %w", err)
				return
			}
			errs[i] = func() error {
				time.Sleep(time.Until(start.Add(streamRamp * time.Duration(i) / time.Duration(n))))
				open.Add(1)
				defer open.Add(-1)
				t0 := time.Now()
				resp, err := c.Get(fmt.Sprintf("%s/sse?n=%d", base, i))
				if err != nil {
					return err
				}
				defer resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b, _ := io.ReadAll(resp.Body)
					return fmt.Errorf("status %d: %.200s", resp.StatusCode, b)
				}
				got := make([]byte, 0, len(body))
				buf := make([]byte, 4096)
				for {
					k, err := resp.Body.Read(buf)
					got = append(got, buf[:k]...)
					if lat[i] == 0 && bytes.Contains(got, []byte("\n\n")) {
						lat[i] = time.Since(t0)
					}
					if err == io.EOF {
						break
					}
					if err != nil {
						return err
					}
				}
				if !bytes.Equal(got, body) {
					return fmt.Errorf("stream differs (%d bytes, want %d)", len(got), len(body))
				}
				return nil
			}()
		}(i)
	}
	opened.Wait()
	time.Sleep(200 * time.Millisecond) // the handshakes' garbage collected, the proxy idle
	user0, sys0 := cpuTime(t.p)
	start := time.Now()
	close(begin)
	// Resident memory while the streams are open.
	done := make(chan struct{})
	var rssMax int64
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				if t.p != nil && open.Load() > 0 {
					rssMax = max(rssMax, t.p.status("VmRSS:"))
				}
			}
		}
	}()
	wg.Wait()
	user1, sys1 := cpuTime(t.p)
	close(done)
	sampler.Wait()
	r.wall = time.Since(start)
	var ok []time.Duration
	for i := range n {
		if errs[i] != nil {
			r.errs++
			if r.firstErr == "" {
				r.firstErr = errs[i].Error()
			}
			continue
		}
		ok = append(ok, lat[i])
	}
	r.streams = len(ok)
	if len(ok) > 0 {
		slices.Sort(ok)
		r.firstP50 = ok[len(ok)*50/100]
		r.firstP99 = ok[min(len(ok)-1, len(ok)*99/100)]
	}
	if t.p != nil {
		if ev := r.streams * h.opt.streamEvents; ev > 0 {
			r.cpuPerEvent = (user1 - user0 + sys1 - sys0) / time.Duration(ev)
		}
		if rssMax > rss0 {
			r.rssPerStream = (rssMax - rss0) / int64(n)
		}
		r.peakRSS = t.p.peakRSS()
	}
	return r
}

// getOK does one GET and wants 200 "ok".
func getOK(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || string(b) != "ok" {
		return fmt.Errorf("status %d: %.200s", resp.StatusCode, b)
	}
	return nil
}

// streamsMarkdown is the scenario's table: per target, the median over
// rounds of each figure.
func (r *report) streamsMarkdown(w func(string, ...any)) {
	if len(r.streams) == 0 {
		return
	}
	w("\n#### Many streams (%d concurrent SSE streams over HTTPS, %d events %s apart, starts spread over %s; %d rounds, medians)\n\n",
		r.opt.streams, r.opt.streamEvents, r.opt.streamGap, streamRamp, r.opt.rounds)
	w("Every client opens its connection first (a small request; through a proxy its CONNECT and TLS handshake), then the streams start. First event: from the stream's request to its first event. `p99 vs direct`: the median of the rounds' ratios to direct's p99 in the same round. CPU per event: the proxy process's user+system time from the first stream's request to the last stream's end ÷ events delivered. RSS per stream: the highest VmRSS while streams were open minus VmRSS before the clients connected, ÷ streams (a connection's memory included). Replay runs with `--replay-timing recorded` on what record recorded.\n\n")
	w("| proxy | streams ok | first event p50 ms | p99 ms | p99 vs direct | CPU µs/event | RSS KiB/stream | peak RSS MiB | wall s | errors |\n")
	w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, name := range []string{"direct", "forward ref", "cassetteproxy record", "cassetteproxy replay"} {
		var xs []streamResult
		for _, x := range r.streams {
			if x.target == name {
				xs = append(xs, x)
			}
		}
		if len(xs) == 0 {
			continue
		}
		med := func(f func(streamResult) float64) float64 { return median(xs, f) }
		errs, first := 0, ""
		for _, x := range xs {
			errs += x.errs
			if first == "" {
				first = x.firstErr
			}
		}
		vs, cpu, rss, peak := "", "—", "—", "—"
		if name != "direct" {
			vs = fmt.Sprintf("%.2f×", med(func(x streamResult) float64 { return x.p99VsDirect }))
			cpu = fmt.Sprintf("%.1f", med(func(x streamResult) float64 { return µs(x.cpuPerEvent) }))
			rss = fmt.Sprintf("%.0f", med(func(x streamResult) float64 { return float64(x.rssPerStream) / 1024 }))
			peak = mib(xs[len(xs)-1].peakRSS)
		}
		w("| %s | %.0f | %.2f | %.2f | %s | %s | %s | %s | %.1f | %d |\n", name,
			med(func(x streamResult) float64 { return float64(x.streams) }),
			med(func(x streamResult) float64 { return ms(x.firstP50) }),
			med(func(x streamResult) float64 { return ms(x.firstP99) }),
			vs, cpu, rss, peak,
			med(func(x streamResult) float64 { return x.wall.Seconds() }), errs)
		if first != "" {
			w("\n%s: first error: %s\n\n", name, first)
		}
	}
}
