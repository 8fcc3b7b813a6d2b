// Package prometheus_test checks the shipped alerting rules with
// Prometheus's own promtool: they load, their unit tests pass, and every
// metric they name is one cassetteproxy writes.
package prometheus_test

import (
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/cassetteproxy/cassetteproxy/fixtures"
	"github.com/cassetteproxy/cassetteproxy/match"
	"github.com/cassetteproxy/cassetteproxy/proxy"
	"github.com/cassetteproxy/cassetteproxy/redact"
	"github.com/cassetteproxy/cassetteproxy/runner"
)

const rulesFile = "cassetteproxy-rules.yml"

// metricsFromProxy stands for a proxy's GET /metrics among the files read.
const metricsFromProxy = "GET /metrics"

var testFiles = []string{"cassetteproxy-rules.test.yml", "cassetteproxy-rules-chronic.test.yml"}

// proxyMetrics is what a proxy serves on its own GET /metrics (the
// recording proxy's own metrics, which the monitor and drift reports do
// not write).
func proxyMetrics(t *testing.T) []byte {
	t.Helper()
	ca, err := proxy.LoadOrCreateCA(filepath.Join(t.TempDir(), "home"))
	if err != nil {
		t.Fatal(err)
	}
	red, err := redact.New(redact.Config{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := proxy.New(proxy.Config{Mode: proxy.ModeReplay, Cassette: "c", Rules: match.DefaultRules(), Redactor: red, CA: ca})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", proxy.MetricsPath, nil))
	return rec.Body.Bytes()
}

func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is not installed (.ci/run installs Debian's prometheus package)")
		}
		t.Skip("promtool not installed: the alerting rules are not checked")
	}
	return p
}

func TestRulesCheckAndUnitTests(t *testing.T) {
	bin := promtool(t)
	for _, args := range [][]string{{"check", "rules", rulesFile}, append([]string{"test", "rules"}, testFiles...)} {
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("promtool %v: %v\n%s", args, err, out)
		}
	}
}

// TestRulesNameWrittenMetrics: a metric renamed in the code, or misspelt
// in the rules, would leave an alert that can never fire.
func TestRulesNameWrittenMetrics(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	rep := &fixtures.Report{GeneratedAt: now, Gate: "pass", SilentFailureWindowMinutes: map[string]float64{"empty_output": 1},
		Results: []fixtures.Verdict{{FixtureID: "f", Tier: "critical", Status: runner.StatusPassed}}}
	if err := fixtures.WriteReport(dir, rep); err != nil {
		t.Fatal(err)
	}
	if err := fixtures.WriteDrift(dir, fixtures.NewDriftReport(now, []fixtures.DriftFixture{{FixtureID: "f"}})); err != nil {
		t.Fatal(err)
	}
	var written []string
	for _, f := range []string{"metrics.prom", "drift.prom", metricsFromProxy} {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if f == metricsFromProxy {
			data, err = proxyMetrics(t), nil
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`(?m)^# TYPE (\S+)`).FindAllSubmatch(data, -1) {
			written = append(written, string(m[1]))
		}
	}
	rules, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	used := regexp.MustCompile(`\bcassetteproxy_[a-z_]+`).FindAllString(string(rules), -1)
	if len(used) < 8 {
		t.Fatalf("only %d metric names in %s", len(used), rulesFile)
	}
	for _, m := range used {
		if !slices.Contains(written, m) {
			t.Errorf("%s names %s, which nothing writes (written: %v)", rulesFile, m, written)
		}
	}
}
