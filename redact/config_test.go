package redact

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cassetteproxy/cassetteproxy/internal/yamlerr"
)

func TestParseConfig(t *testing.T) {
	cfg, err := ParseConfig([]byte(`# rules file
rules:
  - match: {host: api.example.com}
    ignore_headers: [X-Request-Id]
redact:
  headers: [X-Internal-Auth]
  fields: [ssn, card_number]
  json_paths: ["$.customer.email"]
  patterns: ["acct-[0-9]{8}"]   # RE2
  allow: [key]
`))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Headers:   []string{"X-Internal-Auth"},
		Fields:    []string{"ssn", "card_number"},
		JSONPaths: []string{"$.customer.email"},
		Patterns:  []string{"acct-[0-9]{8}"},
		Allow:     []string{"key"},
	}
	if !equalConfig(cfg, want) {
		t.Errorf("got %+v\nwant %+v", cfg, want)
	}
	for _, empty := range []string{"", "# nothing\n", "rules: []\n", "redact:\n", "redact: {}\n", "~\n"} {
		cfg, err := ParseConfig([]byte(empty))
		if err != nil || !equalConfig(cfg, Config{}) {
			t.Errorf("%q: %+v %v", empty, cfg, err)
		}
	}
	// A single string is a list of one.
	cfg, err = ParseConfig([]byte("redact:\n  fields: ssn\n"))
	if err != nil || !slices.Equal(cfg.Fields, []string{"ssn"}) {
		t.Errorf("%+v %v", cfg, err)
	}
}

// equalConfig compares every field, nil and empty apart. The unkeyed
// literal lists them all: a field added to Config stops it compiling.
func equalConfig(a, b Config) bool {
	_ = Config{a.Secret, a.Values, a.Headers, a.Fields, a.JSONPaths, a.Patterns, a.Allow}
	strs := func(x, y []string) bool { return (x == nil) == (y == nil) && slices.Equal(x, y) }
	return (a.Secret == nil) == (b.Secret == nil) && bytes.Equal(a.Secret, b.Secret) && strs(a.Values, b.Values) &&
		strs(a.Headers, b.Headers) && strs(a.Fields, b.Fields) && strs(a.JSONPaths, b.JSONPaths) &&
		strs(a.Patterns, b.Patterns) && strs(a.Allow, b.Allow)
}

func TestParseConfigErrorsNameTheLine(t *testing.T) {
	for _, c := range []struct {
		yaml string
		line int
		msg  string
	}{
		{"rules: []\nredact:\n  headers: [A]\n  field: [ssn]\n", 4, `unknown key "field"`},
		{"redact:\n  patterns:\n    - ok-[0-9]+\n    - \"acct-[0-9\"\n", 4, `bad regular expression "acct-[0-9"`},
		{"redact:\n  json_paths: [\"$.a\", \"customer.email\"]\n", 2, "must start with $"},
		{"redact:\n  json_paths:\n    - $.a[x]\n", 3, "bad JSON path"},
		{"redact:\n  fields: {a: b}\n", 2, "must be a list of strings"},
		{"redact:\n  fields: [a, [b]]\n", 2, "must be a list of strings"},
		{"redact:\n  allow: [\"\"]\n", 2, "empty entry"},
		{"redact:\n  fields: [a]\n  fields: [b]\n", 3, "already defined at line 2"},
		{"redact: [a]\n", 1, "must be a mapping"},
		{"redact:\n  fields: [a\n", 0, ""}, // a YAML syntax error: any line
	} {
		_, err := ParseConfig([]byte(c.yaml))
		ce, ok := err.(*yamlerr.Error)
		if !ok {
			t.Errorf("%q: error %T %v", c.yaml, err, err)
			continue
		}
		if (ce.Line != c.line && c.line != 0 || ce.Line == 0) || !strings.Contains(ce.Error(), c.msg) || !strings.HasPrefix(ce.Error(), "line ") {
			t.Errorf("%q: line %d (want %d): %v", c.yaml, ce.Line, c.line, err)
		}
	}
}

func TestLoadConfigNamesFileAndLine(t *testing.T) {
	p := filepath.Join(t.TempDir(), "rules.yaml")
	os.WriteFile(p, []byte("redact:\n  patterns: [\"(unclosed\"]\n"), 0o644)
	_, err := LoadConfig(p)
	if err == nil || !strings.HasPrefix(err.Error(), p+":2: redact.patterns: bad regular expression") {
		t.Errorf("%v", err)
	}
	os.WriteFile(p, []byte("redact:\n  fields: [ssn]\n"), 0o644)
	if cfg, err := LoadConfig(p); err != nil || cfg.Fields[0] != "ssn" {
		t.Errorf("%+v %v", cfg, err)
	}
	if _, err := LoadConfig(p + ".missing"); err == nil || !strings.Contains(err.Error(), "rules.yaml.missing") {
		t.Errorf("%v", err)
	}
}

func TestNewRejectsBadRules(t *testing.T) {
	for _, cfg := range []Config{
		{Patterns: []string{"a(b"}},
		{Patterns: []string{""}},
		{JSONPaths: []string{"$"}},
		{JSONPaths: []string{"a.b"}},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%+v: no error", cfg)
		} else if len(cfg.Patterns) > 0 && cfg.Patterns[0] != "" && !strings.Contains(err.Error(), cfg.Patterns[0]) {
			t.Errorf("error does not name the pattern: %v", err)
		}
	}
}

func TestJSONPathSyntax(t *testing.T) {
	for p, want := range map[string][]pseg{
		"$.a.b":      {{kind: segName, name: "a"}, {kind: segName, name: "b"}},
		"$.a[2].b":   {{kind: segName, name: "a"}, {kind: segIndex, idx: 2}, {kind: segName, name: "b"}},
		"$.a[*]":     {{kind: segName, name: "a"}, {kind: segAny}},
		"$..pin":     {{kind: segDescName, name: "pin"}},
		"$['a b'].*": {{kind: segName, name: "a b"}, {kind: segAny}},
		`$["x"]..*`:  {{kind: segName, name: "x"}, {kind: segDescAny}},
	} {
		got, err := parseJSONPath(p)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("%s: %+v %v", p, got, err)
		}
	}
	for _, bad := range []string{"", "$", "a", "$.", "$..", "$[", "$[x]", "$[-1]", "$a"} {
		if _, err := parseJSONPath(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
