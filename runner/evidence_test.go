package runner

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cassetteproxy/cassetteproxy/match"
	"github.com/cassetteproxy/cassetteproxy/proxy"
	"github.com/cassetteproxy/cassetteproxy/redact"
	"github.com/cassetteproxy/cassetteproxy/store"
)

// TestEvidenceChecks: artifact events, claims and side effects, each
// failing and passing, with reasons that name the event and the check.
func TestEvidenceChecks(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "report.json"), []byte(`{"ok":true}`), 0o644)
	os.WriteFile(filepath.Join(dir, "empty.json"), nil, 0o644)
	at := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	one := 1
	call := func(method, url, decision string, status int) store.RunCall {
		return store.RunCall{At: at, Method: method, URL: url, Decision: decision, Status: status}
	}
	send := store.SideEffect{Method: "POST", URL: "https://api.example.com/v1/messages*", Min: &one, Max: &one}
	sent := call("POST", "https://api.example.com/v1/messages", proxy.DecisionRecorded, 200)
	tests := []struct {
		name      string
		events    []store.RunEvent
		calls     []store.RunCall
		omitted   int
		artifacts []Artifact
		effects   []store.SideEffect
		status    string // "" passes
		class     string
		reasonHas []string
	}{
		{name: "artifact event, file there", events: []store.RunEvent{{Seq: 1, Kind: "artifact", Path: "report.json"}}},
		{name: "artifact event, file missing", events: []store.RunEvent{{Seq: 3, Kind: "artifact", Path: "out/none.json"}},
			status: StatusFailed, class: ClassMissingArtifact, reasonHas: []string{"artifact event #3", "out/none.json", "check event_artifacts"}},
		{name: "artifact event, file empty", events: []store.RunEvent{{Seq: 2, Kind: "artifact", Path: "empty.json"}},
			status: StatusFailed, class: ClassEmptyOutput, reasonHas: []string{"artifact event #2", "empty file", "check event_artifacts"}},
		{name: "artifact ref is not a file", events: []store.RunEvent{{Seq: 1, Kind: "artifact", Ref: "msg-123"}}},
		{name: "claim without any artifact", events: []store.RunEvent{{Seq: 1, Kind: "checkpoint", Name: "x"}, {Seq: 2, Kind: "claim", Status: "done"}},
			status: StatusFailed, class: ClassMissingArtifact, reasonHas: []string{"claim #2 (done)", "no artifact", "check claims"}},
		{name: "claim backed by an artifact event", events: []store.RunEvent{{Seq: 1, Kind: "artifact", Path: "report.json"}, {Seq: 2, Kind: "claim", Status: "done"}}},
		{name: "claim backed by a ref", events: []store.RunEvent{{Seq: 1, Kind: "artifact", Ref: "row:7"}, {Seq: 2, Kind: "claim", Status: "done", ArtifactRefs: []string{"row:7"}}}},
		{name: "claim backed by --artifact", events: []store.RunEvent{{Seq: 1, Kind: "claim", Status: "done"}},
			artifacts: []Artifact{{Path: filepath.Join(dir, "report.json"), Exists: true, Size: 11}}},
		{name: "claim backed by a missing artifact event", events: []store.RunEvent{{Seq: 1, Kind: "artifact", Path: "gone.json"}, {Seq: 2, Kind: "claim", Status: "done"}},
			status: StatusFailed, class: ClassMissingArtifact, reasonHas: []string{"artifact event #1"}},
		{name: "claim names a file that is there", events: []store.RunEvent{{Seq: 1, Kind: "claim", Status: "done", ArtifactRefs: []string{"report.json"}}}},
		{name: "claim names an unknown ref", events: []store.RunEvent{{Seq: 1, Kind: "artifact", Ref: "row:7"}, {Seq: 2, Kind: "claim", Status: "done", ArtifactRefs: []string{"row:8"}}},
			status: StatusFailed, class: ClassMissingArtifact, reasonHas: []string{"claim #2 (done) names artifact row:8", "check claims"}},
		{name: "claim names an empty file", events: []store.RunEvent{{Seq: 1, Kind: "claim", Status: "done", ArtifactRefs: []string{"empty.json"}}},
			status: StatusFailed, class: ClassMissingArtifact, reasonHas: []string{"empty.json"}},
		{name: "claimed side effect answered", calls: []store.RunCall{sent},
			events: []store.RunEvent{{Seq: 1, Kind: "artifact", Ref: "m1"}, {Seq: 2, Kind: "claim", Status: "done", SideEffects: []store.SideEffect{{Method: "POST", URL: "https://api.example.com/v1/*"}}}}},
		{name: "claimed side effect never made", calls: []store.RunCall{call("GET", "https://api.example.com/v1/messages", proxy.DecisionRecorded, 200)},
			events: []store.RunEvent{{Seq: 1, Kind: "artifact", Ref: "m1"}, {Seq: 2, Kind: "claim", Status: "done", SideEffects: []store.SideEffect{{Method: "POST", URL: "https://api.example.com/v1/*"}}}},
			status: StatusFailed, class: ClassSideEffectUnconfirmed, reasonHas: []string{"claim #2 (done) says POST https://api.example.com/v1/*", "0 answered", "check claims"}},
		{name: "claimed side effect blocked", calls: []store.RunCall{call("POST", "https://api.example.com/v1/messages", proxy.DecisionBlocked, 403)},
			events: []store.RunEvent{{Seq: 1, Kind: "artifact", Ref: "m1"}, {Seq: 2, Kind: "claim", Status: "done", SideEffects: []store.SideEffect{{Method: "POST", URL: "https://api.example.com/v1/*"}}}},
			status: StatusFailed, class: ClassSideEffectUnconfirmed},
		{name: "side effect blocked, even answered 200 (--blocked-status 200)", calls: []store.RunCall{call("POST", "https://api.example.com/v1/messages", proxy.DecisionBlocked, 200)},
			effects: []store.SideEffect{send}, status: StatusFailed, class: ClassSideEffectUnconfirmed},
		{name: "side effect once", calls: []store.RunCall{sent}, effects: []store.SideEffect{send}},
		{name: "side effect replayed counts", calls: []store.RunCall{call("POST", "https://api.example.com/v1/messages", proxy.DecisionReplayed, 201)}, effects: []store.SideEffect{send}},
		{name: "side effect missing", effects: []store.SideEffect{send},
			status: StatusFailed, class: ClassSideEffectUnconfirmed, reasonHas: []string{"--side-effect wants POST https://api.example.com/v1/messages* (2xx) at least 1", "check side_effects"}},
		{name: "side effect failed upstream", calls: []store.RunCall{call("POST", "https://api.example.com/v1/messages", proxy.DecisionRecorded, 500)}, effects: []store.SideEffect{send},
			status: StatusFailed, class: ClassSideEffectUnconfirmed},
		{name: "side effect twice", calls: []store.RunCall{sent, sent}, effects: []store.SideEffect{send},
			status: StatusFailed, class: ClassSideEffectDuplicated, reasonHas: []string{"at most 1", "2 answered requests match", "POST https://api.example.com/v1/messages → 200 at 12:00:00.000"}},
		{name: "side effect past the kept requests", omitted: 7, effects: []store.SideEffect{send},
			status: StatusInconclusive, class: ClassSideEffectUnconfirmed, reasonHas: []string{"7 after them were not kept"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := &Evidence{Dir: dir, Events: tt.events, Calls: tt.calls, CallsOmitted: tt.omitted, Artifacts: tt.artifacts}
			checks := []Check{EventArtifactsCheck{}, ClaimsCheck{}, SideEffectsCheck{Source: "--side-effect", Specs: tt.effects}}
			var fails []Failure
			for _, c := range checks {
				fails = append(fails, c.Check(ev)...)
			}
			status, primary := Verdict(fails)
			want := tt.status
			if want == "" {
				want = StatusPassed
			}
			if status != want || primary.Class != tt.class {
				t.Fatalf("got %s/%s, want %s/%s: %+v", status, primary.Class, want, tt.class, fails)
			}
			for _, s := range tt.reasonHas {
				if !strings.Contains(primary.Reason, s) {
					t.Errorf("reason %q does not say %q", primary.Reason, s)
				}
			}
		})
	}
}

// TestDefaultChecksJudgeEvents: every run's checks include the agent's
// artifact events and claims.
func TestDefaultChecksJudgeEvents(t *testing.T) {
	ev := &Evidence{Dir: t.TempDir(), Events: []store.RunEvent{{Seq: 1, Kind: "artifact", Path: "none.json"}, {Seq: 2, Kind: "claim", Status: "done"}}}
	var got []string
	for _, c := range DefaultChecks() {
		for _, f := range c.Check(ev) {
			got = append(got, c.Name()+":"+f.Class)
		}
	}
	if strings.Join(got, ",") != "event_artifacts:missing_artifact_ref,claims:missing_artifact_ref" {
		t.Errorf("default checks found %v", got)
	}
}

// TestHostNotAllowedFailsTheRun: a request blocked host_not_allowed fails
// a run that otherwise succeeded, in every mode; other blocks do not.
func TestHostNotAllowedFailsTheRun(t *testing.T) {
	for _, mode := range match.Modes {
		ev := &Evidence{Mode: mode, Blocked: []Request{
			{Method: "GET", URL: "https://evil.test/x", Reason: proxy.ReasonHostNotAllowed},
			{Method: "GET", URL: "https://ok.test/y", Reason: proxy.ReasonUnrecorded}}}
		fails := ProxyCheck{}.Check(ev)
		if len(fails) == 0 || fails[0].Class != ClassHostNotAllowed || fails[0].Status != StatusFailed || !strings.Contains(fails[0].Reason, "evil.test") {
			t.Errorf("%s: %+v", mode, fails)
		}
		for _, f := range fails {
			if strings.Contains(f.Reason, "evil.test") && f.Class != ClassHostNotAllowed {
				t.Errorf("%s: the host block also counted as %s", mode, f.Class)
			}
		}
	}
	obs := NewObserver()
	obs.Observe(proxy.Outcome{Method: "GET", URL: "https://evil.test/x", Decision: proxy.DecisionBlocked, Reason: proxy.ReasonHostNotAllowed})
	var ev Evidence
	obs.fill(&ev)
	if len(ev.Misses) != 0 || len(ev.Blocked) != 1 {
		t.Errorf("a host block counted as a miss: %+v", ev)
	}
}

// TestObserverEvents: events are refused before the run is open and after
// it closed, numbered in order, committed before they count, and bounded.
// TestBlocksFailAsThePolicySays: a run that otherwise succeeded fails on
// one blocked request exactly when the mode's policy says that block fails
// the run, for every blocking cell of every mode.
func TestBlocksFailAsThePolicySays(t *testing.T) {
	for _, mode := range match.Modes {
		pol := proxy.PolicyFor(mode)
		for _, r := range pol.On {
			if r.Action != proxy.Block {
				continue
			}
			ev := &Evidence{Mode: mode, Blocked: []Request{{Method: "GET", URL: "https://tool.test/x", Reason: r.Reason}}}
			fails := ProxyCheck{}.Check(ev)
			if failed := len(fails) > 0 && fails[0].Status == StatusFailed; failed != pol.FailsRun(r.Reason) {
				t.Errorf("%s, blocked %s: failures %+v, want the run failed: %v", mode, r.Reason, fails, pol.FailsRun(r.Reason))
			}
		}
	}
}

func TestObserverEvents(t *testing.T) {
	obs := NewObserver()
	if _, err := obs.Event(store.RunEvent{Kind: "note", Name: "early"}); !errors.Is(err, proxy.ErrNoRunOpen) {
		t.Fatalf("before the run: %v", err)
	}
	st := newMemStore()
	obs.openEvents(st, "r1")
	for i := 1; i <= 3; i++ {
		seq, err := obs.Event(store.RunEvent{Kind: "note", Name: "n"})
		if err != nil || seq != i {
			t.Fatalf("event %d: seq %d, %v", i, seq, err)
		}
	}
	st.fail = errors.New("disk full")
	if _, err := obs.Event(store.RunEvent{Kind: "note", Name: "lost"}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("a store failure: %v", err)
	}
	st.fail = nil
	if seq, err := obs.Event(store.RunEvent{Kind: "note", Name: "after"}); err != nil || seq != 4 {
		t.Fatalf("an event that was not committed took a number: seq %d, %v", seq, err)
	}
	if _, err := obs.Event(store.RunEvent{Kind: "note", Data: make([]byte, MaxRunEventData)}); !errors.Is(err, proxy.ErrEventLimit) {
		t.Fatalf("over the byte limit: %v", err)
	}
	obs.closeEvents()
	if _, err := obs.Event(store.RunEvent{Kind: "note", Name: "late"}); !errors.Is(err, proxy.ErrRunClosed) {
		t.Fatalf("after the run: %v", err)
	}
	var seqs []int
	for _, e := range st.events["r1"] {
		seqs = append(seqs, e.Seq)
		if e.At.IsZero() {
			t.Errorf("event %d has no time", e.Seq)
		}
	}
	if len(seqs) != 4 || seqs[0] != 1 || seqs[3] != 4 {
		t.Errorf("stored sequence numbers %v", seqs)
	}
}

// TestRunTakesEvents: a child posts events to a real proxy while it runs;
// they reach the store and the record (state_refs, artifact_refs, the
// timeline's requests), drive the verdict, and are refused once the run
// is over.
func TestRunTakesEvents(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed")
	}
	ca, err := proxy.LoadOrCreateCA(filepath.Join(t.TempDir(), "home"))
	if err != nil {
		t.Fatal(err)
	}
	red, _ := redact.New(redact.Config{})
	obs := NewObserver()
	srv, err := proxy.New(proxy.Config{Mode: proxy.ModeReplay, Cassette: "t", Rules: match.DefaultRules(), Redactor: red, CA: ca,
		Logger: slog.New(slog.DiscardHandler), RunID: "run-events", Observe: obs.Observe, Events: obs.Event})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Shutdown(context.Background())
	url := proxy.SelfURL(ln.Addr().String())

	st := newMemStore()
	spec := shSpec(t, st, `
post() { curl -s -o /dev/null -w '%{http_code}\n' -H 'Content-Type: application/json' --data "$1" "$CASSETTEPROXY_URL/_cassetteproxy/v1/events"; }
post '{"kind":"state_ref","ref":"row:42"}'
echo data > out.txt
post '{"kind":"artifact","path":"out.txt"}'
post '{"kind":"artifact","ref":"msg-9"}'
curl -s -o /dev/null -x "$CASSETTEPROXY_URL" http://tool.test/unrecorded
post '{"kind":"claim","status":"done","side_effects":["POST http://tool.test/send"]}'`)
	spec.Env = append(spec.Env, "CASSETTEPROXY_URL="+url)
	spec.Observer = obs
	spec.Record = store.Run{RunID: "run-events", StateRefs: []string{"given"}}
	spec.Mode = "replay"
	res, err := Run(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	rec := res.Record
	if rec.Status != StatusFailed || rec.FailureClass != ClassSideEffectUnconfirmed {
		t.Fatalf("verdict %s/%s, want failed/side_effect_unconfirmed: %+v", rec.Status, rec.FailureClass, rec.Reasons)
	}
	if got := strings.Join(rec.StateRefs, ","); got != "given,row:42" {
		t.Errorf("state_refs %s", got)
	}
	if got := strings.Join(rec.ArtifactRefs, ","); got != filepath.Join(res.Evidence.Dir, "out.txt")+",msg-9" {
		t.Errorf("artifact_refs %s", got)
	}
	if len(rec.Calls) != 1 || rec.Calls[0].URL != "http://tool.test/unrecorded" || rec.Calls[0].Decision != proxy.DecisionBlocked {
		t.Errorf("calls %+v", rec.Calls)
	}
	var kinds []string
	for _, e := range st.events["run-events"] {
		kinds = append(kinds, e.Kind)
	}
	if got := strings.Join(kinds, ","); got != "state_ref,artifact,artifact,claim" {
		t.Errorf("stored events %s", got)
	}
	if _, err := obs.Event(store.RunEvent{Kind: "note", Name: "late"}); !errors.Is(err, proxy.ErrRunClosed) {
		t.Errorf("an event after the run: %v", err)
	}
}
