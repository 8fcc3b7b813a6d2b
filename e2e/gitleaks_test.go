package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp/syntax"
	"sort"
	"strings"
	"testing"
	"unicode"

	"github.com/cassetteproxy/cassetteproxy/redact"
)

// TestGitleaksFindsNothing records a corpus of fake secrets, one for every
// gitleaks rule the redactor covers, in every position: request headers,
// query, path, JSON, form and text bodies, SSE and XML answers, a command
// line and --env. It then runs gitleaks (the independent scanner) over
// everything a user can get out of the store: `cassettes show --json`, the
// exported fixture folders, the HAR files, the proxy's log and `runs show`.
// With redaction on: no finding. The same flow with a binary built with
// -tags noredact (redaction switched off, a build only this test makes)
// must let gitleaks find every rule of the corpus, so that the zero above
// means something.
func TestGitleaksFindsNothing(t *testing.T) {
	gitleaks, err := exec.LookPath("gitleaks")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("gitleaks is not on PATH; .ci/run installs it with go install github.com/zricethezav/gitleaks/v8@v8.30.1")
		}
		t.Skip("gitleaks not on PATH (go install github.com/zricethezav/gitleaks/v8@v8.30.1); CI runs this test")
	}
	corpus := buildCorpus(t)
	// The binary without redaction builds while the real one records.
	type build struct {
		bin string
		err error
	}
	built := make(chan build, 1)
	bin := filepath.Join(t.TempDir(), "cassetteproxy")
	go func() {
		out, err := exec.Command("go", "build", "-tags", "noredact", "-o", bin, "../cmd/cassetteproxy").CombinedOutput()
		if err != nil {
			err = fmt.Errorf("go build -tags noredact: %v\n%s", err, out)
		}
		built <- build{bin, err}
	}()

	on := runCorpus(t, newEnv(t), corpus, gitleaks)
	for _, f := range on {
		t.Errorf("redaction on: gitleaks found %s in %s: %.100q", f.RuleID, f.File, f.Match)
	}

	b := <-built
	if b.err != nil {
		t.Fatal(b.err)
	}
	off := newEnv(t)
	off.bin = b.bin
	found := runCorpus(t, off, corpus, gitleaks)
	byRule := map[string]int{}
	for _, f := range found {
		byRule[f.RuleID]++
	}
	var missing []string
	for _, s := range corpus {
		if byRule[s.rule] == 0 {
			missing = append(missing, s.rule)
		}
	}
	t.Logf("corpus: %d rules; redaction off: gitleaks finds %d secrets of %d rules; redaction on: %d", len(corpus), len(found), len(byRule), len(on))
	if len(missing) > 0 {
		t.Errorf("with redaction off gitleaks did not find the samples of %d rules (the corpus would prove nothing for them): %v", len(missing), missing)
	}
}

// sample is one fake secret of one rule, and the text it is written as.
type sample struct {
	rule  string
	shape string
	token string // token and gated rules: the secret, after a keyword when gitleaks needs one
	name  string // name rules: the name that carries the identifier
	value string // name rules: the secret
}

// handSamples are written by hand where a rule's expression is not one a
// generator can follow: text around the secret (a curl command), a block
// over several lines.
var handSamples = map[string]string{
	"curl-auth-header": "curl -H 'Authorization: Bearer Zx81AbCd9EfGhIjKlMnOp1234' https://api.example.com/v1",
	"curl-auth-user":   "curl -u alice:S3cr3tPassw0rdQ7 https://api.example.com/v1",
	// gitleaks wants the host followed by / # ? : or the end of the file.
	"sidekiq-sensitive-url": "https://1234abcd:5678ef90@gems.contribsys.com/queues",
	"private-key": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n" +
		"MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu\n-----END PRIVATE KEY-----",
}

// buildCorpus makes one sample per gitleaks rule the redactor applies,
// from the rule's own expression with a fixed seed: fake, but of the
// length, alphabet and entropy gitleaks wants. The formats beyond
// gitleaks' rules (Telegram, Slack and Teams webhook paths, ya29.) are not
// in it: gitleaks cannot see them, the table tests in redact/ cover them.
func buildCorpus(t *testing.T) []sample {
	rules, _, err := redact.Rules()
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(15))
	var out []sample
	for _, r := range rules {
		if r.Extra {
			continue
		}
		s := sample{rule: r.ID, shape: r.Shape}
		if h, ok := handSamples[r.ID]; ok {
			s.token = h
			out = append(out, s)
			continue
		}
		src := r.Regex
		if r.Shape == "name" {
			src = r.Value
		}
		re, err := syntax.Parse(src, syntax.Perl)
		if err != nil {
			t.Fatalf("%s: %v", r.ID, err)
		}
		v := ""
		for try := 0; try < 50 && v == ""; try++ {
			var b strings.Builder
			gen(&b, re, rng)
			v = strings.Trim(strings.TrimSpace(b.String()), "`'\"=;")
			if strings.ContainsAny(v, " \t\r\n\\\"'") || entropy(v) <= r.Entropy+0.3 {
				v = ""
			}
		}
		if v == "" {
			t.Fatalf("no sample for %s: add one to handSamples", r.ID)
		}
		if r.Shape == "name" {
			s.name, s.value = r.Idents[0]+"_key", v
		} else {
			s.token = v
			if !holdsKeyword(v, r.Keywords) { // gitleaks looks only at text that holds a keyword
				s.token = r.Keywords[0] + " " + v
			}
		}
		out = append(out, s)
	}
	return out
}

func holdsKeyword(v string, kw []string) bool {
	low := strings.ToLower(v)
	for _, k := range kw {
		if strings.Contains(low, strings.ToLower(k)) {
			return true
		}
	}
	return len(kw) == 0
}

// gen writes a random string that re matches: the shortest choice for
// optional prefixes and terminators, a random one inside the secret.
func gen(b *strings.Builder, re *syntax.Regexp, rng *rand.Rand) {
	switch re.Op {
	case syntax.OpLiteral:
		for _, r := range re.Rune {
			if re.Flags&syntax.FoldCase != 0 && rng.Intn(2) == 0 {
				r = unicode.SimpleFold(r)
			}
			b.WriteRune(r)
		}
	case syntax.OpCharClass:
		b.WriteRune(pickRune(re.Rune, rng))
	case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		b.WriteByte('.') // hooks.slack.com, gems.contribsys.com: the dot gitleaks' keyword spells
	case syntax.OpCapture:
		gen(b, re.Sub[0], rng)
	case syntax.OpConcat:
		for _, s := range re.Sub {
			gen(b, s, rng)
		}
	case syntax.OpAlternate:
		// An empty alternative ($, ^) ends a terminator group: take it.
		for _, s := range re.Sub {
			if s.Op == syntax.OpEndText || s.Op == syntax.OpEndLine || s.Op == syntax.OpBeginText || s.Op == syntax.OpBeginLine {
				return
			}
		}
		gen(b, re.Sub[rng.Intn(len(re.Sub))], rng)
	case syntax.OpQuest:
		if !isBlankClass(re.Sub[0]) {
			gen(b, re.Sub[0], rng)
		}
	case syntax.OpStar:
	case syntax.OpPlus:
		gen(b, re.Sub[0], rng)
	case syntax.OpRepeat:
		n := re.Min
		if re.Min > 0 && !isBlankClass(re.Sub[0]) {
			hi := re.Max
			if hi < 0 || hi > re.Min+8 {
				hi = re.Min + 8
			}
			n = re.Min + rng.Intn(hi-re.Min+1)
		}
		for i := 0; i < n; i++ {
			gen(b, re.Sub[0], rng)
		}
	}
}

func isBlankClass(re *syntax.Regexp) bool {
	if re.Op != syntax.OpCharClass {
		return false
	}
	for i := 0; i+1 < len(re.Rune); i += 2 {
		if re.Rune[i] <= ' ' && ' ' <= re.Rune[i+1] || re.Rune[i] <= '=' && '=' <= re.Rune[i+1] {
			return true
		}
	}
	return false
}

// pickRune picks a printable ASCII rune of the class, letters and digits
// first.
func pickRune(ranges []rune, rng *rand.Rand) rune {
	var ok []rune
	for i := 0; i+1 < len(ranges); i += 2 {
		for r := ranges[i]; r <= ranges[i+1] && r < 127; r++ {
			if r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
				ok = append(ok, r)
			}
		}
	}
	if len(ok) == 0 {
		for i := 0; i+1 < len(ranges); i += 2 {
			for r := ranges[i]; r <= ranges[i+1] && r < 127; r++ {
				if r > ' ' && r != '"' && r != '\\' && r != '\'' && r != '`' {
					ok = append(ok, r)
				}
			}
		}
	}
	if len(ok) == 0 {
		return 'x'
	}
	return ok[rng.Intn(len(ok))]
}

func entropy(s string) float64 {
	counts := map[rune]float64{}
	for _, r := range s {
		counts[r]++
	}
	e := 0.0
	for _, c := range counts {
		p := c / float64(len(s))
		e -= p * math.Log2(p)
	}
	return e
}

type finding struct {
	RuleID string `json:"RuleID"`
	File   string `json:"File"`
	Match  string `json:"Match"`
}

// corpusUpstream echoes requests and serves the samples as SSE and XML.
func corpusUpstream(t *testing.T, corpus []sample) *upstream {
	return newUpstream(t, true, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/sse":
			w.Header().Set("Content-Type", "text/event-stream")
			for i, s := range corpus {
				if s.shape == "name" {
					fmt.Fprintf(w, "data: {\"%s\": \"%s\"}\n\n", s.name, s.value)
				} else {
					js, _ := json.Marshal(map[string]any{"n": i, "text": "see " + s.token})
					fmt.Fprintf(w, "event: note\ndata: %s\n\n", js)
				}
			}
			return
		case "/xml":
			w.Header().Set("Content-Type", "application/xml")
			io.WriteString(w, "<Response>\n")
			for _, s := range corpus {
				if s.shape == "name" {
					fmt.Fprintf(w, "  <Setting>%s=%s</Setting>\n  <%s>%s</%s>\n", s.name, s.value, s.name, s.value, s.name)
				} else {
					fmt.Fprintf(w, "  <Note>%s</Note>\n", s.token)
				}
			}
			io.WriteString(w, "</Response>\n")
			return
		}
		// The request's URL and headers come back inside a JSON answer
		// (the query percent-encoded in a JSON string); its body, already
		// recorded as it was sent, does not.
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"url": r.URL.String(), "headers": r.Header})
	}))
}

// corpusGroups is how many cassettes the corpus is split into: gitleaks
// runs a rule over a file only when one of its keywords is in it, so a
// file holding a few rules' samples costs it a few rules' time.
const corpusGroups = 12

// runCorpus records the corpus with env's binary, in corpusGroups parts,
// writes every output to one folder and returns what one gitleaks run
// finds there.
func runCorpus(t *testing.T, e *env, corpus []sample, gitleaks string) []finding {
	out := filepath.Join(e.dir, "outputs")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(out, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for g := 0; g < corpusGroups; g++ {
		var part []sample
		for i := g; i < len(corpus); i += corpusGroups {
			part = append(part, corpus[i])
		}
		name := fmt.Sprintf("corpus%d", g)
		write(name+".serve.log", recordCorpus(t, e, part, name))
		for _, cas := range []string{name, name + "-run"} {
			stdout, stderr, code := e.cli("cassettes", "show", cas, "--json")
			if code != 0 {
				t.Fatalf("cassettes show %s: %s", cas, stderr)
			}
			write(cas+".cassette.json", stdout)
			if _, stderr, code := e.cli("export", "--cassette", cas, "--out", filepath.Join(out, cas+"-fixture")); code != 0 {
				t.Fatalf("export %s: %s", cas, stderr)
			}
			if _, stderr, code := e.cli("export", "--cassette", cas, "--out", filepath.Join(out, cas+".har"), "--format", "har"); code != 0 {
				t.Fatalf("export har %s: %s", cas, stderr)
			}
		}
	}
	stdout, _, _ := e.cli("runs", "ls", "--json")
	var runs []struct {
		RunID string `json:"run_id"`
	}
	if err := json.Unmarshal([]byte(stdout), &runs); err != nil || len(runs) == 0 {
		t.Fatalf("runs ls --json: %v\n%s", err, stdout)
	}
	for _, r := range runs {
		js, _, _ := e.cli("runs", "show", r.RunID, "--json")
		write("run-"+r.RunID+".json", js)
		txt, _, _ := e.cli("runs", "show", r.RunID)
		write("run-"+r.RunID+".txt", txt)
	}

	report := filepath.Join(e.dir, "gitleaks.json")
	cmd := exec.Command(gitleaks, "dir", out, "--no-banner", "--report-format", "json", "--report-path", report, "--exit-code", "0", "--log-level", "error")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gitleaks: %v\n%s", err, b)
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var fs []finding
	if err := json.Unmarshal(b, &fs); err != nil {
		t.Fatalf("gitleaks report: %v", err)
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i].RuleID < fs[j].RuleID })
	return fs
}

// recordCorpus records the samples through `serve --mode record` in every
// position into cassette name, and runs `run --mode record` with them on
// its command line and in --env into cassette name-run. It returns the
// proxy's log.
func recordCorpus(t *testing.T, e *env, corpus []sample, name string) string {
	up := corpusUpstream(t, corpus)
	p := e.serve("--mode", "record", "--cassette", name, "--upstream-ca", up.caFile)
	c := e.client(p)
	do := func(method, path string, hdr http.Header, body string) {
		t.Helper()
		req, err := http.NewRequest(method, up.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range hdr {
			req.Header[k] = v
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	hdr := http.Header{}
	q := url.Values{}
	var jsonItems []map[string]string
	form := url.Values{}
	var text strings.Builder
	var path []string
	for i, s := range corpus {
		if s.shape == "name" {
			hdr.Set("X-"+s.name, s.value)
			q.Add(s.name, s.value)
			jsonItems = append(jsonItems, map[string]string{s.name: s.value})
			form.Add(s.name, s.value)
			fmt.Fprintf(&text, "%s = %s\n", s.name, s.value)
			continue
		}
		if !strings.ContainsAny(s.token, "\r\n") {
			hdr.Set(fmt.Sprintf("X-Sample-%d", i), s.token)
		}
		q.Add(fmt.Sprintf("s%d", i), s.token)
		jsonItems = append(jsonItems, map[string]string{"note": "see " + s.token})
		form.Add(fmt.Sprintf("note%d", i), s.token)
		fmt.Fprintf(&text, "note %d: %s\n", i, s.token)
		if url.PathEscape(s.token) == s.token { // a token that travels unescaped in a path
			path = append(path, s.token)
		}
	}
	do("GET", "/headers", hdr, "")
	do("GET", "/query?"+q.Encode(), nil, "")
	if len(path) > 0 {
		do("GET", "/p/"+strings.Join(path, "/"), nil, "")
	}
	jb, _ := json.Marshal(map[string]any{"items": jsonItems})
	do("POST", "/json", http.Header{"Content-Type": {"application/json"}}, string(jb))
	do("POST", "/form", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, form.Encode())
	do("POST", "/text", http.Header{"Content-Type": {"text/plain"}}, text.String())
	do("GET", "/sse", nil, "")
	do("GET", "/xml", nil, "")
	p.stop()

	// A run whose command line and --env carry the samples.
	args := []string{"run", "--mode", "record", "--cassette", name + "-run"}
	for i, s := range corpus {
		if s.shape == "name" {
			args = append(args, "--env", strings.ToUpper(s.name)+"="+s.value)
		} else {
			args = append(args, "--env", fmt.Sprintf("SAMPLE_%d=%s", i, s.token))
		}
	}
	args = append(args, "--", "sh", "-c", "true")
	for _, s := range corpus {
		if s.shape == "name" {
			args = append(args, s.name+"="+s.value, "--"+strings.ReplaceAll(s.name, "_", "-"), s.value)
		} else {
			args = append(args, s.token)
		}
	}
	if _, stderr, code := e.cli(args...); code != 0 {
		t.Fatalf("run: exit %d\n%s", code, stderr)
	}
	return p.stderr.String()
}
