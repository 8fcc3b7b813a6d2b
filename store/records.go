package store

// Records is where run records, the events of each run and fixture
// histories are kept. *Store keeps them in its bbolt file (the default);
// package store/pgstore keeps them in PostgreSQL, shared by a fleet of
// hosts whose cassettes stay in their own bbolt files.
//
// Both keep the same contract: GetRun and UpdateRun of an unknown id match
// ErrNoRun; ListRuns lists oldest start first, without events; UpdateRun and
// RecordFixtureReplay read, change and write in one transaction (two hosts
// sweeping the same run close it once); AppendRunEvent refuses a sequence
// number a run already has.
type Records interface {
	PutRun(Run) error
	GetRun(id string) (Run, error)
	ListRuns() ([]Run, error)
	UpdateRun(id string, fn func(*Run) error) error
	AppendRunEvent(runID string, ev RunEvent) error
	RecordFixtureReplay(id, protects string, ev FixtureEvent) (FixtureHistory, error)
	FixtureHistories() (map[string]FixtureHistory, error)
}

var _ Records = (*Store)(nil)
