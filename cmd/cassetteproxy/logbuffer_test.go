package main

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestLineBufferLosesNothing: every line written by concurrent writers,
// including past the self-flush limit, is out after Close, whole and in
// each writer's order; lines after Close go straight through.
func TestLineBufferLosesNothing(t *testing.T) {
	out := &lockedBuffer{}
	b := newLineBuffer(out)
	line := strings.Repeat("x", 200)
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 2000; i++ { // 8 × 2000 × ~210 B: past lineBufferLimit several times
				fmt.Fprintf(b, "w%d %05d %s\n", w, i, line)
			}
		}(w)
	}
	wg.Wait()
	b.Close()
	fmt.Fprintf(b, "after close\n")
	if got := out.String(); !strings.HasSuffix(got, "after close\n") {
		t.Fatalf("a line written after Close did not go straight through")
	}
	next := map[string]int{}
	for _, l := range strings.Split(strings.TrimSuffix(out.String(), "after close\n"), "\n") {
		if l == "" {
			continue
		}
		var w string
		var i int
		if _, err := fmt.Sscanf(l, "%s %d", &w, &i); err != nil || !strings.HasSuffix(l, line) {
			t.Fatalf("torn line %.60q", l)
		}
		if i != next[w] {
			t.Fatalf("%s: line %d after %d", w, i, next[w]-1)
		}
		next[w]++
	}
	for w := 0; w < 8; w++ {
		if n := next[fmt.Sprintf("w%d", w)]; n != 2000 {
			t.Fatalf("w%d: %d of 2000 lines out", w, n)
		}
	}
}
