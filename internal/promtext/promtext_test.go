package promtext

import (
	"bytes"
	"errors"
	"math"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func gauge(name string, samples ...Sample) Family {
	return Family{Name: name, Help: "Help of " + name + ".", Type: Gauge, Samples: samples}
}

func labels(nameValue ...string) []Label {
	var ls []Label
	for i := 0; i < len(nameValue); i += 2 {
		ls = append(ls, Label{Name: nameValue[i], Value: nameValue[i+1]})
	}
	return ls
}

func TestFormat(t *testing.T) {
	tests := []struct {
		name string
		fams []Family
		want string
	}{
		{"no labels", []Family{{Name: "up", Help: "Up.", Type: Gauge, Samples: []Sample{{Value: 1}}}},
			"# HELP up Up.\n# TYPE up gauge\nup 1\n"},
		{"counter", []Family{{Name: "x_total", Help: "X.", Type: Counter, Samples: []Sample{{Value: 3}}}},
			"# HELP x_total X.\n# TYPE x_total counter\nx_total 3\n"},
		{"help escaped", []Family{{Name: "h", Help: "a\\b\nc \"q\"", Type: Gauge, Samples: []Sample{{Value: 0}}}},
			"# HELP h a\\\\b\\nc \"q\"\n# TYPE h gauge\nh 0\n"},
		{"label values escaped", []Family{gauge("e", Sample{Labels: labels("l", "a\\b\"c\nd"), Value: 1})},
			"# HELP e Help of e.\n# TYPE e gauge\ne{l=\"a\\\\b\\\"c\\nd\"} 1\n"},
		{"UTF-8 and empty values kept", []Family{gauge("u", Sample{Labels: labels("a", "é", "b", ""), Value: 1})},
			"# HELP u Help of u.\n# TYPE u gauge\nu{a=\"é\",b=\"\"} 1\n"},
		{"labels sorted by name", []Family{gauge("s", Sample{Labels: labels("z", "1", "a", "2", "m", "3"), Value: 1})},
			"# HELP s Help of s.\n# TYPE s gauge\ns{a=\"2\",m=\"3\",z=\"1\"} 1\n"},
		{"families sorted by name", []Family{gauge("b", Sample{Value: 2}), gauge("a", Sample{Value: 1})},
			"# HELP a Help of a.\n# TYPE a gauge\na 1\n# HELP b Help of b.\n# TYPE b gauge\nb 2\n"},
		{"samples sorted by label values in name order", []Family{gauge("d",
			Sample{Labels: labels("fixture", "z", "drift", "none"), Value: 1},
			Sample{Labels: labels("fixture", "a", "drift", "shape"), Value: 2},
			Sample{Labels: labels("fixture", "a", "drift", "none"), Value: 3},
			Sample{Labels: labels("fixture", "B", "drift", "none"), Value: 4},
		)},
			"# HELP d Help of d.\n# TYPE d gauge\n" +
				"d{drift=\"none\",fixture=\"B\"} 4\nd{drift=\"none\",fixture=\"a\"} 3\nd{drift=\"none\",fixture=\"z\"} 1\nd{drift=\"shape\",fixture=\"a\"} 2\n"},
		{"fewer labels first", []Family{gauge("f", Sample{Labels: labels("a", "a"), Value: 1}, Sample{Value: 2})},
			"# HELP f Help of f.\n# TYPE f gauge\nf 2\nf{a=\"a\"} 1\n"},
		{"same name merged", []Family{
			gauge("m", Sample{Labels: labels("cassette", "b"), Value: 2}),
			gauge("n", Sample{Value: 9}),
			gauge("m", Sample{Labels: labels("cassette", "a"), Value: 1}),
		},
			"# HELP m Help of m.\n# TYPE m gauge\nm{cassette=\"a\"} 1\nm{cassette=\"b\"} 2\n# HELP n Help of n.\n# TYPE n gauge\nn 9\n"},
		{"family without samples left out", []Family{gauge("empty"), gauge("x", Sample{Value: 1})},
			"# HELP x Help of x.\n# TYPE x gauge\nx 1\n"},
		{"nothing", nil, ""},
		{"values", []Family{gauge("v",
			Sample{Labels: labels("k", "01"), Value: math.NaN()},
			Sample{Labels: labels("k", "02"), Value: math.Inf(1)},
			Sample{Labels: labels("k", "03"), Value: math.Inf(-1)},
			Sample{Labels: labels("k", "04"), Value: math.Copysign(0, -1)},
			Sample{Labels: labels("k", "05"), Value: -1},
			Sample{Labels: labels("k", "06"), Value: 0.1},
			Sample{Labels: labels("k", "07"), Value: 1e6},
			Sample{Labels: labels("k", "08"), Value: 123456},
			Sample{Labels: labels("k", "09"), Value: 1.796432523456789e9},
			Sample{Labels: labels("k", "10"), Value: -1e-7},
			Sample{Labels: labels("k", "11"), Value: math.MaxFloat64},
		)},
			"# HELP v Help of v.\n# TYPE v gauge\n" +
				"v{k=\"01\"} NaN\nv{k=\"02\"} +Inf\nv{k=\"03\"} -Inf\nv{k=\"04\"} 0\nv{k=\"05\"} -1\nv{k=\"06\"} 0.1\n" +
				"v{k=\"07\"} 1e+06\nv{k=\"08\"} 123456\nv{k=\"09\"} 1.796432523456789e+09\nv{k=\"10\"} -1e-07\nv{k=\"11\"} 1.7976931348623157e+308\n"},
		{"names with colons, digits, underscores", []Family{gauge("_a:b_9", Sample{Labels: labels("_x9", "v"), Value: 1})},
			"# HELP _a:b_9 Help of _a:b_9.\n# TYPE _a:b_9 gauge\n_a:b_9{_x9=\"v\"} 1\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Format(tc.fams...)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

func TestFormatErrors(t *testing.T) {
	tests := []struct {
		name string
		fams []Family
		want string // in the error
	}{
		{"empty metric name", []Family{gauge("", Sample{Value: 1})}, "invalid metric name"},
		{"metric name starting with a digit", []Family{gauge("9a", Sample{Value: 1})}, "invalid metric name"},
		{"metric name with a dash", []Family{gauge("a-b", Sample{Value: 1})}, "invalid metric name"},
		{"metric name with a space", []Family{gauge("a b", Sample{Value: 1})}, "invalid metric name"},
		{"metric name not ASCII", []Family{gauge("é", Sample{Value: 1})}, "invalid metric name"},
		{"invalid name even without samples", []Family{gauge("a{")}, "invalid metric name"},
		{"empty label name", []Family{gauge("a", Sample{Labels: labels("", "v"), Value: 1})}, "invalid label name"},
		{"label name with a colon", []Family{gauge("a", Sample{Labels: labels("a:b", "v"), Value: 1})}, "invalid label name"},
		{"label name starting with a digit", []Family{gauge("a", Sample{Labels: labels("1a", "v"), Value: 1})}, "invalid label name"},
		{"reserved label name", []Family{gauge("a", Sample{Labels: labels("__name__", "v"), Value: 1})}, "invalid label name"},
		{"label twice", []Family{gauge("a", Sample{Labels: labels("l", "1", "l", "2"), Value: 1})}, "given twice in a sample"},
		{"label value not UTF-8", []Family{gauge("a", Sample{Labels: labels("l", "\xff"), Value: 1})}, "not UTF-8"},
		{"help not UTF-8", []Family{{Name: "a", Help: "\xff", Type: Gauge}}, "not UTF-8"},
		{"no help", []Family{{Name: "a", Type: Gauge, Samples: []Sample{{Value: 1}}}}, "empty"},
		{"no type", []Family{{Name: "a", Help: "A.", Samples: []Sample{{Value: 1}}}}, "unknown type"},
		{"untyped", []Family{{Name: "a", Help: "A.", Type: "untyped", Samples: []Sample{{Value: 1}}}}, "unknown type"},
		{"same labels twice", []Family{gauge("a", Sample{Labels: labels("l", "1"), Value: 1}, Sample{Labels: labels("l", "1"), Value: 2})}, "two samples"},
		{"same labels twice in another order", []Family{gauge("a",
			Sample{Labels: labels("l", "1", "m", "2"), Value: 1}, Sample{Labels: labels("m", "2", "l", "1"), Value: 2})}, "two samples"},
		{"same labels across merged families", []Family{gauge("a", Sample{Labels: labels("cassette", "c")}), gauge("a", Sample{Labels: labels("cassette", "c")})}, "two samples"},
		{"no labels twice", []Family{gauge("a", Sample{Value: 1}), gauge("a", Sample{Value: 1})}, "two samples"},
		{"merged with another help", []Family{gauge("a", Sample{Value: 1}), {Name: "a", Help: "Other.", Type: Gauge}}, "given twice"},
		{"merged with another type", []Family{gauge("a", Sample{Value: 1}), {Name: "a", Help: "Help of a.", Type: Counter}}, "given twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			err := Write(&b, tc.fams...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one with %q", err, tc.want)
			}
			if b.Len() != 0 {
				t.Fatalf("wrote %q despite the error", b.String())
			}
		})
	}
}

// The input is not changed: labels are sorted and samples merged in copies.
func TestFormatLeavesInputAlone(t *testing.T) {
	f := gauge("a", Sample{Labels: labels("z", "1", "a", "2"), Value: 1}, Sample{Labels: labels("z", "0", "a", "2"), Value: 2})
	if _, err := Format(f, f); err == nil {
		t.Fatal("the same family twice: no error")
	}
	if _, err := Format(f); err != nil {
		t.Fatal(err)
	}
	if f.Samples[0].Labels[0].Name != "z" || f.Samples[0].Value != 1 || len(f.Samples) != 2 {
		t.Fatalf("input changed: %+v", f.Samples)
	}
}

func TestSet(t *testing.T) {
	f := Family{Name: "a", Help: "A.", Type: Gauge, Samples: []Sample{{Labels: labels("x", "0"), Value: 7}}}
	f.Set(1, labels("fixture", "f", "tier", "t")...)
	f.Set(2, labels("fixture", "g", "tier", "t")...)
	f.Set(3, labels("tier", "t", "fixture", "f")...) // the same series, labels in another order
	f.Set(4, labels("x", "0")...)
	f.Set(5)
	f.Set(6, labels("fixture", "f:1", "tier", "")...) // not the same as f, tier 1:
	f.Set(7, labels("fixture", "f", "tier", "1:")...)
	got, err := Format(f)
	if err != nil {
		t.Fatal(err)
	}
	want := "# HELP a A.\n# TYPE a gauge\na 5\na{x=\"0\"} 4\n" +
		"a{fixture=\"f\",tier=\"1:\"} 7\na{fixture=\"f\",tier=\"t\"} 3\na{fixture=\"f:1\",tier=\"\"} 6\na{fixture=\"g\",tier=\"t\"} 2\n"
	if string(got) != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

func TestHandler(t *testing.T) {
	n := 0
	h := Handler(func() []Family {
		n++
		return []Family{gauge("scrapes", Sample{Value: float64(n)})}
	})
	for want := 1; want <= 2; want++ {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		body := rec.Body.String()
		if rec.Code != 200 || rec.Header().Get("Content-Type") != "text/plain; version=0.0.4; charset=utf-8" ||
			!strings.HasSuffix(body, "scrapes "+FormatValue(float64(want))+"\n") {
			t.Fatalf("scrape %d: %d %q\n%s", want, rec.Code, rec.Header().Get("Content-Type"), body)
		}
	}
	bad := Handler(func() []Family { return []Family{gauge("a", Sample{Value: 1}), gauge("a", Sample{Value: 2})} })
	rec := httptest.NewRecorder()
	bad.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), "two samples") {
		t.Fatalf("duplicate series: %d\n%s", rec.Code, rec.Body)
	}
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.prom")
	if err := WriteFile(path, gauge("a", Sample{Value: 1})); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, gauge("a-b", Sample{Value: 2})); err == nil {
		t.Fatal("invalid name: no error")
	}
	got, _ := os.ReadFile(path)
	info, err := os.Stat(path)
	if err != nil || string(got) != "# HELP a Help of a.\n# TYPE a gauge\na 1\n" || info.Mode().Perm() != 0o644 {
		t.Fatalf("%v %q %v: a failed write changed the file, or its mode is not 0644", err, got, info.Mode())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
}

// TestPromtoolCheckMetrics: Prometheus's own linter accepts what Format
// writes, escapes, merged families and special values included.
func TestPromtoolCheckMetrics(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is not installed (.ci/run installs Debian's prometheus package)")
		}
		t.Skip("promtool not installed: output not checked with promtool check metrics")
	}
	data, err := Format(
		Family{Name: "t_lost_total", Help: "A counter, help with \\ and\nnewline.", Type: Counter, Samples: []Sample{
			{Labels: labels("cassette", "b\"q\\x\ny", "mode", "record"), Value: 2},
		}},
		Family{Name: "t_lost_total", Help: "A counter, help with \\ and\nnewline.", Type: Counter, Samples: []Sample{
			{Labels: labels("mode", "replay", "cassette", "é"), Value: 0},
		}},
		Family{Name: "t_values", Help: "Special values.", Type: Gauge, Samples: []Sample{
			{Labels: labels("v", "nan"), Value: math.NaN()},
			{Labels: labels("v", "inf"), Value: math.Inf(1)},
			{Labels: labels("v", "-inf"), Value: math.Inf(-1)},
			{Labels: labels("v", "small"), Value: -1e-7},
			{Labels: labels("v", "big"), Value: 1.796432523456789e9},
			{Labels: labels("v", "empty-below"), Value: 1},
			{Labels: labels("v", ""), Value: 1},
		}},
		Family{Name: "t_up", Help: "No labels.", Type: Gauge, Samples: []Sample{{Value: 1}}},
	)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	if err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Fatalf("promtool check metrics: %v\n%s\non\n%s", err, out, data)
	}
}
