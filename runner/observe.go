package runner

import (
	"bytes"
	"encoding/json"
	"sort"
	"strings"
	"sync"

	"github.com/cassetteproxy/cassetteproxy/proxy"
)

// maxListed bounds the requests an Observer keeps per list (misses,
// blocked) and the distinct hosts and models; counts stay exact.
const maxListed = 200

// Observer gathers what a proxy did for one run. Hand its Observe method to
// proxy.Config.Observe; it is safe for concurrent use and cheap enough for
// the request path (a lock, a few appends, a byte scan of the body).
type Observer struct {
	mu           sync.Mutex
	version      uint64
	interactions int
	errors       int
	misses       []Request
	blocked      []Request
	hosts        map[string]struct{}
	models       map[string]struct{}
}

// NewObserver returns an empty Observer.
func NewObserver() *Observer {
	return &Observer{hosts: map[string]struct{}{}, models: map[string]struct{}{}}
}

// Observe records one proxy outcome.
func (o *Observer) Observe(out proxy.Outcome) {
	model := modelOf(out.Body) // outside the lock
	o.mu.Lock()
	defer o.mu.Unlock()
	o.version++
	o.interactions++
	if h := normHost(out.Host); h != "" && len(o.hosts) < maxListed {
		o.hosts[h] = struct{}{}
	}
	if model != "" && len(o.models) < maxListed {
		o.models[model] = struct{}{}
	}
	switch out.Decision {
	case proxy.DecisionError:
		o.errors++
	case proxy.DecisionBlocked:
		r := Request{Method: out.Method, URL: out.URL, Reason: out.Reason}
		if len(o.blocked) < maxListed {
			o.blocked = append(o.blocked, r)
		}
		// A miss is a request the recording had no answer for: a blocked
		// mutation was refused, and an expired answer exists but is too old
		// (its own failure class, see ProxyCheck).
		if out.Reason != proxy.ReasonMutation && out.Reason != proxy.ReasonExpired && len(o.misses) < maxListed {
			o.misses = append(o.misses, r)
		}
	}
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
	defer o.mu.Unlock()
	ev.Interactions = o.interactions
	ev.Errors = o.errors
	ev.Misses = append([]Request(nil), o.misses...)
	ev.Blocked = append([]Request(nil), o.blocked...)
	ev.Hosts = sortedKeys(o.hosts)
	ev.Models = sortedKeys(o.models)
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
