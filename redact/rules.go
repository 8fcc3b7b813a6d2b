package redact

//go:generate go run ./internal/gengitleaks -out gitleaks_rules.go

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	mbits "math/bits"
	"net/url"
	"regexp"
	"regexp/syntax"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"
)

// The second layer of format patterns: gitleaks' default rule set
// (gitleaks_rules.go, generated from its config), plus values the caller
// names (Config.Values). Docs: docs/redaction.md.
//
// Every rule is one of three shapes, worked out from its regular expression
// when the package first needs them:
//
//   - token rules: the match starts with one of a few literals ("hf_",
//     "glpat-", "AKIA", "SG."), after an optional \b. Each literal has an
//     anchor byte (its rarest); one pass over the text stops only at anchor
//     bytes, compares the literals of that byte, and runs the rule's
//     expression anchored at a literal that is there. A rule that runs
//     is almost always a secret.
//   - name rules (gitleaks' "semi-generic" rules and generic-api-key):
//     IDENTIFIER ... OPERATOR VALUE, such as adafruit_key = "…" or
//     "api_token": "…". They are checked where the first layer already
//     finds a name and its value (JSON keys, query and form fields,
//     headers, name=value, "name": value and Name: value in text, XML
//     elements): a name holding an identifier has its value checked
//     against the rule's value expression.
//   - gated rules: no literal to anchor on (a bare 40-hex token, a Facebook
//     token of digits); as in gitleaks, they run over the whole text when
//     one of their keywords is in it.
//
// A match becomes a marker only when gitleaks would report it: the same
// secret group, above the rule's entropy, not allowed by the rule's
// allowlist. Rules that apply to file names only (.tf, .yaml, .php,
// nuget.config, .p12) do not apply to traffic and are left out.

type gitleaksRule struct {
	ID          string
	Regex       string
	Path        string
	SecretGroup int
	Entropy     float64
	Keywords    []string
	AllowSecret []string // allowlist regexes tested on the secret
	AllowMatch  []string // allowlist regexes tested on the whole match
	StopWords   []string
}

// compiledRule is a rule's tests on a found secret.
type compiledRule struct {
	id          string
	kind        string // marker kind: the id with '_' for '-'
	secretGroup int
	whole       bool // the match is the secret: its first group is one piece of a repeated part
	entropy     float64
	allowSecret []allowRe
	allowMatch  []allowRe
	stop        []string
}

type tokenRule struct {
	compiledRule
	re        *regexp.Regexp // ^(?:the rule without what may precede its literal)
	full      *regexp.Regexp // the rule as stated (gated rules)
	wordStart bool           // the rule wants \b before the literal (before the lead run, with one)
	maxLen    int            // longest match in bytes; -1: unbounded
	// A lead run: the match starts with leadMin to leadMax bytes of
	// leadCls before its literal ([0-9]{5,16}:A…): the scan finds the
	// literal and walks back over the run.
	leadCls          *[256]bool
	leadMin, leadMax int // leadMax -1: unbounded
}

type nameRule struct {
	compiledRule
	value  *regexp.Regexp // ^[\x60'"\s=]{0,5}(SECRET)(?:terminator)
	maxLen int
	idents []string // what the name must hold (lob, new-relic), lower case
}

// nameIdents returns the identifiers a name rule's name must hold, from
// its expression: (?:lob), (?:new-relic|newrelic|new_relic),
// sonar[_.-]?(login|token) spelled out, in lower case; nil when they are
// not a finite set of literals. gitleaks' keywords for such a rule are
// sometimes what its value starts with (lob's live_, typeform's tfp_).
func nameIdents(rx string) []string {
	j := strings.Index(rx, `(?:[ \t\w.-]{0,20})`)
	if j < 0 {
		return nil
	}
	const lead = `[\w.-]{0,50}?`
	i := strings.LastIndex(rx[:j], lead)
	if i < 0 {
		return nil
	}
	p, err := syntax.Parse("(?i)"+rx[i+len(lead):j], syntax.Perl)
	if err != nil || !isLiteralish(p) {
		return nil
	}
	set := prefixSet(p, 256, 64)
	seen := map[string]bool{}
	var out []string
	for _, l := range set {
		if w := asciiLower(l.s); w != "" && !seen[w] {
			seen[w] = true
			out = append(out, w)
		}
	}
	return out
}

// litKind says what a literal found in the text starts.
type litKind uint8

const (
	litToken    litKind = iota // a token rule's match may start here
	litGate                    // a gated rule's keyword
	litValue                   // a value from Config.Values, as it is
	litValueB64                // the stable middle of a value's base64
)

type literal struct {
	s    string // lower case when fold
	fold bool
	kind litKind
	rule int // token or gated rule index, or value index
	wb   bool
}

type anchorLit struct {
	lit  int  // index in lits
	off  int  // the scanned byte's offset in the literal
	c0   byte // the literal's first byte (lower case when fold): tested before the rest
	fold bool
}

// pairLits are the literals of one anchor pair: those scanned at the
// pair's first byte and those scanned at its second.
type pairLits struct{ first, second []anchorLit }

// ruleSet is the compiled rule set, shared by every Redactor.
type ruleSet struct {
	tokens  []*tokenRule
	gated   []*tokenRule
	names   []*nameRule
	lits    []literal // token and gate literals
	idents  *identMatcher
	skipped []string // rule ids that apply to file names only
}

var (
	rulesOnce sync.Once
	rules     *ruleSet
	rulesErr  error
)

func loadRules() (*ruleSet, error) {
	rulesOnce.Do(func() {
		rules, rulesErr = compileRules(append(append([]gitleaksRule(nil), gitleaksRules...), extraRules...))
	})
	return rules, rulesErr
}

// semiGenericOp is the operator part of gitleaks' generated name rules.
const semiGenericOp = `(?:=|>|:{1,3}=|\|\||:|=>|\?=|,)`

// gitleaksTerm is the terminator gitleaks' generated rules end a secret
// with; wideTerm is what the redactor accepts instead: any byte that
// cannot continue a token. gitleaks stops short of a secret followed by
// '<' (XML text), ',', ')', '/', '&' or '.'; such a secret is still one.
const (
	gitleaksTerm = `(?:[\x60'"\s;]|\\[nr]|$)`
	wideTerm     = `(?:[^0-9A-Za-z_\-]|$)`
	// azure-ad-client-secret's own: not before '&' (a query's next
	// field) nor ';' either.
	azureTerm     = `(?:$|[\\'"\x60\s<),])`
	azureWideTerm = `(?:$|[^a-zA-Z0-9_~.\-])`
)

func compileRules(defs []gitleaksRule) (*ruleSet, error) {
	rs := &ruleSet{}
	var idents [][]string // per name rule: its identifiers
	for _, d := range defs {
		if d.Path != "" || d.Regex == "" {
			rs.skipped = append(rs.skipped, d.ID)
			continue
		}
		d.Regex = strings.ReplaceAll(d.Regex, gitleaksTerm, wideTerm)
		d.Regex = strings.ReplaceAll(d.Regex, azureTerm, azureWideTerm)
		cr := compiledRule{id: d.ID, kind: strings.ReplaceAll(d.ID, "-", "_"), secretGroup: d.SecretGroup, entropy: d.Entropy}
		for _, a := range d.AllowSecret {
			cr.allowSecret = append(cr.allowSecret, newAllowRe(a))
		}
		for _, a := range d.AllowMatch {
			cr.allowMatch = append(cr.allowMatch, newAllowRe(a))
		}
		for _, w := range d.StopWords {
			cr.stop = append(cr.stop, strings.ToLower(w))
		}
		if k := strings.Index(d.Regex, semiGenericOp); k >= 0 {
			flags := ""
			if strings.HasPrefix(d.Regex, "(?i)") {
				flags = "(?i)"
			}
			src := flags + "^" + d.Regex[k+len(semiGenericOp):]
			re, err := regexp.Compile(src)
			if err != nil {
				return nil, fmt.Errorf("rule %s: value part: %v", d.ID, err)
			}
			ml := -1
			if p, err := syntax.Parse(src, syntax.Perl); err == nil {
				ml = maxLen(p)
			}
			ids := nameIdents(d.Regex)
			if ids == nil {
				ids = d.Keywords
			}
			if len(ids) == 0 {
				return nil, fmt.Errorf("rule %s: a name rule without identifiers", d.ID)
			}
			rs.names = append(rs.names, &nameRule{compiledRule: cr, value: re, maxLen: ml, idents: ids})
			idents = append(idents, ids)
			continue
		}
		full, err := regexp.Compile(d.Regex)
		if err != nil {
			return nil, fmt.Errorf("rule %s: %v", d.ID, err)
		}
		p, err := syntax.Parse(d.Regex, syntax.Perl)
		if err != nil {
			return nil, fmt.Errorf("rule %s: %v", d.ID, err)
		}
		// gitleaks reports a rule's first group; where that group is one
		// piece of a repeated part (a webhook URL's ([a-z0-9]{4}-){3}),
		// the rest of the secret would stay: the whole match goes.
		cr.whole = d.SecretGroup == 0 && captureInRepeat(p, false)
		tr := &tokenRule{compiledRule: cr, full: full}
		p = stripLead(p, &tr.wordStart)
		// Where a match is looked for: at the literals it starts with; at
		// a literal after a run of one class ([0-9]{5,16}:A, ey….ey), found
		// first and walked back from, when that literal is rarer in text;
		// else, as in gitleaks, over the whole text when a keyword (or a
		// literal every match holds, rarer than its start) is in it.
		lits, ok := prefixLits(p)
		if ext := prefixSet(p, 128, 64); ok && minLitLen(ext) > minLitLen(lits) && 4*pairsCost(ext) < pairsCost(lits) {
			lits = ext // "s." and a class: "s.a" … "s.9", whose pairs ".a" are rarer in prose than "s."
		}
		var lead tokenRule
		if llits, lok := leadRun(p, &lead); lok && (!ok || litsCost(llits) < litsCost(lits)) {
			if ok || len(d.Keywords) == 0 || litsCost(llits) < litsCost(keywordLits(d.Keywords)) {
				lits, ok = llits, true
				tr.leadCls, tr.leadMin, tr.leadMax = lead.leadCls, lead.leadMin, lead.leadMax
			}
		}
		var gate []plit
		if ok {
			if req := requiredLits(p); req != nil && litsCost(req) < litsCost(lits) {
				gate = req // curl's -H: rarer than curl; the expression then runs as gated
			}
		}
		if ok {
			tr.re, err = regexp.Compile("^(?:" + p.String() + ")")
			if err != nil {
				return nil, fmt.Errorf("rule %s: anchored: %v", d.ID, err)
			}
			tr.maxLen = maxLen(p)
		}
		if ok && gate == nil {
			idx := len(rs.tokens)
			rs.tokens = append(rs.tokens, tr)
			for _, l := range lits {
				rs.lits = append(rs.lits, literal{s: l.s, fold: l.fold, kind: litToken, rule: idx, wb: tr.wordStart})
			}
			continue
		}
		if gate == nil {
			if len(d.Keywords) == 0 {
				return nil, fmt.Errorf("rule %s: neither a literal to anchor on nor keywords", d.ID)
			}
			gate = keywordLits(d.Keywords)
		}
		idx := len(rs.gated)
		rs.gated = append(rs.gated, tr)
		for _, k := range gate {
			rs.lits = append(rs.lits, literal{s: k.s, fold: k.fold, kind: litGate, rule: idx})
		}
	}
	if len(rs.gated) > 64 {
		return nil, fmt.Errorf("%d gated rules: at most 64", len(rs.gated))
	}
	rs.idents = newIdentMatcher(idents)
	return rs, nil
}

// stripLead removes what may precede a rule's first literal: leading
// elements that can match nothing (gitleaks' [\w.-]{0,50}? and
// (?:^|[...]) prefixes), and a leading \b, which the scan checks itself
// (wordStart). Matches of the result are suffixes of the rule's matches,
// holding the same secret group.
func stripLead(re *syntax.Regexp, wordStart *bool) *syntax.Regexp {
	for {
		switch re.Op {
		case syntax.OpWordBoundary:
			*wordStart = true
			return &syntax.Regexp{Op: syntax.OpEmptyMatch}
		case syntax.OpConcat:
			subs := re.Sub
			for len(subs) > 1 {
				s := subs[0]
				if s.Op == syntax.OpWordBoundary {
					*wordStart = true
					subs = subs[1:]
					continue
				}
				if minLen(s) == 0 && !hasCapture(s) {
					*wordStart = false // a \b before stripped text no longer stands before the literal
					subs = subs[1:]
					continue
				}
				break
			}
			if len(subs) == 1 {
				re = subs[0]
				continue
			}
			c := *re
			c.Sub = append([]*syntax.Regexp{stripLead(subs[0], wordStart)}, subs[1:]...)
			return &c
		case syntax.OpCapture:
			c := *re
			c.Sub = []*syntax.Regexp{stripLead(re.Sub[0], wordStart)}
			return &c
		}
		return re
	}
}

// leadRun handles a match that starts with a run of one byte class before
// a literal ([0-9]{5,16}:A…, or ey[a-zA-Z0-9]{17,}\.ey… where the leading
// "ey" is of the class too), inside the secret's group or not: it returns
// the literals after the run and sets tr's lead fields.
func leadRun(re *syntax.Regexp, tr *tokenRule) ([]plit, bool) {
	for re.Op == syntax.OpCapture {
		re = re.Sub[0]
	}
	if re.Op != syntax.OpConcat || len(re.Sub) < 2 {
		return nil, false
	}
	first := re.Sub[0]
	for first.Op == syntax.OpCapture {
		first = first.Sub[0]
	}
	if first.Op == syntax.OpConcat { // (RUN LIT …) inside the first group
		return leadRun(first, tr)
	}
	subs := re.Sub
	pre := 0 // bytes of a leading literal that the run's class holds
	if first.Op == syntax.OpLiteral && first.Flags&syntax.FoldCase == 0 && len(subs) > 2 {
		pre = len(string(first.Rune))
		first, subs = subs[1], subs[1:]
	}
	if first.Op != syntax.OpRepeat && first.Op != syntax.OpPlus || first.Op == syntax.OpRepeat && first.Max > 64 ||
		first.Sub[0].Op != syntax.OpCharClass {
		return nil, false
	}
	cls := new([256]bool)
	cr := first.Sub[0].Rune
	for i := 0; i+1 < len(cr); i += 2 {
		for c := cr[i]; c <= cr[i+1] && c < utf8.RuneSelf; c++ {
			cls[c] = true
		}
	}
	if pre > 0 {
		for _, c := range []byte(string(re.Sub[0].Rune)) {
			if !cls[c] {
				return nil, false
			}
		}
	}
	rest := &syntax.Regexp{Op: syntax.OpConcat, Sub: subs[1:]}
	lits := prefixSet(rest, 128, 64)
	if len(lits) == 0 {
		return nil, false
	}
	for _, l := range lits {
		if len(l.s) < 2 && foldFreq(l.s[0], l.fold) > 5 || cls[l.s[0]] || l.fold && cls[strings.ToUpper(l.s[:1])[0]] {
			return nil, false // too short and common, or the run could swallow the literal
		}
	}
	min, max := first.Min, first.Max
	if first.Op == syntax.OpPlus {
		min, max = 1, -1
	}
	tr.leadCls, tr.leadMin, tr.leadMax = cls, pre+min, -1
	if max >= 0 {
		tr.leadMax = pre + max
	}
	return lits, true
}

// requiredLits returns literals one of which every match holds after its
// start (curl's -H or --header), or nil.
func requiredLits(re *syntax.Regexp) []plit {
	for re.Op == syntax.OpCapture {
		re = re.Sub[0]
	}
	if re.Op != syntax.OpConcat {
		return nil
	}
	var best []plit
	for j := 1; j < len(re.Sub); j++ {
		set := prefixSet(&syntax.Regexp{Op: syntax.OpConcat, Sub: re.Sub[j:]}, 16, 4)
		ok := len(set) > 0
		for _, l := range set {
			ok = ok && len(l.s) >= 2
		}
		if ok && (best == nil || litsCost(set) < litsCost(best)) {
			best = set
		}
	}
	return best
}

// pairsCost is how often the rarest pair of the worst of lits is in text.
func pairsCost(lits []plit) int {
	worst := 0
	for _, l := range lits {
		best := 1 << 62
		for j := 0; j+1 < len(l.s); j++ {
			best = min(best, pairFreq(l.s[j], l.s[j+1], l.fold))
		}
		worst = max(worst, best)
	}
	return worst
}

func keywordLits(kw []string) []plit {
	var out []plit
	for _, k := range kw {
		out = append(out, plit{strings.ToLower(k), true})
	}
	return out
}

// litsCost is how often the scan would stop for the literals: the
// frequency of the rarest byte of the worst of them (see anchorOf).
func litsCost(lits []plit) int {
	worst := 0
	for _, l := range lits {
		if len(l.s) == 0 {
			return 1 << 20
		}
		_, _, f, _ := anchorOf(l.s, l.fold)
		worst = max(worst, f)
	}
	return worst
}

// captureInRepeat reports whether re's first capture group (in the order
// of their indexes) lies inside a repetition.
func captureInRepeat(re *syntax.Regexp, inRepeat bool) bool {
	first := -1
	var walk func(re *syntax.Regexp, in bool) bool
	var res bool
	walk = func(re *syntax.Regexp, in bool) bool {
		if re.Op == syntax.OpCapture && (first < 0 || re.Cap < first) {
			first, res = re.Cap, in
		}
		in = in || re.Op == syntax.OpStar || re.Op == syntax.OpPlus || re.Op == syntax.OpRepeat && re.Max != 1
		for _, s := range re.Sub {
			walk(s, in)
		}
		return res
	}
	return walk(re, inRepeat)
}

func hasCapture(re *syntax.Regexp) bool {
	if re.Op == syntax.OpCapture {
		return true
	}
	for _, s := range re.Sub {
		if hasCapture(s) {
			return true
		}
	}
	return false
}

func minLen(re *syntax.Regexp) int {
	switch re.Op {
	case syntax.OpLiteral:
		return len(string(re.Rune))
	case syntax.OpCharClass, syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		return 1
	case syntax.OpCapture:
		return minLen(re.Sub[0])
	case syntax.OpPlus:
		return minLen(re.Sub[0])
	case syntax.OpRepeat:
		return re.Min * minLen(re.Sub[0])
	case syntax.OpConcat:
		n := 0
		for _, s := range re.Sub {
			n += minLen(s)
		}
		return n
	case syntax.OpAlternate:
		n := -1
		for _, s := range re.Sub {
			if m := minLen(s); n < 0 || m < n {
				n = m
			}
		}
		return max(n, 0)
	}
	return 0 // star, quest, empty, assertions
}

// maxLen is the longest match in bytes, or -1 when unbounded.
func maxLen(re *syntax.Regexp) int {
	switch re.Op {
	case syntax.OpLiteral:
		n := 0
		for _, r := range re.Rune {
			n += utf8.RuneLen(r)
			if re.Flags&syntax.FoldCase != 0 {
				n += 2 // a folded rune may be longer (the Kelvin sign)
			}
		}
		return n
	case syntax.OpCharClass, syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		return utf8.UTFMax
	case syntax.OpCapture:
		return maxLen(re.Sub[0])
	case syntax.OpQuest:
		return maxLen(re.Sub[0])
	case syntax.OpStar, syntax.OpPlus:
		return -1
	case syntax.OpRepeat:
		m := maxLen(re.Sub[0])
		if re.Max < 0 || m < 0 {
			return -1
		}
		return re.Max * m
	case syntax.OpConcat:
		n := 0
		for _, s := range re.Sub {
			m := maxLen(s)
			if m < 0 {
				return -1
			}
			n += m
		}
		return n
	case syntax.OpAlternate:
		n := 0
		for _, s := range re.Sub {
			m := maxLen(s)
			if m < 0 {
				return -1
			}
			n = max(n, m)
		}
		return n
	}
	return 0
}

type plit struct {
	s    string
	fold bool
}

// prefixLits returns literals one of which every match starts with, each
// of two bytes or more, or false.
func prefixLits(re *syntax.Regexp) ([]plit, bool) {
	set := prefixSet(re, 16, 4)
	if len(set) == 0 {
		return nil, false
	}
	for _, l := range set {
		if len(l.s) < 2 {
			return nil, false
		}
	}
	return set, true
}

// prefixSet is prefixLits without the length test; nil when unknown. At
// most limit literals, classes of at most classLimit bytes.
func prefixSet(re *syntax.Regexp, limit, classLimit int) []plit {
	switch re.Op {
	case syntax.OpLiteral:
		fold := re.Flags&syntax.FoldCase != 0
		s := string(re.Rune)
		if fold {
			s = asciiLower(s)
		}
		return []plit{{s, fold}}
	case syntax.OpCharClass:
		var out []plit
		for i := 0; i+1 < len(re.Rune); i += 2 {
			for r := re.Rune[i]; r <= re.Rune[i+1]; r++ {
				if len(out) >= classLimit {
					return nil
				}
				out = append(out, plit{string(r), false}) // a rune beyond ASCII as its UTF-8
			}
		}
		return out
	case syntax.OpCapture:
		return prefixSet(re.Sub[0], limit, classLimit)
	case syntax.OpPlus:
		return prefixSet(re.Sub[0], limit, classLimit)
	case syntax.OpRepeat:
		if re.Min < 1 {
			return nil
		}
		return prefixSet(re.Sub[0], limit, classLimit)
	case syntax.OpQuest: // s? in https?://: with it and without
		p := prefixSet(re.Sub[0], limit, classLimit)
		if p == nil || !isLiteralish(re.Sub[0]) {
			return nil
		}
		return append([]plit{{"", false}}, p...)
	case syntax.OpAlternate:
		var out []plit
		for _, s := range re.Sub {
			p := prefixSet(s, limit, classLimit)
			if p == nil || len(out)+len(p) > limit {
				return nil
			}
			out = append(out, p...)
		}
		return out
	case syntax.OpConcat:
		out := []plit{{"", false}}
		for _, s := range re.Sub {
			p := prefixSet(s, limit, classLimit)
			if p == nil || len(out)*len(p) > limit {
				break
			}
			var next []plit
			for _, a := range out {
				for _, b := range p {
					f := a.fold || b.fold
					as := a.s
					if f {
						as = asciiLower(as)
					}
					bs := b.s
					if f {
						bs = asciiLower(bs)
					}
					next = append(next, plit{as + bs, f})
				}
			}
			out = next
			if !isLiteralish(s) {
				break // a class or an alternation of literals: the set is exact only up to here
			}
		}
		if len(out) == 1 && out[0].s == "" {
			return nil
		}
		return out
	}
	return nil
}

// asciiLower lower-cases ASCII letters only: a literal's bytes beyond
// ASCII (the Kelvin sign a (?i) class holds) stay as the text has them.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func minLitLen(ls []plit) int {
	n := 1 << 30
	for _, l := range ls {
		n = min(n, len(l.s))
	}
	return n
}

func isLiteralish(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpLiteral, syntax.OpCharClass:
		return true
	case syntax.OpCapture, syntax.OpQuest:
		return isLiteralish(re.Sub[0])
	case syntax.OpConcat, syntax.OpAlternate:
		for _, s := range re.Sub {
			if !isLiteralish(s) {
				return false
			}
		}
		return true
	}
	return false
}

// identSlack is how many name bytes may follow an identifier: gitleaks'
// (?:[ \t\w.-]{0,20}) between the identifier and the operator.
const identSlack = 20

// identMatcher finds which name rules' identifiers a name holds:
// Aho-Corasick over the lower-cased identifiers, built once, over an
// alphabet of the identifiers' bytes (any other byte is class 0, where no
// identifier goes on), so that the table stays small.
type identMatcher struct {
	class [256]uint8 // byte -> class (upper-case letters as their lower case)
	nc    int        // classes, 0 included
	next  []uint16   // state*nc+class -> next state, with identOut set where an identifier ends
	masks [][]uint64 // per state: the name rules an identifier ending here belongs to
	need  [256]bool  // every identifier holds one of these bytes (its rarest): a quick no
	words int
}

const identOut = 1 << 15

func newIdentMatcher(idents [][]string) *identMatcher {
	words := (len(idents) + 63) / 64
	m := &identMatcher{words: words, nc: 1}
	for _, ids := range idents {
		for _, id := range ids {
			id = strings.ToLower(id)
			for _, c := range []byte(id) {
				if m.class[c] == 0 {
					m.class[c] = uint8(m.nc)
					m.nc++
				}
			}
			c := rarestByte(id)
			m.need[c] = true
			if 'a' <= c && c <= 'z' {
				m.need[c-'a'+'A'] = true
			}
		}
	}
	for c := 'A'; c <= 'Z'; c++ {
		m.class[c] = m.class[c+'a'-'A']
	}
	type node struct {
		child map[uint8]int
		fail  int
		mask  []uint64
	}
	nodes := []node{{child: map[uint8]int{}, mask: make([]uint64, words)}}
	for ri, ids := range idents {
		for _, id := range ids {
			s := 0
			for _, c := range []byte(strings.ToLower(id)) {
				k := m.class[c]
				n, ok := nodes[s].child[k]
				if !ok {
					nodes = append(nodes, node{child: map[uint8]int{}, mask: make([]uint64, words)})
					n = len(nodes) - 1
					nodes[s].child[k] = n
				}
				s = n
			}
			nodes[s].mask[ri/64] |= 1 << (ri % 64)
		}
	}
	if len(nodes) >= identOut {
		panic("redact: too many identifier states")
	}
	nc := m.nc
	next := make([]int, len(nodes)*nc)
	m.masks = make([][]uint64, len(nodes))
	var queue []int
	for k := 1; k < nc; k++ {
		if n, ok := nodes[0].child[uint8(k)]; ok {
			next[k] = n
			queue = append(queue, n)
		}
	}
	m.masks[0] = nodes[0].mask
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		mask := append([]uint64(nil), nodes[s].mask...)
		for i, w := range m.masks[nodes[s].fail] {
			mask[i] |= w
		}
		m.masks[s] = mask
		for k := 1; k < nc; k++ {
			if n, ok := nodes[s].child[uint8(k)]; ok {
				nodes[n].fail = next[nodes[s].fail*nc+k]
				next[s*nc+k] = n
				queue = append(queue, n)
			} else {
				next[s*nc+k] = next[nodes[s].fail*nc+k]
			}
		}
	}
	m.next = make([]uint16, len(next))
	for i, n := range next {
		m.next[i] = uint16(n)
		for _, w := range m.masks[n] {
			if w != 0 {
				m.next[i] |= identOut
				break
			}
		}
	}
	return m
}

// rarestByte is the byte of s rarest in English names: a digit or a sign
// first, else the rarest letter.
func rarestByte(s string) byte {
	const rarestFirst = "zqxjkvbpygfwmucldrhsnioate"
	best, rank := s[0], -1
	for i := 0; i < len(s); i++ {
		k := strings.IndexByte(rarestFirst, s[i])
		if k < 0 {
			return s[i]
		}
		if rank < 0 || k < rank {
			best, rank = s[i], k
		}
	}
	return best
}

// match ORs into mask the name rules whose identifiers occur in name, and
// reports whether any did.
func (m *identMatcher) match(name []byte, mask []uint64) bool {
	s, any := 0, false
	for i, c := range name {
		v := m.next[s*m.nc+int(m.class[c])]
		s = int(v &^ identOut)
		// gitleaks allows 20 name characters after the identifier.
		if v&identOut != 0 && len(name)-1-i <= identSlack {
			for i, w := range m.masks[s] {
				if w != 0 {
					mask[i] |= w
					any = true
				}
			}
		}
	}
	return any
}

// mayName is true when name holds an identifier of a name rule.
func (m *identMatcher) mayName(name []byte) bool {
	need := &m.need
	i := 0
	for i < len(name) && !need[name[i]] {
		i++
	}
	if i == len(name) {
		return false
	}
	s, from, nc := 0, len(name)-1-identSlack, m.nc
	next, class := m.next, &m.class
	for i, c := range name {
		v := next[s*nc+int(class[c])]
		if v&identOut != 0 && i >= from {
			return true
		}
		s = int(v &^ identOut)
	}
	return false
}

// protocolNames are never secrets, whatever their names hold: JSON-RPC
// and MCP fields that replay depends on (DESIGN "MCP-faithful replay").
var protocolNames = map[string]bool{
	"id": true, "jsonrpc": true, "method": true, "progresstoken": true,
	"cursor": true, "nextcursor": true,
}

func protocolName(name []byte) bool {
	if len(name) > 16 {
		return false
	}
	var buf [16]byte
	return protocolNames[string(appendNormName(buf[:0], name))]
}

// shannonEntropy is gitleaks' entropy of a secret (bits per character,
// counted over runes, divided by the length in bytes).
func shannonEntropy(data []byte) float64 {
	if len(data) == 0 {
		return 0
	}
	var ascii [128]int
	var other map[rune]int
	for _, r := range string(data) {
		if r < 128 {
			ascii[r]++
			continue
		}
		if other == nil {
			other = map[rune]int{}
		}
		other[r]++
	}
	inv := 1.0 / float64(len(data))
	e := 0.0
	for _, n := range ascii {
		if n > 0 {
			f := float64(n) * inv
			e -= f * math.Log2(f)
		}
	}
	for _, n := range other {
		f := float64(n) * inv
		e -= f * math.Log2(f)
	}
	return e
}

// allowRe is an allowlist expression; one that is a plain literal (most
// of gcp-api-key's known sample keys) is a substring test.
type allowRe struct {
	re  *regexp.Regexp
	lit []byte
}

func newAllowRe(src string) allowRe {
	re := regexp.MustCompile(src)
	if pre, complete := re.LiteralPrefix(); complete {
		return allowRe{lit: []byte(pre)}
	}
	return allowRe{re: re}
}

func (a allowRe) Match(b []byte) bool {
	if a.re == nil {
		return bytes.Contains(b, a.lit)
	}
	return a.re.Match(b)
}

// nlog2n[n] is n·log2(n).
var nlog2n = func() (t [256]float64) {
	for n := 1; n < len(t); n++ {
		t[n] = float64(n) * math.Log2(float64(n))
	}
	return
}()

// lowEntropy reports whether data's entropy (shannonEntropy) is at most
// min: computed as (N·log2 L − Σ n·log2 n)/L from a table, and again the
// long way when it lands within a hair of min.
func lowEntropy(data []byte, min float64) bool {
	if len(data) == 0 {
		return true
	}
	var ascii [128]uint8
	sum, runes, slow := 0.0, 0, false
	for _, c := range data {
		if c >= 0x80 || ascii[c] == 255 {
			slow = true
			break
		}
		ascii[c]++
	}
	if slow {
		return shannonEntropy(data) <= min
	}
	for _, n := range ascii {
		if n > 0 {
			sum += nlog2n[n]
			runes += int(n)
		}
	}
	l := float64(len(data))
	e := (float64(runes)*math.Log2(l) - sum) / l
	if math.Abs(e-min) < 1e-9 {
		return shannonEntropy(data) <= min
	}
	return e <= min
}

// reports is true when gitleaks would report secret, found in match.
func (c *compiledRule) reports(secret, match []byte) bool {
	if len(secret) == 0 || isMarker(secret) || bytes.Contains(secret, []byte(markerOpen)) {
		return false
	}
	if c.entropy != 0 && lowEntropy(secret, c.entropy) {
		return false
	}
	for _, a := range c.allowSecret {
		if a.Match(secret) {
			return false
		}
	}
	for _, a := range c.allowMatch {
		if a.Match(match) {
			return false
		}
	}
	if len(c.stop) > 0 {
		low := bytes.ToLower(secret)
		for _, w := range c.stop {
			if bytes.Contains(low, []byte(w)) {
				return false
			}
		}
	}
	return true
}

// secretOf picks gitleaks' secret out of a match: the rule's secret group,
// else the first non-empty group, else the whole match.
func (c *compiledRule) secretOf(m []int) (int, int) {
	if c.whole {
		return m[0], m[1]
	}
	if c.secretGroup > 0 && 2*c.secretGroup+1 < len(m) {
		return m[2*c.secretGroup], m[2*c.secretGroup+1]
	}
	for g := 1; 2*g+1 < len(m); g++ {
		if m[2*g] >= 0 && m[2*g+1] > m[2*g] {
			return m[2*g], m[2*g+1]
		}
	}
	return m[0], m[1]
}

// scanner is one Redactor's literal search: the rules' literals and the
// Config.Values needles. Each literal has an anchor pair, two adjacent
// bytes of it that are rare in text (anchorOf); the scan looks at eight
// bytes a step, stops only at bytes that start or end an anchor pair (one
// table load a byte, the stops of a step as a bit mask), tests the pair in
// a 64K-bit table and compares the literals of that pair.
type scanner struct {
	rs     *ruleSet
	lits   []literal
	anchor [256]uint8     // 1 where an anchor pair's scanned byte may be
	stop8  [8][256]uint8  // stop8[k][c] = 1<<k where anchor[c] != 0
	fused  [8][256]uint16 // stringScanRules: the first layer's strStop (low byte) and anchor (high byte)
	first  [1 << 13]uint8 // pair bits: s[i], s[i+1] (the anchor byte first)
	second [1 << 13]uint8 // pair bits: s[i-1], s[i] (the anchor byte second)
	pidx   []uint16       // pair -> 1 + index in plist (0: none), 64K entries
	plist  []pairLits
	values int // needles from Config.Values (0: none)
}

// Bytes the scan also stops at for the first layer's help: '=' (name =
// value with blanks, assignAt), '<' (<Name>value</Name>, xmlAt) and '%'
// (percent-encoded text, scanned again decoded).
const (
	specAssign = 1 << iota
	specXML
	specPct
)

var special = func() (t [256]uint8) {
	t['='], t['<'], t['%'] = specAssign, specXML, specPct
	return
}()

// byteFreq is a rough frequency, per ten thousand bytes, of each byte in
// JSON APIs' text and prose: anchors are picked where it is lowest.
func byteFreq(c byte) int {
	const lower = "etaoinshrdlcumwfgypbvkjxqz"
	lowerFreq := [...]int{1000, 730, 650, 600, 560, 540, 500, 490, 480, 340, 320, 220, 220, 190, 190, 180, 160, 160, 150, 120, 100, 60, 12, 12, 8, 6}
	switch {
	case c >= 'a' && c <= 'z':
		return lowerFreq[strings.IndexByte(lower, c)]
	case c >= 'A' && c <= 'Z':
		if strings.IndexByte("TSAICMPRBEDN", c) >= 0 {
			return 12
		}
		return 4
	case c >= '0' && c <= '9':
		return 100 // JSON numbers, ids, timestamps
	}
	switch c {
	case ' ', '"':
		return 1200
	case ',', ':', '\n':
		return 120
	case '.':
		return 90
	case '_', '-', '/':
		return 40
	case '=', '<', '>', '@', '%':
		return 5
	case '~', '|', '^', '`', '$', '#', '!', '*':
		return 1
	}
	return 40
}

// pairFreq is roughly how often the pair a, b is in text: the product of
// the bytes' frequencies, less after punctuation that prose follows with
// a blank (".a" is rarer than "s.").
func pairFreq(a, b byte, fold bool) int {
	f := foldFreq(a, fold) * foldFreq(b, fold)
	if (a == '.' || a == ',' || a == ':' || a == ';') && (alnum[b] || b == '_') {
		f /= 20
	}
	return f
}

func foldFreq(c byte, fold bool) int {
	if fold && c >= 'a' && c <= 'z' {
		return byteFreq(c) + byteFreq(c-'a'+'A')
	}
	return byteFreq(c)
}

func caseVariants(c byte, fold bool) []byte {
	if fold && c >= 'a' && c <= 'z' {
		return []byte{c, c - 'a' + 'A'}
	}
	return []byte{c}
}

// anchorOf picks a literal's anchor pair, at k and k+1: the pair whose
// rarer byte is rarest, then whose other byte is rarest. The rarer byte is
// the one scanned (first: the one at k); freq is its frequency.
func anchorOf(s string, fold bool) (k int, first bool, freq, score int) {
	if len(s) == 1 { // a rare byte alone ('|' in facebook's digits|token): paired with any byte
		return 0, true, foldFreq(s[0], fold), foldFreq(s[0], fold) * 1000
	}
	score = 1 << 30
	for j := 0; j+1 < len(s); j++ {
		f0, f1 := foldFreq(s[j], fold), foldFreq(s[j+1], fold)
		if sc := min(f0, f1)*1000 + max(f0, f1); sc < score {
			k, first, freq, score = j, f0 <= f1, min(f0, f1), sc
		}
	}
	return
}

func newScanner(rs *ruleSet, values []string) *scanner {
	sc := &scanner{rs: rs, lits: append([]literal(nil), rs.lits...), pidx: make([]uint16, 1<<16)}
	for c, v := range special {
		if v != 0 {
			sc.anchor[c] = 1
		}
	}
	for vi, v := range values {
		for _, n := range valueNeedles(v) {
			sc.lits = append(sc.lits, literal{s: n.s, kind: n.kind, rule: vi})
			sc.values++
		}
	}
	all := make([]byte, 256)
	for c := range all {
		all[c] = byte(c)
	}
	// The bytes the scan stops at: at first each literal's rarest pair's
	// rarer byte (anchorOf); then, most frequent first, a byte is dropped
	// when every literal stopping at it has a pair with a byte that stays
	// (xoxb- at "b-" where "sk-" stops at '-'). Each literal then takes,
	// among its pairs with a byte that stays, the rarest pair.
	var stops [256]bool
	for c, v := range special {
		stops[c] = v != 0
	}
	for _, l := range sc.lits {
		k, first, _, _ := anchorOf(l.s, l.fold)
		if !first {
			k++
		}
		for _, v := range caseVariants(l.s[k], l.fold) {
			stops[v] = true
		}
	}
	type choice struct {
		k     int
		first bool
	}
	// pick: the rarest pair of l whose scanned byte the scan stops at.
	pick := func(l literal) (choice, bool) {
		if len(l.s) == 1 {
			return choice{0, true}, stops[l.s[0]]
		}
		best, bestCost, ok := choice{}, 1<<62, false
		for j := 0; j+1 < len(l.s); j++ {
			for _, first := range []bool{true, false} {
				b := l.s[j+1]
				if first {
					b = l.s[j]
				}
				in := true
				for _, v := range caseVariants(b, l.fold) {
					in = in && stops[v]
				}
				if c := pairFreq(l.s[j], l.s[j+1], l.fold); in && c < bestCost {
					best, bestCost, ok = choice{j, first}, c, true
				}
			}
		}
		return best, ok
	}
	var order []byte
	for c := range 256 {
		if stops[c] && special[c] == 0 {
			order = append(order, byte(c))
		}
	}
	sort.SliceStable(order, func(i, j int) bool { return byteFreq(order[i]) > byteFreq(order[j]) })
	for _, c := range order {
		stops[c] = false
		for _, l := range sc.lits {
			if _, ok := pick(l); !ok {
				stops[c] = true
				break
			}
		}
	}
	picks := make([]choice, len(sc.lits))
	for li, l := range sc.lits {
		picks[li], _ = pick(l)
	}
	for li, l := range sc.lits {
		bestK, anchorFirst := picks[li].k, picks[li].first
		off := bestK
		if !anchorFirst {
			off = bestK + 1
		}
		firsts, seconds := caseVariants(l.s[bestK], l.fold), all
		if len(l.s) > 1 {
			seconds = caseVariants(l.s[bestK+1], l.fold)
		}
		for _, x := range firsts {
			for _, y := range seconds {
				key := uint16(x)<<8 | uint16(y)
				al := anchorLit{lit: li, off: off, c0: l.s[0], fold: l.fold}
				if sc.pidx[key] == 0 {
					sc.plist = append(sc.plist, pairLits{})
					sc.pidx[key] = uint16(len(sc.plist))
				}
				pl := &sc.plist[sc.pidx[key]-1]
				if anchorFirst {
					pl.first = append(pl.first, al)
				} else {
					pl.second = append(pl.second, al)
				}
				if anchorFirst {
					sc.anchor[x] = 1
					sc.first[key>>3] |= 1 << (key & 7)
				} else {
					sc.anchor[y] = 1
					sc.second[key>>3] |= 1 << (key & 7)
				}
			}
		}
	}
	for k := range sc.stop8 {
		for c := range 256 {
			sc.stop8[k][c] = sc.anchor[c] << k
			var f uint16
			if strStop[c] != 0 {
				f = 1
			}
			sc.fused[k][c] = f<<k | uint16(sc.anchor[c])<<(8+k)
		}
	}
	return sc
}

type needle struct {
	s    string
	kind litKind
}

// minValueLen is the shortest Config.Values entry that is scrubbed: a
// shorter value ("1", "true", a port) would match too much that is not
// secret.
const minValueLen = 8

// valueNeedles returns the forms a value takes in what the proxy sees:
// as it is, percent-encoded (query and path), JSON-escaped, and inside
// base64 (Basic credentials, encoded blobs), where it shows as one of three
// stable middles whatever its offset.
func valueNeedles(v string) []needle {
	if len(v) < minValueLen {
		return nil
	}
	seen := map[string]bool{}
	var out []needle
	add := func(s string, k litKind) {
		if len(s) >= 4 && !seen[s] {
			seen[s] = true
			out = append(out, needle{s, k})
		}
	}
	add(v, litValue)
	add(url.QueryEscape(v), litValue)
	add(url.PathEscape(v), litValue)
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if enc.Encode(v) == nil {
		js := strings.TrimSuffix(strings.TrimSpace(b.String()), "\n")
		add(js[1:len(js)-1], litValue)
	}
	for _, e := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		for off := 0; off < 3; off++ {
			pre := strings.Repeat("\x00", off)
			full := e.EncodeToString([]byte(pre + v))
			// Skip the characters that depend on the bytes before and after.
			start := (off*8 + 5) / 6
			if off == 0 {
				start = 0
			}
			end := (len(pre+v) * 8) / 6
			if end-start >= 8 {
				add(full[start:end], litValueB64)
			}
		}
	}
	return out
}

// spans appends the secrets the rules and values find in s[lo:hi].
func (sc *scanner) spans(r *Redactor, s []byte, lo, hi int, out []span) []span {
	return sc.spansDepth(r, s, lo, hi, out, 0)
}

// maxDecodeDepth bounds how many times percent-encoded text is decoded
// and scanned again (%253D is = encoded twice).
const maxDecodeDepth = 3

func (sc *scanner) spansDepth(r *Redactor, s []byte, lo, hi int, out []span, depth int) []span {
	if hi > len(s) {
		hi = len(s)
	}
	acc := scanAcc{out: out}
	sc.scanRange(r, s, lo, hi, nil, lo, &acc, depth)
	return sc.gatedSpans(r, s, lo, hi, acc.gated, acc.out)
}

// scanAcc is what a scan of a text gathers: the secrets found, the gated
// rules whose keywords were seen.
type scanAcc struct {
	out   []span
	gated uint64
}

// scanRange scans s[lo:hi] at the stops given (positions of anchor bytes,
// in order, all before resume; the JSON scanner finds them while it looks
// for a string's end) and from resume on by itself, then the
// percent-encoded stretches decoded. The gated rules are left to the
// caller (acc.gated).
func (sc *scanner) scanRange(r *Redactor, s []byte, lo, hi int, stops []int, resume int, acc *scanAcc, depth int) {
	st := stopState{pct: -1}
	for _, p := range stops {
		sc.stopAt(r, s, lo, hi, p, acc, &st)
	}
	sc.scanFrom(r, s, lo, hi, resume, acc, &st)
	if st.pct >= 0 && depth < maxDecodeDepth {
		acc.out = sc.decodedSpans(r, s, lo, st.pct, hi, acc.out, depth)
	}
}

// scanFrom handles the anchor bytes of s[resume:hi] (lo is where the text
// starts).
func (sc *scanner) scanFrom(r *Redactor, s []byte, lo, hi, resume int, acc *scanAcc, st *stopState) {
	t := &sc.stop8
	for i := resume; i < hi; {
		base := i
		var m uint
		if i+32 <= hi {
			b := s[i : i+32 : i+32]
			m = stops8(t, b[0:8:8]) |
				stops8(t, b[8:16:16])<<8 |
				stops8(t, b[16:24:24])<<16 |
				stops8(t, b[24:32:32])<<24
			i += 32
		} else if i+8 <= hi {
			b := s[i : i+8 : i+8]
			m = stops8(t, b[0:8:8])
			i += 8
		} else {
			for ; i < hi; i++ {
				m |= uint(sc.anchor[s[i]]) << (i - base)
			}
		}
		for m != 0 {
			p := base + mbits.TrailingZeros(m)
			m &= m - 1
			sc.stopAt(r, s, lo, hi, p, acc, st)
		}
	}
}

type stopState struct {
	// The latest matches' rules and ends: as in gitleaks, a rule's
	// matches do not overlap, and a literal inside a match does not run
	// its rule again (a long run of repeats stays linear). Other rules
	// run there all the same.
	recent [4]struct{ rule, end int }
	n      int
	pct    int // the first %XX, or -1
}

func (ss *stopState) inMatch(rule, st int) bool {
	for _, m := range ss.recent[:ss.n] {
		if m.rule == rule && st < m.end {
			return true
		}
	}
	return false
}

// matched records a match of rule ending at end, in place of the same
// rule's older one, or of the one that ends first.
func (ss *stopState) matched(rule, end int) {
	k := -1
	for j, m := range ss.recent[:ss.n] {
		if m.rule == rule {
			k = j
			break
		}
	}
	if k < 0 {
		if ss.n < len(ss.recent) {
			k = ss.n
			ss.n++
		} else {
			k = 0
			for j := range ss.recent {
				if ss.recent[j].end < ss.recent[k].end {
					k = j
				}
			}
		}
	}
	ss.recent[k].rule, ss.recent[k].end = rule, end
}

// stopAt handles the anchor byte at p.
func (sc *scanner) stopAt(r *Redactor, s []byte, lo, hi, p int, acc *scanAcc, st *stopState) {
	c := s[p]
	if sp := special[c]; sp != 0 {
		switch sp {
		case specAssign:
			if sp, ok := r.assignAt(s, lo, hi, p); ok {
				acc.out = append(acc.out, sp)
			}
		case specXML:
			if sp, ok := r.xmlAt(s, lo, hi, p); ok {
				acc.out = append(acc.out, sp)
			}
		case specPct:
			if st.pct < 0 && p+2 < hi && unhex(s[p+1]) >= 0 && unhex(s[p+2]) >= 0 {
				st.pct = p
			}
		}
	}
	if p+1 < hi {
		if k := uint16(c)<<8 | uint16(s[p+1]); sc.first[k>>3]&(1<<(k&7)) != 0 {
			sc.pairAt(r, s, lo, hi, p, k, false, acc, st)
		}
	}
	if p > lo {
		if k := uint16(s[p-1])<<8 | uint16(c); sc.second[k>>3]&(1<<(k&7)) != 0 {
			sc.pairAt(r, s, lo, hi, p, k, true, acc, st)
		}
	}
}

// pairAt handles the literals of the anchor pair k at i.
func (sc *scanner) pairAt(r *Redactor, s []byte, lo, hi, i int, k uint16, second bool, acc *scanAcc, st *stopState) {
	x := sc.pidx[k]
	if x == 0 {
		return
	}
	list := sc.plist[x-1].first
	if second {
		list = sc.plist[x-1].second
	}
	for _, a := range list {
		// The literal's first byte, before anything else: many literals
		// share a pair ("t-" of glpat-, glrt-, …).
		b := i - a.off
		if b < lo {
			continue
		}
		c := s[b]
		if a.fold && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c == a.c0 {
			sc.candidate(r, s, lo, hi, i, a, acc, st)
		}
	}
}

// pctRun is the bytes of a percent-encoded stretch of text (a query, a
// form, a path) that may hold a secret once decoded.
var pctRun = func() (t [256]bool) {
	for c := '!'; c <= '~'; c++ {
		t[c] = true
	}
	for _, c := range "\"'<>`\\" {
		t[c] = false
	}
	return
}()

// pctJoins: a byte that, decoded from %XX, may make a secret the raw text
// does not show (a letter, '=' of name=value, '/' of a URL, '%' encoded
// twice); blanks and the like separate in both.
var pctJoins = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c > ' ' && c < 0x7f && !strings.ContainsRune(`"'<>()[]{},;|\^`+"`!*", rune(c))
	}
	return
}()

// decodedSpans scans the percent-encoded stretches of s[lo:hi] (from is
// the first %XX) decoded, as gitleaks decodes them, and maps what it finds
// back: a secret in a query echoed inside JSON
// ("url":"/q?s=_gitlab_session%3D…").
func (sc *scanner) decodedSpans(r *Redactor, s []byte, lo, from, hi int, out []span, depth int) []span {
	var decBuf [256]byte
	var posBuf [257]int32
	dec, pos := decBuf[:0], posBuf[:0]
	for p := from; p < hi; {
		if s[p] != '%' || p+2 >= hi || unhex(s[p+1]) < 0 || unhex(s[p+2]) < 0 {
			p++
			continue
		}
		b, e := p, p
		for b > lo && pctRun[s[b-1]] {
			b--
		}
		for e < hi && pctRun[s[e]] {
			e++
		}
		dec, pos = dec[:0], pos[:0]
		joins := false // a decoded byte may join or end a secret ('=', '/', a letter): else the raw scan saw it all
		for j := b; j < e; {
			pos = append(pos, int32(j))
			if s[j] == '%' && j+2 < e && unhex(s[j+1]) >= 0 && unhex(s[j+2]) >= 0 {
				c := byte(unhex(s[j+1])<<4 | unhex(s[j+2]))
				joins = joins || pctJoins[c]
				dec = append(dec, c)
				j += 3
				continue
			}
			if s[j] == '+' {
				dec = append(dec, ' ')
			} else {
				dec = append(dec, s[j])
			}
			j++
		}
		pos = append(pos, int32(e))
		if !joins {
			p = e
			continue
		}
		for _, sp := range sc.spansDepth(r, dec, 0, len(dec), nil, depth+1) {
			sp.start, sp.end, sp.quote = int(pos[sp.start]), int(pos[sp.end]), 0
			out = append(out, sp)
		}
		p = e
	}
	return out
}

// candidate handles one literal whose anchor pair is at i.
func (sc *scanner) candidate(r *Redactor, s []byte, lo, hi, i int, a anchorLit, acc *scanAcc, ss *stopState) {
	l := &sc.lits[a.lit]
	st := i - a.off
	if st < lo || st+len(l.s) > hi || !litAt(s, st, l) {
		return
	}
	switch l.kind {
	case litGate:
		acc.gated |= 1 << (l.rule & 63)
	case litValue:
		acc.out = append(acc.out, span{start: st, end: st + len(l.s), kind: "value"})
	case litValueB64:
		b, e := st, st+len(l.s)
		for b > lo && b64Char(s[b-1]) {
			b--
		}
		for e < hi && b64Char(s[e]) {
			e++
		}
		acc.out = append(acc.out, span{start: b, end: e, kind: "value"})
	case litToken:
		t := sc.rs.tokens[l.rule]
		if t.leadCls != nil {
			b := st
			for b > lo && (t.leadMax < 0 || st-b < t.leadMax) && st-b < 1<<13 && t.leadCls[s[b-1]] {
				b--
			}
			if st-b < t.leadMin {
				return
			}
			st = b
		}
		if ss.inMatch(l.rule, st) || l.wb && !wordBoundaryAt(s, lo, st) {
			return
		}
		if sp, end, ok := t.matchAt(s, hi, st); ok {
			acc.out = append(acc.out, sp)
			ss.matched(l.rule, end)
		}
	}
}

// maxUnbounded is the most a match of a rule without a bound (jwt,
// private-key) looks at from where it starts: a PEM block of the largest
// keys is a few kilobytes.
const maxUnbounded = 64 << 10

// matchAt runs t anchored at st and returns the secret gitleaks would
// report, and the match's end.
func (t *tokenRule) matchAt(s []byte, hi, st int) (span, int, bool) {
	end := hi
	if t.maxLen >= 0 && st+t.maxLen+2 < end {
		end = st + t.maxLen + 2
	} else if t.maxLen < 0 && st+maxUnbounded < end {
		end = st + maxUnbounded
	}
	m := t.re.FindSubmatchIndex(s[st:end])
	if m == nil {
		return span{}, 0, false
	}
	a0, a1 := t.secretOf(m)
	if a0 < 0 {
		return span{}, 0, false
	}
	for a1 > a0 && s[st+a1-1] == '\\' { // an escape's backslash ends no secret
		a1--
	}
	if !t.reports(s[st+a0:st+a1], s[st+m[0]:st+m[1]]) {
		return span{}, 0, false
	}
	return span{start: st + a0, end: st + a1, kind: t.kind}, st + m[1], true
}

// gatedSpans runs the gated rules whose keywords were seen over s[lo:hi],
// as gitleaks does: the expression over the whole text, in one linear pass.
func (sc *scanner) gatedSpans(r *Redactor, s []byte, lo, hi int, gated uint64, out []span) []span {
	rs := sc.rs
	for g := 0; gated != 0 && g < len(rs.gated); g++ {
		if gated&(1<<(g&63)) == 0 {
			continue
		}
		t := rs.gated[g]
		for _, m := range t.full.FindAllSubmatchIndex(s[lo:hi], -1) {
			a0, a1 := t.secretOf(m)
			for a1 > a0 && s[lo+a1-1] == '\\' {
				a1--
			}
			if a0 >= 0 && t.reports(s[lo+a0:lo+a1], s[lo+m[0]:lo+m[1]]) {
				out = append(out, span{start: lo + a0, end: lo + a1, kind: t.kind})
			}
		}
	}
	return out
}

func b64Char(c byte) bool {
	return alnum[c] || c == '+' || c == '/' || c == '=' || c == '-' || c == '_'
}

func litAt(s []byte, st int, l *literal) bool {
	if !l.fold {
		return string(s[st:st+len(l.s)]) == l.s
	}
	for k := 0; k < len(l.s); k++ {
		c := s[st+k]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != l.s[k] {
			return false
		}
	}
	return true
}

func isWordByte(c byte) bool { return alnum[c] || c == '_' }

// wordBoundaryAt is \b at st, with a JSON escape before st (\n, \u0026)
// counted as a boundary, as boundary does.
func wordBoundaryAt(s []byte, lo, st int) bool {
	before := st > lo && isWordByte(s[st-1])
	if before && escapeBefore(s, lo, st) > 0 {
		before = false
	}
	after := st < len(s) && isWordByte(s[st])
	return before != after
}

// mergeSpans sorts spans and merges those that overlap (the earlier kind
// is kept).
func mergeSpans(sp []span) []span {
	if len(sp) < 2 {
		return sp
	}
	for i := 1; i < len(sp); i++ { // few spans, mostly in order: an insertion sort, stable
		for j := i; j > 0 && sp[j].start < sp[j-1].start; j-- {
			sp[j], sp[j-1] = sp[j-1], sp[j]
		}
	}
	out := sp[:1]
	for _, x := range sp[1:] {
		last := &out[len(out)-1]
		if x.start < last.end {
			if x.end > last.end {
				last.end = x.end
			}
			continue
		}
		out = append(out, x)
	}
	return out
}

// nameValue checks the name rules whose identifiers name holds against the
// value that starts at s[v] (the operator is just before v; the value
// expression allows gitleaks' quotes and blanks). It returns the secret.
func (r *Redactor) nameValue(name []byte, s []byte, v, hi int) (span, bool) {
	sc := r.sc
	if sc == nil || v >= hi || len(name) == 0 || protocolName(name) {
		return span{}, false
	}
	if len(r.allow) > 0 {
		last := name
		if n := len(last); n > 2 && last[n-1] == ']' {
			if k := lastIndexByte(last, '['); k >= 0 {
				last = last[k+1 : n-1]
			}
		}
		if r.allow[normName(string(last))] {
			return span{}, false
		}
	}
	var buf [4]uint64
	mask := buf[:sc.rs.idents.words]
	if !sc.rs.idents.match(name, mask) {
		return span{}, false
	}
	for w, bits := range mask {
		for bits != 0 {
			b := mbits.TrailingZeros64(bits)
			bits &= bits - 1
			nr := sc.rs.names[w*64+b]
			end := hi
			if nr.maxLen >= 0 && v+nr.maxLen+2 < end {
				end = v + nr.maxLen + 2
			}
			m := nr.value.FindSubmatchIndex(s[v:end])
			if m == nil {
				continue
			}
			a0, a1 := nr.secretOf(m)
			if a0 < 0 {
				continue
			}
			match := append(append(append([]byte(nil), name...), '='), s[v+m[0]:v+m[1]]...)
			if nr.reports(s[v+a0:v+a1], match) {
				return span{start: v + a0, end: v + a1, kind: nr.kind}, true
			}
		}
	}
	return span{}, false
}

// mayName reports whether a name holds an identifier of a name rule.
func (r *Redactor) mayName(name []byte) bool {
	return r.sc != nil && r.sc.rs.idents.mayName(name)
}

// rulesInto adds to w.pending what the rules and values find in
// w.src[lo:hi]. Callers add stretches in increasing order.
func (r *Redactor) rulesInto(w *writer, lo, hi int) {
	if r.sc == nil || hi-lo < 2 {
		return
	}
	sp := r.sc.spans(r, w.src, lo, hi, nil)
	if len(sp) == 0 {
		return
	}
	w.pending = append(w.pending, mergeSpans(sp)...)
}

// rulesIntoURL is rulesInto for a URL whose path, query and fragment
// start at from: the rules see the whole URL (a webhook URL's rule starts
// at its scheme); what they find before from (the host) is left alone.
func (r *Redactor) rulesIntoURL(w *writer, from int) {
	if r.sc == nil {
		return
	}
	s := w.src
	sp := r.sc.spans(r, s, 0, len(s), nil)
	kept := sp[:0]
	for _, x := range sp {
		if x.end > from {
			x.start = max(x.start, from)
			kept = append(kept, x)
		}
	}
	if len(kept) > 0 {
		w.pending = append(w.pending, mergeSpans(kept)...)
	}
}

// rulesAt adds to w.pending what the rules and values find in
// w.src[lo:hi] at the anchor bytes given and from resume on, as rulesInto,
// but leaves the gated rules to the caller: their keywords go into gated.
func (r *Redactor) rulesAt(w *writer, lo, hi int, stops []int, resume int, js *jsonScratch) {
	acc := &js.acc
	acc.out = acc.out[:0]
	r.sc.scanRange(r, w.src, lo, hi, stops, resume, acc, 0)
	js.gated |= acc.gated
	if len(acc.out) > 0 {
		w.pending = append(w.pending, mergeSpans(acc.out)...)
	}
}

// assignAt takes the value of name = value, name= value or name =value
// (blanks around '='; name=value is the first layer's, matchQueryField):
// INI and TOML files, shell and Python assignments, aws credentials files.
func (r *Redactor) assignAt(s []byte, lo, hi, i int) (span, bool) {
	blankBefore := i > lo && (s[i-1] == ' ' || s[i-1] == '\t')
	blankAfter := i+1 < hi && (s[i+1] == ' ' || s[i+1] == '\t')
	if !blankBefore && !blankAfter || i+1 < hi && (s[i+1] == '=' || s[i+1] == '>') {
		return span{}, false
	}
	p := i
	if p > lo && s[p-1] == ':' { // :=
		p--
	}
	for p > lo && (s[p-1] == ' ' || s[p-1] == '\t') {
		p--
	}
	var q byte
	if p > lo && (s[p-1] == '"' || s[p-1] == '\'') {
		q = s[p-1]
		p--
	}
	ne := p
	for p > lo && ne-p < 64 && nameChar[s[p-1]] {
		p--
	}
	if p == ne || q != 0 && (p == lo || s[p-1] != q) {
		return span{}, false
	}
	name := s[p:ne]
	if r.secretField(name) {
		v := i + 1
		for v < hi && (s[v] == ' ' || s[v] == '\t') {
			v++
		}
		var e int
		if v < hi && (s[v] == '"' || s[v] == '\'') {
			v++
			e = v
			for e < hi && s[e] != s[v-1] && s[e] != '\n' {
				e++
			}
		} else {
			e = runOf2(s, v, hi, &qStop)
		}
		if e > v && !isMarker(s[v:e]) {
			return span{start: v, end: e, kind: "field"}, true
		}
		return span{}, false
	}
	return r.nameValue(name, s, i+1, hi)
}

// xmlAt takes the text of <Name>value</Name> when Name is a secret field
// name (an AWS STS answer's <SecretAccessKey> and <SessionToken>). <Key>
// is left alone: S3 listings name objects with it.
func (r *Redactor) xmlAt(s []byte, lo, hi, i int) (span, bool) {
	p := i + 1
	e := p
	for e < hi && e-p < 64 && (nameChar[s[e]] || s[e] == ':') {
		e++
	}
	if e == p || e >= hi || s[e] != '>' {
		return span{}, false
	}
	name := s[p:e]
	if k := lastIndexByte(name, ':'); k >= 0 {
		name = name[k+1:]
	}
	if len(name) == 0 || strings.EqualFold(string(name), "key") {
		return span{}, false
	}
	secret := r.secretField(name)
	if !secret && !r.mayName(name) {
		return span{}, false
	}
	v := e + 1
	ve := v
	for ve < hi && s[ve] != '<' && ve-v < 1<<14 {
		ve++
	}
	for v < ve && isWS(s[v]) {
		v++
	}
	for ve > v && isWS(s[ve-1]) {
		ve--
	}
	if ve == v || isMarker(s[v:ve]) {
		return span{}, false
	}
	if !secret {
		// <adafruit_key>…</adafruit_key>: the name rules judge the text.
		return r.nameValue(name, s, v, ve)
	}
	return span{start: v, end: ve, kind: "field"}, true
}

// extraRules are formats beyond gitleaks' defaults, in its rule format.
var extraRules = []gitleaksRule{
	// A Telegram bot token anywhere (gitleaks wants "telegr" in a name before
	// it), also in a Bot API URL path: /bot123456789:AA…/sendMessage.
	{ID: "telegram-bot-token", Regex: `([0-9]{5,16}:A[A-Za-z0-9_\-]{32,40})(?:[^0-9A-Za-z_\-]|$)`, Entropy: 3},
	// Google OAuth 2.0 access tokens.
	{ID: "google-oauth-token", Regex: `\b(ya29\.[0-9A-Za-z_\-]{20,})`},
	// Incoming-webhook paths, whose host the URL scrubber keeps.
	{ID: "slack-webhook-path", Regex: `/(?:services|workflows|triggers)/(T[A-Z0-9]{8,12}/B[A-Z0-9]{8,12}/[A-Za-z0-9]{24})`},
	{ID: "teams-webhook-path", Regex: `/webhookb2/([a-z0-9-]{36}@[a-z0-9-]{36}/IncomingWebhook/[a-z0-9]{32}/[a-z0-9-]{36})`},
}

// nameValueInto replaces the value nameValue finds, and reports whether it
// found one.
func (r *Redactor) nameValueInto(w *writer, name, s []byte, v, hi int) bool {
	sp, ok := r.nameValue(unescapeKey(name), s, v, hi)
	if ok {
		r.scanText(w, v+1, sp.start)
		w.replace(sp)
		r.scanText(w, sp.end, hi-1)
	}
	return ok
}

// disabled is set only by the noredact build (noredact.go).
var disabled bool

// Rule describes one format rule the redactor applies (gitleaks' defaults
// and the extra formats), for documentation and tests.
type Rule struct {
	ID       string   // gitleaks' rule id; markers say it with '_' for '-'
	Shape    string   // "token", "name" (IDENTIFIER … = VALUE) or "gated" (runs when a keyword is there)
	Regex    string   // token and gated: what a match is (anchored at its literal for token rules)
	Value    string   // name: what the value after the operator is
	Idents   []string // name: what the name must hold (lower case)
	Keywords []string // gitleaks' keywords: it looks at a text only when one of them is in it
	Entropy  float64  // a secret must have more (0: no test)
	Extra    bool     // a format beyond gitleaks' rules (gitleaks itself does not know it)
	// Allowlist, as gitleaks states it: regexes a secret (AllowSecret) or
	// the whole match (AllowMatch) may match, words a secret may hold.
	AllowSecret, AllowMatch, StopWords []string
}

// Rules lists the format rules, and the gitleaks rules left out because
// they apply to file names only.
func Rules() (rules []Rule, fileOnly []string, err error) {
	rs, err := loadRules()
	if err != nil {
		return nil, nil, err
	}
	kw, extra, def := map[string][]string{}, map[string]bool{}, map[string]gitleaksRule{}
	for _, d := range gitleaksRules {
		kw[d.ID], def[d.ID] = d.Keywords, d
	}
	for _, d := range extraRules {
		kw[d.ID], extra[d.ID], def[d.ID] = d.Keywords, true, d
	}
	for _, t := range rs.tokens {
		rules = append(rules, Rule{ID: t.id, Shape: "token", Regex: t.re.String(), Keywords: kw[t.id], Entropy: t.entropy, Extra: extra[t.id]})
	}
	for _, n := range rs.names {
		rules = append(rules, Rule{ID: n.id, Shape: "name", Value: n.value.String(), Idents: n.idents, Keywords: kw[n.id], Entropy: n.entropy, Extra: extra[n.id]})
	}
	for _, g := range rs.gated {
		rules = append(rules, Rule{ID: g.id, Shape: "gated", Regex: g.full.String(), Keywords: kw[g.id], Entropy: g.entropy, Extra: extra[g.id]})
	}
	for i := range rules {
		d := def[rules[i].ID]
		rules[i].AllowSecret, rules[i].AllowMatch, rules[i].StopWords = d.AllowSecret, d.AllowMatch, d.StopWords
	}
	return rules, append([]string(nil), rs.skipped...), nil
}
