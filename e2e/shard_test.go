package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// shardReport is what the shard tests compare of monitor.json.
type shardReport struct {
	Total       int                `json:"fixtures_total"`
	Passing     int                `json:"fixtures_passing"`
	Failing     int                `json:"fixtures_failing"`
	Stale       int                `json:"fixtures_stale"`
	Unproven    int                `json:"fixtures_unproven"`
	Expired     int                `json:"fixtures_expired"`
	NotIsolated int                `json:"fixtures_not_isolated"`
	Window      map[string]float64 `json:"silent_failure_window_minutes"`
	Gate        string             `json:"gate"`
	Shard       string             `json:"shard"`
	Telemetry   *struct {
		Exported int64 `json:"spans_exported"`
		Dropped  int64 `json:"spans_dropped"`
	} `json:"telemetry"`
	Results []struct {
		FixtureID    string `json:"fixture_id"`
		Path         string `json:"path"`
		Status       string `json:"status"`
		FailureClass string `json:"failure_class"`
	} `json:"results"`
}

func readShardReport(t *testing.T, dir string) shardReport {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "monitor.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r shardReport
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r shardReport) verdicts() []string {
	var out []string
	for _, v := range r.Results {
		out = append(out, v.Path+" "+v.FixtureID+" "+v.Status+"/"+v.FailureClass)
	}
	sort.Strings(out)
	return out
}

// TestMonitorShardsMerge: three shards of the example fixtures, each
// replayed on a machine of its own (its own store), merged, give the
// monitor.json counts, verdicts, silent failure windows, gate and exit code
// of one unsharded monitor; bad shards and bad merges are one-line errors.
func TestMonitorShardsMerge(t *testing.T) {
	ex := copyExamples(t)
	root := filepath.Join(ex, "fixtures")
	// Two fixtures run the buggy agent: a gate that fails, with classes.
	for _, class := range []string{"empty_output", "schema_mismatch"} {
		editJSON(t, filepath.Join(root, class, "input.json"), func(m map[string]any) {
			env, _ := m["env"].(map[string]any)
			if env == nil {
				env = map[string]any{}
			}
			env["AGENT_BUG"] = class
			m["env"] = env
		})
	}

	whole := newEnv(t)
	wholeOut := filepath.Join(whole.dir, "whole")
	stdout, errs, wholeCode := whole.cli("monitor", root, "--out", wholeOut, "-j", "2")
	want := readShardReport(t, wholeOut)
	if wholeCode != 1 || want.Gate != "fail" || want.Total != len(exampleClasses) || want.Failing != 2 || want.Shard != "" {
		t.Fatalf("unsharded: exit %d %+v\n%s\n%s", wholeCode, want, stdout, errs)
	}

	var outs []string
	seen := 0
	for _, k := range []string{"1/3", "2/3", "3/3"} {
		e := newEnv(t) // a machine of its own
		out := filepath.Join(e.dir, "shard")
		_, errs, code := e.cli("monitor", root, "--out", out, "--shard", k)
		r := readShardReport(t, out)
		if r.Shard != k || !strings.Contains(errs, "shard "+k+":") {
			t.Fatalf("shard %s: monitor.json says %q; stderr %s", k, r.Shard, errs)
		}
		if wantCode := map[bool]int{true: 1, false: 0}[r.Gate == "fail"]; code != wantCode {
			t.Fatalf("shard %s: gate %s, exit %d", k, r.Gate, code)
		}
		seen += r.Total
		outs = append(outs, out)
	}
	if seen != want.Total {
		t.Fatalf("the shards replayed %d fixtures in all, want %d", seen, want.Total)
	}
	// The same split again: the same fixtures in each shard.
	again := newEnv(t)
	_, _, _ = again.cli("monitor", root, "--out", filepath.Join(again.dir, "o"), "--shard", "2/3")
	if a, b := readShardReport(t, filepath.Join(again.dir, "o")).verdicts(), readShardReport(t, outs[1]).verdicts(); strings.Join(a, ",") != strings.Join(b, ",") {
		t.Fatalf("shard 2/3 is not stable: %v then %v", b, a)
	}

	m := newEnv(t)
	merged := filepath.Join(m.dir, "merged")
	stdout, errs, code := m.cli(append([]string{"monitor", "merge", merged}, outs...)...)
	got := readShardReport(t, merged)
	if code != wholeCode || got.Gate != want.Gate || got.Total != want.Total || got.Passing != want.Passing || got.Failing != want.Failing ||
		got.Stale != want.Stale || got.Unproven != want.Unproven || got.Expired != want.Expired || got.NotIsolated != want.NotIsolated {
		t.Fatalf("merged: exit %d (unsharded %d)\n got %+v\nwant %+v\n%s\n%s", code, wholeCode, got, want, stdout, errs)
	}
	if g, w := got.verdicts(), want.verdicts(); strings.Join(g, ",") != strings.Join(w, ",") {
		t.Fatalf("merged verdicts\n got %v\nwant %v", g, w)
	}
	if len(got.Window) != len(want.Window) {
		t.Fatalf("silent failure windows: merged %v, unsharded %v", got.Window, want.Window)
	}
	for class := range want.Window {
		if _, ok := got.Window[class]; !ok {
			t.Fatalf("merged report lacks the %s window: %v", class, got.Window)
		}
	}
	for _, f := range []string{"metrics.prom", "junit.xml", "index.html"} {
		data, err := os.ReadFile(filepath.Join(merged, f))
		if err != nil || len(data) == 0 {
			t.Fatalf("merged %s: %v", f, err)
		}
		for _, v := range want.Results {
			if !strings.Contains(string(data), v.FixtureID) {
				t.Errorf("merged %s does not name %s", f, v.FixtureID)
			}
		}
	}
	promtoolCheck(t, filepath.Join(merged, "metrics.prom"))

	// Bad input: one line each, exit 1.
	bad := newEnv(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"monitor", root, "--shard", "0/3"}, "K must be between 1 and N"},
		{[]string{"monitor", root, "--shard", "4/3"}, "K must be between 1 and N"},
		{[]string{"monitor", root, "--shard", "x"}, "want K/N"},
		{[]string{"monitor", "merge", filepath.Join(bad.dir, "m1"), outs[0], bad.dir}, "no monitor.json"},
		{[]string{"monitor", "merge", filepath.Join(bad.dir, "m2"), outs[0], outs[0], outs[1], outs[2]}, "twice"},
		{[]string{"monitor", "merge", filepath.Join(bad.dir, "m3"), outs[0], outs[2]}, "shard 2/3 is missing"},
		{[]string{"monitor", "merge", filepath.Join(bad.dir, "m4"), wholeOut, wholeOut}, "is in both"},
		{[]string{"monitor", "merge", filepath.Join(bad.dir, "m5"), wholeOut, outs[0]}, "one is a shard"},
		{[]string{"monitor", "merge", filepath.Join(bad.dir, "m6")}, "monitor merge takes an output folder"},
	} {
		stdout, errs, code := bad.cli(tc.args...)
		if code != 1 || !strings.Contains(errs, tc.want) || strings.Count(strings.TrimSpace(errs), "\n") != 0 || strings.Contains(errs, "panic") {
			t.Errorf("%v: exit %d, stderr %q (want one line with %q), stdout %q", tc.args, code, errs, tc.want, stdout)
		}
	}
	if _, err := os.Stat(filepath.Join(bad.dir, "m3")); err == nil {
		t.Error("a refused merge wrote its output folder")
	}
}
