package bytesmemo

import (
	"bytes"
	"fmt"
	"testing"
)

func TestMemoHitsOnlyOnTheSameBytesAndTag(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB: sampled, not hashed whole
	middle := bytes.Clone(big)
	middle[len(middle)/2+7]++ // same length, same ends, same samples (off the sampled stretches)
	m := New[int](16, 1<<20)
	m.Put("json", bytes.Clone(big), 1, 0)
	cases := []struct {
		name string
		tag  string
		b    []byte
		hit  bool
	}{
		{"same bytes, same tag", "json", big, true},
		{"a copy of the same bytes", "json", bytes.Clone(big), true},
		{"another tag", "text", big, false},
		{"one byte changed between the samples", "json", middle, false},
		{"shorter", "json", big[:len(big)-1], false},
		{"empty", "json", nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, stored, ok, _ := m.Get(c.tag, c.b)
			if ok != c.hit {
				t.Fatalf("hit %v, want %v", ok, c.hit)
			}
			if ok && (v != 1 || !bytes.Equal(stored, big)) {
				t.Fatalf("got %d and %d stored bytes", v, len(stored))
			}
		})
	}
	// The colliding body replaces the first one in its slot; both answer right.
	m.Put("json", bytes.Clone(middle), 2, 0)
	if v, _, ok, _ := m.Get("json", middle); !ok || v != 2 {
		t.Fatalf("second body: %d %v", v, ok)
	}
	if v, _, ok, _ := m.Get("json", big); ok && v != 1 {
		t.Fatalf("first body answered %d", v)
	}
}

func TestMemoStaysBounded(t *testing.T) {
	m := New[[]byte](8, 64<<10)
	for i := range 100 {
		b := fmt.Appendf(nil, "%d %s", i, bytes.Repeat([]byte("x"), 3000))
		m.Put("", b, b[:10], 10)
		if m.Len() > 8 || m.Bytes() > 64<<10 {
			t.Fatalf("after %d puts: %d entries, %d bytes", i+1, m.Len(), m.Bytes())
		}
		if _, _, ok, _ := m.Get("", b); !ok {
			t.Fatalf("put %d not found right after", i)
		}
	}
	m.Put("", make([]byte, 20<<10), nil, 0) // over a quarter of the bound: not kept
	if _, _, ok, _ := m.Get("", make([]byte, 20<<10)); ok {
		t.Fatal("oversized entry kept")
	}
}

// A miss says "again" on the second sight of the same bytes, not the first.
func TestGetSaysAgainOnSecondSight(t *testing.T) {
	m := New[int](16, 1<<20)
	a, b := []byte("first body"), []byte("other body")
	for i, c := range []struct {
		tag  string
		b    []byte
		want bool
	}{{"t", a, false}, {"t", a, true}, {"t", b, false}, {"u", b, false}, {"t", b, true}, {"t", a, false}} {
		if _, _, _, got := m.Get(c.tag, c.b); got != c.want {
			t.Fatalf("offer %d (%s %q): again %v, want %v", i+1, c.tag, c.b, got, c.want)
		}
	}
}
