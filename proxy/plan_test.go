package proxy

import (
	"testing"

	"github.com/cassetteproxy/cassetteproxy/match"
)

func TestPlanFor(t *testing.T) {
	rulesWith := func(mode string) *match.Rules {
		t.Helper()
		r, err := match.ParseRules([]byte("rules:\n  - host: tools.test\n    mode: " + mode + "\n"))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	cases := []struct {
		mode  Mode
		rules *match.Rules
		want  Plan
	}{
		{ModeRecord, nil, Plan{Records: true}},
		{ModeRecord, match.DefaultRules(), Plan{Records: true}},
		{ModeRecord, rulesWith("record"), Plan{Records: true}},
		{ModeRecord, rulesWith("strict"), Plan{Records: true, Replays: true}},
		{ModeLive, nil, Plan{Records: true, Replays: true}},
		{ModeReplay, nil, Plan{Replays: true}},
		{ModeStrict, match.DefaultRules(), Plan{Replays: true}},
		{ModeStrict, rulesWith("live"), Plan{Records: true, Replays: true}},
		{ModeReplay, rulesWith("record"), Plan{Records: true, Replays: true}},
	}
	for _, c := range cases {
		if got := PlanFor(c.mode, c.rules); got != c.want {
			t.Errorf("PlanFor(%s, %v) = %+v, want %+v", c.mode, c.rules.Modes(), got, c.want)
		}
	}
}
