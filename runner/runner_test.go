package runner

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cassetteproxy/cassetteproxy/internal/testeq"
	"github.com/cassetteproxy/cassetteproxy/match"
	"github.com/cassetteproxy/cassetteproxy/proxy"
	"github.com/cassetteproxy/cassetteproxy/store"
)

// memStore keeps every record written, in order.
type memStore struct {
	mu     sync.Mutex
	puts   []store.Run
	runs   map[string]store.Run
	fail   error
	hook   func(store.Run)
	events map[string][]store.RunEvent
}

func newMemStore() *memStore { return &memStore{runs: map[string]store.Run{}} }

func (m *memStore) PutRun(r store.Run) error {
	if m.hook != nil {
		m.hook(r)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	m.puts = append(m.puts, r)
	m.runs[r.RunID] = r
	return nil
}

func (m *memStore) AppendRunEvent(id string, ev store.RunEvent) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	if m.events == nil {
		m.events = map[string][]store.RunEvent{}
	}
	m.events[id] = append(m.events[id], ev)
	return nil
}

func (m *memStore) ListRuns() ([]store.Run, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.Run
	for _, r := range m.runs {
		out = append(out, r)
	}
	return out, nil
}

func (m *memStore) UpdateRun(id string, fn func(*store.Run) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.runs[id]
	if !ok {
		return store.ErrNoRun
	}
	if err := fn(&r); err != nil {
		return err
	}
	m.runs[id] = r
	return nil
}

func shSpec(t *testing.T, st *memStore, script string) Spec {
	return Spec{
		Argv:         []string{"sh", "-c", script},
		Dir:          t.TempDir(),
		Env:          []string{"PATH=" + os.Getenv("PATH")},
		Store:        st,
		ProcessGroup: true,
		KillGrace:    2 * time.Second,
	}
}

func TestRunVerdicts(t *testing.T) {
	tests := []struct {
		name      string
		script    string
		mode      string
		artifacts []string
		timeout   time.Duration
		observe   []proxy.Outcome
		checks    []Check
		lost      int // recordings Drain reports lost
		status    string
		class     string
		exit      int // Result.ExitCode
		reasons   int
		isolated  bool
	}{
		{name: "exit 0 passes", script: "exit 0", status: StatusPassed, exit: 0},
		{name: "exit 4 is nonzero_exit", script: "exit 4", status: StatusFailed, class: ClassNonzeroExit, exit: 4, reasons: 1},
		{name: "killed by signal", script: "kill -KILL $$", status: StatusFailed, class: ClassNonzeroExit, exit: 128 + 9, reasons: 1},
		{name: "artifact written", script: "echo hi > out.txt", artifacts: []string{"out.txt"}, status: StatusPassed},
		{name: "artifact glob", script: "mkdir o && echo 1 > o/a.json && echo 2 > o/b.json", artifacts: []string{"o/*.json"}, status: StatusPassed},
		{name: "artifact missing", script: "exit 0", artifacts: []string{"out.txt"}, status: StatusFailed, class: ClassMissingArtifact, exit: 3, reasons: 1},
		{name: "artifact empty", script: ": > out.txt", artifacts: []string{"out.txt"}, status: StatusFailed, class: ClassEmptyOutput, exit: 3, reasons: 1},
		{name: "empty folder", script: "mkdir out", artifacts: []string{"out"}, status: StatusFailed, class: ClassEmptyOutput, exit: 3, reasons: 1},
		{name: "missing and empty", script: ": > a", artifacts: []string{"a", "b"}, status: StatusFailed, class: ClassMissingArtifact, exit: 3, reasons: 2},
		{name: "timeout", script: "exec sleep 30", timeout: 50 * time.Millisecond, status: StatusFailed, class: ClassTimeout, exit: 128 + 15, reasons: 1},
		// the timer cannot wait for the child, and a SIGTERM before its trap
		// ends it (143): the timeout leaves a loaded machine time to start sh
		{name: "timeout, SIGTERM ignored", script: "trap '' TERM; while :; do sleep 0.05; done", timeout: 2 * time.Second, status: StatusFailed, class: ClassTimeout, exit: 128 + 9, reasons: 1},
		{name: "strict miss", script: "exit 0", mode: "strict",
			observe: []proxy.Outcome{{Method: "GET", URL: "https://h/x", Host: "h", Decision: proxy.DecisionBlocked, Reason: proxy.ReasonUnrecorded}},
			status:  StatusFailed, class: ClassUnrecordedRequest, exit: 3, reasons: 1},
		{name: "strict mutation first", script: "exit 0", mode: "strict",
			observe: []proxy.Outcome{
				{Method: "POST", URL: "https://h/y", Host: "h", Decision: proxy.DecisionBlocked, Reason: proxy.ReasonMutation},
				{Method: "GET", URL: "https://h/x", Host: "h", Decision: proxy.DecisionBlocked, Reason: proxy.ReasonUnrecorded}},
			status: StatusFailed, class: ClassMutationBlocked, exit: 3, reasons: 2},
		{name: "strict miss and exit 1", script: "exit 1", mode: "strict",
			observe: []proxy.Outcome{{Method: "GET", URL: "https://h/x", Host: "h", Decision: proxy.DecisionBlocked, Reason: proxy.ReasonHostNotRecorded}},
			status:  StatusFailed, class: ClassUnrecordedRequest, exit: 1, reasons: 2},
		{name: "replay miss, child fine", script: "exit 0", mode: "replay",
			observe: []proxy.Outcome{{Method: "GET", URL: "https://h/x", Host: "h", Decision: proxy.DecisionBlocked, Reason: proxy.ReasonUnrecorded}},
			status:  StatusPassed},
		{name: "replay miss, child failed", script: "exit 2", mode: "replay",
			observe: []proxy.Outcome{{Method: "GET", URL: "https://h/x", Host: "h", Decision: proxy.DecisionBlocked, Reason: proxy.ReasonUnrecorded}},
			status:  StatusBlocked, class: ClassUnrecordedRequest, exit: 2, reasons: 2},
		{name: "live mutation, no artifact", script: "exit 0", mode: "live", artifacts: []string{"x"},
			observe: []proxy.Outcome{{Method: "POST", URL: "https://h/y", Host: "h", Decision: proxy.DecisionBlocked, Reason: proxy.ReasonMutation}},
			status:  StatusBlocked, class: ClassMutationBlocked, exit: 3, reasons: 2},
		{name: "expired blocked, replay mode, child fine", script: "exit 0", mode: "replay",
			observe: []proxy.Outcome{{Method: "GET", URL: "https://h/x", Host: "h", Decision: proxy.DecisionBlocked, Reason: proxy.ReasonExpired}},
			status:  StatusFailed, class: ClassExpired, exit: 3, reasons: 1},
		{name: "expired blocked before a strict miss", script: "exit 0", mode: "strict",
			observe: []proxy.Outcome{
				{Method: "GET", URL: "https://h/y", Host: "h", Decision: proxy.DecisionBlocked, Reason: proxy.ReasonUnrecorded},
				{Method: "GET", URL: "https://h/x", Host: "h", Decision: proxy.DecisionBlocked, Reason: proxy.ReasonExpired}},
			status: StatusFailed, class: ClassExpired, exit: 3, reasons: 2},
		{name: "expired served with a warning passes", script: "exit 0", mode: "replay",
			observe: []proxy.Outcome{{Method: "GET", URL: "https://h/x", Host: "h", Decision: proxy.DecisionReplayed, Reason: proxy.ReasonExpired}},
			status:  StatusPassed},
		{name: "extra check", script: "exit 0",
			checks: []Check{CheckFunc{"contract", func(*Evidence) []Failure { return []Failure{{StatusFailed, "contract_violation", "no"}} }}},
			status: StatusFailed, class: "contract_violation", exit: 3, reasons: 1},
		{name: "extra check panics", script: "exit 0",
			checks: []Check{CheckFunc{"bad", func(*Evidence) []Failure { panic("oops") }}},
			status: StatusInconclusive, class: "check_error", exit: 3, reasons: 1},
		{name: "command not found", status: StatusFailed, class: ClassNonzeroExit, exit: 127, reasons: 1},
		{name: "recording lost", script: "exit 0", mode: "record", lost: 3, status: StatusDegraded, class: ClassRecordingLost, exit: 3, reasons: 1},
		{name: "recording lost, command failed", script: "exit 4", mode: "record", lost: 1, status: StatusFailed, class: ClassNonzeroExit, exit: 4, reasons: 2},
		{name: "recording lost, a later check failed", script: "exit 0", mode: "record", lost: 1,
			checks: []Check{CheckFunc{"contract", func(*Evidence) []Failure { return []Failure{{StatusFailed, "contract_violation", "no"}} }}},
			status: StatusFailed, class: "contract_violation", exit: 3, reasons: 2},
	}
	for _, tc := range tests { // the same verdicts in a network namespace of its own
		tc.name, tc.isolated = tc.name+" (isolated)", true
		tests = append(tests, tc)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := newMemStore()
			spec := shSpec(t, st, tc.script)
			if strings.HasPrefix(tc.name, "command not found") {
				spec.Argv = []string{"no-such-command-xyz"}
			}
			if tc.isolated {
				spec.Isolate = isolation(t)
			}
			spec.Mode, spec.Artifacts, spec.Timeout, spec.Checks = match.Mode(tc.mode), tc.artifacts, tc.timeout, tc.checks
			spec.KillGrace = testGrace(tc.script)
			spec.Observer = NewObserver()
			if tc.lost > 0 {
				spec.Drain = func() (int, string) { return tc.lost, "write cassettes.db: no space left on device" }
			}
			for _, o := range tc.observe {
				spec.Observer.Observe(o)
			}
			res, err := Run(context.Background(), spec)
			if err != nil {
				t.Fatal(err)
			}
			rec := res.Record
			if res.Status != tc.status || rec.Status != tc.status || rec.FailureClass != tc.class || res.ExitCode != tc.exit {
				t.Fatalf("got status %s class %q exit %d, want %s %q %d; reasons %+v", rec.Status, rec.FailureClass, res.ExitCode, tc.status, tc.class, tc.exit, rec.Reasons)
			}
			if len(rec.Reasons) != tc.reasons {
				t.Fatalf("reasons %+v, want %d", rec.Reasons, tc.reasons)
			}
			if rec.RecordingsLost != tc.lost {
				t.Fatalf("recordings_lost %d, want %d", rec.RecordingsLost, tc.lost)
			}
			if rec.ClosedAt == nil || rec.ExitCode == nil {
				t.Fatal("record not closed")
			}
			if rec.Isolated != tc.isolated {
				t.Fatalf("record isolated: %v", rec.Isolated)
			}
			if first := st.puts[0]; first.Status != store.RunStatusRunning || first.ClosedAt != nil {
				t.Fatalf("first write is not an open record: %+v", first)
			}
			if last := st.puts[len(st.puts)-1]; !testeq.Run(last, rec) {
				t.Fatalf("last write differs from the result")
			}
			for _, a := range rec.ArtifactRefs {
				if !filepath.IsAbs(a) {
					t.Fatalf("artifact ref %q not absolute", a)
				}
			}
		})
	}
}

func TestRunRecordOpenBeforeChild(t *testing.T) {
	st := newMemStore()
	spec := shSpec(t, st, "echo started > marker")
	marker := filepath.Join(spec.Dir, "marker")
	sawOpen := false
	st.hook = func(r store.Run) {
		if r.Status == store.RunStatusRunning && !sawOpen {
			if _, err := os.Stat(marker); err == nil {
				t.Error("the child started before the record was written")
			}
			sawOpen = true
		}
	}
	spec.Record = store.Run{TaskID: "t1", AgentName: "a", Model: "m", PromptVersion: "p", CodeVersion: "c", FixtureID: "f", RunType: RunTypeReplay}
	inFile := filepath.Join(spec.Dir, "input.json")
	os.WriteFile(inFile, []byte("{}"), 0o644)
	spec.InputFile = "input.json"
	spec.Timeout = time.Minute
	res, err := Run(context.Background(), spec)
	if err != nil || !sawOpen {
		t.Fatalf("err %v, open record seen %v", err, sawOpen)
	}
	r := res.Record
	const sha = "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
	if r.RunID == "" || r.RunType != RunTypeReplay || r.TaskID != "t1" || r.FixtureID != "f" || r.Attempt != 1 || r.InputSHA256 != sha || r.TimeoutSeconds != 60 || r.Dir != spec.Dir {
		t.Fatalf("record fields: %+v", r)
	}
}

func TestRunBadSpec(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Spec)
		want string
	}{
		{"no command", func(s *Spec) { s.Argv = nil }, "no command"},
		{"no store", func(s *Spec) { s.Store = nil }, "Store"},
		{"missing input", func(s *Spec) { s.InputFile = "nope.json" }, "--input"},
		{"bad glob", func(s *Spec) { s.Artifacts = []string{"[x"} }, "bad glob"},
		{"bad dir", func(s *Spec) { s.Dir = "/no/such/dir" }, "not a folder"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := newMemStore()
			spec := shSpec(t, st, "exit 0")
			tc.edit(&spec)
			_, err := Run(context.Background(), spec)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
			if len(st.puts) != 0 {
				t.Fatal("a bad spec must not write a record")
			}
		})
	}
	st := newMemStore()
	st.fail = errors.New("disk full")
	if _, err := Run(context.Background(), shSpec(t, st, "exit 0")); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("store failure: %v", err)
	}
}

// waitFile waits for a file the child writes.
func waitFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("%s never appeared", path)
}

// testGrace is the kill grace for a test child. A child that ends on
// SIGTERM gets a grace it never reaches even on a loaded machine: a short
// one lets SIGKILL overtake a SIGTERM the child is still handling, and the
// exit code turns 137. Only a child that ignores SIGTERM waits the grace
// out, so it alone gets a short one.
func testGrace(script string) time.Duration {
	if strings.Contains(script, "trap '' TERM") {
		return 200 * time.Millisecond
	}
	return time.Minute
}

func TestRunInterrupt(t *testing.T) {
	tests := []struct {
		name   string
		script string
		cancel bool // ctx instead of a signal
		status string
		class  string
		exit   int
		group  bool
		iso    bool
	}{
		{"SIGTERM kills the child", "echo up > ready; exec sleep 30", false, StatusFailed, ClassNonzeroExit, 128 + 15, true, false},
		{"child exits 0 on SIGTERM", "trap 'exit 0' TERM; echo up > ready; while :; do sleep 0.02; done", false, StatusFailed, ClassInterrupted, 3, true, false},
		{"child ignores SIGTERM", "trap '' TERM; echo up > ready; while :; do sleep 0.02; done", false, StatusFailed, ClassNonzeroExit, 128 + 9, true, false},
		{"context cancelled", "echo up > ready; exec sleep 30", true, StatusFailed, ClassNonzeroExit, 128 + 15, true, false},
		{"no process group, child exits 0 on SIGTERM", "trap 'exit 0' TERM; echo up > ready; while :; do sleep 0.02; done", false, StatusFailed, ClassInterrupted, 3, false, false},
		{"no process group, child ignores SIGTERM", "trap '' TERM; echo up > ready; while :; do sleep 0.02; done", false, StatusFailed, ClassNonzeroExit, 128 + 9, false, false},
	}
	for _, tc := range tests { // the same in a network namespace of its own
		tc.name, tc.iso = tc.name+" (isolated)", true
		tests = append(tests, tc)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := newMemStore()
			spec := shSpec(t, st, tc.script)
			spec.ProcessGroup = tc.group
			if tc.iso {
				spec.Isolate = isolation(t)
			}
			spec.KillGrace = testGrace(tc.script)
			sigs := make(chan os.Signal, 1)
			spec.Signals = sigs
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() {
				waitFile(t, filepath.Join(spec.Dir, "ready"))
				if tc.cancel {
					cancel()
				} else {
					sigs <- syscall.SIGTERM
				}
			}()
			res, err := Run(ctx, spec)
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != tc.status || res.Record.FailureClass != tc.class || res.ExitCode != tc.exit {
				t.Fatalf("got %s %s %d; want %s %s %d (%+v)", res.Status, res.Record.FailureClass, res.ExitCode, tc.status, tc.class, tc.exit, res.Record.Reasons)
			}
			if res.Evidence.Interrupted == "" {
				t.Fatal("not marked interrupted")
			}
		})
	}
}

func TestRunEnvAndFlush(t *testing.T) {
	st := newMemStore()
	spec := shSpec(t, st, `echo "$CASSETTEPROXY_RUN_ID $HTTPS_PROXY" > env.txt; while [ ! -f go ]; do sleep 0.01; done`)
	spec.Env = ChildEnv(append(spec.Env, "HTTPS_PROXY=old", "KEEP=1"), [][2]string{{"HTTPS_PROXY", "http://p"}})
	spec.FlushEvery = 5 * time.Millisecond
	spec.Observer = NewObserver()
	done := make(chan Result)
	go func() {
		res, err := Run(context.Background(), spec)
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	waitFile(t, filepath.Join(spec.Dir, "env.txt"))
	spec.Observer.Observe(proxy.Outcome{Method: "POST", URL: "https://api.openai.com/v1/chat/completions", Host: "api.openai.com:443", Decision: proxy.DecisionRecorded, Body: []byte(`{"model": "gpt-4o", "messages": []}`)})
	// the open record gains what the proxy saw, before the child ends
	deadline := time.Now().Add(10 * time.Second)
	for {
		st.mu.Lock()
		last := st.puts[len(st.puts)-1]
		st.mu.Unlock()
		if last.Interactions == 1 && last.Status == store.RunStatusRunning {
			if !slices.Equal(last.Models, []string{"gpt-4o"}) || !slices.Equal(last.Hosts, []string{"api.openai.com"}) || last.PID == 0 {
				t.Fatalf("open record: %+v", last)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the open record never gained the interaction")
		}
		time.Sleep(2 * time.Millisecond)
	}
	os.WriteFile(filepath.Join(spec.Dir, "go"), []byte("1"), 0o644)
	res := <-done
	b, _ := os.ReadFile(filepath.Join(spec.Dir, "env.txt"))
	if want := res.Record.RunID + " http://p\n"; string(b) != want {
		t.Fatalf("child env %q, want %q", b, want)
	}
	if res.Status != StatusPassed || res.Record.Interactions != 1 {
		t.Fatalf("%+v", res.Record)
	}
}

func TestChildEnv(t *testing.T) {
	got := ChildEnv([]string{"A=1", "HTTP_PROXY=x", "http_proxy=y", "B=2=3", "NO_PROXY=localhost"},
		[][2]string{{"HTTP_PROXY", "p"}, {"http_proxy", "p"}, {"NO_PROXY", ""}})
	want := []string{"A=1", "B=2=3", "HTTP_PROXY=p", "http_proxy=p", "NO_PROXY="}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v", got)
	}
}

func TestModelOf(t *testing.T) {
	tests := []struct{ body, want string }{
		{`{"model":"gpt-4o","messages":[]}`, "gpt-4o"},
		{"  {\n \"messages\": [{\"content\": \"say \\\"model\\\": \\\"x\\\"\"}], \"model\" : \"claude-3\"}", "claude-3"},
		{`{"model": {"id": 1}, "x": {"model": "nested"}}`, "nested"},
		{`{"model": "a\"b"}`, `a"b`},
		{`["model", "x"]`, ""},
		{`model=gpt`, ""},
		{`{"model": ""}`, ""},
		{`{"model": "unterminated`, ""},
		{``, ""},
	}
	for _, tc := range tests {
		if got := modelOf([]byte(tc.body)); got != tc.want {
			t.Errorf("modelOf(%q) = %q, want %q", tc.body, got, tc.want)
		}
	}
}

func TestLookPath(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "noexec"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(dir, "tool"), []byte("#!/bin/sh\n"), 0o755)
	tests := []struct {
		name, path string
		code       int
	}{
		{"tool", dir, 0},
		{"./tool", "", 0},
		{"nope", dir, 127},
		{"./nope", dir, 127},
		{"./noexec", "", 126},
		{"noexec", dir, 127}, // a shell skips non-executables in PATH
		{dir, "", 126},       // a folder
	}
	for _, tc := range tests {
		_, code, err := lookPath(tc.name, tc.path, dir)
		if code != tc.code || (code != 0) != (err != nil) {
			t.Errorf("lookPath(%q) = %d, %v; want %d", tc.name, code, err, tc.code)
		}
	}
}

func TestSweep(t *testing.T) {
	t0 := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	closed := t0.Add(time.Second)
	st := newMemStore()
	for _, r := range []store.Run{
		{RunID: "open-timeout-past", StartedAt: t0, TimeoutSeconds: 60, Status: store.RunStatusRunning},
		{RunID: "open-timeout-in-grace", StartedAt: t0.Add(9 * time.Minute), TimeoutSeconds: 60, Status: store.RunStatusRunning},
		{RunID: "open-no-timeout", StartedAt: t0, Status: store.RunStatusRunning},
		{RunID: "closed", StartedAt: t0, Status: StatusPassed, ClosedAt: &closed},
	} {
		st.PutRun(r)
	}
	now := t0.Add(15 * time.Minute)
	got, err := Sweep(st, now, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].RunID != "open-timeout-past" || got[0].FailureClass != ClassRunAbandoned || got[0].Status != StatusFailed || got[0].ClosedAt == nil {
		t.Fatalf("swept %+v", got)
	}
	// an hour and a bit later the run without a timeout goes too
	got, _ = Sweep(st, t0.Add(DefaultSweepTimeout+6*time.Minute), 5*time.Minute)
	var ids []string
	for _, r := range got {
		ids = append(ids, r.RunID)
	}
	if strings.Join(ids, ",") != "open-timeout-in-grace,open-no-timeout" && strings.Join(ids, ",") != "open-no-timeout,open-timeout-in-grace" {
		t.Fatalf("second sweep %v", ids)
	}
	if st.runs["closed"].Status != StatusPassed {
		t.Fatal("a closed run was swept")
	}
}
