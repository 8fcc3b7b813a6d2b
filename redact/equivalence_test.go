package redact_test

// Equivalence of the redactor with the frozen oracle (oracle_test.go, the
// implementation before the performance work): on the test tables, the
// captured traffic, random mutations and a differential fuzz target, the
// output is byte-identical, or, where the redactor's second layer (gitleaks'
// rules, the new field names) found more, it holds nothing the oracle
// would still redact and is stable under a second pass. Any other
// difference is a failure: the redactor must not find fewer secrets than
// the oracle did.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/cassetteproxy/cassetteproxy/redact"
	"github.com/cassetteproxy/cassetteproxy/store"
)

var equivConfigs = []redact.Config{
	{},
	{Secret: []byte("k")},
	{Secret: []byte("fuzz"), Fields: []string{"email", "ssn", "card_number"}, Headers: []string{"X-Internal-Auth"},
		JSONPaths: []string{"$.customer.email", "$..pin", "$.blob", "$[*].key", "$.orders[*].note", "$['a b']", "$.a[0]"},
		Patterns:  []string{"acct-[0-9]+", "session=([a-f0-9]{6,})", "internal-[a-z]+"}},
	{Allow: []string{"key", "X-Api-Key", "token", "password"}},
	{Secret: []byte("x"), JSONPaths: []string{"$..*", "$..a"}, Patterns: []string{`(?i)internal-[a-z]+`, `[0-9]{3}-[0-9]{2}-([0-9]{4})`}},
}

var equivCTs = []string{
	"application/json", "application/json; charset=utf-8", "application/x-ndjson", "text/plain",
	"text/event-stream", "application/x-www-form-urlencoded", "", "text/html",
	"multipart/form-data; boundary=XyZb0undary", "multipart/form-data; boundary=B0und", "multipart/mixed", "application/octet-stream",
}

type equivPair struct {
	cfg int
	old *oracleRedactor
	new *redact.Redactor
}

func equivPairs(t testing.TB) []equivPair {
	var ps []equivPair
	for i, cfg := range equivConfigs {
		o, err := newOracle(cfg)
		if err != nil {
			t.Fatal(err)
		}
		n, err := redact.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, equivPair{i, o, n})
	}
	return ps
}

func cloneInteraction(in *store.Interaction) *store.Interaction {
	c := *in
	c.Request.Header = in.Request.Header.Clone()
	c.Request.Body = bytes.Clone(in.Request.Body)
	c.Response.Header = in.Response.Header.Clone()
	c.Response.Body = bytes.Clone(in.Response.Body)
	if in.Response.Events != nil {
		c.Response.Events = make([]store.Event, len(in.Response.Events))
		for i, ev := range in.Response.Events {
			c.Response.Events[i] = store.Event{OffsetMs: ev.OffsetMs, Data: bytes.Clone(ev.Data)}
		}
	}
	return &c
}

// inputs returns the byte slices of in that redaction must never write to.
func inputs(in *store.Interaction) [][]byte {
	bs := [][]byte{in.Request.Body, in.Response.Body}
	for _, ev := range in.Response.Events {
		bs = append(bs, ev.Data)
	}
	return bs
}

func mustJSON(t testing.TB, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// findsMore judges a difference between the oracle's output (oldOut) and
// the redactor's (newOut) on in: the redactor's output keeps nothing the
// oracle removed: the oracle finds nothing in it (oldNew), or no stretch
// the oracle replaced is left in it, or (when the oracle's output cannot
// be laid over the input, percent-decoded or not) it holds at least as
// many markers, or the oracle is not stable on its own output (oldOld)
// either. A second pass may find more where a marker made a word
// boundary (gitleaks' rules match inside words too), so stability
// (newNew) is not required.
func (p equivPair) findsMore(in, oldOut, newOut, oldNew, _, oldOld string) bool {
	oracleStable := oldOld == oldOut // a second pass finds more at times (a marker completes a name, a body sniffs as JSON)
	if oldNew == newOut {
		return true
	}
	if kept, aligned := keptSecret(in, oldOut, newOut); aligned {
		return kept == ""
	}
	// The oracle re-encodes a query or form value it scrubbed decoded.
	if kept, aligned := keptSecret(unescapeLoose(in), unescapeLoose(oldOut), unescapeLoose(newOut)); aligned {
		return kept == ""
	}
	// Neither lays over the input (bodies are base64 in an interaction's
	// JSON): the redactor must have found at least as many secrets.
	return !oracleStable || len(markerRE.FindAllString(newOut, -1)) >= len(markerRE.FindAllString(oldOut, -1))
}

// checkInteraction runs Interaction, Request and Response of both on copies
// of in and fails on the first difference.
func (p equivPair) checkInteraction(t testing.TB, what string, in *store.Interaction) {
	t.Helper()
	for _, op := range []string{"Interaction", "Request", "Response"} {
		a, b := cloneInteraction(in), cloneInteraction(in)
		pristine := cloneInteraction(in)
		bIn := inputs(b)
		switch op {
		case "Interaction":
			p.old.Interaction(a)
			p.new.Interaction(b)
		case "Request":
			p.old.Request(&a.Request)
			p.new.Request(&b.Request)
		case "Response":
			p.old.Response(&a.Response)
			p.new.Response(&b.Response)
		}
		ja, jb := mustJSON(t, a), mustJSON(t, b)
		if !bytes.Equal(ja, jb) {
			// More found: the oracle finds nothing left in the redactor's
			// output, and a second pass changes nothing.
			c, d := cloneInteraction(b), cloneInteraction(b)
			switch op {
			case "Interaction":
				p.old.Interaction(c)
				p.new.Interaction(d)
			case "Request":
				p.old.Request(&c.Request)
				p.new.Request(&d.Request)
			case "Response":
				p.old.Response(&c.Response)
				p.new.Response(&d.Response)
			}
			e := cloneInteraction(a) // the oracle on its own output: it finds more there at times
			switch op {
			case "Interaction":
				p.old.Interaction(e)
			case "Request":
				p.old.Request(&e.Request)
			case "Response":
				p.old.Response(&e.Response)
			}
			if jc, jd := mustJSON(t, c), mustJSON(t, d); !p.findsMore(string(mustJSON(t, pristine)), string(ja), string(jb), string(jc), string(jd), string(mustJSON(t, e))) {
				t.Fatalf("config %d, %s, %s: output differs, and not by finding more\ninput %s\n  old %s\n  new %s\n  old(new) %s\n  new(new) %s",
					p.cfg, what, op, mustJSON(t, pristine), ja, jb, jc, jd)
			}
		}
		for i, x := range inputs(pristine) {
			if !bytes.Equal(bIn[i], x) {
				t.Fatalf("config %d, %s, %s: input slice %d modified", p.cfg, what, op, i)
			}
		}
	}
}

func (p equivPair) checkText(t testing.TB, what string, s []byte, cts []string) {
	t.Helper()
	if a, b := p.old.String(string(s)), p.new.String(string(s)); a != b && !p.findsMore(string(s), a, b, p.old.String(b), p.new.String(b), p.old.String(a)) {
		t.Fatalf("config %d, %s, String(%q):\n  old %q\n  new %q\n  old(new) %q", p.cfg, what, s, a, b, p.old.String(b))
	}
	orig := bytes.Clone(s)
	for _, ct := range cts {
		for _, fp := range []bool{true, false} {
			a := p.old.body(bytes.Clone(s), ct, fp)
			b := p.new.BodyForTest(s, ct, fp)
			if !bytes.Equal(a, b) {
				again := ct
				if again == "" { // the second pass keeps the form the first one sniffed
					again = redact.SniffForTest(s)
				}
				c, d := p.old.body(bytes.Clone(b), again, fp), p.new.BodyForTest(b, again, fp)
				if !p.findsMore(string(s), string(a), string(b), string(c), string(d), string(p.old.body(bytes.Clone(a), again, fp))) {
					t.Fatalf("config %d, %s, body ct %q fp %v: output differs, and not by finding more\ninput %q\n  old %q\n  new %q\n  old(new) %q\n  new(new) %q", p.cfg, what, ct, fp, s, a, b, c, d)
				}
			}
			if !bytes.Equal(s, orig) {
				t.Fatalf("config %d, %s, body ct %q: input modified", p.cfg, what, ct)
			}
		}
	}
	if len(s) < 200 {
		for _, name := range []string{"OPENAI_API_KEY", "HOME", "db_password", "PATH"} {
			if a, b := p.old.EnvValue(name, string(s)), p.new.EnvValue(name, string(s)); a != b && !p.findsMore(string(s), a, b, p.old.EnvValue(name, b), "", p.old.EnvValue(name, a)) {
				t.Fatalf("config %d, %s, EnvValue(%s, %q):\n  old %q\n  new %q", p.cfg, what, name, s, a, b)
			}
		}
	}
}

// unescapeLoose percent-decodes what decodes, '+' as a space.
func unescapeLoose(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' && i+2 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 2
				continue
			}
		}
		if c == '+' {
			c = ' '
		}
		b.WriteByte(c)
	}
	return b.String()
}

var markerRE = regexp.MustCompile(`"?\[REDACTED:[a-z0-9_]+(:[0-9a-f]{8})?\]"?|%5BREDACTED%3A[a-z0-9_]+(%3A[0-9a-f]{8})?%5D`)

// keptSecret returns a stretch of in that the oracle replaced by a marker
// (in oldOut) and that newOut still holds, or "". aligned is false when
// oldOut cannot be laid over in (the oracle re-encoded a value).
func keptSecret(in, oldOut, newOut string) (kept string, aligned bool) {
	locs := markerRE.FindAllStringIndex(oldOut, -1)
	pos, prev := 0, 0
	var removed []string
	for k := 0; k <= len(locs); k++ {
		end := len(oldOut)
		if k < len(locs) {
			end = locs[k][0]
		}
		chunk := oldOut[prev:end]
		i := strings.Index(in[pos:], chunk)
		if i < 0 || k == 0 && i != 0 {
			return "", false
		}
		if k > 0 {
			removed = append(removed, in[pos:pos+i])
		}
		pos += i + len(chunk)
		if k < len(locs) {
			prev = locs[k][1]
		}
	}
	for _, r := range removed {
		if r = strings.Trim(r, `"`); len(r) >= 8 && strings.Count(newOut, r) > strings.Count(oldOut, r) {
			return r, true
		}
	}
	return "", true
}

// baseTexts: every text and body the tests know, and the traffic's.
func baseTexts(t testing.TB) [][]byte {
	var out [][]byte
	for _, s := range redact.EquivTexts() {
		out = append(out, []byte(s))
	}
	for _, in := range redact.EquivInteractions() {
		out = append(out, []byte(in.Request.URL), in.Request.Body, in.Response.Body)
		for _, h := range []http.Header{in.Request.Header, in.Response.Header} {
			for _, vs := range h {
				for _, v := range vs {
					out = append(out, []byte(v))
				}
			}
		}
	}
	for _, f := range trafficFiles(t) {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, raw)
		for _, in := range redact.LoadTrafficForTest(t, f) {
			out = append(out, []byte(in.Request.URL), in.Request.Body, in.Response.Body)
			for _, h := range []http.Header{in.Request.Header, in.Response.Header} {
				for _, vs := range h {
					for _, v := range vs {
						out = append(out, []byte(v))
					}
				}
			}
		}
	}
	// dedupe, drop empties
	seen := map[string]bool{}
	var uniq [][]byte
	for _, b := range out {
		if len(b) > 0 && !seen[string(b)] {
			seen[string(b)] = true
			uniq = append(uniq, b)
		}
	}
	return uniq
}

func TestEquivalenceTable(t *testing.T) {
	ps := equivPairs(t)
	ins := redact.EquivInteractions()
	if len(ins) < 300 {
		t.Fatalf("only %d interactions", len(ins))
	}
	texts := baseTexts(t)
	cts := equivCTs
	if testing.Short() || raceOn {
		cts = []string{"application/json", "text/plain", "text/event-stream", "", "multipart/form-data; boundary=XyZb0undary"}
	}
	for _, p := range ps {
		for i, in := range ins {
			p.checkInteraction(t, fmt.Sprintf("table interaction %d", i), in)
		}
		for i, s := range texts {
			p.checkText(t, fmt.Sprintf("text %d", i), s, cts)
		}
	}
}

func trafficFiles(t testing.TB) []string {
	var files []string
	for _, dir := range []string{"../testdata/traffic", "../../shared/testdata/traffic"} {
		fs, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		files = append(files, fs...)
	}
	if len(files) == 0 {
		t.Fatal("no traffic captures")
	}
	return files
}

func TestEquivalenceTraffic(t *testing.T) {
	ps := equivPairs(t)
	for _, f := range trafficFiles(t) {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		ins := redact.LoadTrafficForTest(t, f)
		for _, p := range ps {
			p.checkText(t, f, raw, equivCTs)
			for i, in := range ins {
				p.checkInteraction(t, fmt.Sprintf("%s #%d", f, i), in)
				// The same exchange with a secret planted in each body.
				planted := cloneInteraction(in)
				plant := func(b []byte) []byte {
					if k := bytes.IndexByte(b, '"'); k >= 0 {
						return append(append(bytes.Clone(b[:k+1]), "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z "...), b[k+1:]...)
					}
					return b
				}
				planted.Request.Body = plant(planted.Request.Body)
				planted.Response.Body = plant(planted.Response.Body)
				for j := range planted.Response.Events {
					planted.Response.Events[j].Data = plant(planted.Response.Events[j].Data)
				}
				p.checkInteraction(t, fmt.Sprintf("%s #%d planted", f, i), planted)
			}
		}
	}
}

func TestEquivalenceMutations(t *testing.T) {
	ps := equivPairs(t)
	base := baseTexts(t)
	iters := 20000
	if testing.Short() || raceOn {
		iters = 1500
	}
	rng := rand.New(rand.NewSource(20261127))
	for it := 0; it < iters; it++ {
		src := base[rng.Intn(len(base))]
		if len(src) > 4096 { // a window of a large body
			n := 512 + rng.Intn(3584)
			st := rng.Intn(len(src) - n)
			src = src[st : st+n]
		}
		in := redact.Mutate(rng, src)
		p := ps[rng.Intn(len(ps))]
		cts := []string{equivCTs[rng.Intn(len(equivCTs))], equivCTs[rng.Intn(len(equivCTs))], "application/json", "text/plain"}
		p.checkText(t, fmt.Sprintf("mutation %d", it), in, cts)
		if it%8 == 0 {
			p.checkInteraction(t, fmt.Sprintf("mutation %d", it), streamedInteraction(in, rng.Intn(len(in)+1), equivCTs[rng.Intn(len(equivCTs))]))
		}
	}
	// Whole large bodies, mutated, on every config and content type.
	large := 40
	if testing.Short() || raceOn {
		large = 4
	}
	for it := 0; it < large; it++ {
		src := redact.EquivLLMJSON(8 << 10)
		if it%2 == 1 {
			src = base[rng.Intn(len(base))]
		}
		in := redact.Mutate(rng, src)
		for _, p := range ps {
			p.checkText(t, fmt.Sprintf("large mutation %d", it), in, equivCTs)
		}
	}
}

// streamedInteraction carries data as a request body, a response body and
// the same response as two stream events cut at cut.
func streamedInteraction(data []byte, cut int, ct string) *store.Interaction {
	if cut > len(data) {
		cut = len(data)
	}
	in := &store.Interaction{
		Key: string(data),
		Request: store.Request{Method: "POST", URL: "https://api.example.com/v1/x?q=" + string(data[:min(len(data), 40)]),
			Header: http.Header{"Content-Type": {ct}, "X-Note": {string(data[:min(len(data), 60)])}}, Body: data},
		Response: store.Response{Status: 200, Header: http.Header{"Content-Type": {ct}}, Body: data, Streamed: true,
			Events: []store.Event{{OffsetMs: 1, Data: data[:cut]}, {OffsetMs: 2, Data: data[cut:]}}},
	}
	return in
}

func FuzzEquivalence(f *testing.F) {
	for _, s := range redact.EquivTexts() {
		if len(s) < 4096 {
			f.Add([]byte(s), uint8(len(s)), uint16(len(s)/2))
		}
	}
	ps := equivPairs(f)
	f.Fuzz(func(t *testing.T, data []byte, sel uint8, cut uint16) {
		p := ps[int(sel)%len(ps)]
		ct := equivCTs[int(sel)/len(ps)%len(equivCTs)]
		p.checkText(t, "fuzz", data, []string{ct, "application/json", "text/plain", "text/event-stream"})
		p.checkInteraction(t, "fuzz", streamedInteraction(data, int(cut), ct))
	})
}

// TestEquivalenceBenchBodies: the benchmark inputs at every size.
func TestEquivalenceBenchBodies(t *testing.T) {
	ps := equivPairs(t)
	sizes := []int{1 << 10, 4 << 10, 50 << 10, 200 << 10}
	if testing.Short() || raceOn {
		sizes = sizes[:3]
	}
	for _, n := range sizes {
		body := redact.EquivLLMJSON(n)
		for _, p := range ps {
			p.checkText(t, fmt.Sprintf("llmJSON %d", n), body, equivCTs)
		}
	}
	// Inputs where the sizes matter: long runs and every prefix of a secret.
	for _, s := range []string{"sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc",
		"-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----", `{"password":"hunter2"}`, "https://u:pw@h/?token=1#key=2"} {
		for i := 0; i <= len(s); i++ {
			if (testing.Short() || raceOn) && i%5 != 0 {
				continue
			}
			for _, p := range ps {
				p.checkText(t, "prefix", []byte(s[:i]), equivCTs)
				p.checkText(t, "suffix", []byte(s[i:]), equivCTs)
				p.checkText(t, "padded", []byte(strings.Repeat("x", 70)+s[:i]+strings.Repeat(" ", 70)+s[i:]), equivCTs)
			}
		}
	}
}
