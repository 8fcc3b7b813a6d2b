package match

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/cassetteproxy/cassetteproxy/internal/yamlerr"
)

// Rules decide what of a request goes into its match key. The zero value
// and a nil *Rules behave as DefaultRules. Rules are immutable once parsed
// and safe for concurrent use.
type Rules struct {
	rules      []rule
	allowHosts []string // allow_hosts: the only hosts requests may go to (none: any)
	// blockIncomplete: incomplete: block. Strict mode blocks a recorded
	// answer that was cut short instead of replaying its bytes and break.
	blockIncomplete bool
}

type bodyMode uint8

const (
	bodyAuto   bodyMode = iota // JSON when it is JSON, form when it is a form, else bytes
	bodyJSONM                  // JSON whatever the content type (bytes if it does not parse)
	bodyExact                  // raw bytes
	bodyIgnore                 // not in the key
)

var bodyModeNames = map[string]bodyMode{"auto": bodyAuto, "json": bodyJSONM, "exact": bodyExact, "ignore": bodyIgnore}

type rule struct {
	line          int
	host, path    string // glob patterns; "" = any
	ignoreQuery   []string
	ignoreHeaders []string
	matchHeaders  []string
	bodyPaths     []JSONPath
	body          bodyMode
	bodySet       bool
	mode          Mode
	store         string     // store policy: "" (unset), store.StoreFull, StoreFields or StoreHash
	keep          []JSONPath // store: fields — the JSON paths kept
	// responsePaths are JSON paths of response bodies whose values change
	// from one recording to the next (rules learn finds them); drift
	// ignores them. They never affect matching.
	responsePaths []JSONPath
}

// DefaultRules need no file: method, scheme, host, path, query and body are
// keyed; no header is.
func DefaultRules() *Rules { return &Rules{} }

// Len is the number of rules.
func (r *Rules) Len() int {
	if r == nil {
		return 0
	}
	return len(r.rules)
}

// LoadRules reads and parses a rules file; errors (*yamlerr.Error) name
// the file and line.
func LoadRules(path string) (*Rules, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, yamlerr.At(path, 0, "cannot read rules: %v", err)
	}
	return parseRules(data, path)
}

// ParseRules parses rules YAML; errors carry the line ("line 7: ...").
func ParseRules(data []byte) (*Rules, error) {
	return parseRules(data, "")
}

// ParseRulesFile parses rules YAML already read from path; errors read
// "path:7: ...", as LoadRules's do. For callers that share the file's bytes
// with package redact.
func ParseRulesFile(path string, data []byte) (*Rules, error) {
	return parseRules(data, path)
}

func parseRules(data []byte, file string) (*Rules, error) {
	errAt := func(line int, format string, args ...any) error {
		return yamlerr.At(file, line, format, args...)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		e := yamlerr.Syntax(file, err)
		if at := yamlProblemLine(data); e.Line > 0 && at > e.Line {
			// The parser names the line where the enclosing block
			// starts; the line that broke it helps more.
			e.Msg, e.Line = fmt.Sprintf("%s (in the block starting at line %d)", e.Msg, e.Line), at
		}
		return nil, e
	}
	rs := &Rules{}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return rs, nil // empty file
	}
	top := resolve(doc.Content[0])
	if top.Kind == yaml.ScalarNode && top.Tag == "!!null" {
		return rs, nil
	}
	if top.Kind != yaml.MappingNode {
		return nil, errAt(top.Line, "rules file must be a mapping with a rules: list")
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := resolve(top.Content[i]), resolve(top.Content[i+1])
		if prev, ok := seen[k.Value]; ok {
			return nil, errAt(k.Line, "key %q already defined at line %d", k.Value, prev)
		}
		seen[k.Value] = k.Line
		switch k.Value {
		case "redact":
			// Owned by package redact.
		case "allow_hosts":
			hosts, err := stringList(v, k.Value, errAt)
			if err != nil {
				return nil, err
			}
			items := listItems(v)
			for j, h := range hosts {
				if err := checkHostPattern(h); err != nil {
					return nil, errAt(items[j].Line, "%v", err)
				}
			}
			rs.allowHosts = hosts
		case "incomplete":
			if v.Kind != yaml.ScalarNode || (v.Value != "block" && v.Value != "replay") {
				return nil, errAt(v.Line, "incomplete must be block or replay, got %s", describeNode(v))
			}
			rs.blockIncomplete = v.Value == "block"
		case "rules":
			if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
				continue
			}
			if v.Kind != yaml.SequenceNode {
				return nil, errAt(v.Line, "rules must be a list")
			}
			for _, item := range v.Content {
				ru, err := parseRule(resolve(item), errAt)
				if err != nil {
					return nil, err
				}
				rs.rules = append(rs.rules, ru)
			}
		default:
			return nil, errAt(k.Line, "unknown key %q (want rules, allow_hosts, incomplete or redact)", k.Value)
		}
	}
	return rs, nil
}

// yamlProblemLine finds the line a YAML syntax error is on: the one after
// the longest prefix of whole lines that still parses. 0 if unknown.
func yamlProblemLine(data []byte) int {
	lines := strings.SplitAfter(string(data), "\n")
	if len(lines) > 2000 {
		return 0
	}
	for k := len(lines) - 1; k >= 1; k-- {
		var n yaml.Node
		if yaml.Unmarshal([]byte(strings.Join(lines[:k], "")), &n) == nil {
			return k + 1
		}
	}
	return 0
}

func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

type errAtFunc func(line int, format string, args ...any) error

func parseRule(n *yaml.Node, errAt errAtFunc) (rule, error) {
	if n.Kind != yaml.MappingNode {
		return rule{}, errAt(n.Line, "each rule must be a mapping (host:, path:, ...)")
	}
	ru := rule{line: n.Line}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		if prev, ok := seen[k.Value]; ok {
			return rule{}, errAt(k.Line, "key %q already defined at line %d", k.Value, prev)
		}
		seen[k.Value] = k.Line
		var err error
		switch k.Value {
		case "host":
			ru.host, err = scalar(v, k.Value, errAt)
			ru.host = strings.ToLower(ru.host)
		case "path":
			ru.path, err = scalar(v, k.Value, errAt)
		case "ignore_query":
			ru.ignoreQuery, err = stringList(v, k.Value, errAt)
		case "ignore_headers":
			ru.ignoreHeaders, err = stringList(v, k.Value, errAt)
		case "match_headers":
			ru.matchHeaders, err = stringList(v, k.Value, errAt)
		case "ignore_body_paths":
			ru.bodyPaths, err = jsonPathList(v, k.Value, errAt)
		case "ignore_response_paths":
			ru.responsePaths, err = jsonPathList(v, k.Value, errAt)
		case "body":
			var s string
			if s, err = scalar(v, k.Value, errAt); err != nil {
				break
			}
			m, ok := bodyModeNames[strings.ToLower(s)]
			if !ok {
				return rule{}, errAt(v.Line, "body must be auto, json, exact or ignore, not %q", s)
			}
			ru.body, ru.bodySet = m, true
		case "mode":
			var s string
			if s, err = scalar(v, k.Value, errAt); err != nil {
				break
			}
			if ru.mode, err = ParseMode(strings.ToLower(s)); err != nil {
				return rule{}, errAt(v.Line, "%v", err)
			}
		case "store":
			var s string
			if s, err = scalar(v, k.Value, errAt); err != nil {
				break
			}
			s = strings.ToLower(s)
			if !validStore[s] {
				return rule{}, errAt(v.Line, "store must be full, fields or hash, not %q", s)
			}
			ru.store = s
		case "keep":
			ru.keep, err = jsonPathList(v, k.Value, errAt)
		default:
			return rule{}, errAt(k.Line, "unknown rule key %q (want host, path, ignore_query, ignore_headers, match_headers, ignore_body_paths, ignore_response_paths, body, mode, store or keep)", k.Value)
		}
		if err != nil {
			return rule{}, err
		}
	}
	if len(ru.bodyPaths) > 0 && ru.bodySet && (ru.body == bodyExact || ru.body == bodyIgnore) {
		return rule{}, errAt(n.Line, "ignore_body_paths needs body auto or json")
	}
	if err := checkStore(&ru, seen, errAt); err != nil {
		return rule{}, err
	}
	return ru, nil
}

func scalar(v *yaml.Node, key string, errAt errAtFunc) (string, error) {
	if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
		return "", errAt(v.Line, "%s must be a single value", key)
	}
	if strings.TrimSpace(v.Value) == "" {
		return "", errAt(v.Line, "%s must not be empty", key)
	}
	return strings.TrimSpace(v.Value), nil
}

func listItems(v *yaml.Node) []*yaml.Node {
	if v.Kind == yaml.SequenceNode {
		return v.Content
	}
	return []*yaml.Node{v}
}

// stringList accepts a list of scalars, or one scalar for a one-item list.
// jsonPathList reads a list of JSON paths, each error at its own line.
func jsonPathList(v *yaml.Node, key string, errAt errAtFunc) ([]JSONPath, error) {
	paths, err := stringList(v, key, errAt)
	if err != nil {
		return nil, err
	}
	items := listItems(v)
	out := make([]JSONPath, 0, len(paths))
	for j, p := range paths {
		jp, err := ParseJSONPath(p)
		if err != nil {
			return nil, errAt(items[j].Line, "%v", err)
		}
		out = append(out, jp)
	}
	return out, nil
}

func stringList(v *yaml.Node, key string, errAt errAtFunc) ([]string, error) {
	if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
		return nil, nil
	}
	if v.Kind != yaml.SequenceNode && v.Kind != yaml.ScalarNode {
		return nil, errAt(v.Line, "%s must be a list", key)
	}
	var out []string
	for _, it := range listItems(v) {
		it = resolve(it)
		s, err := scalar(it, key+" item", errAt)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// matches reports whether the rule applies to a request for hostname (no
// port, lower-case), its port ("" when unknown) and its URL path. path ""
// (not known yet, as at CONNECT) matches only rules without a path.
func (ru *rule) matches(hostname, port, path string) bool {
	if ru.host != "" && !hostPatternMatch(ru.host, hostname, port) {
		return false
	}
	if ru.path != "" && (path == "" || !globMatch(ru.path, path, false)) {
		return false
	}
	return true
}

// hostPatternMatch: a pattern with a port ("example.com:8443",
// "[::1]:8080", "*:8080") is matched against host:port, with the scheme's
// default port filled in; a pattern without one against the host name only.
func hostPatternMatch(pattern, hostname, port string) bool {
	withPort := false
	if strings.HasPrefix(pattern, "[") {
		if strings.Contains(pattern, "]:") {
			withPort = true
		} else {
			pattern = strings.Trim(pattern, "[]")
		}
	} else if strings.Count(pattern, ":") == 1 {
		withPort = true
	}
	if !withPort {
		return globMatch(pattern, hostname, true)
	}
	if port == "" {
		return false
	}
	return globMatch(pattern, net.JoinHostPort(hostname, port), true)
}

// effective is what the matching rules say about one request.
type effective struct {
	ignoreQuery   []string
	ignoreHeaders []string
	matchHeaders  []string
	bodyPaths     []JSONPath
	body          bodyMode
}

var defaultEffective = &effective{}

// effectiveFor merges every rule that applies: the ignore and match lists
// of all of them add up; body (like mode) comes from the first rule that
// sets it.
func (r *Rules) effectiveFor(hostname, port, path string) *effective {
	if r == nil || len(r.rules) == 0 {
		return defaultEffective
	}
	var e *effective
	bodySet := false
	for i := range r.rules {
		ru := &r.rules[i]
		if !ru.matches(hostname, port, path) {
			continue
		}
		if e == nil {
			e = &effective{}
		}
		e.ignoreQuery = append(e.ignoreQuery, ru.ignoreQuery...)
		e.ignoreHeaders = append(e.ignoreHeaders, ru.ignoreHeaders...)
		e.matchHeaders = append(e.matchHeaders, ru.matchHeaders...)
		e.bodyPaths = append(e.bodyPaths, ru.bodyPaths...)
		if ru.bodySet && !bodySet {
			e.body, bodySet = ru.body, true
		}
	}
	if e == nil {
		return defaultEffective
	}
	return e
}

// IgnoredResponsePaths lists the ignore_response_paths of every rule that
// applies to a request for rawURL (absolute): the JSON paths of its
// response whose values are volatile.
func (r *Rules) IgnoredResponsePaths(rawURL string) []JSONPath {
	if r == nil || len(r.rules) == 0 {
		return nil
	}
	hostname, port, path := urlParts(rawURL)
	var out []JSONPath
	for i := range r.rules {
		if ru := &r.rules[i]; ru.matches(hostname, port, path) {
			out = append(out, ru.responsePaths...)
		}
	}
	return out
}

// ModeFor is the mode the first rule matching host and path sets, if any.
// host is "name" or "name:port" (a Host header or CONNECT target); ports 80
// and 443 are taken as defaults. path "" (unknown, as at CONNECT time)
// matches only rules without a path pattern.
func (r *Rules) ModeFor(host, path string) (Mode, bool) {
	if r == nil || len(r.rules) == 0 {
		return "", false
	}
	hostname, port := splitHostPort(host)
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	for i := range r.rules {
		ru := &r.rules[i]
		if ru.mode != "" && ru.matches(hostname, port, path) {
			return ru.mode, true
		}
	}
	return "", false
}

// BlockIncomplete reports the file's incomplete: block: strict mode blocks
// a recorded answer that was cut short (reason incomplete_recording).
func (r *Rules) BlockIncomplete() bool { return r != nil && r.blockIncomplete }

// describeNode names a YAML value in an error: a scalar quoted, else its kind.
func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.ScalarNode:
		return strconv.Quote(n.Value)
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	}
	return "nothing"
}

// AllowHosts is the file's allow_hosts list (nil: no restriction); see
// ParseHostPatterns.
func (r *Rules) AllowHosts() []string {
	if r == nil {
		return nil
	}
	return append([]string(nil), r.allowHosts...)
}

// Modes lists the modes the rules set, in rule order, each once. The proxy
// uses it to know, before any request, whether some host may reach upstream.
func (r *Rules) Modes() []Mode {
	if r == nil {
		return nil
	}
	var out []Mode
	for i := range r.rules {
		if m := r.rules[i].mode; m != "" && !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out
}

// splitHostPort splits "host[:port]" (IPv6 in brackets), lower-cases the
// host and drops a trailing dot. port is "" when absent.
func splitHostPort(hostport string) (hostname, port string) {
	hostport = strings.TrimSpace(hostport)
	if strings.IndexByte(hostport, ':') < 0 {
		// No port: the common case, without net.SplitHostPort's error.
		hostname = strings.Trim(hostport, "[]")
	} else if h, p, err := net.SplitHostPort(hostport); err == nil {
		hostname, port = h, p
	} else {
		hostname = strings.Trim(hostport, "[]")
	}
	hostname = strings.TrimSuffix(strings.ToLower(hostname), ".")
	return hostname, port
}
