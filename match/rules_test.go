package match

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cassetteproxy/cassetteproxy/internal/yamlerr"
)

func TestParseRulesErrors(t *testing.T) {
	cases := []struct {
		name, yaml, want string
	}{
		{"bad json path", "rules:\n  - host: a\n    ignore_body_paths:\n      - $.ok\n      - \"$.a[\"\n", `line 5: invalid JSON path "$.a["`},
		{"unknown top-level key", "rules: []\nredact: {anything: [1]}\nmatchers: []\n", `line 3: unknown key "matchers"`},
		{"unknown rule key", "rules:\n  - host: a\n    ignore_quer: [x]\n", `line 3: unknown rule key "ignore_quer"`},
		{"bad body mode", "rules:\n  - body: fuzzy\n", `line 2: body must be auto, json, exact or ignore`},
		{"bad mode", "rules:\n  - mode: play\n", `line 2: unknown mode "play": use record, replay, strict or live`},
		{"rules not a list", "rules:\n  host: a\n", `line 2: rules must be a list`},
		{"rule not a mapping", "rules:\n  - a\n", `line 2: each rule must be a mapping`},
		{"list of lists", "rules:\n  - ignore_query:\n      - [a]\n", `line 3: ignore_query item must be a single value`},
		{"host not scalar", "rules:\n  - host: [a]\n", `line 2: host must be a single value`},
		{"duplicate key", "rules:\n  - host: a\n    host: b\n", `line 3: key "host" already defined at line 2`},
		{"top not a mapping", "- a\n", `line 1: rules file must be a mapping`},
		{"yaml syntax", "rules:\n  - host: a\n   path: b\n", `line 3: `},
		{"tab indentation", "rules:\n\t- host: a\n", `line 2: `},
		{"paths with exact body", "rules:\n  - body: exact\n    ignore_body_paths: [$.a]\n", `line 2: ignore_body_paths needs body auto or json`},
		{"unknown store", "rules:\n  - host: a\n    store: bytes\n", `line 3: store must be full, fields or hash, not "bytes"`},
		{"store not scalar", "rules:\n  - host: a\n    store: [hash]\n", `line 3: store must be a single value`},
		{"keep bad path", "rules:\n  - host: a\n    store: fields\n    keep:\n      - $.id\n      - \"$.x[\"\n", `line 6: invalid JSON path "$.x["`},
		{"keep without store", "rules:\n  - host: a\n    keep: [$.id]\n", `line 3: keep needs store: fields in the same rule`},
		{"keep with store hash", "rules:\n  - host: a\n    store: hash\n    keep: [$.id]\n", `line 4: keep needs store: fields in the same rule`},
		{"empty keep with store full", "rules:\n  - host: a\n    store: full\n    keep: []\n", `line 4: keep needs store: fields`},
		{"fields without keep", "rules:\n  - host: a\n    store: fields\n", `line 3: store: fields needs keep: [JSON paths]`},
		{"fields with empty keep", "rules:\n  - host: a\n    keep:\n    store: fields\n", `line 4: store: fields needs keep`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRules([]byte(tc.yaml))
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("error %q, want prefix %q", err, tc.want)
			}
			var re *yamlerr.Error
			if !errors.As(err, &re) || re.Line == 0 {
				t.Fatalf("error %#v has no line", err)
			}
		})
	}
}

func TestLoadRulesNamesFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "rules.yaml")
	data := "# cassetteproxy rules\nredact:\n  headers: [X-Secret]\nrules:\n  - host: api.openai.com\n    ignore_body_paths:\n      - \"$.a[\"\n"
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadRules(p)
	want := p + `:7: invalid JSON path "$.a["`
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("LoadRules error = %v, want prefix %q", err, want)
	}
	if _, err := ParseRulesFile("conf/rules.yaml", []byte(data)); err == nil || !strings.HasPrefix(err.Error(), `conf/rules.yaml:7: invalid JSON path "$.a["`) {
		t.Fatalf("ParseRulesFile error = %v", err)
	}
	_, err = LoadRules(filepath.Join(dir, "missing.yaml"))
	if err == nil || !strings.HasPrefix(err.Error(), filepath.Join(dir, "missing.yaml")+": cannot read rules") {
		t.Fatalf("missing file error = %v", err)
	}
	if err := os.WriteFile(p, []byte("rules:\n  - host: a\n   path: b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadRules(p); err == nil || !strings.HasPrefix(err.Error(), p+":3: ") {
		t.Fatalf("syntax error = %v, want %s:3: ...", err, p)
	}
}

func TestParseRulesAccepts(t *testing.T) {
	for _, y := range []string{
		"",
		"# only a comment\n",
		"rules:\n",
		"rules: []\n",
		"redact:\n  anything: goes\n",
		"rules:\n  - {}\n",
		"rules:\n  - host: api.openai.com\n    path: /v1/chat/*\n    ignore_query: [ts, nonce]\n    ignore_headers: [X-Request-Id]\n    match_headers: [X-Tenant]\n    ignore_body_paths: [\"$.metadata.request_id\", \"$.messages[*].timestamp\"]\n    body: json\n    mode: strict\n",
		"rules:\n  - ignore_query: ts\n",
		"rules:\n  - host: a\n    store: FULL\n  - host: b\n    store: hash\n  - host: c\n    store: fields\n    keep: [$.id, \"$.items[*].name\"]\n",
		"defaults: &d\n  ignore_query: [ts]\n",
	} {
		r, err := ParseRules([]byte(y))
		if strings.HasPrefix(y, "defaults:") {
			if err == nil {
				t.Errorf("unknown top-level key accepted in %q", y)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseRules(%q): %v", y, err)
			continue
		}
		if r == nil {
			t.Errorf("ParseRules(%q) returned nil rules", y)
		}
	}
	r := mustRules(t, "rules:\n  - ignore_query: ts\n")
	if r.Key(rq("GET", "http://h/?ts=1", "", "")) != r.Key(rq("GET", "http://h/?ts=2", "", "")) {
		t.Error("a single scalar should work as a one-item list")
	}
}

func TestModeFor(t *testing.T) {
	r := mustRules(t, `
rules:
  - host: api.openai.com
    path: /v1/chat/*
    mode: strict
  - host: api.openai.com
    mode: live
  - host: "*.internal.test"
    mode: record
  - host: localhost:8080
    mode: replay
  - host: nomode.test
    ignore_query: [x]
`)
	cases := []struct {
		host, path string
		mode       Mode
		ok         bool
	}{
		{"api.openai.com", "/v1/chat/completions", "strict", true},
		{"API.OpenAI.com:443", "/v1/chat/completions?x=1", "strict", true},
		{"api.openai.com", "/v1/embeddings", "live", true},
		{"api.openai.com:443", "", "live", true},
		{"a.b.internal.test", "/", "record", true},
		{"internal.test", "/", "", false},
		{"localhost:8080", "/x", "replay", true},
		{"localhost:9090", "/x", "", false},
		{"localhost", "/x", "", false},
		{"nomode.test", "/", "", false},
		{"example.com", "/", "", false},
	}
	for _, tc := range cases {
		mode, ok := r.ModeFor(tc.host, tc.path)
		if mode != tc.mode || ok != tc.ok {
			t.Errorf("ModeFor(%q, %q) = %q, %v; want %q, %v", tc.host, tc.path, mode, ok, tc.mode, tc.ok)
		}
	}
	if m, ok := DefaultRules().ModeFor("api.openai.com", "/"); ok || m != "" {
		t.Error("DefaultRules set a mode")
	}
	var nilRules *Rules
	if _, ok := nilRules.ModeFor("a", "/"); ok {
		t.Error("nil rules set a mode")
	}
}

func TestGlobMatch(t *testing.T) {
	cases := []struct {
		p, s string
		fold bool
		want bool
	}{
		{"*.example.com", "api.example.com", false, true},
		{"*.example.com", "a.b.example.com", false, true},
		{"*.example.com", "example.com", false, false},
		{"/v1/*", "/v1/chat/completions", false, true},
		{"/v1/*/x", "/v1/a/b/x", false, true},
		{"/v1/?", "/v1/a", false, true},
		{"/v1/?", "/v1/ab", false, false},
		{"X-Stainless-*", "x-stainless-os", true, true},
		{"X-Stainless-*", "x-stainless-os", false, false},
		{"*", "", false, true},
		{"a*b*c", "axxbyyc", false, true},
		{"a*b*c", "axxbyy", false, false},
	}
	for _, tc := range cases {
		if got := globMatch(tc.p, tc.s, tc.fold); got != tc.want {
			t.Errorf("globMatch(%q, %q, %v) = %v", tc.p, tc.s, tc.fold, got)
		}
	}
}

func TestSplitHostPort(t *testing.T) {
	cases := []struct{ in, host, port string }{
		{"api.example.com", "api.example.com", ""},
		{"API.Example.COM.", "api.example.com", ""},
		{" api.example.com:8443 ", "api.example.com", "8443"},
		{"api.example.com:443", "api.example.com", "443"},
		{"[::1]:8080", "::1", "8080"},
		{"[::1]", "::1", ""},
		{"::1", "::1", ""}, // not host:port; kept whole
		{"", "", ""},
		{"h:", "h", ""},
	}
	for _, tc := range cases {
		h, p := splitHostPort(tc.in)
		if h != tc.host || p != tc.port {
			t.Errorf("splitHostPort(%q) = %q, %q; want %q, %q", tc.in, h, p, tc.host, tc.port)
		}
	}
}
