package redact

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The fast paths skip work the matchers would have rejected. These tests
// check the claims they rest on directly, beyond the output equivalence of
// equivalence_test.go: mayMatch (and quickMay, which is cheaper and looser)
// holds wherever matchAt finds a span; stringScan ends strings where
// stringEnd does and finds exactly the candidates scanText would try;
// decodeComponent agrees with url.QueryUnescape.

// fastpathCorpus: the texts the tests know, the captured traffic files and
// mutations of all of them.
func fastpathCorpus(t testing.TB, mutations int) [][]byte {
	var base [][]byte
	for _, s := range EquivTexts() {
		base = append(base, []byte(s))
	}
	for _, dir := range []string{"../testdata/traffic", "../../shared/testdata/traffic"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			base = append(base, b)
		}
	}
	out := append([][]byte(nil), base...)
	rng := rand.New(rand.NewSource(7))
	for k := 0; k < mutations; k++ {
		src := base[rng.Intn(len(base))]
		if len(src) > 2048 {
			st := rng.Intn(len(src) - 1024)
			src = src[st : st+1024]
		}
		out = append(out, Mutate(rng, src))
	}
	return out
}

// checkNecessary fails when matchAt finds a span at i of s[lo:hi] but
// mayMatch or quickMay says it cannot.
func checkNecessary(t testing.TB, r *Redactor, s []byte, lo, hi, i int) {
	if trig[s[i]] == 0 {
		return
	}
	pe := hi
	var keys keyCache
	_, ok := r.matchAt(&pe, &keys, s, lo, hi, i)
	if ok && !(mayMatch(s, lo, hi, i) && quickMay(quickp, s, lo, hi, i)) {
		t.Fatalf("matchAt finds a span at %d of %q but mayMatch %v quickMay %v", i-lo, s[lo:hi], mayMatch(s, lo, hi, i), quickMay(quickp, s, lo, hi, i))
	}
	if mayMatch(s, lo, hi, i) && !quickMay(quickp, s, lo, hi, i) {
		t.Fatalf("quickMay is stricter than mayMatch at %d of %q", i-lo, s[lo:hi])
	}
}

func checkAllWindows(t testing.TB, r *Redactor, s []byte) {
	for i := range s {
		if trig[s[i]] == 0 {
			continue
		}
		for _, lo := range []int{0, i - 1, i - 2, i - 3, i - 5, i - 7} {
			for _, hi := range []int{len(s), i + 1, i + 2, i + 3, i + 8, i + 12, i + 21} {
				if lo >= 0 && lo <= i && hi > i && hi <= len(s) {
					checkNecessary(t, r, s, lo, hi, i)
				}
			}
		}
	}
}

func TestMayMatchIsNecessary(t *testing.T) {
	r := mustNew(t, Config{Fields: []string{"email"}, Headers: []string{"X-Internal-Auth"}})
	n := 4000
	if testing.Short() {
		n = 400
	}
	for _, s := range fastpathCorpus(t, n) {
		checkAllWindows(t, r, s)
	}
}

// TestMayMatchNeighbours tries every byte before and after every trigger,
// in contexts that make each matcher almost match.
func TestMayMatchNeighbours(t *testing.T) {
	r := mustNew(t, Config{})
	pres := []string{"", "s", "r", "xo", "g", "githu", "e", "\"", "\\\"token\\", "token", "password", "x ", "?", "\\n", "\\u0026", "Authorization", "postgres://u"}
	posts := []string{"", "abcdefgh12345678", "earer abcdefgh12345678", "asic YWxpY2U6czNjcjN0UGFzcw==", "IAIOSFODNN7EXAMPLE", "za" + "SyD-1234567890abcdefghijklmnopqrstu",
		"hbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc", "----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----", " \"hunter22\"", "\"hunter22\"", " hunter22",
		"live_51H8abcdefghij", "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8", "pat_11ABCDEFG0123456789_abcdefghij", "123456789012-abcdefghij", "pw@host/"}
	check := func(c byte, pre string, prev, next int, post string) {
		var b []byte
		b = append(b, pre...)
		if prev >= 0 {
			b = append(b, byte(prev))
		}
		i := len(b)
		b = append(b, c)
		if next >= 0 {
			b = append(b, byte(next))
		}
		b = append(b, post...)
		checkNecessary(t, r, b, 0, len(b), i)
	}
	for c := range 256 {
		if trig[c] == 0 {
			continue
		}
		// every pair of neighbours (or none) alone
		for prev := -1; prev < 256; prev++ {
			for next := -1; next < 256; next++ {
				check(byte(c), "", prev, next, "")
			}
		}
		// printable neighbours in every context
		for _, pre := range pres {
			for prev := -1; prev < 127; prev++ {
				if prev >= 0 && prev < 32 {
					continue
				}
				for _, post := range posts {
					check(byte(c), pre, prev, -1, post)
				}
				if pre != "" {
					for next := 32; next < 127; next++ {
						check(byte(c), pre, prev, next, "")
					}
				}
			}
		}
	}
}

func FuzzMayMatch(f *testing.F) {
	for _, s := range EquivTexts() {
		if len(s) < 512 {
			f.Add([]byte(s))
		}
	}
	r, err := New(Config{Fields: []string{"email"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s []byte) {
		checkAllWindows(t, r, s)
		checkStringScan(t, s)
	})
}

// checkStringScan compares stringScan with stringEnd and scanText's own
// search for candidates, from every quote in s.
func checkStringScan(t testing.TB, s []byte) {
	var cands [32]int
	for q := range s {
		if s[q] != '"' {
			continue
		}
		from := q + 1
		e, closed, n, resume := stringScan(s, from, len(s), cands[:])
		we, wclosed := stringEnd(s, from, len(s))
		if e != we || closed != wclosed {
			t.Fatalf("stringScan(%q) ends at %d %v, stringEnd at %d %v", s[from:], e, closed, we, wclosed)
		}
		if resume < from || resume > e || resume < e && n != len(cands) {
			t.Fatalf("stringScan(%q): resume %d, %d candidates", s[from:], resume, n)
		}
		var want []int
		for i := from; i < resume; i++ {
			if trig[s[i]] != 0 && mayMatch(s, from, e, i) {
				want = append(want, i)
			}
		}
		if len(want) != n || !equalInts(want, cands[:n]) {
			t.Fatalf("stringScan(%q): candidates %v, want %v", s[from:e], cands[:n], want)
		}
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestStringScan(t *testing.T) {
	n := 2000
	if testing.Short() {
		n = 200
	}
	for _, s := range fastpathCorpus(t, n) {
		if len(s) > 4096 {
			s = s[:4096]
		}
		checkStringScan(t, s)
	}
	// Many candidates: the collection fills up and the scan resumes.
	s := []byte(`"` + string(bytes.Repeat([]byte("a=1 "), 100)) + `token=sk-abcdefgh12345678"`)
	checkStringScan(t, s)
	r := mustNew(t, Config{})
	if out := r.body(s, "application/json", false); !bytes.Contains(out, []byte("token=[REDACTED:query]")) {
		t.Fatalf("not scrubbed past the candidates: %s", out)
	}
}

// queryUnescapeRef is decodeComponent as it was: url.QueryUnescape.
func queryUnescapeRef(b []byte) []byte {
	for _, c := range b {
		if c == '%' || c == '+' {
			if s, err := url.QueryUnescape(string(b)); err == nil {
				return []byte(s)
			}
			return b
		}
	}
	return b
}

func FuzzDecodeComponent(f *testing.F) {
	for _, s := range []string{"", "a", "a+b", "%41", "%4", "%zz", "%%41", "a%2Bb%3d", "%e6%97%a5", "+%", "%C3%A9+x"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := decodeComponent(b), queryUnescapeRef(b); !bytes.Equal(got, want) {
			t.Fatalf("decodeComponent(%q) = %q, want %q", b, got, want)
		}
	})
}

func TestDecodeComponent(t *testing.T) {
	for _, s := range []string{"", "a", "a+b", "%41", "%4", "%zz", "%%41", "a%2Bb%3d", "%e6%97%a5", "+%", "%C3%A9+x", "%", "%a", "abc%ff%FF%0a"} {
		if got, want := decodeComponent([]byte(s)), queryUnescapeRef([]byte(s)); !bytes.Equal(got, want) {
			t.Errorf("decodeComponent(%q) = %q, want %q", s, got, want)
		}
	}
}

func checkValidJSON(t *testing.T, b []byte) {
	if got, want := validJSON(b), json.Valid(b); got != want {
		t.Fatalf("validJSON(%q) = %v, json.Valid %v", b, got, want)
	}
}

func FuzzValidJSON(f *testing.F) {
	for _, s := range []string{``, ` `, `0`, `-0`, `01`, `-`, `1.`, `1.5e`, `1e+5`, `1E-05`, `.5`, `"a"`, `"\u00e9\n"`, `"\u00g9"`, "\"\x01\"",
		`"\x"`, `[]`, `[ ]`, `[1,]`, `[,1]`, `{}`, `{ }`, `{"a":1,}`, `{"a" : [true,false,null]}`, `{"a":1}x`, `{"a":1} `, `nul`, `truee`,
		`[[[]]]`, `{"a":{"b":{}}}`, `"\"`, `"\\"`, "\"\xff\"", `{"a":"b"]`, `[1}`, `{1:2}`, `{"a"}`, `[-]`, `[-1.0e-0]`} {
		f.Add([]byte(s))
	}
	for _, s := range EquivTexts() {
		if len(s) < 2048 {
			f.Add([]byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkValidJSON(t, b)
	})
}

func TestValidJSON(t *testing.T) {
	for _, s := range EquivTexts() {
		checkValidJSON(t, []byte(s))
	}
	for _, s := range fastpathCorpus(t, 2000) {
		checkValidJSON(t, s)
		for _, cut := range []int{1, 2, len(s) / 2, len(s) - 1} {
			if cut > 0 && cut < len(s) {
				checkValidJSON(t, s[:cut])
				checkValidJSON(t, s[cut:])
			}
		}
	}
	// Nesting: encoding/json allows 10000 levels, not 10001.
	for _, n := range []int{63, 64, 65, 127, 128, 129, 9999, 10000, 10001} {
		for _, open := range []string{"[", `{"k":`, `[{"k":`} {
			var b []byte
			for i := 0; i < n; i++ {
				b = append(b, open...)
			}
			checkValidJSON(t, b)
			b = append(b, '1')
			for i := n - 1; i >= 0; i-- {
				switch open {
				case "[":
					b = append(b, ']')
				case `{"k":`:
					b = append(b, '}')
				default:
					b = append(b, "}]"...)
				}
			}
			checkValidJSON(t, b)
			if open != `[{"k":` {
				// mixed: arrays inside objects inside arrays...
				checkValidJSON(t, append(append([]byte(nil), b...), ' '))
			}
		}
	}
}

// TestMayBeSecretNameIsNecessary: wherever secretField holds,
// mayBeSecretName does, for every config's field names written every way.
func TestMayBeSecretNameIsNecessary(t *testing.T) {
	cfgs := []Config{{}, {Fields: []string{"email", "ssn", "card_number", "PIN", "x9", "naïve", "a.b", "q"}, Allow: []string{"key"}},
		{Allow: append(append([]string(nil), defaultFields...), defaultHeaders...)}}
	rng := rand.New(rand.NewSource(3))
	var names []string
	for _, f := range append(append(append([]string(nil), defaultFields...), defaultHeaders...), "email", "ssn", "card_number", "PIN", "x9", "naïve", "a.b", "q",
		"x-session-token", "db_password", "client-secret", "my_api_key", "apiKey", "max_tokens", "x-ratelimit-remaining-tokens") {
		names = append(names, f, strings.ToUpper(f), strings.ReplaceAll(f, "_", "-"), strings.ReplaceAll(f, "-", ""), "user["+f+"]", "x_"+f, f+"_2",
			`\u0061`+f, jsonEscapeFirst(f))
	}
	for _, s := range EquivTexts() {
		for _, w := range strings.FieldsFunc(s, func(r rune) bool { return !(r < 128 && nameChar[r]) }) {
			names = append(names, w)
		}
	}
	for k := 0; k < 20000; k++ {
		b := []byte(names[rng.Intn(len(names))])
		names = append(names, string(Mutate(rng, b)))
	}
	for _, cfg := range cfgs {
		r := mustNew(t, cfg)
		for _, n := range names {
			raw := []byte(n)
			if r.secretField(unescapeKey(raw)) && !r.mayBeSecretName(raw) {
				t.Fatalf("config %+v: %q is a secret field name, mayBeSecretName says no", cfg, n)
			}
		}
	}
}

// jsonEscapeFirst writes the first letter of s as a \u escape.
func jsonEscapeFirst(s string) string {
	if s == "" {
		return s
	}
	return fmt.Sprintf(`\u%04x`, s[0]) + s[1:]
}
