package match

import (
	"fmt"
	"slices"
	"strings"
)

// HostPatterns is an allow-list of hosts (--allow-host, allow_hosts in the
// rules file): globs as in a rule's host ("*" matches any run, dots too; a
// pattern with a port matches only that port). A nil *HostPatterns allows
// every host.
type HostPatterns struct {
	patterns []string
}

// ParseHostPatterns checks and compiles an allow-list. An empty list gives
// nil: no restriction.
func ParseHostPatterns(patterns []string) (*HostPatterns, error) {
	if len(patterns) == 0 {
		return nil, nil
	}
	h := &HostPatterns{}
	for _, p := range patterns {
		if err := checkHostPattern(p); err != nil {
			return nil, err
		}
		p = strings.ToLower(strings.TrimSpace(p))
		if !slices.Contains(h.patterns, p) {
			h.patterns = append(h.patterns, p)
		}
	}
	return h, nil
}

// checkHostPattern refuses what cannot be a host glob: empty, a URL, a path,
// whitespace.
func checkHostPattern(p string) error {
	t := strings.TrimSpace(p)
	switch {
	case t == "":
		return fmt.Errorf("allowed host %q: empty (use a host name or glob such as api.example.com or *.example.com)", p)
	case strings.Contains(t, "://"):
		return fmt.Errorf("allowed host %q: a host, not a URL (drop the scheme: %s)", p, t[strings.Index(t, "://")+3:])
	case strings.ContainsAny(t, "/ \t\r\n?#@"):
		return fmt.Errorf("allowed host %q: a host name or glob only (no path, spaces, ? # or @)", p)
	}
	return nil
}

// Allows reports whether host ("name" or "name:port", as a Host header or a
// CONNECT target) is on the list. defaultPort fills in a missing port for
// patterns that name one ("443" for https, "80" for http).
func (h *HostPatterns) Allows(host, defaultPort string) bool {
	if h == nil {
		return true
	}
	hostname, port := splitHostPort(host)
	if port == "" {
		port = defaultPort
	}
	for _, p := range h.patterns {
		if hostPatternMatch(p, hostname, port) {
			return true
		}
	}
	return false
}

// List is the allow-list as given (lower-cased, each once); nil for none.
func (h *HostPatterns) List() []string {
	if h == nil {
		return nil
	}
	return append([]string(nil), h.patterns...)
}
