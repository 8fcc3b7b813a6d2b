// Package memlimit owns a recording proxy's soft memory limit: it keeps the
// Go runtime's memory near a small floor while the live heap is small, and
// steps out of the way as the live heap grows, so that a burst of large
// captured bodies never makes the collector run back to back.
//
// Why: at Go's default (GOGC=100, no limit) a proxy whose live heap is a few
// MiB of connection buffers still keeps twice that, plus freed pages it has
// not yet returned to the kernel, plus what was allocated while a collection
// ran. A fixed GOMEMLIMIT trims that, but a fixed one is a trap: once the
// live heap nears it (64 clients each downloading a large answer), the
// collector runs continuously. The limit here follows the live heap: never
// below Floor, never less than twice the live heap plus Slack. The limit
// counts all of Go's memory (stacks and the collector's metadata too), so
// the heap itself gets a little less room than GOGC=100 would give it; the
// floor is what keeps a small live heap from being collected over and over.
//
// What it buys (bench/run.sh, record phase): peak RSS 52–56 → 42 MiB, under
// the 48 MiB target, at the same req/s. The package only sets the limit;
// whether to (a user's GOMEMLIMIT wins) is the caller's decision.
package memlimit

import (
	"math"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"sync"
	"time"
)

// Policy is the limit as a function of the live heap.
type Policy struct {
	Floor int64         // the limit while the live heap is small
	Slack int64         // added to twice the live heap: stacks, GC metadata, buffers in flight
	Every time.Duration // how often the live heap is read
	// Release gives memory back once the program has been quiet this long:
	// when no collection has run for Release (no load allocates) and the
	// heap holds at least releaseMin bytes besides its live objects, the
	// garbage is collected and every free page returned to the kernel
	// (debug.FreeOSMemory), once per quiet spell. Without it the runtime
	// keeps what a burst of load left, up to the limit, until its own
	// scavenger gets to it. 0: never.
	Release time.Duration
	// Settle is how long the live heap must stay up before the limit
	// rises with it: the limit follows the least live heap of the last
	// Settle (falling at once). A burst that lives for a few collections
	// (a queue filling while the disk syncs) then costs collections, not
	// resident memory: followed at once, a spike of 5 MiB live for 200 ms
	// raised the limit by 10 MiB and the recording proxy's peak RSS with
	// it (bench/run.sh, record, HTTPS 50 KB at 64 clients). A live heap
	// that stays large gets its room after Settle. 0: follow at once.
	Settle time.Duration
}

// releaseMin is the least spare heap (garbage and free pages) worth a
// forced collection when the program goes quiet.
const releaseMin = 4 << 20

// Default is the policy of a recording proxy: a 30 MiB floor and 6 MiB of
// slack, re-read ten times a second. The limit covers all of Go's memory,
// not only the heap: goroutine stacks, the collector's metadata, freed
// pages not yet returned and the gaps inside spans took ~11 MiB of it
// under load, so a 24 MiB floor left the heap 5-8 MiB to grow in and the
// collector ran 25-50 times a second at 1 KB answers (~10% of the
// process's CPU, and much of the record path's p99 over the forward
// reference's). At 30 MiB it runs about half as often. The whole process
// peaks at ~46 MiB resident at 64 clients in the load harness, its code
// and the store's mapped pages (~15 MiB) included.
//
// The limit rises only with a live heap that has held for a second
// (Settle), and after a second without a collection, what a burst of load
// left is given back (Release).
var Default = Policy{Floor: 30 << 20, Slack: 6 << 20, Every: 100 * time.Millisecond, Release: time.Second, Settle: time.Second}

// Limit is the soft memory limit for a live heap of live bytes.
func (p Policy) Limit(live uint64) int64 {
	if live > math.MaxInt64/4 {
		return math.MaxInt64
	}
	return max(p.Floor, 2*int64(live)+p.Slack)
}

// follower sets the limit from the live heap, one reading at a time.
type follower struct {
	p      Policy
	sample []metrics.Sample
	last   int64
	quiet  quiet
	recent []uint64 // the live heap's last readings, Settle's worth, oldest first
}

// The metrics a follower reads, in this order.
var followed = []string{"/gc/heap/live:bytes", "/gc/cycles/total:gc-cycles", "/memory/classes/heap/objects:bytes", "/memory/classes/heap/free:bytes"}

func newFollower(p Policy) *follower {
	f := &follower{p: p, last: -1}
	for _, name := range followed {
		f.sample = append(f.sample, metrics.Sample{Name: name})
	}
	if p.Release > 0 && p.Every > 0 {
		f.quiet.after = int((p.Release + p.Every - 1) / p.Every)
	}
	if p.Settle > 0 && p.Every > 0 {
		f.recent = make([]uint64, 0, (p.Settle+p.Every-1)/p.Every)
	}
	return f
}

// settled is the least of the live heap's readings over the last Settle,
// this one included: what the heap has held all that time.
func (f *follower) settled(live uint64) uint64 {
	if cap(f.recent) == 0 {
		return live
	}
	if len(f.recent) == cap(f.recent) {
		f.recent = append(f.recent[:0], f.recent[1:]...)
	}
	f.recent = append(f.recent, live)
	return slices.Min(f.recent)
}

func (f *follower) read() (live, cycles, objects, free uint64) {
	metrics.Read(f.sample)
	v := make([]uint64, len(f.sample))
	for i := range f.sample {
		if f.sample[i].Value.Kind() == metrics.KindUint64 {
			v[i] = f.sample[i].Value.Uint64()
		}
	}
	return v[0], v[1], v[2], v[3]
}

// step reads the live heap (as the last collection marked it) and sets the
// limit if it changed, and gives memory back when the program went quiet;
// it returns the limit.
func (f *follower) step() int64 {
	live, cycles, objects, free := f.read()
	if l := f.p.Limit(f.settled(live)); l != f.last {
		debug.SetMemoryLimit(l)
		f.last = l
	}
	spare := free
	if objects > live {
		spare += objects - live
	}
	if f.quiet.after > 0 && f.quiet.observe(cycles, spare) {
		debug.FreeOSMemory()
		_, cycles, _, _ = f.read()
		f.quiet.released(cycles)
	}
	return f.last
}

// quiet tells when the program has gone quiet: no collection for after
// readings in a row, once per quiet spell.
type quiet struct {
	after  int
	seen   int    // readings since the collection count last changed
	cycles uint64 // the collection count last read
	done   bool   // released in this quiet spell
}

// observe takes one reading and reports whether to give memory back now.
func (q *quiet) observe(cycles, spare uint64) bool {
	if cycles != q.cycles {
		q.cycles, q.seen, q.done = cycles, 0, false
		return false
	}
	q.seen++
	return !q.done && q.seen >= q.after && spare >= releaseMin
}

// released notes a release and the collection count after it (the release
// collects too: that one does not end the quiet spell).
func (q *quiet) released(cycles uint64) {
	q.cycles, q.done = cycles, true
}

// Start sets the limit now and keeps it following the live heap until stop
// is called; stop restores the limit that was set before Start. The limit is
// the process's: one Start at a time.
func Start(p Policy) (stop func()) {
	if p.Every <= 0 {
		p.Every = Default.Every
	}
	before := debug.SetMemoryLimit(-1) // -1 reads it
	f := newFollower(p)
	f.step()
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(p.Every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				f.step()
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			<-finished
			debug.SetMemoryLimit(before)
		})
	}
}
