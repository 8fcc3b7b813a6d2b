package textlog

import (
	"bytes"
	"context"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"
)

// viaSlog is what slog.TextHandler writes for r.
func viaSlog(t testing.TB, r slog.Record, opts *slog.HandlerOptions) string {
	var b bytes.Buffer
	if err := slog.NewTextHandler(&b, opts).Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// viaTextlog is what New's handler writes for r, and whether the fast path
// wrote it.
func viaTextlog(t testing.TB, r slog.Record, opts *slog.HandlerOptions) (string, bool) {
	var b bytes.Buffer
	if err := New(&b, opts).Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	_, fast := appendRecord(nil, &r)
	return b.String(), fast
}

func record(tm time.Time, level slog.Level, msg string, attrs ...slog.Attr) slog.Record {
	r := slog.NewRecord(tm, level, msg, 0)
	r.AddAttrs(attrs...)
	return r
}

// TestSameAsTextHandler: every record is written byte for byte as
// slog.TextHandler writes it, through the fast path where it applies.
func TestSameAsTextHandler(t *testing.T) {
	at := time.Date(2026, 11, 27, 7, 48, 10, 123_456_789, time.UTC)
	zoned := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("X", -(3*3600+30*60)))
	cases := []struct {
		name string
		r    slog.Record
		fast bool
	}{
		{"request line", record(at, slog.LevelInfo, "request", slog.String("method", "GET"), slog.String("url", "https://api.example.com/v1/items?page=2"),
			slog.String("decision", "recorded"), slog.Int("status", 200), slog.Float64("ms", 0.123)), true},
		{"warn with a reason to quote", record(at, slog.LevelWarn, "request", slog.String("url", "http://127.0.0.1:8765/?i=48"),
			slog.String("decision", "error"), slog.Int("status", 502), slog.Float64("ms", 0.143),
			slog.String("reason", "upstream: dial tcp 127.0.0.1:8765: connect: connection refused")), true},
		{"quoting", record(at, slog.LevelInfo, "a message", slog.String("eq", "a=b"), slog.String("quote", `say "hi"`),
			slog.String("empty", ""), slog.String("tab", "a\tb"), slog.String("nl", "a\nb"), slog.String("backslash", `C:\dir`),
			slog.String("del", "a\x7fb"), slog.String("nul", "a\x00b")), true},
		{"numbers", record(at, slog.LevelError, "n", slog.Int64("neg", -42), slog.Uint64("big", math.MaxUint64),
			slog.Float64("whole", 3), slog.Float64("tiny", 1e-9), slog.Float64("huge", 1.5e300), slog.Float64("nan", math.NaN()),
			slog.Float64("inf", math.Inf(-1)), slog.Bool("yes", true), slog.Bool("no", false)), true},
		{"milliseconds truncated, zone kept", record(zoned.Add(999_999*time.Microsecond), slog.LevelInfo, "z"), true},
		{"exact second", record(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), slog.LevelInfo, "s"), true},
		{"no time", record(time.Time{}, slog.LevelInfo, "no time", slog.Int("n", 1)), true},
		{"odd level", record(at, slog.LevelInfo+2, "l"), true},
		{"empty message", record(at, slog.LevelInfo, ""), true},
		{"quoted key", record(at, slog.LevelInfo, "k", slog.String("a key", "v")), true},
		{"unicode value: slog's own", record(at, slog.LevelInfo, "u", slog.String("name", "café"), slog.String("nbsp", "a\u00a0b")), false},
		{"unicode message: slog's own", record(at, slog.LevelInfo, "héllo"), false},
		{"invalid UTF-8: slog's own", record(at, slog.LevelInfo, "x", slog.String("bad", "a\xffb")), false},
		{"duration: slog's own", record(at, slog.LevelInfo, "d", slog.Duration("took", 1500*time.Millisecond)), false},
		{"time value: slog's own", record(at, slog.LevelInfo, "t", slog.Time("at", at)), false},
		{"any: slog's own", record(at, slog.LevelInfo, "a", slog.Any("err", context.Canceled), slog.Any("list", []int{1, 2})), false},
		{"group: slog's own", record(at, slog.LevelInfo, "g", slog.Group("req", slog.String("m", "GET"), slog.Int("n", 1))), false},
		{"empty attribute: slog's own", record(at, slog.LevelInfo, "e", slog.Attr{}, slog.Int("n", 1)), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := viaSlog(t, tc.r, nil)
			got, fast := viaTextlog(t, tc.r, nil)
			if got != want {
				t.Errorf("wrote\n%q\nslog.TextHandler writes\n%q", got, want)
			}
			if fast != tc.fast {
				t.Errorf("fast path %v, want %v", fast, tc.fast)
			}
		})
	}
}

// TestOptions: the level is honoured; options that change the format give
// slog.TextHandler itself; WithAttrs and WithGroup write what slog's would.
func TestOptions(t *testing.T) {
	var b bytes.Buffer
	warn := New(&b, &slog.HandlerOptions{Level: slog.LevelWarn})
	if warn.Enabled(context.Background(), slog.LevelInfo) || !warn.Enabled(context.Background(), slog.LevelWarn) {
		t.Error("level option not honoured")
	}
	if New(&b, nil).Enabled(context.Background(), slog.LevelDebug) {
		t.Error("debug enabled by default")
	}
	if _, ok := New(&b, &slog.HandlerOptions{AddSource: true}).(*slog.TextHandler); !ok {
		t.Error("AddSource: not slog.TextHandler")
	}
	if _, ok := New(&b, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr { return a }}).(*slog.TextHandler); !ok {
		t.Error("ReplaceAttr: not slog.TextHandler")
	}
	var mine, theirs bytes.Buffer
	slog.New(New(&mine, nil)).With("run", "r1").WithGroup("g").LogAttrs(context.Background(), slog.LevelInfo, "m", slog.Int("n", 1))
	slog.New(slog.NewTextHandler(&theirs, nil)).With("run", "r1").WithGroup("g").LogAttrs(context.Background(), slog.LevelInfo, "m", slog.Int("n", 1))
	strip := func(s string) string { _, rest, _ := strings.Cut(s, " "); return rest } // the times differ
	if strip(mine.String()) != strip(theirs.String()) {
		t.Errorf("With/WithGroup wrote %q, slog writes %q", mine.String(), theirs.String())
	}
}

// FuzzSameAsTextHandler: any record of a string, an integer and a float,
// at any time, is written as slog.TextHandler writes it.
func FuzzSameAsTextHandler(f *testing.F) {
	f.Add(int64(1795765690123456789), "request", "url", "https://x.example/a?b=c", int64(200), 0.123)
	f.Add(int64(0), "", "", "", int64(-1), math.Inf(1))
	f.Add(int64(-62135596800000000), "a b", "k=v", "\"q\"", int64(math.MinInt64), -0.0)
	f.Fuzz(func(t *testing.T, nanos int64, msg, key, val string, n int64, x float64) {
		r := record(time.Unix(0, nanos).In(time.FixedZone("F", int(nanos%50_000))), slog.LevelInfo, msg,
			slog.String(key, val), slog.Int64("n", n), slog.Float64("x", x))
		want := viaSlog(t, r, nil)
		got, _ := viaTextlog(t, r, nil)
		if got != want {
			t.Fatalf("wrote\n%q\nslog.TextHandler writes\n%q", got, want)
		}
	})
}

func BenchmarkRequestLine(b *testing.B) {
	at := time.Now()
	r := record(at, slog.LevelInfo, "request", slog.String("method", "GET"), slog.String("url", "https://api.example.com/v1/items?page=2"),
		slog.String("decision", "recorded"), slog.Int("status", 200), slog.Float64("ms", 0.123))
	for _, c := range []struct {
		name string
		h    slog.Handler
	}{{"textlog", New(discard{}, nil)}, {"slog.TextHandler", slog.NewTextHandler(discard{}, nil)}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.h.Handle(context.Background(), r)
			}
		})
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
