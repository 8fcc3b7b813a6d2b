package memlimit

import (
	"math"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestLimit(t *testing.T) {
	p := Policy{Floor: 24 << 20, Slack: 8 << 20}
	for _, c := range []struct {
		name string
		live uint64
		want int64
	}{
		{"empty heap: the floor", 0, 24 << 20},
		{"small heap: still the floor", 8 << 20, 24 << 20},
		{"at the knee", 8<<20 + 1, 24<<20 + 2},
		{"large heap: twice it plus slack", 100 << 20, 208 << 20},
		{"absurd heap: no limit, no overflow", math.MaxUint64, math.MaxInt64},
	} {
		if got := p.Limit(c.live); got != c.want {
			t.Errorf("%s: Limit(%d) = %d, want %d", c.name, c.live, got, c.want)
		}
	}
}

// TestFollowerMakesRoomForTheLiveHeap: the limit starts at the floor and
// rises past twice the live heap once a collection has seen it grow.
func TestFollowerMakesRoomForTheLiveHeap(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	p := Policy{Floor: 24 << 20, Slack: 8 << 20}
	f := newFollower(p)
	runtime.GC()
	if got := f.step(); got < p.Floor || got != debug.SetMemoryLimit(-1) {
		t.Fatalf("step = %d (runtime has %d), want at least the floor %d and set", got, debug.SetMemoryLimit(-1), p.Floor)
	}
	// 64 MiB kept live: the limit must make room for it, not squeeze it.
	hold := make([][]byte, 64)
	for i := range hold {
		hold[i] = make([]byte, 1<<20)
	}
	runtime.GC()
	if got := f.step(); got < 2*(64<<20) || got != debug.SetMemoryLimit(-1) {
		// p has no Settle: the limit follows the first reading.
		t.Fatalf("with 64 MiB live, step = %d (runtime has %d), want at least %d", got, debug.SetMemoryLimit(-1), 2*(64<<20))
	}
	runtime.KeepAlive(hold)
}

// TestStartAndStop: Start sets a limit at once; stop (idempotent) puts the
// previous one back.
func TestStartAndStop(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	stop := Start(Policy{Floor: 24 << 20, Slack: 8 << 20, Every: time.Millisecond})
	if got := debug.SetMemoryLimit(-1); got < 24<<20 || got == before {
		t.Fatalf("limit after Start = %d (before %d), want a new one of at least the floor", got, before)
	}
	stop()
	stop()
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Fatalf("limit after stop = %d, want the previous %d", got, before)
	}
}

// TestQuiet: memory is given back once per quiet spell, after `after`
// readings with no collection, and only when there is enough to give; the
// release's own collection does not start a new spell.
func TestQuiet(t *testing.T) {
	const big, small = releaseMin, releaseMin - 1
	type reading struct {
		cycles, spare uint64
		release       bool
	}
	for _, c := range []struct {
		name  string
		steps []reading
	}{
		{"busy: collections keep coming", []reading{{1, big, false}, {2, big, false}, {3, big, false}, {4, big, false}}},
		{"quiet for 3 readings: one release", []reading{{5, big, false}, {5, big, false}, {5, big, false}, {5, big, true}, {6, big, false}, {6, big, false}, {6, big, false}, {6, big, false}}},
		{"quiet but nothing to give", []reading{{5, small, false}, {5, small, false}, {5, small, false}, {5, small, false}}},
		{"load again, quiet again: released again", []reading{{5, big, false}, {5, big, false}, {5, big, false}, {5, big, true}, {9, big, false}, {9, big, false}, {9, big, false}, {9, big, true}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			q := quiet{after: 3}
			for i, r := range c.steps {
				got := q.observe(r.cycles, r.spare)
				if got != r.release {
					t.Fatalf("reading %d (%+v): release %v", i, r, got)
				}
				if got {
					q.released(r.cycles + 1) // the release collected once
				}
			}
		})
	}
}

// TestFollowerGivesBackWhenQuiet: with garbage left by a burst and no
// collection since, a step after the quiet time returns it to the kernel.
func TestFollowerGivesBackWhenQuiet(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	f := newFollower(Policy{Floor: 24 << 20, Slack: 8 << 20, Every: time.Millisecond, Release: 2 * time.Millisecond})
	f.step()
	burst := make([][]byte, 32)
	for i := range burst {
		burst[i] = make([]byte, 1<<20)
	}
	runtime.KeepAlive(burst)
	burst = nil
	// Quiet takes two readings without a collection; a collection the
	// test process runs meanwhile only starts the count again.
	for i := 0; i < 100 && !f.quiet.done; i++ {
		f.step()
	}
	if !f.quiet.done {
		t.Fatal("no release after 100 quiet readings")
	}
	live, _, objects, free := f.read()
	if spare := free + objects - min(objects, live); spare >= 32<<20 {
		t.Errorf("after the release %d bytes are still spare", spare)
	}
}

// TestFollowerSettles: with Settle, a live heap that rises for fewer
// readings than Settle spans leaves the limit where it was; one that stays
// up gets its room once it has held for all of them; and the limit falls
// with the first low reading.
func TestFollowerSettles(t *testing.T) {
	p := Policy{Floor: 24 << 20, Slack: 8 << 20, Every: 100 * time.Millisecond, Settle: 300 * time.Millisecond}
	f := newFollower(p)
	const mib = 1 << 20
	for i, c := range []struct {
		live uint64
		want int64
	}{
		{4 * mib, 24 * mib},   // small: the floor
		{64 * mib, 24 * mib},  // a spike: not yet
		{64 * mib, 24 * mib},  // still not: the first small reading is within Settle
		{64 * mib, 136 * mib}, // held for all three: room for it
		{64 * mib, 136 * mib},
		{10 * mib, 28 * mib}, // fallen: at once
	} {
		if got := p.Limit(f.settled(c.live)); got != c.want {
			t.Errorf("reading %d (live %d MiB): limit %d MiB, want %d MiB", i, c.live/mib, got/mib, c.want/mib)
		}
	}
}
