package pgstore_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cassetteproxy/cassetteproxy/internal/pgtest"
	"github.com/cassetteproxy/cassetteproxy/runner"
	"github.com/cassetteproxy/cassetteproxy/store"
	"github.com/cassetteproxy/cassetteproxy/store/pgstore"
)

var (
	pg        pgtest.Shared
	requirePG = os.Getenv("CASSETTEPROXY_REQUIRE_PG") != ""
)

func TestMain(m *testing.M) {
	code := m.Run()
	pg.Stop()
	os.Exit(code)
}

// open opens a fresh database.
func open(t testing.TB) (*pgstore.Store, string) {
	t.Helper()
	dsn := pg.DB(t, requirePG)
	return openDSN(t, dsn), dsn
}

func openDSN(t testing.TB, dsn string) *pgstore.Store {
	t.Helper()
	cfg, err := pgstore.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	s, err := pgstore.Open(context.Background(), cfg, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func connect(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func query(t *testing.T, dsn, q string, args ...any) int {
	t.Helper()
	var n int
	if err := connect(t, dsn).QueryRowContext(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func exec(t *testing.T, dsn, q string) {
	t.Helper()
	if _, err := connect(t, dsn).ExecContext(context.Background(), q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func TestMigrateFromEmptyThenNoOp(t *testing.T) {
	s, dsn := open(t)
	if got := s.Migrated(); len(got) != pgstore.SchemaVersion() || got[0] != 1 {
		t.Fatalf("first open migrated %v, want 1..%d", got, pgstore.SchemaVersion())
	}
	for _, table := range []string{"cassetteproxy_runs", "cassetteproxy_run_events", "cassetteproxy_fixtures"} {
		if n := query(t, dsn, `SELECT count(*) FROM information_schema.tables WHERE table_name = $1`, table); n != 1 {
			t.Errorf("table %s: %d", table, n)
		}
	}
	if n := query(t, dsn, `SELECT max(version) FROM cassetteproxy_schema`); n != pgstore.SchemaVersion() {
		t.Fatalf("schema version %d", n)
	}
	if err := s.PutRun(store.Run{RunID: "r1", StartedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	// A second start applies nothing and keeps the data.
	again := openDSN(t, dsn)
	if got := again.Migrated(); len(got) != 0 {
		t.Fatalf("second open migrated %v", got)
	}
	if n := query(t, dsn, `SELECT count(*) FROM cassetteproxy_schema`); n != pgstore.SchemaVersion() {
		t.Fatalf("%d schema rows after a second open", n)
	}
	if _, err := again.GetRun("r1"); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentStartsMigrateOnce(t *testing.T) {
	dsn := pg.DB(t, requirePG)
	const n = 6
	var wg sync.WaitGroup
	errs := make([]error, n)
	migrated := make([][]int, n)
	cfg, err := pgstore.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := pgstore.Open(context.Background(), cfg, pgstore.Options{})
			errs[i] = err
			if err == nil {
				migrated[i] = s.Migrated()
				s.Close()
			}
		}()
	}
	wg.Wait()
	applied := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("start %d: %v", i, errs[i])
		}
		applied += len(migrated[i])
	}
	if applied != pgstore.SchemaVersion() {
		t.Fatalf("%d migrations applied by %d racing starts, want %d", applied, n, pgstore.SchemaVersion())
	}
}

func TestOpenRefuses(t *testing.T) {
	newer := pg.DB(t, requirePG) // skips or fails without PostgreSQL
	srv, _ := pg.Get()
	exec(t, newer, `CREATE TABLE cassetteproxy_schema (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now()); INSERT INTO cassetteproxy_schema (version) VALUES (1), (99)`)
	const closed = 1 // nothing listens on loopback port 1
	tests := []struct {
		name  string
		dsn   string
		is    error
		wants []string
	}{
		{"newer schema", newer, pgstore.ErrNewerSchema, []string{"schema version 99", "upgrade cassetteproxy"}},
		{"nothing listening", fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/x?sslmode=disable", pgtest.Password, closed), nil, []string{"cannot connect", "127.0.0.1"}},
		{"wrong password", strings.Replace(srv.DSN("postgres"), pgtest.Password, "not-the-password-9", 1), nil, []string{"cannot connect", "password authentication failed"}},
		{"no such database", srv.DSN("nope_not_here"), nil, []string{"cannot connect", "nope_not_here"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := pgstore.ParseConfig(tc.dsn)
			if err != nil {
				t.Fatal(err)
			}
			_, err = pgstore.Open(context.Background(), cfg, pgstore.Options{ConnectTimeout: 5 * time.Second})
			if err == nil {
				t.Fatal("opened")
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") || strings.Contains(msg, pgtest.Password) || strings.Contains(msg, "not-the-password-9") {
				t.Fatalf("not one line, or holds the password: %q", msg)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("%v is not %v", err, tc.is)
			}
			for _, w := range tc.wants {
				if !strings.Contains(msg, w) {
					t.Errorf("%q lacks %q", msg, w)
				}
			}
		})
	}
}

func TestParseConfigAndRedact(t *testing.T) {
	tests := []struct {
		dsn, redacted string
		parseErr      bool
	}{
		{"postgres://u:hunter2-secret@db.example:5432/runs", "postgres://u:xxxxx@db.example:5432/runs", false},
		{"postgresql://u@db/runs?password=hunter2-secret&sslmode=require", "postgresql://u@db/runs?password=xxxxx&sslmode=require", false},
		{"postgres://db/runs", "postgres://db/runs", false},
		{"mysql://u:hunter2-secret@db/runs", "mysql://u:xxxxx@db/runs", true},
		{"host=db password=hunter2-secret", "host=db password=xxxxx", true},
		{"host=db password='hunter2-secret' user=u", "host=db password=xxxxx user=u", true},
		{"postgres://u:hunter2-secret@db:notaport/runs", "postgres://xxxxx", true},
	}
	for _, tc := range tests {
		t.Run(tc.redacted, func(t *testing.T) {
			if got := pgstore.Redact(tc.dsn); got != tc.redacted {
				t.Errorf("Redact = %q, want %q", got, tc.redacted)
			}
			_, err := pgstore.ParseConfig(tc.dsn)
			if (err != nil) != tc.parseErr {
				t.Fatalf("ParseConfig err %v, want error %v", err, tc.parseErr)
			}
			if err != nil && (strings.Contains(err.Error(), "hunter2-secret") || strings.Contains(err.Error(), "\n")) {
				t.Fatalf("error holds the password or is not one line: %q", err)
			}
		})
	}
}

// TestRecordsContract runs the same script against both implementations
// of store.Records.
func TestRecordsContract(t *testing.T) {
	impls := []struct {
		name string
		open func(t *testing.T) store.Records
	}{
		{"bbolt", func(t *testing.T) store.Records {
			st, err := store.Open(filepath.Join(t.TempDir(), "c.db"), store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		}},
		{"postgres", func(t *testing.T) store.Records { s, _ := open(t); return s }},
	}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
	for _, impl := range impls {
		t.Run(impl.name, func(t *testing.T) {
			rs := impl.open(t)
			if _, err := rs.GetRun("none"); !errors.Is(err, store.ErrNoRun) {
				t.Fatalf("GetRun unknown: %v", err)
			}
			if err := rs.UpdateRun("none", func(*store.Run) error { return nil }); !errors.Is(err, store.ErrNoRun) {
				t.Fatalf("UpdateRun unknown: %v", err)
			}
			code := 3
			runs := []store.Run{
				{RunID: "b", Host: "host-b", RunType: "production", StartedAt: t0.Add(time.Minute), Status: "running", Cassette: "c",
					Env: map[string]string{"K": "v"}, TimeoutSeconds: 1.5, Command: []string{"sh", "-c", "x"}},
				{RunID: "a", Host: "host-a", RunType: "replay", FixtureID: "f", StartedAt: t0, Status: "failed", FailureClass: "empty_output",
					ExitCode: &code, ClosedAt: &t0, Reasons: []store.RunReason{{Status: "failed", Class: "empty_output", Reason: "r"}}},
			}
			for _, r := range runs {
				if err := rs.PutRun(r); err != nil {
					t.Fatal(err)
				}
			}
			list, err := rs.ListRuns()
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != 2 || list[0].RunID != "a" || list[1].RunID != "b" || list[0].Host != "host-a" {
				t.Fatalf("ListRuns: %+v", list)
			}
			if !list[0].StartedAt.Equal(t0) || *list[0].ExitCode != 3 || list[1].Env["K"] != "v" || list[1].TimeoutSeconds != 1.5 {
				t.Fatalf("fields did not round-trip: %+v", list)
			}
			data := json.RawMessage(`{"b": 1,  "a": [2]}`)
			for seq := 1; seq <= 3; seq++ {
				if err := rs.AppendRunEvent("b", store.RunEvent{Seq: seq, At: t0, Kind: "checkpoint", Name: fmt.Sprint("step", seq), Data: data}); err != nil {
					t.Fatal(err)
				}
			}
			if err := rs.AppendRunEvent("b", store.RunEvent{Seq: 2, Kind: "note", Name: "again"}); err == nil || !strings.Contains(err.Error(), "already has event 2") {
				t.Fatalf("duplicate event: %v", err)
			}
			if err := rs.AppendRunEvent("b", store.RunEvent{Seq: 0, Kind: "note"}); err == nil {
				t.Fatal("event 0 accepted")
			}
			got, err := rs.GetRun("b")
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Events) != 3 || got.Events[1].Name != "step2" || string(got.Events[0].Data) != `{"b":1,"a":[2]}` {
				t.Fatalf("events: %+v", got.Events)
			}
			// UpdateRun: fn's error writes nothing and comes back.
			stop := errors.New("stop")
			if err := rs.UpdateRun("b", func(r *store.Run) error { r.Status = "x"; return stop }); !errors.Is(err, stop) {
				t.Fatalf("UpdateRun error: %v", err)
			}
			if err := rs.UpdateRun("b", func(r *store.Run) error { r.Status = "passed"; r.ClosedAt = &t0; return nil }); err != nil {
				t.Fatal(err)
			}
			if got, _ := rs.GetRun("b"); got.Status != "passed" || got.ClosedAt == nil || len(got.Events) != 3 {
				t.Fatalf("after update: %+v", got)
			}
			// Fixture history: failed with the class, then passed: proven.
			steps := []struct{ status, class string }{{"failed", "nonzero_exit"}, {"failed", "empty_output"}, {"inconclusive", ""}, {"passed", ""}}
			var h store.FixtureHistory
			for i, st := range steps {
				h, err = rs.RecordFixtureReplay("f", "empty_output", store.FixtureEvent{At: t0.Add(time.Duration(i) * time.Second), RunID: fmt.Sprint("r", i), Status: st.status, FailureClass: st.class})
				if err != nil {
					t.Fatal(err)
				}
			}
			if !h.ProvenFor("empty_output") || h.Replays != 4 || h.Failures != 2 || h.FirstFailure.RunID != "r0" || h.ProofFailure.RunID != "r1" {
				t.Fatalf("history: %+v", h)
			}
			all, err := rs.FixtureHistories()
			if err != nil {
				t.Fatal(err)
			}
			if len(all) != 1 || all["f"].Replays != 4 || !all["f"].LastVerdict.At.Equal(t0.Add(3*time.Second)) {
				t.Fatalf("histories: %+v", all)
			}
		})
	}
}

// TestConcurrentWriters: many goroutines over two connections pools (two
// processes' worth) write runs and events at once; nothing is lost, and a
// run swept by both is closed once.
func TestConcurrentWriters(t *testing.T) {
	a, dsn := open(t)
	b := openDSN(t, dsn)
	stores := []*pgstore.Store{a, b}
	const writers, perWriter, events = 8, 5, 10
	var wg sync.WaitGroup
	errc := make(chan error, writers*perWriter*events+writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := stores[w%2]
			for i := range perWriter {
				id := fmt.Sprintf("w%d-r%d", w, i)
				r := store.Run{RunID: id, Host: fmt.Sprint("host-", w%2), StartedAt: time.Now(), Status: "running"}
				if err := st.PutRun(r); err != nil {
					errc <- err
					return
				}
				for seq := 1; seq <= events; seq++ {
					if err := st.AppendRunEvent(id, store.RunEvent{Seq: seq, Kind: "checkpoint", Name: "s"}); err != nil {
						errc <- err
					}
				}
			}
		}()
	}
	// And one run's events from many goroutines at once.
	if err := a.PutRun(store.Run{RunID: "shared", StartedAt: time.Now(), Status: "running"}); err != nil {
		t.Fatal(err)
	}
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range events {
				if err := stores[g%2].AppendRunEvent("shared", store.RunEvent{Seq: g*events + k + 1, Kind: "note", Name: "n"}); err != nil {
					errc <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if n := query(t, dsn, `SELECT count(*) FROM cassetteproxy_run_events`); n != writers*perWriter*events+writers*events {
		t.Fatalf("%d events stored, want %d", n, writers*perWriter*events+writers*events)
	}
	shared, err := b.GetRun("shared")
	if err != nil {
		t.Fatal(err)
	}
	for i, ev := range shared.Events {
		if ev.Seq != i+1 {
			t.Fatalf("event %d has seq %d", i, ev.Seq)
		}
	}
	if len(shared.Events) != writers*events {
		t.Fatalf("shared run: %d events", len(shared.Events))
	}

	// Two hosts sweep at once: every abandoned run closed exactly once.
	var closed [2][]store.Run
	var sweepErr [2]error
	later := time.Now().Add(48 * time.Hour)
	for i := range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); closed[i], sweepErr[i] = runner.Sweep(stores[i], later, 0) }()
	}
	wg.Wait()
	if sweepErr[0] != nil || sweepErr[1] != nil {
		t.Fatal(sweepErr)
	}
	if n := len(closed[0]) + len(closed[1]); n != writers*perWriter+1 {
		t.Fatalf("swept %d + %d runs, want %d in all", len(closed[0]), len(closed[1]), writers*perWriter+1)
	}
	if n := query(t, dsn, `SELECT count(*) FROM cassetteproxy_runs WHERE closed_at IS NULL OR status <> 'failed'`); n != 0 {
		t.Fatalf("%d runs left open", n)
	}
}

// BenchmarkRunRecords measures run records one PostgreSQL takes: each
// operation is one whole run (opened, 10 events, closed: 12 statements,
// each its own transaction, as a real run makes them), from 8 × GOMAXPROCS
// goroutines at once; runs/s is the figure docs/scale.md reports. "durable"
// is the server's default (every commit waits for its WAL flush); "async"
// sets synchronous_commit=off for these connections, to show how much of
// the cost is the flush.
func BenchmarkRunRecords(b *testing.B) {
	for _, mode := range []struct{ name, syncCommit string }{{"durable", ""}, {"async", "off"}} {
		b.Run(mode.name, func(b *testing.B) {
			cfg, err := pgstore.ParseConfig(pg.DB(b, requirePG))
			if err != nil {
				b.Fatal(err)
			}
			if mode.syncCommit != "" {
				cfg.Conn.Runtime["synchronous_commit"] = mode.syncCommit
			}
			cfg.MaxConns = 16
			st, err := pgstore.Open(context.Background(), cfg, pgstore.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			benchRuns(b, st)
		})
	}
}

func benchRuns(b *testing.B, st *pgstore.Store) {
	const events = 10
	var n atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := fmt.Sprintf("bench-%d", n.Add(1))
			r := store.Run{RunID: id, Host: "bench", RunType: "production", StartedAt: time.Now(), Status: "running", Command: []string{"agent", "--task", "42"}}
			if err := st.PutRun(r); err != nil {
				b.Fatal(err)
			}
			for seq := 1; seq <= events; seq++ {
				if err := st.AppendRunEvent(id, store.RunEvent{Seq: seq, At: time.Now(), Kind: "checkpoint", Name: "step", Data: json.RawMessage(`{"n":1}`)}); err != nil {
					b.Fatal(err)
				}
			}
			now := time.Now()
			r.Status, r.ClosedAt = "passed", &now
			if err := st.PutRun(r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "runs/s")
}

// TestEnvironmentAndPool: what the URL leaves out comes from the PG*
// variables (and the password from PGPASSWORD or a password file), the
// sslmode defaults to prefer (this server has no TLS), and the pool_*
// settings size the pool without reaching the server.
func TestEnvironmentAndPool(t *testing.T) {
	dsn := pg.DB(t, requirePG)
	srv, _ := pg.Get()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	db := strings.TrimPrefix(u.Path, "/")
	t.Run("PGPASSWORD and the rest from the environment", func(t *testing.T) {
		t.Setenv("PGPASSWORD", pgtest.Password)
		t.Setenv("PGHOST", "127.0.0.1")
		t.Setenv("PGPORT", strconv.Itoa(srv.Port))
		t.Setenv("PGUSER", "postgres")
		t.Setenv("PGDATABASE", db)
		t.Setenv("PGSSLMODE", "disable")
		s := openDSN(t, "postgres://")
		if want := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s", srv.Port, db); s.Name() != want {
			t.Fatalf("Name = %q, want %q", s.Name(), want)
		}
		if err := s.PutRun(store.Run{RunID: "env", StartedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("password file", func(t *testing.T) {
		pass := filepath.Join(t.TempDir(), "pgpass")
		if err := os.WriteFile(pass, []byte(fmt.Sprintf("127.0.0.1:%d:*:postgres:%s\n", srv.Port, pgtest.Password)), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv("PGPASSFILE", pass)
		openDSN(t, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", srv.Port, db))
	})
	t.Run("sslmode prefer by default", func(t *testing.T) {
		cfg, err := pgstore.ParseConfig(fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/%s", pgtest.Password, srv.Port, db))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Conn.SSLMode != "prefer" {
			t.Fatalf("sslmode %q, want prefer", cfg.Conn.SSLMode)
		}
		s, err := pgstore.Open(context.Background(), cfg, pgstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
	})
	t.Run("pool settings", func(t *testing.T) {
		s := openDSN(t, dsn+"&pool_max_conns=2&pool_max_conn_lifetime=5m&pool_max_conn_idle_time=1m")
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := s.PutRun(store.Run{RunID: fmt.Sprint("p", i), StartedAt: time.Now()}); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		cfg, err := pgstore.ParseConfig(dsn + "&pool_max_conns=2&pool_max_conn_lifetime=5m&pool_max_conn_idle_time=1m")
		if err != nil {
			t.Fatal(err)
		}
		if cfg.MaxConns != 2 || cfg.MaxConnLifetime != 5*time.Minute || cfg.MaxConnIdleTime != time.Minute {
			t.Fatalf("pool %d %s %s", cfg.MaxConns, cfg.MaxConnLifetime, cfg.MaxConnIdleTime)
		}
		if _, ok := cfg.Conn.Runtime["pool_max_conns"]; ok {
			t.Fatal("pool_max_conns would be sent to the server")
		}
		cfg, err = pgstore.ParseConfig(dsn)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.MaxConns != max(4, runtime.NumCPU()) {
			t.Fatalf("default pool %d", cfg.MaxConns)
		}
		for _, bad := range []string{"pool_max_conns=0", "pool_max_conns=x", "pool_min_conns=1", "pool_max_conn_lifetime=soon"} {
			_, err := pgstore.ParseConfig(dsn + "&" + bad)
			if err == nil || strings.Contains(err.Error(), pgtest.Password) || !strings.Contains(err.Error(), bad) {
				t.Errorf("%s: %v", bad, err)
			}
		}
	})
}
