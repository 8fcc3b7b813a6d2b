package main

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// The harness's bodies are valid JSON of exactly the size asked for: the
// proxy redacts them as JSON, as it would a real API's answer.
func TestLLMJSONIsValidJSONOfTheSize(t *testing.T) {
	for _, size := range []int{1 << 10, 50 << 10} {
		b := llmJSON(rand.New(rand.NewPCG(1, 2)), size)
		if len(b) != size || !json.Valid(b) {
			t.Errorf("size %d: got %d bytes, valid JSON %v", size, len(b), json.Valid(b))
		}
	}
}

// TestRoundsKeepEveryP99: a cell keeps its best-throughput round and every
// round's req/s and p99; p99 is their median and both ratios the median of
// the rounds' paired ratios, not the ratio of two unrelated rounds.
func TestRoundsKeepEveryP99(t *testing.T) {
	ms := func(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }
	var r report
	for i, round := range []struct{ refRPS, refP99, recRPS, recP99 float64 }{
		{100, 2.0, 90, 2.2}, // ratio 1.1
		{120, 1.0, 95, 1.9}, // ratio 1.9: the ref's best round had a lucky tail
		{110, 3.0, 99, 3.6}, // ratio 1.2
	} {
		r.add(result{target: "forward ref", work: "w", conc: 16, rps: round.refRPS, p99: ms(round.refP99), errs: int64(i)})
		r.add(result{target: "cassetteproxy record", work: "w", conc: 16, rps: round.recRPS, p99: ms(round.recP99)})
	}
	ref, rec := r.find("forward ref", "w", 16), r.find("cassetteproxy record", "w", 16)
	if ref.rps != 120 || rec.rps != 99 || ref.errs != 3 {
		t.Errorf("best rounds: ref %v req/s (%d errors), record %v req/s; want 120 (3), 99", ref.rps, ref.errs, rec.rps)
	}
	if got := p99Of(ref); got != ms(2.0) {
		t.Errorf("ref p99 %v, want the median 2ms", got)
	}
	if got := p99Of(rec); got != ms(2.2) {
		t.Errorf("record p99 %v, want the median 2.2ms", got)
	}
	if got := p99Ratio(rec, ref); got < 1.199 || got > 1.201 {
		t.Errorf("p99 ratio %.3f, want the median of 1.1, 1.9, 1.2 = 1.2", got)
	}
	// req/s ratios per round: 0.9, 0.79, 0.9; the best rounds' 99/120 = 0.825
	// would compare round 3's record with round 2's ref.
	if got := rpsRatio(rec, ref); got != 0.9 {
		t.Errorf("req/s ratio %.3f, want the median of 0.9, 0.79, 0.9 = 0.9", got)
	}
	if row, ok := r.rpsTarget("cassetteproxy record", "w", 0.85); !ok || !strings.Contains(row, "0.90× (median of the rounds' ratios: 0.90, 0.79, 0.90); best rounds 99 vs 120 req/s = 0.82×") || !strings.HasSuffix(row, "| yes |\n") {
		t.Errorf("target row %q", row)
	}
	if got := median([]float64{4, 1, 3, 2}, func(f float64) float64 { return f }); got != 2.5 {
		t.Errorf("median of an even count %v, want 2.5", got)
	}
}

// TestPairOrderAlternates: the reference goes first in even rounds and
// second in odd ones.
func TestPairOrderAlternates(t *testing.T) {
	ref, ours := &target{name: "ref"}, &target{name: "ours"}
	for round, want := range []string{"ref ours", "ours ref", "ref ours"} {
		got := pairOrder(round, ref, ours)
		if s := got[0].name + " " + got[1].name; s != want {
			t.Errorf("round %d: %s, want %s", round, s, want)
		}
	}
}

// The many-streams scenario's events are what an LLM's SSE answer looks
// like: one "data:" line of valid JSON each, a blank line after it.
func TestStreamBodyIsEvents(t *testing.T) {
	body := string(streamBody(100))
	events := strings.Split(strings.TrimSuffix(body, "\n\n"), "\n\n")
	if len(events) != 100 {
		t.Fatalf("%d events, want 100", len(events))
	}
	for i, e := range events {
		data, ok := strings.CutPrefix(e, "data: ")
		if !ok || strings.Contains(data, "\n") || !json.Valid([]byte(data)) {
			t.Fatalf("event %d: %q", i, e)
		}
	}
}
