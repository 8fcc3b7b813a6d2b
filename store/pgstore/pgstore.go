// Package pgstore keeps run records, their events and fixture histories in
// PostgreSQL (store.Records), so a fleet of hosts, each with its cassettes
// in its own bbolt file, shares one list of runs: `runs ls` shows them all,
// `runs sweep` closes any host's abandoned run, and the monitor's silent
// failure window counts every host's production failures.
//
// # Schema
//
// Open creates and migrates the schema itself. The migrations are the
// ordered SQL of the migrations slice; the table cassetteproxy_schema holds
// one row per migration applied (version, applied_at). A database already
// at the latest version is read, never written; one at a newer version
// (written by a newer cassetteproxy) is refused with ErrNewerSchema. Starts
// racing to migrate are serialized by a transaction-scoped advisory lock.
//
//	cassetteproxy_runs          one row per run: run_id, host, run_type,
//	                            cassette, fixture_id, status, failure_class,
//	                            started_at, closed_at (null while open), and
//	                            the whole record as jsonb (events left out)
//	cassetteproxy_run_events    (run_id, seq) → the event as json (kept
//	                            byte for byte), never rewritten
//	cassetteproxy_fixtures      fixture_id → its history as jsonb
//
// The connection's password is never part of an error or of Name.
package pgstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/lib/pq"

	"github.com/cassetteproxy/cassetteproxy/store"
)

// migrations are applied in order; migration i brings the schema to
// version i+1. Append only: a released migration is never edited.
var migrations = []string{
	// 1: run records, run events, fixture histories.
	`CREATE TABLE cassetteproxy_runs (
		run_id        text PRIMARY KEY,
		host          text NOT NULL DEFAULT '',
		run_type      text NOT NULL DEFAULT '',
		cassette      text NOT NULL DEFAULT '',
		fixture_id    text NOT NULL DEFAULT '',
		status        text NOT NULL DEFAULT '',
		failure_class text NOT NULL DEFAULT '',
		started_at    timestamptz NOT NULL,
		closed_at     timestamptz,
		record        jsonb NOT NULL
	);
	CREATE INDEX cassetteproxy_runs_started ON cassetteproxy_runs (started_at, run_id);
	CREATE INDEX cassetteproxy_runs_open ON cassetteproxy_runs (started_at) WHERE closed_at IS NULL;
	CREATE TABLE cassetteproxy_run_events (
		run_id text NOT NULL,
		seq    integer NOT NULL,
		event  json NOT NULL,
		PRIMARY KEY (run_id, seq)
	);
	CREATE TABLE cassetteproxy_fixtures (
		fixture_id text PRIMARY KEY,
		history    jsonb NOT NULL,
		updated_at timestamptz NOT NULL DEFAULT now()
	);`,
}

// SchemaVersion is the schema version this code writes.
func SchemaVersion() int { return len(migrations) }

// ErrNewerSchema is matched by the error Open returns for a database whose
// schema a newer cassetteproxy wrote.
var ErrNewerSchema = errors.New("schema newer than this cassetteproxy knows")

// migrateLock is the advisory lock key that serializes migrations
// ("cassettp" as a big-endian int64).
const migrateLock int64 = 0x6361737365747470

// Options tune Open.
type Options struct {
	// ConnectTimeout bounds each connection attempt when the DSN sets no
	// connect_timeout; 0: 10s.
	ConnectTimeout time.Duration
	// OpTimeout bounds each operation (a query, a transaction); 0: 30s.
	OpTimeout time.Duration
}

// Store is a PostgreSQL database holding run records. It is safe for
// concurrent use by many goroutines and many processes.
type Store struct {
	db        *sql.DB
	upsert    *sql.Stmt // upsertRun, prepared on each connection once
	addEvent  *sql.Stmt // insertEvent, likewise
	name      string
	opTimeout time.Duration
	migrated  []int // versions this Open applied
}

var _ store.Records = (*Store)(nil)

// Config is a parsed --runs-db: the connection settings and the pool's.
type Config struct {
	// Conn is the connection: the URL's settings over the PG* environment
	// variables, over the defaults.
	Conn pq.Config
	// MaxConns caps the open connections (pool_max_conns; default
	// max(4, CPUs)); the pool keeps as many idle.
	MaxConns int
	// MaxConnLifetime retires a connection this old (pool_max_conn_lifetime;
	// default 1h); MaxConnIdleTime one idle this long
	// (pool_max_conn_idle_time; default 30m).
	MaxConnLifetime, MaxConnIdleTime time.Duration
}

// ParseConfig reads a postgres:// or postgresql:// URL. Like libpq, it
// fills what the URL leaves out from the PG* environment variables
// (PGPASSWORD, PGSSLMODE, PGHOST, ...) and ~/.pgpass (or PGPASSFILE), with
// sslmode prefer when neither sets one: call it where the environment may
// be read. The URL's pool_max_conns, pool_max_conn_lifetime and
// pool_max_conn_idle_time size the pool. Its errors never hold the
// password.
func ParseConfig(dsn string) (*Config, error) {
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		return nil, fmt.Errorf("%q is not a postgres:// or postgresql:// URL", Redact(dsn))
	}
	u, err := url.Parse(dsn)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which holds the password
		}
		return nil, fmt.Errorf("cannot parse %s: %s", Redact(dsn), oneLine(err, dsn))
	}
	cfg := &Config{MaxConns: max(4, runtime.NumCPU()), MaxConnLifetime: time.Hour, MaxConnIdleTime: 30 * time.Minute}
	q := u.Query()
	for k, vs := range q {
		if !strings.HasPrefix(k, "pool_") {
			if k == "sslpassword" {
				return nil, fmt.Errorf("cannot use %s: sslpassword (an encrypted client key) is not supported: decrypt the key, or drop sslpassword", Redact(dsn))
			}
			continue
		}
		v := vs[len(vs)-1]
		var err error
		switch k {
		case "pool_max_conns":
			cfg.MaxConns, err = strconv.Atoi(v)
			if err == nil && cfg.MaxConns < 1 {
				err = errors.New("below 1")
			}
		case "pool_max_conn_lifetime":
			cfg.MaxConnLifetime, err = time.ParseDuration(v)
		case "pool_max_conn_idle_time":
			cfg.MaxConnIdleTime, err = time.ParseDuration(v)
		default:
			err = errors.New("unknown pool setting (known: pool_max_conns, pool_max_conn_lifetime, pool_max_conn_idle_time)")
		}
		if err != nil {
			return nil, fmt.Errorf("cannot use %s: %s=%s: %v", Redact(dsn), k, v, err)
		}
		q.Del(k)
	}
	conn := dsn // the URL as given, without the pool settings
	if len(q) != len(u.Query()) {
		conn, _, _ = strings.Cut(dsn, "?")
		if len(q) > 0 {
			conn += "?" + q.Encode()
		}
	}
	cfg.Conn, err = pq.NewConfig(conn)
	if err != nil {
		return nil, fmt.Errorf("cannot use %s: %s", Redact(dsn), strings.TrimPrefix(oneLine(err, dsn), "pq: "))
	}
	if cfg.Conn.SSLMode == "" { // neither the URL nor PGSSLMODE: libpq's default
		cfg.Conn.SSLMode = pq.SSLModePrefer
	}
	return cfg, nil
}

// Open connects, then creates or migrates the schema. Every error is one
// line naming the database without its password.
func Open(ctx context.Context, cfg *Config, o Options) (*Store, error) {
	conn := cfg.Conn.Clone()
	if conn.ConnectTimeout == 0 {
		conn.ConnectTimeout = o.ConnectTimeout
		if conn.ConnectTimeout <= 0 {
			conn.ConnectTimeout = 10 * time.Second
		}
	}
	s := &Store{name: NameOf(cfg), opTimeout: o.OpTimeout}
	if s.opTimeout <= 0 {
		s.opTimeout = 30 * time.Second
	}
	pc, err := pq.NewConnectorConfig(conn)
	if err != nil {
		return nil, s.wrap(err)
	}
	db := sql.OpenDB(connector{pc})
	db.SetMaxOpenConns(cfg.MaxConns)
	db.SetMaxIdleConns(cfg.MaxConns)
	db.SetConnMaxLifetime(cfg.MaxConnLifetime)
	db.SetConnMaxIdleTime(cfg.MaxConnIdleTime)
	s.db = db
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	// The statements a run repeats are prepared: one round trip each
	// instead of two.
	pctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	if s.upsert, err = db.PrepareContext(pctx, upsertRun); err == nil {
		s.addEvent, err = db.PrepareContext(pctx, insertEvent)
	}
	if err != nil {
		db.Close()
		return nil, s.wrap(err)
	}
	return s, nil
}

// connector marks the errors of opening a connection, wherever the pool
// opens one, so that they read "cannot connect: ...".
type connector struct{ *pq.Connector }

func (c connector) Connect(ctx context.Context) (driver.Conn, error) {
	cn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, &connectError{err}
	}
	return cn, nil
}

type connectError struct{ err error }

func (e *connectError) Error() string { return e.err.Error() }
func (e *connectError) Unwrap() error { return e.err }

// Close closes the connections.
func (s *Store) Close() {
	s.upsert.Close()
	s.addEvent.Close()
	s.db.Close()
}

// Name is the database as user@host:port/dbname, without a password.
func (s *Store) Name() string { return s.name }

// Migrated lists the schema versions Open applied (none when the database
// was already at the latest).
func (s *Store) Migrated() []int { return s.migrated }

// NameOf is cfg's database as postgres://user@host:port/dbname.
func NameOf(cfg *Config) string {
	c := cfg.Conn
	return fmt.Sprintf("postgres://%s@%s:%d/%s", c.User, c.Host, c.Port, c.Database)
}

// Redact is dsn with its password (in the user info or a password query
// parameter) replaced by xxxxx.
func Redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		// Not a URL: a key=value string (or a typo) keeps no password=.
		if scheme, _, ok := strings.Cut(dsn, "://"); ok && err != nil {
			return scheme + "://xxxxx"
		}
		return kvPassword.ReplaceAllString(dsn, "${1}xxxxx")
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	changed := false
	for k := range q {
		if lk := strings.ToLower(k); lk == "password" || lk == "sslpassword" {
			q.Set(k, "xxxxx")
			changed = true
		}
	}
	if changed {
		u.RawQuery = q.Encode()
	}
	return u.String()
}

var kvPassword = regexp.MustCompile(`(?i)(\bpassword\s*=\s*)('[^']*'|\S*)`)

// oneLine flattens err's message into one line, with dsn's password (if it
// leaked into it) replaced.
func oneLine(err error, dsn string) string {
	if err == nil {
		return "invalid"
	}
	msg := strings.Join(strings.Fields(err.Error()), " ")
	if u, perr := url.Parse(dsn); perr == nil {
		for _, pw := range []string{passwordOf(u), u.Query().Get("password")} {
			if pw != "" {
				msg = strings.ReplaceAll(msg, pw, "xxxxx")
			}
		}
	}
	return msg
}

func passwordOf(u *url.URL) string {
	pw, _ := u.User.Password()
	return pw
}

// message is err as one line, without the driver's "pq: " prefixes.
func message(err error) string {
	return strings.ReplaceAll(strings.Join(strings.Fields(err.Error()), " "), "pq: ", "")
}

func (s *Store) wrap(err error) error {
	if err == nil {
		return nil
	}
	var ce *connectError
	if errors.As(err, &ce) {
		// With several hosts the driver tells every one it tried, one a
		// line: the last reason is enough.
		inner := ce.err
		for {
			if j, ok := inner.(interface{ Unwrap() []error }); ok && len(j.Unwrap()) > 0 {
				errs := j.Unwrap()
				inner = errs[len(errs)-1]
				continue
			}
			var op *net.OpError
			next := errors.Unwrap(inner)
			if next == nil || errors.As(inner, &op) && inner == error(op) {
				break // a dial error names the address: keep it whole
			}
			inner = next
		}
		return &Error{name: s.name, msg: "cannot connect: " + message(inner), err: err}
	}
	return &Error{name: s.name, msg: message(err), err: err}
}

// Error is any error of the runs database: one line naming it.
type Error struct {
	name, msg string
	err       error
}

func (e *Error) Error() string { return "runs database " + e.name + ": " + e.msg }
func (e *Error) Unwrap() error { return e.err }

func (s *Store) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.opTimeout)
}

// version reads the schema version (0: no schema yet).
func version(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (int, error) {
	var exists bool
	if err := q.QueryRowContext(ctx, `SELECT to_regclass('cassetteproxy_schema') IS NOT NULL`).Scan(&exists); err != nil {
		return 0, err
	}
	if !exists {
		return 0, nil
	}
	var v int
	err := q.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM cassetteproxy_schema`).Scan(&v)
	return v, err
}

func (s *Store) newer(v int) error {
	return &Error{name: s.name, err: ErrNewerSchema,
		msg: fmt.Sprintf("schema version %d is newer than this cassetteproxy knows (%d): upgrade cassetteproxy, or point --runs-db at another database", v, len(migrations))}
}

// migrate brings the schema to the latest version. A database already
// there is only read.
func (s *Store) migrate(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	v, err := version(ctx, s.db)
	if err != nil {
		return s.wrap(err)
	}
	if v > len(migrations) {
		return s.newer(v)
	}
	if v == len(migrations) {
		return nil
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, migrateLock); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS cassetteproxy_schema (
			version    integer PRIMARY KEY,
			applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return err
		}
		v, err := version(ctx, tx) // again, under the lock: another start may have migrated
		if err != nil {
			return err
		}
		if v > len(migrations) {
			return s.newer(v)
		}
		for i := v; i < len(migrations); i++ {
			if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
				return fmt.Errorf("migration %d: %w", i+1, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO cassetteproxy_schema (version) VALUES ($1)`, i+1); err != nil {
				return err
			}
			s.migrated = append(s.migrated, i+1)
		}
		return nil
	})
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return s.wrap(err)
}

// inTx runs fn in a transaction: committed if fn returns nil, else rolled
// back (and fn's error returned).
func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// eachRow scans every row of rows into dest and calls fn after each; it
// closes rows, and returns fn's first error or the iteration's.
func eachRow(rows *sql.Rows, dest []any, fn func() error) error {
	defer rows.Close()
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		if err := fn(); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return rows.Close()
}

// recordJSON is the record as stored: without its events (their own table).
func recordJSON(r *store.Run) ([]byte, error) {
	c := *r
	c.Events = nil
	return json.Marshal(&c)
}

// closedAt is r's closed_at column value.
func closedAt(r *store.Run) *time.Time {
	if r.ClosedAt == nil {
		return nil
	}
	t := r.ClosedAt.UTC()
	return &t
}

const upsertRun = `INSERT INTO cassetteproxy_runs
	(run_id, host, run_type, cassette, fixture_id, status, failure_class, started_at, closed_at, record)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
	ON CONFLICT (run_id) DO UPDATE SET host = $2, run_type = $3, cassette = $4, fixture_id = $5,
	status = $6, failure_class = $7, started_at = $8, closed_at = $9, record = $10`

const insertEvent = `INSERT INTO cassetteproxy_run_events (run_id, seq, event) VALUES ($1, $2, $3)`

func runArgs(r *store.Run, js []byte) []any {
	return []any{r.RunID, r.Host, r.RunType, r.Cassette, r.FixtureID, r.Status, r.FailureClass, r.StartedAt.UTC(), closedAt(r), js}
}

// PutRun writes (creates or replaces) a run record.
func (s *Store) PutRun(r store.Run) error {
	if r.RunID == "" {
		return s.wrap(errors.New("put run: empty run_id"))
	}
	js, err := recordJSON(&r)
	if err != nil {
		return s.wrap(fmt.Errorf("run %s: %w", r.RunID, err))
	}
	ctx, cancel := s.ctx()
	defer cancel()
	_, err = s.upsert.ExecContext(ctx, runArgs(&r, js)...)
	return s.wrap(err)
}

// GetRun reads one run record with its events; an unknown id matches
// store.ErrNoRun.
func (s *Store) GetRun(id string) (store.Run, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	var r store.Run
	var js []byte
	err := s.db.QueryRowContext(ctx, `SELECT record FROM cassetteproxy_runs WHERE run_id = $1`, id).Scan(&js)
	if errors.Is(err, sql.ErrNoRows) {
		return r, s.wrap(&notFound{id})
	}
	if err != nil {
		return r, s.wrap(err)
	}
	if err := json.Unmarshal(js, &r); err != nil {
		return store.Run{}, s.wrap(fmt.Errorf("run %s: %w", id, err))
	}
	if r.Events, err = s.events(ctx, id); err != nil {
		return store.Run{}, s.wrap(err)
	}
	return r, nil
}

func (s *Store) events(ctx context.Context, id string) ([]store.RunEvent, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT seq, event FROM cassetteproxy_run_events WHERE run_id = $1 ORDER BY seq`, id)
	if err != nil {
		return nil, err
	}
	var out []store.RunEvent
	var seq int
	var js []byte
	err = eachRow(rows, []any{&seq, &js}, func() error {
		var ev store.RunEvent
		if err := json.Unmarshal(js, &ev); err != nil {
			return fmt.Errorf("run %s event %d: %w", id, seq, err)
		}
		out = append(out, ev)
		return nil
	})
	return out, err
}

// ListRuns returns every run record, oldest start first, without events.
func (s *Store) ListRuns() ([]store.Run, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	rows, err := s.db.QueryContext(ctx, `SELECT run_id, record FROM cassetteproxy_runs ORDER BY started_at, run_id`)
	if err != nil {
		return nil, s.wrap(err)
	}
	out := []store.Run{}
	var id string
	var js []byte
	err = eachRow(rows, []any{&id, &js}, func() error {
		var r store.Run
		if err := json.Unmarshal(js, &r); err != nil {
			return fmt.Errorf("run %s: %w", id, err)
		}
		out = append(out, r)
		return nil
	})
	if err != nil {
		return nil, s.wrap(err)
	}
	return out, nil
}

// UpdateRun reads a run (locking its row), lets fn change it and writes it
// back, in one transaction. If fn returns an error nothing is written.
func (s *Store) UpdateRun(id string, fn func(*store.Run) error) error {
	ctx, cancel := s.ctx()
	defer cancel()
	return s.wrap(s.inTx(ctx, func(tx *sql.Tx) error {
		var js []byte
		err := tx.QueryRowContext(ctx, `SELECT record FROM cassetteproxy_runs WHERE run_id = $1 FOR UPDATE`, id).Scan(&js)
		if errors.Is(err, sql.ErrNoRows) {
			return &notFound{id}
		}
		if err != nil {
			return err
		}
		var r store.Run
		if err := json.Unmarshal(js, &r); err != nil {
			return fmt.Errorf("run %s: %w", id, err)
		}
		if err := fn(&r); err != nil {
			return err
		}
		r.RunID = id
		if js, err = recordJSON(&r); err != nil {
			return err
		}
		_, err = tx.StmtContext(ctx, s.upsert).ExecContext(ctx, runArgs(&r, js)...)
		return err
	}))
}

// AppendRunEvent commits one event of a run. An event already stored
// under the same number is an error, never overwritten.
func (s *Store) AppendRunEvent(runID string, ev store.RunEvent) error {
	if runID == "" || ev.Seq < 1 {
		return s.wrap(errors.New("append run event: empty run_id or sequence number below 1"))
	}
	js, err := json.Marshal(&ev)
	if err != nil {
		return s.wrap(fmt.Errorf("run %s event %d: %w", runID, ev.Seq, err))
	}
	ctx, cancel := s.ctx()
	defer cancel()
	_, err = s.addEvent.ExecContext(ctx, runID, ev.Seq, js)
	var pe *pq.Error
	if errors.As(err, &pe) && pe.Code == "23505" { // unique_violation
		return s.wrap(fmt.Errorf("run %s already has event %d", runID, ev.Seq))
	}
	return s.wrap(err)
}

// RecordFixtureReplay adds one replay to the history of fixture id (see
// store.FixtureHistory.Add) in one transaction, and returns the history
// after it.
func (s *Store) RecordFixtureReplay(id, protects string, ev store.FixtureEvent) (store.FixtureHistory, error) {
	var h store.FixtureHistory
	if id == "" {
		return h, s.wrap(errors.New("fixture history: empty fixture id"))
	}
	ctx, cancel := s.ctx()
	defer cancel()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		h = store.FixtureHistory{}
		if _, err := tx.ExecContext(ctx, `INSERT INTO cassetteproxy_fixtures (fixture_id, history) VALUES ($1, '{}') ON CONFLICT DO NOTHING`, id); err != nil {
			return err
		}
		var js []byte
		if err := tx.QueryRowContext(ctx, `SELECT history FROM cassetteproxy_fixtures WHERE fixture_id = $1 FOR UPDATE`, id).Scan(&js); err != nil {
			return err
		}
		if err := json.Unmarshal(js, &h); err != nil {
			return fmt.Errorf("fixture %s: %w", id, err)
		}
		h.Add(id, protects, ev)
		js, err := json.Marshal(&h)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE cassetteproxy_fixtures SET history = $2, updated_at = now() WHERE fixture_id = $1`, id, js)
		return err
	})
	if err != nil {
		return store.FixtureHistory{}, s.wrap(err)
	}
	return h, nil
}

// FixtureHistories returns every fixture's history, by fixture id.
func (s *Store) FixtureHistories() (map[string]store.FixtureHistory, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	rows, err := s.db.QueryContext(ctx, `SELECT fixture_id, history FROM cassetteproxy_fixtures`)
	if err != nil {
		return nil, s.wrap(err)
	}
	out := map[string]store.FixtureHistory{}
	var id string
	var js []byte
	err = eachRow(rows, []any{&id, &js}, func() error {
		var h store.FixtureHistory
		if err := json.Unmarshal(js, &h); err != nil {
			return fmt.Errorf("fixture %s: %w", id, err)
		}
		if h.Replays > 0 {
			out[id] = h
		}
		return nil
	})
	if err != nil {
		return nil, s.wrap(err)
	}
	return out, nil
}

type notFound struct{ id string }

func (e *notFound) Error() string { return fmt.Sprintf("run %q not found", e.id) }
func (e *notFound) Unwrap() error { return store.ErrNoRun }
