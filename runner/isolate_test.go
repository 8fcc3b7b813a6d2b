package runner

import (
	"context"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/cassetteproxy/cassetteproxy/isolate"
)

// isolation runs a spec's command in a namespace of its own, with nothing
// served inside. Where isolation is impossible the test is skipped,
// except as root (CI), where it must work.
func isolation(t *testing.T) *Isolation {
	t.Helper()
	if err := isolate.Check(); err != nil {
		if os.Geteuid() == 0 {
			t.Fatalf("isolation must work as root: %v", err)
		}
		t.Skip(err)
	}
	return &Isolation{Listen: "127.0.0.1:3128", Serve: func(ln net.Listener) { t.Cleanup(func() { ln.Close() }) }}
}

// TestRunIsolationFailed: a namespace that cannot be set up (here: the
// proxy's address does not exist inside) makes the run inconclusive; the
// command does not run, and nothing claims it exited.
func TestRunIsolationFailed(t *testing.T) {
	iso := isolation(t)
	iso.Listen = "192.0.2.1:80"
	st := newMemStore()
	spec := shSpec(t, st, "echo ran > ran.txt")
	spec.Isolate = iso
	spec.Artifacts = []string{"ran.txt"}
	res, err := Run(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	rec := res.Record
	if res.Status != StatusInconclusive || rec.FailureClass != ClassIsolationFailed || res.ExitCode != 1 || len(rec.Reasons) != 1 {
		t.Fatalf("got %s %s exit %d, reasons %+v", res.Status, rec.FailureClass, res.ExitCode, rec.Reasons)
	}
	if !strings.Contains(rec.FailureReason, "192.0.2.1:80") || rec.Isolated || rec.ExitCode != nil || rec.ClosedAt == nil {
		t.Fatalf("record: %+v", rec)
	}
	if _, err := os.Stat(spec.Dir + "/ran.txt"); err == nil {
		t.Fatal("the command ran")
	}
}
