package runner

import (
	"errors"
	"fmt"
	"time"

	"github.com/cassetteproxy/cassetteproxy/store"
)

// SweepStore is what Sweep needs; *store.Store is one.
type SweepStore interface {
	ListRuns() ([]store.Run, error)
	UpdateRun(id string, fn func(*store.Run) error) error
}

// Sweep closes every run still open at now past its started_at plus its
// timeout (DefaultSweepTimeout when it had none) plus grace, as failed /
// run_abandoned: the cassetteproxy that ran it was killed before it could
// close it. It returns the runs it closed.
func Sweep(st SweepStore, now time.Time, grace time.Duration) ([]store.Run, error) {
	runs, err := st.ListRuns()
	if err != nil {
		return nil, err
	}
	now = now.UTC()
	var closed []store.Run
	for _, r := range runs {
		if !r.Open() || !now.After(SweepDeadline(r, grace)) {
			continue
		}
		var out store.Run
		err := st.UpdateRun(r.RunID, func(r *store.Run) error {
			if !r.Open() { // closed meanwhile
				return errAlreadyClosed
			}
			reason := fmt.Sprintf("the run was left open: the cassetteproxy that ran it (started %s) ended without closing it; closed by runs sweep at %s", r.StartedAt.Format(time.RFC3339), now.Format(time.RFC3339))
			r.Status, r.FailureClass, r.FailureReason = StatusFailed, ClassRunAbandoned, reason
			r.Reasons = append(r.Reasons, store.RunReason{Status: StatusFailed, Class: ClassRunAbandoned, Reason: reason})
			t := now
			r.ClosedAt, r.UpdatedAt = &t, t
			out = *r
			return nil
		})
		if errors.Is(err, errAlreadyClosed) {
			continue
		}
		if err != nil {
			return closed, err
		}
		closed = append(closed, out)
	}
	return closed, nil
}

// SweepDeadline is when an open run counts as abandoned.
func SweepDeadline(r store.Run, grace time.Duration) time.Time {
	timeout := time.Duration(r.TimeoutSeconds * float64(time.Second))
	if timeout <= 0 {
		timeout = DefaultSweepTimeout
	}
	return r.StartedAt.Add(timeout + grace)
}

type sweepErr string

func (e sweepErr) Error() string { return string(e) }

const errAlreadyClosed = sweepErr("already closed")
