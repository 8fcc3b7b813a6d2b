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
