// Package runner starts an agent process behind a proxy, keeps its run
// record while it works, and always closes that record with a verdict that
// a set of checks assigns (never the exit code alone).
//
// # Using it
//
// The caller (cmd/cassetteproxy's `run` and `replay`) starts the proxy
// itself, with an Observer's Observe method as proxy.Config.Observe, then:
//
//	obs := runner.NewObserver()                  // before the proxy starts
//	id := runner.NewRunID(time.Now())            // also proxy.Config.RunID
//	res, err := runner.Run(ctx, runner.Spec{
//	    Argv:      []string{"sh", "-c", "agent ..."},
//	    Dir:       workdir,                      // "" = the current directory
//	    Env:       runner.ChildEnv(os.Environ(), proxy.ClientEnv(...)),
//	    Timeout:   10 * time.Minute,             // 0 = none
//	    Artifacts: []string{"out/*.json"},       // relative to Dir; globs
//	    Checks:    contractChecks,               // run after DefaultChecks
//	    Mode:      "strict",
//	    Store:     st,                           // *store.Store
//	    Observer:  obs,
//	    Record:    store.Run{RunID: id, RunType: runner.RunTypeReplay, FixtureID: "f1", Cassette: "f1"},
//	    Signals:   sigs,                         // SIGINT/SIGTERM to forward
//	})
//	// err != nil: the record could not be opened (nothing ran) or closed.
//	// res.ExitCode is what the CLI exits with.
//
// Run never reads flags or environment variables: every value comes in
// through Spec. It sets CASSETTEPROXY_RUN_ID in the child's environment.
//
// # Lifecycle
//
//  1. The record (Spec.Record, with run_id, started_at, command, dir, mode,
//     timeout_seconds, input_sha256, artifact_refs resolved absolute, status
//     "running") is put in the store before the child starts.
//  2. While the child runs, the Observer gathers what the proxy saw
//     (interactions, misses, blocked requests with reasons, hosts, "model"
//     names from JSON request bodies); the record is rewritten with it every
//     Spec.FlushEvery (default 1s) when something changed, never per request.
//  3. The child ends: it exits, is killed by a signal, hits Spec.Timeout
//     (SIGTERM, then SIGKILL after Spec.KillGrace), cassetteproxy is
//     interrupted (a signal on Spec.Signals is forwarded; the child gets
//     KillGrace to exit before SIGKILL), or ctx is cancelled (as a SIGTERM).
//     A command that cannot start gets exit code 127 (not found) or 126, as a
//     shell would, and a failed record.
//  4. The checks run on the Evidence: DefaultChecks(), then Spec.Checks. The
//     verdict is passed when no check reports a Failure; otherwise its status
//     and failure_class are those of the first Failure reported (checks run
//     in order: timeout, proxy misses/blocks, exit code, artifacts present,
//     artifacts non-empty, then the caller's), and every Failure is kept in
//     the record's reasons.
//  5. The record is closed (closed_at set) and Run returns.
//
// With Spec.Isolate the child runs in a network namespace of its own
// (package isolate): the proxy is handed a listener inside it before the
// child starts, signals, exit codes and timeouts behave as without it, and
// a namespace that cannot be made closes the run inconclusive /
// isolation_failed without running the child.
//
// A run whose cassetteproxy was killed outright stays "running" in the
// store; Sweep closes it as failed / run_abandoned once it is past its
// timeout (DefaultSweepTimeout when it had none) plus a grace period.
//
// # Exit codes (Result.ExitCode)
//
// The child's own non-zero code (128+n when signal n ended it, 127/126 when
// it could not start); 3 when the child exited 0 but the verdict is not
// passed; 0 when it passed; 1 when the child's network namespace could not
// be made (it never ran).
package runner
