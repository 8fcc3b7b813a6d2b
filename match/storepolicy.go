package match

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/cassetteproxy/cassetteproxy/store"
)

// Store policy: what of an interaction's bodies the store keeps, per host
// and path (rules file `store:` and `keep:`). full keeps them; fields keeps
// only the listed JSON paths of each body; hash keeps neither, only the
// size and SHA-256 of each. Either way the request stays matchable: its
// marker carries the body's part of the match key (BodyMarker.Match).

var validStore = map[string]bool{store.StoreFull: true, store.StoreFields: true, store.StoreHash: true}

// checkStore checks a rule's store and keep together: keep only with
// store: fields, and store: fields only with something to keep.
func checkStore(ru *rule, seen map[string]int, errAt errAtFunc) error {
	keepLine, hasKeep := seen["keep"]
	switch {
	case hasKeep && ru.store != store.StoreFields:
		return errAt(keepLine, "keep needs store: fields in the same rule")
	case ru.store == store.StoreFields && len(ru.keep) == 0:
		return errAt(seen["store"], "store: fields needs keep: [JSON paths], the fields to keep")
	}
	return nil
}

// StorePolicy is what the store keeps of one interaction's bodies.
type StorePolicy struct {
	Kind string     // store.StoreFull, store.StoreFields or store.StoreHash
	Keep []JSONPath // store.StoreFields: the JSON paths kept
}

// StorePolicyFor is the store policy of the first rule that matches rawURL
// (absolute) and sets store:; full when none does.
func (r *Rules) StorePolicyFor(rawURL string) StorePolicy {
	if r == nil || len(r.rules) == 0 {
		return StorePolicy{Kind: store.StoreFull}
	}
	hostname, port, path := urlParts(rawURL)
	for i := range r.rules {
		if ru := &r.rules[i]; ru.store != "" && ru.matches(hostname, port, path) {
			return StorePolicy{Kind: ru.store, Keep: ru.keep}
		}
	}
	return StorePolicy{Kind: store.StoreFull}
}

// urlParts is the host name, port (the scheme's default filled in) and
// path of an absolute URL, as rules match them.
func urlParts(rawURL string) (hostname, port, path string) {
	scheme, authority, path, _ := splitURL(rawURL)
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		authority = authority[i+1:]
	}
	hostname, port = splitHostPort(authority)
	if port == "" {
		port = defaultPorts[scheme]
	}
	if path == "" {
		path = "/"
	}
	return hostname, port, path
}

// ApplyStorePolicy reduces a redacted interaction to what its store policy
// keeps, and returns the policy. Under fields and hash a non-empty request
// body is replaced by a marker with its size, SHA-256, the kept fields and
// its part of the match key (taken with these rules), and a non-empty
// response body, stream or WebSocket messages by a marker with the size,
// SHA-256 and kept fields. Empty bodies stay as they are: nothing is left
// out. A response body already left out (over --max-body) keeps its marker.
func (r *Rules) ApplyStorePolicy(in *store.Interaction) StorePolicy {
	p := r.StorePolicyFor(in.Request.URL)
	if p.Kind == store.StoreFull {
		return p
	}
	if q := &in.Request; len(q.Body) > 0 {
		var n normReq
		r.normalizeInto(&n, q)
		q.NotRecorded = p.marker(q.Body)
		q.NotRecorded.Match = n.bodyMatch()
		q.Body = nil
	}
	resp := &in.Response
	if resp.NotRecorded != nil {
		return p
	}
	body := resp.Body
	if len(body) == 0 && len(resp.Events) > 0 { // WebSocket messages: their data in order
		for _, e := range resp.Events {
			body = append(body, e.Data...)
		}
	}
	if len(body) > 0 || len(resp.Events) > 0 {
		resp.NotRecorded = p.marker(body)
		resp.Body, resp.Events, resp.Streamed = nil, nil, false
	}
	return p
}

// marker stands for body under the policy.
func (p StorePolicy) marker(body []byte) *store.BodyMarker {
	sum := sha256.Sum256(body)
	m := &store.BodyMarker{Size: int64(len(body)), SHA256: hex.EncodeToString(sum[:]), Reason: "body_not_recorded", Policy: p.Kind}
	if p.Kind == store.StoreFields {
		m.Fields = KeepFields(body, p.Keep)
	}
	return m
}

// Body match strings (BodyMarker.Match): the body's kind, then its digest.
var bodyKindNames = map[bodyKind]string{bodyIgnored: "ignored", bodyIsJSON: "json", bodyIsForm: "form", bodyIsRaw: "raw"}

// bodyMatch is the body's part of the key, as text: "json:<hex digest>",
// "form:...", "raw:...", "ignored", or "" for no body.
func (n *normReq) bodyMatch() string {
	switch n.body {
	case bodyNone:
		return ""
	case bodyIgnored:
		return "ignored"
	}
	return bodyKindNames[n.body] + ":" + hex.EncodeToString(n.bodyDigest[:])
}

// setBodyMatch keys the body by a bodyMatch taken when it was recorded,
// and reports whether it could.
func (n *normReq) setBodyMatch(s string) bool {
	if s == "ignored" {
		n.body, n.digestOnly = bodyIgnored, true
		return true
	}
	name, digest, ok := strings.Cut(s, ":")
	if !ok {
		return false
	}
	for k, kn := range bodyKindNames {
		if kn != name || k == bodyIgnored {
			continue
		}
		d, err := hex.DecodeString(digest)
		if err != nil || len(d) != len(n.bodyDigest) {
			return false
		}
		n.body, n.digestOnly = k, true
		copy(n.bodyDigest[:], d)
		return true
	}
	return false
}

// KeepFields is the JSON body reduced to the values the paths select,
// with the members and array places that lead to them (an array keeps the
// places before a kept element, as null). nil when body is not JSON or no
// path selects anything.
func KeepFields(body []byte, paths []JSONPath) []byte {
	v, err := parseJSON(body)
	if err != nil {
		return nil
	}
	var root keptNode
	for _, p := range paths {
		visitSegs(&v, p.segs, nil, func(at []pathStep, sel *jnode) { root.insert(at, sel) })
	}
	if root.empty() {
		return nil
	}
	out := root.node()
	return appendJSON(nil, &out)
}

// pathStep is one step from a JSON value to a value inside it: a member
// (index < 0) or an array element of an array of n elements.
type pathStep struct {
	key   string
	index int
	n     int
}

// visitSegs calls fn with every value segs select below v, and the steps
// that lead to it (fn must not keep at).
func visitSegs(v *jnode, segs []pathSeg, at []pathStep, fn func(at []pathStep, sel *jnode)) {
	if len(segs) == 0 {
		fn(at, v)
		return
	}
	s, rest := segs[0], segs[1:]
	member := func(i int) []pathStep { return append(at[:len(at):len(at)], pathStep{key: v.mem[i].key, index: -1}) }
	element := func(i int) []pathStep { return append(at[:len(at):len(at)], pathStep{index: i, n: len(v.arr)}) }
	switch s.kind {
	case segChild:
		if v.kind == jObject {
			for i := range v.mem {
				if v.mem[i].key == s.name {
					visitSegs(&v.mem[i].val, rest, member(i), fn)
				}
			}
		}
	case segIndex:
		if v.kind == jArray {
			i := s.index
			if i < 0 {
				i += len(v.arr)
			}
			if i >= 0 && i < len(v.arr) {
				visitSegs(&v.arr[i], rest, element(i), fn)
			}
		}
	case segWildcard:
		switch v.kind {
		case jObject:
			for i := range v.mem {
				visitSegs(&v.mem[i].val, rest, member(i), fn)
			}
		case jArray:
			for i := range v.arr {
				visitSegs(&v.arr[i], rest, element(i), fn)
			}
		}
	case segDescendant, segDescAll:
		switch v.kind {
		case jObject:
			for i := range v.mem {
				if s.kind == segDescAll || v.mem[i].key == s.name {
					visitSegs(&v.mem[i].val, rest, member(i), fn)
				}
				visitSegs(&v.mem[i].val, segs, member(i), fn)
			}
		case jArray:
			for i := range v.arr {
				if s.kind == segDescAll {
					visitSegs(&v.arr[i], rest, element(i), fn)
				}
				visitSegs(&v.arr[i], segs, element(i), fn)
			}
		}
	}
}

// keptNode gathers the kept parts of a JSON value: the value whole, or
// some of its members or elements.
type keptNode struct {
	whole *jnode
	mem   []keptMember // in the order first kept
	arr   []*keptNode  // an array's places (nil: not kept)
}

type keptMember struct {
	key  string
	node *keptNode
}

func (k *keptNode) empty() bool { return k.whole == nil && len(k.mem) == 0 && k.arr == nil }

func (k *keptNode) insert(at []pathStep, v *jnode) {
	if k.whole != nil {
		return // already kept whole
	}
	if len(at) == 0 {
		*k = keptNode{whole: v}
		return
	}
	st := at[0]
	var child *keptNode
	if st.index >= 0 {
		if k.arr == nil {
			k.arr = make([]*keptNode, st.n)
		}
		if k.arr[st.index] == nil {
			k.arr[st.index] = &keptNode{}
		}
		child = k.arr[st.index]
	} else {
		for _, m := range k.mem {
			if m.key == st.key {
				child = m.node
				break
			}
		}
		if child == nil {
			child = &keptNode{}
			k.mem = append(k.mem, keptMember{st.key, child})
		}
	}
	child.insert(at[1:], v)
}

func (k *keptNode) node() jnode {
	switch {
	case k.whole != nil:
		return *k.whole
	case k.arr != nil:
		last := len(k.arr)
		for last > 0 && k.arr[last-1] == nil {
			last--
		}
		out := jnode{kind: jArray, arr: make([]jnode, last)}
		for i, c := range k.arr[:last] {
			if c == nil {
				out.arr[i] = jnode{kind: jGone}
			} else {
				out.arr[i] = c.node()
			}
		}
		return out
	}
	out := jnode{kind: jObject, mem: make([]jmember, len(k.mem))}
	for i, m := range k.mem {
		out.mem[i] = jmember{key: m.key, val: m.node.node()}
	}
	return out
}
