package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

type storeStats struct {
	bytes        int64
	interactions int
	err          string
}

// dbStats is the record store's size and how many interactions it holds.
func dbStats(db, bin, work, cassette string) storeStats {
	var s storeStats
	if fi, err := os.Stat(db); err == nil {
		s.bytes = fi.Size()
	}
	out, err := exec.Command(filepath.Join(bin, "cassetteproxy"), "--db", db, "--home", filepath.Join(work, "home"), "cassettes", "ls", "--json").Output()
	if err != nil {
		s.err = err.Error()
		return s
	}
	var infos []struct {
		Name         string `json:"name"`
		Interactions int    `json:"interactions"`
	}
	if err := json.Unmarshal(out, &infos); err != nil {
		s.err = err.Error()
		return s
	}
	for _, in := range infos {
		if in.Name == cassette {
			s.interactions = in.Interactions
		}
	}
	return s
}

type report struct {
	opt      options
	upstream string
	works    []*workload
	results  []result
	elapsed  time.Duration

	badRecord, badForward, badReplay, badMemory    badResult
	recordRSS, forwardRSS, replayRSS, memoryRSS    int64
	recordAnon, recordFile, replayAnon, replayFile int64
	recordDB                                       storeStats
	streams                                        []streamResult
}

// add keeps, per cell, the round with the highest throughput (best of
// -rounds: the req/s column), and every round's req/s and p99, for the
// paired ratios (rpsRatio, p99Ratio) and the median p99 (p99Of).
func (r *report) add(res result) {
	if x := r.find(res.target, res.work, res.conc); x != nil {
		errs := x.errs + res.errs
		p99s := append(x.roundP99s, res.p99)
		rps := append(x.roundRPS, res.rps)
		if res.rps > x.rps {
			*x = res
		}
		x.errs, x.roundP99s, x.roundRPS = errs, p99s, rps
		return
	}
	res.roundP99s = []time.Duration{res.p99}
	res.roundRPS = []float64{res.rps}
	r.results = append(r.results, res)
}

// p99Of is the median of a cell's per-round p99s. A tail percentile of one
// round on a shared 2-core machine swings by a fifth from round to round,
// and the best-throughput round's p99 is no steadier: the median is.
func p99Of(x *result) time.Duration {
	return time.Duration(median(x.roundP99s, func(d time.Duration) float64 { return float64(d) }))
}

// roundRatios are x's value over ref's in each round. Each round measures
// the reference and cassetteproxy back to back, so a pair sees the same
// machine; two best rounds may be minutes apart.
func roundRatios[T time.Duration | float64](xs, refs []T) []float64 {
	n := min(len(xs), len(refs))
	ratios := make([]float64, 0, n)
	for i := range n {
		if refs[i] > 0 {
			ratios = append(ratios, float64(xs[i])/float64(refs[i]))
		}
	}
	return ratios
}

// p99Ratio is the median over rounds of x's p99 over ref's p99.
func p99Ratio(x, ref *result) float64 {
	return median(roundRatios(x.roundP99s, ref.roundP99s), func(f float64) float64 { return f })
}

// rpsRatio is the median over rounds of x's req/s over ref's: on a machine
// whose speed drifts by a fifth between rounds, the ratio of the two best
// rounds compares different machines, a round's pair the same one.
func rpsRatio(x, ref *result) float64 {
	return median(roundRatios(x.roundRPS, ref.roundRPS), func(f float64) float64 { return f })
}

// median is the middle value of xs (the mean of the two middle ones for
// an even count), 0 for none.
func median[T any](xs []T, val func(T) float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	vs := make([]float64, len(xs))
	for i, x := range xs {
		vs[i] = val(x)
	}
	slices.Sort(vs)
	if len(vs)%2 == 1 {
		return vs[len(vs)/2]
	}
	return (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2
}

// rpsTarget is the targets table's row for "t ≥ min× its reference's
// req/s" on work at 16 clients: met when the median of the rounds' ratios
// is; the rounds' ratios and the best rounds' are shown beside it.
func (r *report) rpsTarget(t, work string, min float64) (string, bool) {
	x, ref := r.find(t, work, 16), r.find(refOf(t), work, 16)
	if x == nil || ref == nil || ref.rps <= 0 {
		return "", false
	}
	ratio := rpsRatio(x, ref)
	rounds := make([]string, 0, len(x.roundRPS))
	for _, q := range roundRatios(x.roundRPS, ref.roundRPS) {
		rounds = append(rounds, fmt.Sprintf("%.2f", q))
	}
	return fmt.Sprintf("| %s ≥ %g× %s, %s | %.2f× (median of the rounds' ratios: %s); best rounds %.0f vs %.0f req/s = %.2f× | %s |\n",
		strings.TrimPrefix(t, "cassetteproxy "), min, refOf(t), work, ratio, strings.Join(rounds, ", "), x.rps, ref.rps, x.rps/ref.rps, yesNo(ratio >= min)), true
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

func (r *report) find(target, work string, c int) *result {
	for i := range r.results {
		x := &r.results[i]
		if x.target == target && x.work == work && x.conc == c {
			return x
		}
	}
	return nil
}

// refOf is the reference each cassetteproxy mode is compared with.
func refOf(target string) string {
	switch target {
	case "cassetteproxy record":
		return "forward ref"
	case "cassetteproxy replay":
		return "memory ref"
	}
	return ""
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func mib(b int64) string {
	if b <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.1f", float64(b)/(1<<20))
}

func (r *report) markdown() string {
	var sb strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&sb, format, args...) }
	mode := "full"
	if r.opt.quick {
		mode = "quick"
	}
	w("### Load (%s mode)\n\n", mode)
	if len(r.results) == 0 { // only the streams scenario ran
		w("Machine: %d CPUs (`nproc`), %s, %s, %s/%s. Total run %s.\n", runtime.NumCPU(), cpuModel(), runtime.Version(), runtime.GOOS, runtime.GOARCH, r.elapsed.Round(time.Second))
		r.streamsMarkdown(w)
		return sb.String()
	}
	w("Machine: %d CPUs (`nproc`), %s, %s, %s/%s. Upstream: %s. Each cell: %s warm-up, %s measured, %d rounds (req/s the best round's; errors summed over rounds; p99 the median of the rounds' p99s); keep-alive HTTP/1.1 clients, one connection each (a `new conn` workload opens a new connection for every request, through a proxy with its own CONNECT and TLS handshake, so its req/s is handshakes per second and its CPU/req the proxy's CPU per handshake; `resumed`: the client offers its last TLS session); every body checked byte for byte. Total run %s.\n\n",
		runtime.NumCPU(), cpuModel(), runtime.Version(), runtime.GOOS, runtime.GOARCH, r.upstream, r.opt.warmup, r.opt.duration, r.opt.rounds, r.elapsed.Round(time.Second))
	w("The load generator, the upstream and the proxy share the same CPUs. `vs ref`: cassetteproxy record ÷ forward ref, cassetteproxy replay ÷ memory ref, in req/s, the median over rounds of each round's ratio (each round measures the reference and cassetteproxy back to back, in alternating order); `p99 vs ref`: the same for p99. CPU/req: the proxy process's user+system time per request (/proc/PID/stat). Peak RSS: VmHWM of the proxy process so far. Replay runs with the upstream stopped.\n\n")
	w("| workload | c | proxy | req/s | vs ref | p50 ms | p99 ms | p99 vs ref | errors | CPU µs/req | peak RSS MiB |\n")
	w("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	order := []string{"direct", "forward ref", "cassetteproxy record", "memory ref", "cassetteproxy replay"}
	for _, wk := range r.works {
		for _, c := range r.opt.concs {
			for _, t := range order {
				x := r.find(t, wk.name, c)
				if x == nil {
					continue
				}
				vs, p99vs := "", ""
				if ref := r.find(refOf(t), wk.name, c); ref != nil && ref.rps > 0 && ref.p99 > 0 {
					vs = fmt.Sprintf("%.2f×", rpsRatio(x, ref))
					p99vs = fmt.Sprintf("%.2f×", p99Ratio(x, ref))
				}
				cpu := "—"
				if x.cpuPerReq > 0 {
					cpu = fmt.Sprintf("%.0f", µs(x.cpuPerReq))
				}
				w("| %s | %d | %s | %.0f | %s | %.2f | %.2f | %s | %d | %s | %s |\n", wk.name, c, t, x.rps, vs, ms(x.p50), ms(p99Of(x)), p99vs, x.errs, cpu, mib(x.rss))
			}
		}
	}
	var errs []string
	for _, x := range r.results {
		if x.errs > 0 {
			errs = append(errs, fmt.Sprintf("- %s, %s, c=%d: %d errors, first: %s", x.target, x.work, x.conc, x.errs, x.firstErr))
		}
	}
	if len(errs) > 0 {
		w("\nErrors:\n\n%s\n", strings.Join(errs, "\n"))
	}

	w("\n#### Targets (c=16, same run; reported, never asserted)\n\n")
	w("| target | measured | met |\n| --- | --- | --- |\n")
	for _, wk := range r.works {
		if row, ok := r.rpsTarget("cassetteproxy replay", wk.name, 0.9); ok {
			w("%s", row)
		}
	}
	for _, wk := range r.works {
		if row, ok := r.rpsTarget("cassetteproxy record", wk.name, 0.85); ok {
			w("%s", row)
		}
	}
	for _, t := range []string{"cassetteproxy replay", "cassetteproxy record"} {
		for _, wk := range r.works {
			if x, ref := r.find(t, wk.name, 16), r.find(refOf(t), wk.name, 16); x != nil && ref != nil && ref.p99 > 0 {
				ratio := p99Ratio(x, ref)
				w("| %s p99 ≤ 1.3× %s p99, %s | %.2f vs %.2f ms (medians over %d rounds), %.2f× (median of the rounds' ratios) | %s |\n",
					strings.TrimPrefix(t, "cassetteproxy "), refOf(t), wk.name, ms(p99Of(x)), ms(p99Of(ref)), len(x.roundP99s), ratio, yesNo(ratio <= 1.3))
			}
		}
	}
	for _, x := range []struct {
		name string
		rss  int64
	}{{"record", r.recordRSS}, {"replay", r.replayRSS}} {
		if x.rss <= 0 {
			continue // its phase did not run (-phases)
		}
		w("| %s peak RSS ≤ 48 MiB (whole run, c=64 included) | %s MiB | %s |\n", x.name, mib(x.rss), yesNo(x.rss > 0 && x.rss <= 48<<20))
	}
	w("\nReference programs' peak RSS: forward ref %s MiB, memory ref %s MiB. ", mib(r.forwardRSS), mib(r.memoryRSS))
	w("Resident at the end of its phase (anonymous + file-backed: the binary and the store's mmap): record %s + %s MiB; replay %s + %s MiB.\n",
		mib(r.recordAnon), mib(r.recordFile), mib(r.replayAnon), mib(r.replayFile))

	var bads []badResult
	for _, b := range []badResult{r.badForward, r.badRecord, r.badMemory, r.badReplay} {
		if b.target != "" {
			bads = append(bads, b)
		}
	}
	if len(bads) > 0 {
		w("\n#### Bad input under load (HTTP 1 KB, %d good + %d bad clients, %s)\n\n", badGood, badBad, r.opt.bad)
		w("Bad clients loop over: %s; one connection each, sequentially, for the whole run.\n\n", strings.Join(badKinds, ", "))
		w("| proxy | good alone req/s | with bad req/s | good drop | wrong good answers | bad requests sent |\n| --- | ---: | ---: | ---: | ---: | ---: |\n")
		for _, b := range bads {
			w("| %s | %.0f | %.0f | %.0f%% | %d | %d |\n", b.target, b.base.rps, b.loaded.rps, 100*b.drop, b.loaded.errs, b.badSent)
		}
	}
	r.streamsMarkdown(w)
	if s := r.recordDB; s.interactions > 0 {
		w("\nRecord store after the run: %d interactions, %.1f MiB, %.0f B per interaction (1 KB and 50 KB bodies mixed, zstd).\n",
			s.interactions, float64(s.bytes)/(1<<20), float64(s.bytes)/float64(s.interactions))
	} else if s.err != "" {
		w("\nRecord store: %s\n", s.err)
	}
	return sb.String()
}
