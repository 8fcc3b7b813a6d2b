package e2e

// A fleet sharing one PostgreSQL for run records (--runs-db): two hosts,
// each with its own store file, started by the tests as separate processes
// against a PostgreSQL the tests start on loopback. (Test names avoid the
// words the Makefile's isolation passes select: these run once.)

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/lib/pq" // the "postgres" database/sql driver

	"github.com/cassetteproxy/cassetteproxy/internal/pgtest"
)

var (
	pg        pgtest.Shared // started by the first test that needs it, stopped by TestMain
	requirePG = os.Getenv("CASSETTEPROXY_REQUIRE_PG") != ""
)

// fleetHost is one machine of the fleet: its own store and home, the
// shared runs database, its own name.
type fleetHost struct {
	*env
	name string
	vars []string
}

func newFleet(t *testing.T, dsn string, names ...string) []*fleetHost {
	var out []*fleetHost
	for _, n := range names {
		out = append(out, &fleetHost{env: newEnv(t), name: n,
			vars: []string{"CASSETTEPROXY_RUNS_DB=" + dsn, "CASSETTEPROXY_HOST=" + n}})
	}
	return out
}

func (h *fleetHost) cli(args ...string) (string, string, int) {
	h.t.Helper()
	return h.cliIn("", h.vars, args...)
}

// runIn is `cassetteproxy run ARGS` in dir.
func (h *fleetHost) runIn(dir string, args ...string) (string, string, int) {
	h.t.Helper()
	return h.cliIn(dir, h.vars, append([]string{"run"}, args...)...)
}

type fleetRun struct {
	RunID        string  `json:"run_id"`
	RunType      string  `json:"run_type"`
	Host         string  `json:"host"`
	Status       string  `json:"status"`
	FailureClass string  `json:"failure_class"`
	ClosedAt     *string `json:"closed_at"`
	StartedAt    string  `json:"started_at"`
	Events       []struct {
		Seq  int    `json:"seq"`
		Kind string `json:"kind"`
		Name string `json:"name"`
	} `json:"events"`
}

func (h *fleetHost) runs() []fleetRun {
	h.t.Helper()
	out, errOut, code := h.cli("runs", "ls", "--json")
	if code != 0 {
		h.t.Fatalf("%s: runs ls: %d %s", h.name, code, errOut)
	}
	var rs []fleetRun
	if err := json.Unmarshal([]byte(out), &rs); err != nil {
		h.t.Fatalf("runs ls --json: %v\n%s", err, out)
	}
	return rs
}

func (h *fleetHost) show(id string) fleetRun {
	h.t.Helper()
	out, errOut, code := h.cli("runs", "show", id, "--json")
	if code != 0 {
		h.t.Fatalf("%s: runs show %s: %d %s", h.name, id, code, errOut)
	}
	var r fleetRun
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		h.t.Fatal(err)
	}
	return r
}

func pgExec(t *testing.T, dsn, query string, args ...any) {
	t.Helper()
	ctx := context.Background()
	conn, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// pgText is every text the runs database holds, for secret checks.
func pgText(t *testing.T, dsn string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var s string
	err = conn.QueryRowContext(ctx, `SELECT coalesce((SELECT string_agg(record::text, ' ') FROM cassetteproxy_runs), '') ||
		coalesce((SELECT string_agg(event::text, ' ') FROM cassetteproxy_run_events), '') ||
		coalesce((SELECT string_agg(history::text, ' ') FROM cassetteproxy_fixtures), '')`).Scan(&s)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// noPassword fails when the runs database's password is in any file under
// the folders, or in any text given.
func noPassword(t *testing.T, dirs []string, texts ...string) {
	t.Helper()
	for i, s := range texts {
		if strings.Contains(s, pgtest.Password) {
			t.Errorf("text %d holds the database password:\n%s", i, s)
		}
	}
	for _, d := range dirs {
		filepath.WalkDir(d, func(p string, de os.DirEntry, err error) error {
			if err == nil && de.Type().IsRegular() {
				if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), pgtest.Password) {
					t.Errorf("%s holds the database password", p)
				}
			}
			return nil
		})
	}
}

func TestFleetPG_TwoHostsOneList(t *testing.T) {
	dsn := pg.DB(t, requirePG)
	hosts := newFleet(t, dsn, "host-a", "host-b")
	// Each host's agent reports a checkpoint and writes its environment.
	script := `"$CP" emit checkpoint "from-$CASSETTEPROXY_HOST_SEEN" && env > env.txt`
	var wg sync.WaitGroup
	dirs := make([]string, len(hosts))
	outs := make([]string, len(hosts))
	for i, h := range hosts {
		dirs[i] = t.TempDir()
		h.vars = append(h.vars, "CP="+binary, "CASSETTEPROXY_HOST_SEEN="+h.name)
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, errOut, code := h.runIn(dirs[i], "--mode", "record", "--cassette", "task", "--", "sh", "-c", script)
			if code != 0 {
				t.Errorf("%s: run exit %d\n%s", h.name, code, errOut)
			}
			outs[i] = out + errOut
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	for _, h := range hosts { // either host lists both
		rs := h.runs()
		if len(rs) != 2 {
			t.Fatalf("%s lists %d runs: %+v", h.name, len(rs), rs)
		}
		got := map[string]bool{}
		for _, r := range rs {
			got[r.Host] = true
			if r.Status != "passed" || r.ClosedAt == nil {
				t.Errorf("run %s on %s: %s", r.RunID, r.Host, r.Status)
			}
			full := h.show(r.RunID) // with its events, from the database
			if len(full.Events) != 1 || full.Events[0].Name != "from-"+r.Host {
				t.Errorf("run %s events: %+v", r.RunID, full.Events)
			}
		}
		if !got["host-a"] || !got["host-b"] {
			t.Fatalf("hosts listed: %v", got)
		}
		out, errOut, code := h.cli("runs", "ls")
		if code != 0 || !strings.Contains(out, "HOST") || !strings.Contains(out, "host-a") || !strings.Contains(out, "host-b") {
			t.Fatalf("runs ls: %d\n%s%s", code, out, errOut)
		}
		outs = append(outs, out+errOut)
	}
	// The records went to the database, not to the store files.
	a := hosts[0]
	out, errOut, code := a.cliIn("", []string{"CASSETTEPROXY_RUNS_DB="}, "runs", "ls", "--json")
	if code != 0 || strings.TrimSpace(out) != "[]" {
		t.Fatalf("the store file holds runs: %d %s %s", code, out, errOut)
	}
	// A machine with no store file at all reads them too.
	third := newFleet(t, dsn, "laptop")[0]
	if rs := third.runs(); len(rs) != 2 {
		t.Fatalf("laptop lists %d runs", len(rs))
	}
	if _, err := os.Stat(third.db); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("runs ls with --runs-db made a store file: %v", err)
	}
	// The child never saw the database's URL; nothing kept its password.
	for _, d := range dirs {
		b, _ := os.ReadFile(filepath.Join(d, "env.txt"))
		if strings.Contains(string(b), "CASSETTEPROXY_RUNS_DB") || len(b) == 0 {
			t.Fatalf("the command's environment:\n%s", b)
		}
	}
	noPassword(t, []string{hosts[0].dir, hosts[1].dir}, append(outs, pgText(t, dsn))...)
}

func TestFleetPG_SilentFailureWindowAcrossHosts(t *testing.T) {
	dsn := pg.DB(t, requirePG)
	hosts := newFleet(t, dsn, "host-a", "host-b")
	a, b := hosts[0], hosts[1]
	// Both hosts' agents claim success without writing their report.
	for _, h := range hosts {
		_, errOut, code := h.runIn(t.TempDir(), "--mode", "record", "--cassette", "task", "--artifact", "report.json", "--", "sh", "-c", "exit 0")
		if code != 3 {
			t.Fatalf("%s: run exit %d, want 3\n%s", h.name, code, errOut)
		}
	}
	// Host A's failure happened two hours before host B's.
	var aRun fleetRun
	for _, r := range b.runs() {
		if r.Host == "host-a" {
			aRun = r
		}
	}
	if aRun.FailureClass != "missing_artifact_ref" {
		t.Fatalf("host A's run: %+v", aRun)
	}
	started, err := time.Parse(time.RFC3339Nano, aRun.StartedAt)
	if err != nil {
		t.Fatal(err)
	}
	earlier := started.Add(-2 * time.Hour).UTC()
	pgExec(t, dsn, `UPDATE cassetteproxy_runs SET started_at = $1, record = jsonb_set(record, '{started_at}', to_jsonb($2::text)) WHERE run_id = $3`,
		earlier, earlier.Format(time.RFC3339Nano), aRun.RunID)

	// Host B exports its own run (not host A's, whose cassette it lacks)
	// and its monitor replays it: still failing.
	fix := filepath.Join(t.TempDir(), "fixtures")
	out, errOut, code := b.cli("export", "--cassette", "task", "--out", filepath.Join(fix, "task"))
	if code != 0 {
		t.Fatalf("export: %d %s", code, errOut)
	}
	for _, r := range b.runs() {
		if r.Host == "host-b" && !strings.Contains(out, r.RunID) {
			t.Fatalf("export did not take host B's run %s: %s", r.RunID, out)
		}
	}
	mon := filepath.Join(t.TempDir(), "out")
	_, errOut, code = b.cli("monitor", fix, "--out", mon, "--isolate", "off")
	if code != 1 {
		t.Fatalf("monitor exit %d, want 1 (the fixture fails)\n%s", code, errOut)
	}
	var rep struct {
		Window  map[string]float64 `json:"silent_failure_window_minutes"`
		Results []struct {
			Status       string `json:"status"`
			FailureClass string `json:"failure_class"`
		} `json:"results"`
	}
	raw, err := os.ReadFile(filepath.Join(mon, "monitor.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 1 || rep.Results[0].FailureClass != "missing_artifact_ref" {
		t.Fatalf("results: %+v", rep.Results)
	}
	// From host A's failure (two hours back), not host B's own (seconds).
	if w := rep.Window["missing_artifact_ref"]; w < 119 || w > 24*60 {
		t.Fatalf("silent_failure_window_minutes %v, want about 120 (host A's run counts)", rep.Window)
	}
	// The replay's record and the fixture's history are in the database.
	var replays int
	for _, r := range a.runs() {
		if r.RunType == "replay" && r.Host == "host-b" {
			replays++
		}
	}
	if replays != 1 {
		t.Fatalf("%d replay runs of host B listed on host A", replays)
	}
	if !strings.Contains(pgText(t, dsn), `"fixture_id": "task"`) {
		t.Fatal("no fixture history in the runs database")
	}
	noPassword(t, []string{a.dir, b.dir, fix, mon}, errOut)
}

func TestFleetPG_SweepFromEitherHost(t *testing.T) {
	tests := []struct{ ranOn, sweptBy int }{{0, 1}, {1, 0}}
	for _, tc := range tests {
		t.Run(strings.Join([]string{"ran-on", []string{"a", "b"}[tc.ranOn], "swept-by", []string{"a", "b"}[tc.sweptBy]}, "-"), func(t *testing.T) {
			dsn := pg.DB(t, requirePG)
			hosts := newFleet(t, dsn, "host-a", "host-b")
			ran, sweeper := hosts[tc.ranOn], hosts[tc.sweptBy]
			dir := t.TempDir()
			cmd := exec.Command(binary, "run", "--mode", "record", "--cassette", "k", "--timeout", "1s", "--", "sh", "-c", hostPID+" > ready; exec sleep 30")
			cmd.Dir = dir
			cmd.Env = append(append(os.Environ(), "CASSETTEPROXY_DB="+ran.db, "CASSETTEPROXY_HOME="+ran.home), ran.vars...)
			stderr := &syncBuffer{}
			cmd.Stderr = stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			t.Cleanup(func() { cmd.Process.Kill() })
			pid := waitReadyPID(t, filepath.Join(dir, "ready"), exited, stderr)
			cmd.Process.Kill() // kill -9: the record stays open
			<-exited
			waitGone(t, pid)

			rs := sweeper.runs()
			if len(rs) != 1 || rs[0].Status != "running" || rs[0].Host != ran.name {
				t.Fatalf("after kill -9: %+v", rs)
			}
			if out, errOut, code := sweeper.cli("runs", "sweep", "--grace", "1h"); code != 0 || !strings.Contains(out, "swept 0") {
				t.Fatalf("sweep with grace: %d %s %s", code, out, errOut)
			}
			deadline := time.Now().Add(20 * time.Second) // past its 1s timeout it is closed
			for {
				out, errOut, code := sweeper.cli("runs", "sweep", "--grace", "0s")
				if code != 0 {
					t.Fatalf("sweep: %d %s", code, errOut)
				}
				if strings.Contains(out, "swept 1") {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("never swept: %s", out)
				}
				time.Sleep(50 * time.Millisecond)
			}
			r := ran.show(rs[0].RunID) // the host that ran it sees it closed
			if r.Status != "failed" || r.FailureClass != "run_abandoned" || r.ClosedAt == nil {
				t.Fatalf("after sweep: %+v", r)
			}
			if out, _, _ := ran.cli("runs", "sweep", "--grace", "0s"); !strings.Contains(out, "swept 0") {
				t.Fatalf("second sweep closed again: %s", out)
			}
		})
	}
}

// waitReadyPID waits for the child's pid in the ready file.
func waitReadyPID(t *testing.T, ready string, exited chan error, stderr *syncBuffer) int {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		if b, err := os.ReadFile(ready); err == nil && strings.HasSuffix(string(b), "\n") {
			var pid int
			if _, err := fmt.Sscan(string(b), &pid); err == nil {
				return pid
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("run exited before the child was ready: %v\n%s", err, stderr.String())
		case <-deadline:
			t.Fatalf("child not ready\n%s", stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func TestFleetPG_BadInput(t *testing.T) {
	newer := pg.DB(t, requirePG)
	pgExec(t, newer, `CREATE TABLE cassetteproxy_schema (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now()); INSERT INTO cassetteproxy_schema (version) VALUES (1), (42)`)
	pw := pgtest.Password
	urls := []struct {
		name, dsn string
		wants     []string
	}{
		{"not postgres", "mysql://root:" + pw + "@127.0.0.1/runs", []string{"--runs-db", "postgres://"}},
		{"bad port", "postgres://postgres:" + pw + "@127.0.0.1:notaport/runs", []string{"--runs-db"}},
		{"unreachable", "postgres://postgres:" + pw + "@127.0.0.1:1/runs?sslmode=disable", []string{"runs database postgres://postgres@127.0.0.1:1/runs", "cannot connect"}},
		{"newer schema", newer, []string{"schema version 42", "upgrade cassetteproxy"}},
	}
	// A host whose store has a cassette and a fixture of it, made without
	// a runs database.
	e := newEnv(t)
	if _, errOut, code := e.runIn(t.TempDir(), []string{"CASSETTEPROXY_RUNS_DB="}, "--mode", "record", "--cassette", "c", "--", "sh", "-c", "exit 0"); code != 0 {
		t.Fatalf("run: %d %s", code, errOut)
	}
	fixture := filepath.Join(t.TempDir(), "fx")
	if _, errOut, code := e.cliIn("", []string{"CASSETTEPROXY_RUNS_DB="}, "export", "--cassette", "c", "--out", fixture); code != 0 {
		t.Fatalf("export: %d %s", code, errOut)
	}
	commands := []struct {
		name string
		args []string
	}{
		{"runs-ls", []string{"runs", "ls"}},
		{"runs-show", []string{"runs", "show", "x"}},
		{"runs-sweep", []string{"runs", "sweep"}},
		{"run", []string{"run", "--mode", "record", "--cassette", "c", "--", "sh", "-c", "touch ran"}},
		{"replay", []string{"replay", fixture}},
		{"monitor", []string{"monitor", fixture}},
		{"export", []string{"export", "--cassette", "c", "--out", filepath.Join(t.TempDir(), "out")}},
	}
	for _, u := range urls {
		for _, c := range commands {
			t.Run(u.name+"/"+c.name, func(t *testing.T) {
				dir := t.TempDir()
				_, errOut, code := e.cliIn(dir, []string{"CASSETTEPROXY_RUNS_DB=" + u.dsn}, c.args...)
				oneLineError(t, errOut, code, u.wants...)
				noPassword(t, []string{e.dir, dir}, errOut)
				if _, err := os.Stat(filepath.Join(dir, "ran")); err == nil {
					t.Fatal("the command ran")
				}
			})
		}
	}
}
