package runner

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cassetteproxy/cassetteproxy/proxy"
	"github.com/cassetteproxy/cassetteproxy/store"
)

// maxListed bounds the requests an Observer keeps per list (misses,
// blocked) and the distinct hosts and models; counts stay exact.
const maxListed = 200

// Bounds of a run's timeline: the requests kept in order (the rest are
// counted), and the events the agent may report, in number and in bytes.
const (
	MaxRunCalls     = 5000
	MaxRunEvents    = 10000
	MaxRunEventData = 16 << 20
)

// EventStore commits a run's events; *store.Store is one.
type EventStore interface {
	AppendRunEvent(runID string, ev store.RunEvent) error
}

// Observer gathers what a proxy did for one run. Hand its Observe method to
// proxy.Config.Observe; it is safe for concurrent use and cheap enough for
// the request path (a lock, a few appends, a byte scan of the body).
type Observer struct {
	mu           sync.Mutex
	version      uint64
	interactions int
	errors       int
	incomplete   int
	misses       []Request
	blocked      []Request
	hosts        map[string]struct{}
	models       map[string]struct{}
	calls        []store.RunCall
	callsOmitted int

	// The agent's events (Event). emu orders them: each is numbered and
	// committed under it. evStore is set while the run is open.
	emu        sync.Mutex
	evStore    EventStore
	evRunID    string
	evClosed   bool
	events     []store.RunEvent
	eventBytes int
}

// NewObserver returns an empty Observer.
func NewObserver() *Observer {
	return &Observer{hosts: map[string]struct{}{}, models: map[string]struct{}{}}
}

// Observe records one proxy outcome.
func (o *Observer) Observe(out proxy.Outcome) {
	model := modelOf(out.Body) // outside the lock
	at := time.Now().Add(-out.Duration)
	o.mu.Lock()
	defer o.mu.Unlock()
	o.version++
	o.interactions++
	if len(o.calls) < MaxRunCalls {
		o.calls = append(o.calls, store.RunCall{At: at, Method: out.Method, URL: out.URL, Decision: out.Decision, Reason: out.Reason, Status: out.Status})
	} else {
		o.callsOmitted++
	}
	if h := normHost(out.Host); h != "" && len(o.hosts) < maxListed {
		o.hosts[h] = struct{}{}
	}
	if model != "" && len(o.models) < maxListed {
		o.models[model] = struct{}{}
	}
	if out.Incomplete {
		o.incomplete++
	}
	switch out.Decision {
	case proxy.DecisionError:
		o.errors++
	case proxy.DecisionBlocked:
		r := Request{Method: out.Method, URL: out.URL, Reason: out.Reason}
		if len(o.blocked) < maxListed {
			o.blocked = append(o.blocked, r)
		}
		if isMiss(out.Reason) && len(o.misses) < maxListed {
			o.misses = append(o.misses, r)
		}
	}
}

// notMisses are the blocked reasons that are not a miss (the recording had
// no answer): a refused mutation, an answer that exists but is too old (its
// own failure class, see ProxyCheck), a host outside the allow-list.
var notMisses = map[string]bool{proxy.ReasonMutation: true, proxy.ReasonExpired: true, proxy.ReasonHostNotAllowed: true}

func isMiss(reason string) bool { return !notMisses[reason] }

// Event keeps one event the agent reported (proxy.Config.Events): it is
// numbered, stamped and committed to the store before it counts. Refused
// before the run's record is open, after the command ended, and past
// MaxRunEvents or MaxRunEventData.
func (o *Observer) Event(ev store.RunEvent) (int, error) {
	o.emu.Lock()
	defer o.emu.Unlock()
	switch {
	case o.evClosed:
		return 0, proxy.ErrRunClosed
	case o.evStore == nil:
		return 0, proxy.ErrNoRunOpen
	}
	size := eventSize(&ev)
	if len(o.events) >= MaxRunEvents || o.eventBytes+size > MaxRunEventData {
		return 0, fmt.Errorf("%w (%d events, %d MiB)", proxy.ErrEventLimit, MaxRunEvents, MaxRunEventData>>20)
	}
	ev.Seq = len(o.events) + 1
	ev.At = time.Now().UTC()
	if err := o.evStore.AppendRunEvent(o.evRunID, ev); err != nil {
		return 0, err
	}
	o.events = append(o.events, ev)
	o.eventBytes += size
	o.mu.Lock()
	o.version++
	o.mu.Unlock()
	return ev.Seq, nil
}

// openEvents starts taking events for the run, whose record is now stored.
func (o *Observer) openEvents(st EventStore, runID string) {
	if o == nil {
		return
	}
	o.emu.Lock()
	defer o.emu.Unlock()
	o.evStore, o.evRunID = st, runID
}

// closeEvents stops taking events: the command has ended.
func (o *Observer) closeEvents() {
	if o == nil {
		return
	}
	o.emu.Lock()
	defer o.emu.Unlock()
	o.evClosed = true
}

func eventSize(ev *store.RunEvent) int {
	n := len(ev.Kind) + len(ev.Name) + len(ev.Data) + len(ev.Path) + len(ev.Ref) + len(ev.Status)
	for _, r := range ev.ArtifactRefs {
		n += len(r)
	}
	for _, se := range ev.SideEffects {
		n += len(se.Method) + len(se.URL) + len(se.Status)
	}
	return n
}

// Version counts the outcomes observed so far; it changes whenever the
// observer has something new.
func (o *Observer) Version() uint64 {
	if o == nil {
		return 0
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.version
}

// fill copies what the observer saw into ev.
func (o *Observer) fill(ev *Evidence) {
	if o == nil {
		return
	}
	o.mu.Lock()
	ev.Interactions = o.interactions
	ev.Errors = o.errors
	ev.Incomplete = o.incomplete
	ev.Misses = append([]Request(nil), o.misses...)
	ev.Blocked = append([]Request(nil), o.blocked...)
	ev.Hosts = sortedKeys(o.hosts)
	ev.Models = sortedKeys(o.models)
	ev.Calls = append([]store.RunCall(nil), o.calls...)
	ev.CallsOmitted = o.callsOmitted
	o.mu.Unlock()
	// Event takes emu, then mu: never the other way round.
	o.emu.Lock()
	ev.Events = append([]store.RunEvent(nil), o.events...)
	o.emu.Unlock()
}

func sortedKeys(m map[string]struct{}) []string {
	if len(m) == 0 {
		return nil
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// normHost drops the default ports so "api.x.com" and "api.x.com:443" are
// one host.
func normHost(h string) string {
	h = strings.ToLower(h)
	if s, ok := strings.CutSuffix(h, ":443"); ok {
		return s
	}
	if s, ok := strings.CutSuffix(h, ":80"); ok {
		return s
	}
	return h
}

var modelKey = []byte(`"model"`)

// modelOf finds the first "model": "<string>" member in a JSON request body
// (the LLM APIs put the model name there). A raw "model" key inside a JSON
// text cannot come from inside a string value (the quotes would be escaped),
// so a byte scan is enough; values that are not strings are skipped.
func modelOf(body []byte) string {
	if len(body) < 10 {
		return ""
	}
	if b := bytes.TrimLeft(body[:min(len(body), 64)], " \t\r\n"); len(b) == 0 || b[0] != '{' {
		return ""
	}
	for rest := body; ; {
		i := bytes.Index(rest, modelKey)
		if i < 0 {
			return ""
		}
		rest = rest[i+len(modelKey):]
		v := bytes.TrimLeft(rest, " \t\r\n")
		if len(v) == 0 || v[0] != ':' {
			continue
		}
		v = bytes.TrimLeft(v[1:], " \t\r\n")
		if len(v) == 0 || v[0] != '"' {
			continue
		}
		end := 1
		for end < len(v) && v[end] != '"' {
			if v[end] == '\\' {
				end++
			}
			end++
		}
		if end >= len(v) || end > 512 {
			continue
		}
		var s string
		if json.Unmarshal(v[:end+1], &s) == nil && s != "" {
			return s
		}
	}
}
