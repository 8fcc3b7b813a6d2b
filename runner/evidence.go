package runner

import (
	"fmt"
	"os"
	"strings"

	"github.com/cassetteproxy/cassetteproxy/match"
	"github.com/cassetteproxy/cassetteproxy/proxy"
	"github.com/cassetteproxy/cassetteproxy/store"
)

// answered says which decisions count as a request that happened: it went
// upstream, or was served from the recording. A blocked or failed request
// never counts as a side effect.
var answered = map[string]bool{proxy.DecisionRecorded: true, proxy.DecisionReplayed: true}

// EventArtifactsCheck judges the agent's artifact events: a path must name
// a file (or folder) that exists and is not empty, as --artifact would.
type EventArtifactsCheck struct{}

func (EventArtifactsCheck) Name() string { return "event_artifacts" }
func (c EventArtifactsCheck) Check(ev *Evidence) []Failure {
	var out []Failure
	for _, e := range ev.Events {
		if e.Kind != "artifact" || e.Path == "" {
			continue
		}
		switch st := statArtifact(ev.Dir, e.Path); {
		case !st.exists:
			out = append(out, Failure{StatusFailed, ClassMissingArtifact,
				fmt.Sprintf("artifact event #%d names %s, but nothing is at %s (check %s)", e.Seq, e.Path, st.path, c.Name())})
		case st.size == 0:
			out = append(out, Failure{StatusFailed, ClassEmptyOutput,
				fmt.Sprintf("artifact event #%d names %s, an empty %s (check %s)", e.Seq, e.Path, st.what(), c.Name())})
		}
	}
	return out
}

// ClaimsCheck judges the agent's claims of completion: a claim is backed
// by evidence or it fails. Its artifact_refs must each be a reported
// artifact that exists, or a non-empty file; a claim naming none needs at
// least one such artifact in the run (an artifact event, or --artifact).
// Each side effect it claims needs matching answered requests.
type ClaimsCheck struct{}

func (ClaimsCheck) Name() string { return "claims" }
func (c ClaimsCheck) Check(ev *Evidence) []Failure {
	backed, some := backedArtifacts(ev)
	var out []Failure
	for _, e := range ev.Events {
		if e.Kind != "claim" {
			continue
		}
		who := fmt.Sprintf("claim #%d (%s)", e.Seq, e.Status)
		if len(e.ArtifactRefs) == 0 && !some {
			out = append(out, Failure{StatusFailed, ClassMissingArtifact,
				fmt.Sprintf("%s has no artifact behind it: the run reported no artifact that exists (no artifact event with a non-empty file or a ref, no --artifact) (check %s)", who, c.Name())})
		}
		for _, ref := range e.ArtifactRefs {
			if backed[ref] {
				continue
			}
			if st := statArtifact(ev.Dir, ref); !st.exists || st.size == 0 {
				out = append(out, Failure{StatusFailed, ClassMissingArtifact,
					fmt.Sprintf("%s names artifact %s: no artifact event reports it and nothing non-empty is at %s (check %s)", who, ref, st.path, c.Name())})
			}
		}
		for _, se := range e.SideEffects {
			out = append(out, sideEffectFailures(ev, se, who+" says", c.Name())...)
		}
	}
	return out
}

// backedArtifacts lists what can back a claim: the path (as reported, and
// absolute) of every artifact event whose file exists and is not empty, the
// ref of every artifact event, and every non-empty --artifact match; and
// whether there is at least one.
func backedArtifacts(ev *Evidence) (map[string]bool, bool) {
	backed := map[string]bool{}
	for _, e := range ev.Events {
		if e.Kind != "artifact" {
			continue
		}
		if e.Ref != "" {
			backed[e.Ref] = true
		}
		if e.Path != "" {
			if st := statArtifact(ev.Dir, e.Path); st.exists && st.size > 0 {
				backed[e.Path], backed[st.path] = true, true
			}
		}
	}
	for _, a := range ev.Artifacts {
		if a.Exists && a.Size > 0 {
			backed[a.Path] = true
		}
	}
	return backed, len(backed) > 0
}

// SideEffectsCheck judges the side effects a run must make (run
// --side-effect, expected.json side_effects): each needs between min and
// max matching requests answered with its status.
type SideEffectsCheck struct {
	Source string // where the specs come from, for reasons: "--side-effect", "expected.json"
	Specs  []store.SideEffect
}

func (SideEffectsCheck) Name() string { return "side_effects" }
func (c SideEffectsCheck) Check(ev *Evidence) []Failure {
	var out []Failure
	for _, se := range c.Specs {
		out = append(out, sideEffectFailures(ev, se, c.Source+" wants", c.Name())...)
	}
	return out
}

// sideEffectFailures counts the answered requests matching se: too few is
// side_effect_unconfirmed, more than its max side_effect_duplicated.
func sideEffectFailures(ev *Evidence, se store.SideEffect, who, check string) []Failure {
	m, err := match.CompileSideEffect(se)
	if err != nil {
		return []Failure{{StatusInconclusive, "check_error", fmt.Sprintf("%s an invalid side effect: %v (check %s)", who, err, check)}}
	}
	var hits []store.RunCall
	for _, call := range ev.Calls {
		if answered[call.Decision] && m.Matches(call.Method, call.URL, call.Status) {
			hits = append(hits, call)
		}
	}
	if n := len(hits); n < m.Min() {
		if ev.CallsOmitted > 0 {
			return []Failure{{StatusInconclusive, ClassSideEffectUnconfirmed,
				fmt.Sprintf("%s %s at least %d times; %d of the first %d requests match, and the %d after them were not kept (check %s)", who, m, m.Min(), n, len(ev.Calls), ev.CallsOmitted, check)}}
		}
		return []Failure{{StatusFailed, ClassSideEffectUnconfirmed,
			fmt.Sprintf("%s %s at least %d times; %d answered requests match (check %s)", who, m, m.Min(), n, check)}}
	}
	if max, ok := m.Max(); ok && len(hits) > max {
		return []Failure{{StatusFailed, ClassSideEffectDuplicated,
			fmt.Sprintf("%s %s at most %d times; %d answered requests match: %s (check %s)", who, m, max, len(hits), listCalls(hits), check)}}
	}
	return nil
}

func listCalls(cs []store.RunCall) string {
	const show = 3
	parts := make([]string, 0, show+1)
	for i, c := range cs {
		if i == show {
			parts = append(parts, fmt.Sprintf("and %d more", len(cs)-show))
			break
		}
		parts = append(parts, fmt.Sprintf("%s %s → %d at %s", c.Method, c.URL, c.Status, c.At.Format("15:04:05.000")))
	}
	return strings.Join(parts, "; ")
}

// artifactStat is what a reported artifact path resolved to.
type artifactStat struct {
	path   string // absolute
	exists bool
	isDir  bool
	size   int64 // bytes; for a folder, its entries
}

func (a artifactStat) what() string {
	if a.isDir {
		return "folder"
	}
	return "file"
}

func statArtifact(dir, p string) artifactStat {
	st := artifactStat{path: abs(dir, p)}
	fi, err := os.Stat(st.path)
	if err != nil {
		return st
	}
	st.exists, st.isDir, st.size = true, fi.IsDir(), fi.Size()
	if st.isDir {
		ents, _ := os.ReadDir(st.path)
		st.size = int64(len(ents))
	}
	return st
}

// eventRefs are the references the agent reported: the artifacts (a path
// made absolute against dir, or a ref) and the state references.
func eventRefs(dir string, events []store.RunEvent) (artifacts, states []string) {
	for _, e := range events {
		switch e.Kind {
		case "artifact":
			if e.Path != "" {
				artifacts = append(artifacts, abs(dir, e.Path))
			}
			if e.Ref != "" {
				artifacts = append(artifacts, e.Ref)
			}
		case "state_ref":
			states = append(states, e.Ref)
		}
	}
	return artifacts, states
}
