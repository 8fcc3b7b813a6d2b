package match

import (
	"cmp"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/cassetteproxy/cassetteproxy/store"
)

// Difference is one reason a request missed its closest recorded interaction.
type Difference struct {
	Field     string `json:"field"` // "method", "scheme", "host", "path", "query.<k>", "header.<k>", "body.<path>", "body"
	Recorded  string `json:"recorded,omitempty"`
	Requested string `json:"requested,omitempty"`
	// Kind is "changed" (both have it, with different values), "missing"
	// (the recording has it, the request does not), "extra" (the request
	// has it, the recording does not), or "truncated" for the last entry
	// when more differences were found than are listed.
	Kind string `json:"kind,omitempty"`
}

// Difference kinds.
const (
	DiffChanged   = "changed"
	DiffMissing   = "missing"
	DiffExtra     = "extra"
	DiffTruncated = "truncated"
)

// Closest is the recorded interaction nearest to a missed request.
type Closest struct {
	Seq         uint64       `json:"seq"`
	Method      string       `json:"method"`
	URL         string       `json:"url"`
	Differences []Difference `json:"differences"`
}

const (
	// maxValueRunes bounds every value Closest echoes.
	maxValueRunes = 200
	// maxListed bounds the differences listed; the rest are counted.
	maxListed = 32
	// maxDetailed bounds how many candidates are re-parsed and diffed in
	// full; more are first ranked by their stored part digests.
	maxDetailed = 64
)

// Closest finds the nearest recorded interaction, or nil when the cassette
// is empty. Candidates with the same host and path come first, and among
// them the one with the fewest differences wins (the earliest on a tie).
// Only when no interaction has the request's host and path are others
// looked at (same host, then all). A large candidate set is first ranked
// by an estimate of its differences, from a sketch of each request's
// query, headers and body leaves kept at indexing, so a miss on a 100k
// cassette re-parses at most maxDetailed recorded requests.
func (ix *Index) Closest(req *store.Request) (*Closest, error) {
	if ix == nil {
		return nil, nil
	}
	n := ix.rules.normalize(req)
	_, s := n.digestAndSummary(true)
	sk := s.content.packed()

	ix.mu.Lock()
	entries, groups := ix.entries, ix.groups
	var cands []int32
	if g, ok := ix.byGroup[s.host+" "+s.path]; ok {
		cands = ix.members[g]
	}
	if len(cands) == 0 {
		cands = ix.byHost[s.host]
	}
	method, okM := ix.strID[s.method]
	scheme, okS := ix.strID[s.scheme]
	ix.mu.Unlock()
	if len(entries) == 0 {
		return nil, nil
	}
	all := len(cands) == 0
	count := len(cands)
	if all {
		count = len(entries)
	}
	at := func(i int) int32 {
		if all {
			return int32(i)
		}
		return cands[i]
	}
	// coarseScore estimates the differences between a recorded request and
	// the requested one from the index; a different host or path outweighs
	// anything else.
	coarseScore := func(e *entry) float64 {
		var sc float64
		g := &groups[e.group]
		if g.host != s.host || g.path != s.path {
			sc += 1e9
		}
		for _, ne := range []bool{!okM || e.method != method, !okS || e.scheme != scheme, g.host != s.host, g.path != s.path} {
			if ne {
				sc++
			}
		}
		return sc + estPacked(&e.sk, &sk)
	}

	// Rank by estimated differences, keep the best maxDetailed.
	chosen := make([]int32, 0, min(count, maxDetailed))
	if count <= maxDetailed {
		for i := range count {
			chosen = append(chosen, at(i))
		}
	} else {
		type ranked struct {
			score float64
			idx   int32
		}
		r := make([]ranked, count)
		for i := range count {
			r[i] = ranked{coarseScore(&entries[at(i)]), at(i)}
		}
		slices.SortFunc(r, func(a, b ranked) int {
			if c := cmp.Compare(a.score, b.score); c != 0 {
				return c
			}
			return cmp.Compare(a.idx, b.idx)
		})
		for _, x := range r[:maxDetailed] {
			chosen = append(chosen, x.idx)
		}
	}

	bestScore := 0
	var best *differ
	var bestReq *store.Request
	var bestSeq uint64
	for _, ei := range chosen {
		rec, seq, err := ix.request(ei)
		if err != nil {
			return nil, err
		}
		rn := ix.rules.normalize(rec)
		d := &differ{}
		diffNorm(rn, n, d)
		score := d.n
		if rn.host != n.host || rn.path != n.path {
			score += 1 << 30
		}
		if best == nil || score < bestScore {
			bestScore, best, bestReq, bestSeq = score, d, rec, seq
		}
	}
	return &Closest{
		Seq:         bestSeq,
		Method:      bestReq.Method,
		URL:         truncate(bestReq.URL),
		Differences: best.result(),
	}, nil
}

type differ struct {
	list []Difference
	n    int
}

func (d *differ) add(field, kind, recorded, requested string) {
	d.n++
	if len(d.list) < maxListed {
		d.list = append(d.list, Difference{Field: truncate(field), Kind: kind, Recorded: truncate(recorded), Requested: truncate(requested)})
	}
}

func (d *differ) result() []Difference {
	out := d.list
	if out == nil {
		out = []Difference{}
	}
	if more := d.n - len(d.list); more > 0 {
		out = append(out, Difference{Field: "more", Kind: DiffTruncated, Requested: fmt.Sprintf("%d more differences not listed", more)})
	}
	return out
}

// diffNorm lists what differs between a recorded (rec) and a requested
// (req) normalized request, in key order.
func diffNorm(rec, req *normReq, d *differ) {
	for _, f := range []struct{ name, a, b string }{
		{"method", rec.method, req.method},
		{"scheme", rec.scheme, req.scheme},
		{"host", rec.host, req.host},
		{"path", rec.path, req.path},
	} {
		if f.a != f.b {
			d.add(f.name, DiffChanged, f.a, f.b)
		}
	}
	diffPairs("query.", rec.query, req.query, d)
	diffPairs("header.", rec.header, req.header, d)
	diffBody(rec, req, d)
}

// diffPairs compares sorted pairs name by name.
func diffPairs(prefix string, rec, req []kv, d *differ) {
	i, j := 0, 0
	for i < len(rec) || j < len(req) {
		var name string
		switch {
		case i >= len(rec):
			name = req[j].k
		case j >= len(req):
			name = rec[i].k
		default:
			name = min(rec[i].k, req[j].k)
		}
		var a, b []string
		for ; i < len(rec) && rec[i].k == name; i++ {
			a = append(a, rec[i].v)
		}
		for ; j < len(req) && req[j].k == name; j++ {
			b = append(b, req[j].v)
		}
		field := prefix + name
		switch {
		case len(a) == 0:
			d.add(field, DiffExtra, "", strings.Join(b, ", "))
		case len(b) == 0:
			d.add(field, DiffMissing, strings.Join(a, ", "), "")
		case strings.Join(a, "\x00") != strings.Join(b, "\x00"):
			d.add(field, DiffChanged, strings.Join(a, ", "), strings.Join(b, ", "))
		}
	}
}

func diffBody(rec, req *normReq, d *differ) {
	if rec.digestOnly || req.digestOnly {
		// A body kept only as its digest (store policy) compares whole.
		if rec.body != req.body || rec.bodyDigest != req.bodyDigest {
			d.add("body", DiffChanged, bodyPreview(rec), bodyPreview(req))
		}
		return
	}
	if rec.body == req.body {
		switch rec.body {
		case bodyNone, bodyIgnored:
			return
		case bodyIsJSON:
			diffJSON(&rec.json, &req.json, "$", d)
			return
		case bodyIsForm:
			// Form fields are named like top-level JSON members, as in
			// ignore_body_paths: body.$.field.
			diffPairs("body.", formPaths(rec.form), formPaths(req.form), d)
			return
		}
		if rec.bodyDigest == req.bodyDigest {
			return
		}
	}
	switch {
	case rec.body == bodyNone:
		d.add("body", DiffExtra, "", bodyPreview(req))
	case req.body == bodyNone:
		d.add("body", DiffMissing, bodyPreview(rec), "")
	default:
		d.add("body", DiffChanged, bodyPreview(rec), bodyPreview(req))
	}
}

func formPaths(form []kv) []kv {
	out := make([]kv, len(form))
	for i, p := range form {
		out[i] = kv{jsonPathChild("$", p.k), p.v}
	}
	slices.SortStableFunc(out, compareKV)
	return out
}

func diffJSON(rec, req *jnode, path string, d *differ) {
	if rec.kind != req.kind {
		d.add("body."+path, DiffChanged, renderJSON(rec), renderJSON(req))
		return
	}
	switch rec.kind {
	case jNumber, jString:
		if rec.s != req.s {
			d.add("body."+path, DiffChanged, renderJSON(rec), renderJSON(req))
		}
	case jObject: // both canonical: members sorted, unique
		i, j := 0, 0
		for i < len(rec.mem) || j < len(req.mem) {
			switch {
			case j >= len(req.mem) || (i < len(rec.mem) && rec.mem[i].key < req.mem[j].key):
				d.add("body."+jsonPathChild(path, rec.mem[i].key), DiffMissing, renderJSON(&rec.mem[i].val), "")
				i++
			case i >= len(rec.mem) || req.mem[j].key < rec.mem[i].key:
				d.add("body."+jsonPathChild(path, req.mem[j].key), DiffExtra, "", renderJSON(&req.mem[j].val))
				j++
			default:
				diffJSON(&rec.mem[i].val, &req.mem[j].val, jsonPathChild(path, rec.mem[i].key), d)
				i++
				j++
			}
		}
	case jArray:
		for i := 0; i < max(len(rec.arr), len(req.arr)); i++ {
			p := jsonPathIndex(path, i)
			switch {
			case i >= len(rec.arr):
				d.add("body."+p, DiffExtra, "", renderJSON(&req.arr[i]))
			case i >= len(req.arr):
				d.add("body."+p, DiffMissing, renderJSON(&rec.arr[i]), "")
			default:
				diffJSON(&rec.arr[i], &req.arr[i], p, d)
			}
		}
	}
}

func bodyPreview(n *normReq) string {
	if n.digestOnly {
		return "(not kept by the store policy: " + n.bodyMatch() + ")"
	}
	switch n.body {
	case bodyIsJSON:
		return renderJSON(&n.json)
	case bodyIsForm:
		return truncate(string(appendQuery(nil, n.form)))
	case bodyIsRaw:
		if isText(n.raw[:min(len(n.raw), 4096)]) {
			return truncate(string(n.raw))
		}
		sum := sha256.Sum256(n.raw)
		return fmt.Sprintf("(%d bytes, sha256 %x…)", len(n.raw), sum[:8])
	}
	return ""
}

func appendQuery(dst []byte, pairs []kv) []byte {
	for i, p := range pairs {
		if i > 0 {
			dst = append(dst, '&')
		}
		dst = append(dst, p.k...)
		dst = append(dst, '=')
		dst = append(dst, p.v...)
	}
	return dst
}

// isText reports whether b (perhaps cut mid-rune at its end) is printable text.
func isText(b []byte) bool {
	for k := 0; k < utf8.UTFMax-1 && len(b) > 0 && !utf8.Valid(b); k++ {
		b = b[:len(b)-1]
	}
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if !unicode.IsPrint(r) && !unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

// truncate bounds a value to maxValueRunes runes, marking the cut with …,
// and makes it valid UTF-8.
func truncate(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if utf8.RuneCountInString(s) <= maxValueRunes {
		return s
	}
	i, n := 0, 0
	for i = range s {
		if n == maxValueRunes {
			break
		}
		n++
	}
	return s[:i] + "…"
}
