package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/cassetteproxy/cassetteproxy/store"
	"github.com/cassetteproxy/cassetteproxy/store/pgstore"
)

// runsDBEnv is --runs-db's variable. A run's command never gets it: it may
// hold the database's password.
const runsDBEnv = "CASSETTEPROXY_RUNS_DB"

// records is where run records, their events and fixture histories go:
// the PostgreSQL of --runs-db, or else the bbolt store st (which may be nil
// for commands that open none when --runs-db is set).
type records struct {
	store.Records
	where string // the bbolt file, or the database without its password
	pg    *pgstore.Store
}

func (r *records) close() {
	if r.pg != nil {
		r.pg.Close()
	}
}

// runsDB is --runs-db as given ("" when unset).
func runsDB(c *cli.Context) string { return strings.TrimSpace(globalString(c, "runs-db")) }

// openRecords opens --runs-db, or falls back to st. pgstore.ParseConfig
// reads the PG* variables (PGPASSWORD, PGSSLMODE, ...) and ~/.pgpass for
// what the URL leaves out.
func openRecords(c *cli.Context, st *store.Store) (*records, error) {
	dsn := runsDB(c)
	if dsn == "" {
		if st == nil {
			return nil, fmt.Errorf("internal: no store for run records")
		}
		return &records{Records: st, where: st.Path()}, nil
	}
	cfg, err := pgstore.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("--runs-db: %v (want postgres://USER@HOST:PORT/DB; the password may come from PGPASSWORD)", err)
	}
	pg, err := pgstore.Open(context.Background(), cfg, pgstore.Options{})
	if err != nil {
		return nil, err
	}
	return &records{Records: pg, where: pg.Name(), pg: pg}, nil
}

// runsDBPassword is --runs-db's password, scrubbed like any other secret
// from what runs keep.
func runsDBPassword(c *cli.Context) string { return dsnPassword(runsDB(c)) }

// dsnPassword is a postgres:// URL's password: in its user info, or its
// password parameter.
func dsnPassword(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return ""
	}
	if pw, ok := u.User.Password(); ok {
		return pw
	}
	return u.Query().Get("password")
}

// withoutRunsDB drops --runs-db's variable from an environment handed to
// a command.
func withoutRunsDB(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, runsDBEnv+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// hostName names this machine in run records: CASSETTEPROXY_HOST, else the
// hostname.
func hostName() string {
	if h := os.Getenv("CASSETTEPROXY_HOST"); h != "" {
		return h
	}
	h, _ := os.Hostname()
	return h
}
