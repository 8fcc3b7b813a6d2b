package match

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/cassetteproxy/cassetteproxy/store"
)

// Learning volatile fields: two recordings of the same task differ where
// values are made fresh on every run (timestamps, UUIDs, nonces, ids
// derived from the clock). Pairing their requests and walking each pair
// side by side finds them; the rules that ignore them let the one
// recording replay the other's requests, and drift ignore them in
// answers.

// Volatile is one field whose value differed between the recordings, with
// one example pair of values.
type Volatile struct {
	Name string `json:"name"` // query or header name, or JSON path ([*] for any index)
	A    string `json:"a"`    // the value in the first recording (shortened)
	B    string `json:"b"`    // and in the second
}

// LearnedRule is what was learned for one host and path.
type LearnedRule struct {
	Host          string     `json:"host"` // host, with the port when not the scheme's default
	Path          string     `json:"path"`
	Query         []Volatile `json:"ignore_query,omitempty"`
	Headers       []Volatile `json:"ignore_headers,omitempty"`
	BodyPaths     []Volatile `json:"ignore_body_paths,omitempty"`
	ResponsePaths []Volatile `json:"ignore_response_paths,omitempty"`
}

func (r *LearnedRule) empty() bool {
	return len(r.Query)+len(r.Headers)+len(r.BodyPaths)+len(r.ResponsePaths) == 0
}

// Learned is the outcome of Learn.
type Learned struct {
	TotalA, TotalB int // interactions in each recording
	Paired         int // pairs compared
	// Structural counts the pairs whose JSON differed in shape (a key or an
	// element only one side has, a type change): a real difference, not a
	// volatile value, so nothing is learned from it.
	Structural int
	Rules      []LearnedRule // sorted by host, then path; only those with something learned
}

// ErrTooFewPairs is Learn's error when the recordings do not look like two
// runs of one task.
type ErrTooFewPairs struct{ Paired, TotalA, TotalB int }

func (e *ErrTooFewPairs) Error() string {
	return fmt.Sprintf("could pair only %d of %d and %d requests by method, host and path: the two recordings do not look like the same task (record the same task twice)",
		e.Paired, e.TotalA, e.TotalB)
}

// Learn pairs the requests of two recordings of the same task, first by
// method, host, path (and JSON-RPC method), then by order among those, and
// finds the query parameters, request headers, request JSON paths and
// response JSON paths whose values differ. A path that differed at every
// index of an array where it was seen is generalized ($.messages[*].ts).
// Fewer than half of the larger recording paired is an ErrTooFewPairs.
func Learn(a, b []store.Interaction) (*Learned, error) {
	l := &Learned{TotalA: len(a), TotalB: len(b)}
	groupsB := map[string][]*store.Interaction{}
	for i := range b {
		k := pairKey(&b[i])
		groupsB[k] = append(groupsB[k], &b[i])
	}
	used := map[string]int{}
	obs := map[string]*observed{} // by rule (host path) and field kind
	var order []string
	for i := range a {
		ia := &a[i]
		k := pairKey(ia)
		n := used[k]
		if n >= len(groupsB[k]) {
			continue
		}
		used[k] = n + 1
		ib := groupsB[k][n]
		l.Paired++
		host, path := hostPath(ia.Request.URL)
		rk := host + " " + path
		o := obs[rk]
		if o == nil {
			o = newObserved(host, path)
			obs[rk] = o
			order = append(order, rk)
		}
		if o.compare(ia, ib) {
			l.Structural++
		}
	}
	if l.Paired == 0 || 2*l.Paired < max(len(a), len(b)) {
		return l, &ErrTooFewPairs{Paired: l.Paired, TotalA: len(a), TotalB: len(b)}
	}
	slices.Sort(order)
	for _, rk := range order {
		if r := obs[rk].rule(); !r.empty() {
			l.Rules = append(l.Rules, r)
		}
	}
	return l, nil
}

// pairKey groups requests that may pair: method, host, path, and for a
// JSON-RPC request its method (and tool).
func pairKey(in *store.Interaction) string {
	host, path := hostPath(in.Request.URL)
	k := strings.ToUpper(in.Request.Method) + " " + host + " " + path
	if call, ok := ParseJSONRPCCall(in.Request.Body); ok {
		k += " rpc:" + call.Method + " " + call.Tool
	}
	return k
}

// hostPath is a URL's host as rules match it (lower case, the port only
// when it is not the scheme's default) and its path.
func hostPath(raw string) (host, path string) {
	scheme, authority, path, _ := splitURL(raw)
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		authority = authority[i+1:]
	}
	hostname, port := splitHostPort(authority)
	if path == "" {
		path = "/"
	}
	return hostKey(hostname, port, scheme), path
}

// observed gathers, for one host and path, what every pair showed.
type observed struct {
	host, path string
	query      map[string]*Volatile
	headers    map[string]*Volatile
	body       *pathObs
	response   *pathObs
}

func newObserved(host, path string) *observed {
	return &observed{host: host, path: path, query: map[string]*Volatile{}, headers: map[string]*Volatile{},
		body: newPathObs(), response: newPathObs()}
}

// compare walks one pair; it reports a structural difference.
func (o *observed) compare(a, b *store.Interaction) (structural bool) {
	qa, qb := queryOf(a.Request.URL), queryOf(b.Request.URL)
	for name, va := range qa {
		if vb, ok := qb[name]; ok && !slices.Equal(va, vb) && o.query[name] == nil {
			o.query[name] = &Volatile{Name: name, A: short(strings.Join(va, ",")), B: short(strings.Join(vb, ","))}
		}
	}
	for name, va := range a.Request.Header {
		ln := strings.ToLower(name)
		vb, ok := headerValues(b.Request.Header, name)
		if !ok || anyGlob(neverKeyed, ln, false) || o.headers[ln] != nil {
			continue
		}
		if sa, sb := strings.Join(va, ","), strings.Join(vb, ","); StripFingerprints(sa) != StripFingerprints(sb) {
			o.headers[ln] = &Volatile{Name: http.CanonicalHeaderKey(name), A: short(sa), B: short(sb)}
		}
	}
	rpc := false
	if _, ok := ParseJSONRPCCall(a.Request.Body); ok {
		rpc = true
	}
	if da, db, ok := jsonPair(a.Request.Body, b.Request.Body); ok {
		skip := func(p string) bool {
			return rpc && (p == "$.id" || p == "$.params._meta.progressToken")
		}
		structural = o.body.walk(da, db, skip) || structural
	}
	ra, oka := ResponseDocument(a.Response.Header.Get("Content-Type"), a.Response.Body)
	rb, okb := ResponseDocument(b.Response.Header.Get("Content-Type"), b.Response.Body)
	if oka && okb {
		if da, db, ok := jsonPair(ra, rb); ok {
			structural = o.response.walk(da, db, nil) || structural
		}
	}
	return structural
}

func (o *observed) rule() LearnedRule {
	r := LearnedRule{Host: o.host, Path: o.path}
	r.Query = sortedVolatiles(o.query)
	r.Headers = sortedVolatiles(o.headers)
	r.BodyPaths = o.body.learned()
	r.ResponsePaths = o.response.learned()
	return r
}

func sortedVolatiles(m map[string]*Volatile) []Volatile {
	var out []Volatile
	for _, v := range m {
		out = append(out, *v)
	}
	slices.SortFunc(out, func(x, y Volatile) int { return strings.Compare(x.Name, y.Name) })
	return out
}

func queryOf(raw string) url.Values {
	_, _, _, q := splitURL(raw)
	vals := url.Values{}
	for _, kv := range parsePairs(q, nil) {
		vals[kv.k] = append(vals[kv.k], kv.v)
	}
	return vals
}

func headerValues(h http.Header, name string) ([]string, bool) {
	if v, ok := h[name]; ok {
		return v, true
	}
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return nil, false
}

// jsonPair decodes two JSON documents (objects or arrays).
func jsonPair(a, b []byte) (any, any, bool) {
	if !looksLikeJSONContainer(a) || !looksLikeJSONContainer(b) {
		return nil, nil, false
	}
	da, err1 := decodeJSON(a)
	db, err2 := decodeJSON(b)
	return da, db, err1 == nil && err2 == nil
}

func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// pathObs tracks, per JSON path, the scalar values that differed and
// whether the path with its indices generalized ([*]) was ever seen equal.
type pathObs struct {
	differ map[string]*Volatile // concrete path -> example
	gen    map[string]string    // concrete path -> generalized path
	equal  map[string]bool      // generalized paths seen equal somewhere
}

func newPathObs() *pathObs {
	return &pathObs{differ: map[string]*Volatile{}, gen: map[string]string{}, equal: map[string]bool{}}
}

// walk compares a and b side by side; skip leaves out paths (JSON-RPC ids).
// It reports a structural difference.
func (p *pathObs) walk(a, b any, skip func(string) bool) bool {
	structural := false
	var rec func(a, b any, path, gen string)
	rec = func(a, b any, path, gen string) {
		if skip != nil && skip(path) {
			return
		}
		switch va := a.(type) {
		case map[string]any:
			vb, ok := b.(map[string]any)
			if !ok {
				structural = true
				return
			}
			for k, x := range va {
				y, ok := vb[k]
				if !ok {
					structural = true
					continue
				}
				rec(x, y, jsonPathChild(path, k), jsonPathChild(gen, k))
			}
			if len(vb) > len(va) {
				structural = true
			}
		case []any:
			vb, ok := b.([]any)
			if !ok {
				structural = true
				return
			}
			if len(va) != len(vb) {
				structural = true
			}
			for i := range min(len(va), len(vb)) {
				rec(va[i], vb[i], jsonPathIndex(path, i), gen+"[*]")
			}
		default:
			if isContainer(b) {
				structural = true
				return
			}
			if scalarText(a) == scalarText(b) {
				p.equal[gen] = true
				return
			}
			if p.differ[path] == nil {
				p.differ[path] = &Volatile{Name: path, A: short(scalarText(a)), B: short(scalarText(b))}
				p.gen[path] = gen
			}
		}
	}
	rec(a, b, "$", "$")
	return structural
}

// learned lists the volatile paths: generalized where no element at the
// generalized path was ever seen equal, else as seen; each once.
func (p *pathObs) learned() []Volatile {
	seen := map[string]bool{}
	var out []Volatile
	paths := make([]string, 0, len(p.differ))
	for path := range p.differ {
		paths = append(paths, path)
	}
	slices.Sort(paths)
	for _, path := range paths {
		v := *p.differ[path]
		if g := p.gen[path]; !p.equal[g] {
			v.Name = g
		}
		if !seen[v.Name] {
			seen[v.Name] = true
			out = append(out, v)
		}
	}
	return out
}

func isContainer(v any) bool {
	switch v.(type) {
	case map[string]any, []any:
		return true
	}
	return false
}

// scalarText is a scalar as compared: strings without redaction
// fingerprints (two scrubbed secrets are the same value), numbers as
// written.
func scalarText(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return StripFingerprints(x)
	case json.Number:
		return x.String()
	case bool:
		if x {
			return "true"
		}
		return "false"
	}
	return fmt.Sprint(v)
}

func short(s string) string {
	const n = 40
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

// ResponseDocument is the JSON a response body carries, for comparing
// answers: a JSON body itself; for an SSE stream the JSON of its data:
// events (one event: that value; several: an array of them, in order);
// ok is false for anything else.
func ResponseDocument(contentType string, body []byte) ([]byte, bool) {
	mt := mediaType(contentType)
	if mt == "text/event-stream" {
		var docs [][]byte
		for _, ev := range sseData(body) {
			if json.Valid(ev) && looksLikeJSONContainer(ev) {
				docs = append(docs, ev)
			}
		}
		switch len(docs) {
		case 0:
			return nil, false
		case 1:
			return docs[0], true
		}
		return append(append([]byte("["), bytes.Join(docs, []byte(","))...), ']'), true
	}
	if looksLikeJSONContainer(body) && json.Valid(body) {
		return body, true
	}
	return nil, false
}

// sseData returns the data of each event of an SSE stream (data: lines of
// one event joined by newlines).
func sseData(body []byte) [][]byte {
	var out [][]byte
	var cur []byte
	has := false
	flush := func() {
		if has {
			out = append(out, cur)
		}
		cur, has = nil, false
	}
	for _, line := range bytes.Split(body, []byte("\n")) {
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			flush()
			continue
		}
		if v, ok := bytes.CutPrefix(line, []byte("data:")); ok {
			v = bytes.TrimPrefix(v, []byte(" "))
			if has {
				cur = append(cur, '\n')
			}
			cur = append(cur, v...)
			has = true
		}
	}
	flush()
	return out
}

// StripJSONPaths removes what paths select from a JSON document and
// returns it canonical (sorted keys, no whitespace; removed array elements
// become null, so later indexes keep their place).
func StripJSONPaths(doc []byte, paths []JSONPath) ([]byte, error) {
	n, err := parseJSON(doc)
	if err != nil {
		return nil, err
	}
	for _, p := range paths {
		if p.IsRoot() {
			return []byte("null"), nil
		}
		p.remove(&n)
	}
	n.canonicalize()
	return appendJSON(nil, &n), nil
}

// YAML is the learned rules as a rules file (the --rules format): one rule
// per host and path, every ignored field with its example pair of values
// as a comment, under a header comment.
func (l *Learned) YAML(header string) ([]byte, error) {
	str := func(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Value: s} }
	list := func(vs []Volatile) *yaml.Node {
		seq := &yaml.Node{Kind: yaml.SequenceNode}
		for _, v := range vs {
			item := str(v.Name)
			item.Style = yaml.DoubleQuotedStyle
			item.LineComment = fmt.Sprintf("e.g. %q vs %q", v.A, v.B)
			seq.Content = append(seq.Content, item)
		}
		return seq
	}
	rules := &yaml.Node{Kind: yaml.SequenceNode}
	for _, r := range l.Rules {
		m := &yaml.Node{Kind: yaml.MappingNode}
		host := str(r.Host)
		host.Style = yaml.DoubleQuotedStyle
		path := str(r.Path)
		path.Style = yaml.DoubleQuotedStyle
		m.Content = append(m.Content, str("host"), host, str("path"), path)
		for _, f := range []struct {
			key string
			vs  []Volatile
		}{{"ignore_query", r.Query}, {"ignore_headers", r.Headers}, {"ignore_body_paths", r.BodyPaths}, {"ignore_response_paths", r.ResponsePaths}} {
			if len(f.vs) > 0 {
				m.Content = append(m.Content, str(f.key), list(f.vs))
			}
		}
		rules.Content = append(rules.Content, m)
	}
	if len(rules.Content) == 0 {
		rules.Style = yaml.FlowStyle
	}
	doc := &yaml.Node{Kind: yaml.DocumentNode, HeadComment: header, Content: []*yaml.Node{{Kind: yaml.MappingNode,
		Content: []*yaml.Node{str("rules"), rules}}}}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
