package match

import (
	"errors"
	"strings"
	"testing"
)

func TestParseJSONPath(t *testing.T) {
	valid := []struct{ in, canon string }{
		{"$", "$"},
		{"$.a", "$.a"},
		{"$.metadata.request_id", "$.metadata.request_id"},
		{"$['a b']", "$['a b']"},
		{`$["a'b"]`, `$['a\'b']`},
		{`$['a\\b']`, `$.a\b`},
		{`$['a.b']`, `$['a.b']`},
		{"$['plain']", "$.plain"},
		{"$[0]", "$[0]"},
		{"$[ -1 ]", "$[-1]"},
		{"$.messages[*].timestamp", "$.messages[*].timestamp"},
		{"$.*", "$[*]"},
		{"$..nonce", "$..nonce"},
		{"$..*", "$..*"},
		{"$..['a.b']", "$..['a.b']"},
		{"$..[*]", "$..*"},
		{"$.a-b.$c", "$.a-b.$c"},
		{"$.é", "$.é"},
	}
	for _, tc := range valid {
		p, err := ParseJSONPath(tc.in)
		if err != nil {
			t.Errorf("ParseJSONPath(%q): %v", tc.in, err)
			continue
		}
		if got := p.String(); got != tc.canon {
			t.Errorf("ParseJSONPath(%q).String() = %q, want %q", tc.in, got, tc.canon)
		}
	}
	invalid := []string{"", "a", ".a", "$.", "$..", "$a", "$[", "$.a[", "$[a]", "$['a", "$['a']x", "$[1", "$[*", "$.[0]", "$..[0]", "$['a\\x']", "$.a b", "$[]", "$[-]"}
	for _, in := range invalid {
		_, err := ParseJSONPath(in)
		var pe *JSONPathError
		if !errors.As(err, &pe) {
			t.Errorf("ParseJSONPath(%q) = %v, want a *JSONPathError", in, err)
			continue
		}
		if !strings.Contains(err.Error(), "invalid JSON path") {
			t.Errorf("error %q does not say invalid JSON path", err)
		}
	}
}

func TestJSONPathRemove(t *testing.T) {
	cases := []struct{ doc, path, want string }{
		{`{"a":1,"b":2}`, "$.a", `{"b":2}`},
		{`{"a":{"b":1,"c":2}}`, "$.a.b", `{"a":{"c":2}}`},
		{`{"a":[{"t":1,"x":1},{"t":2,"x":2}]}`, "$.a[*].t", `{"a":[{"x":1},{"x":2}]}`},
		{`{"a":[1,2,3]}`, "$.a[1]", `{"a":[1,null,3]}`},
		{`{"a":[1,2,3]}`, "$.a[-1]", `{"a":[1,2,null]}`},
		{`{"a":[1,2,3]}`, "$.a[5]", `{"a":[1,2,3]}`},
		{`{"a":[1,2]}`, "$.a[*]", `{"a":[null,null]}`},
		{`{"a":{"x":1},"b":2}`, "$.*", `{}`},
		{`{"n":1,"a":{"n":2,"b":[{"n":3},{"m":4}]}}`, "$..n", `{"a":{"b":[{},{"m":4}]}}`},
		{`{"a":{"n":{"k":1,"j":2}},"n":{"k":3}}`, "$..n.k", `{"a":{"n":{"j":2}},"n":{}}`},
		{`{"a b":1,"c":2}`, "$['a b']", `{"c":2}`},
		{`{"a":1}`, "$.a.b", `{"a":1}`},
		{`[{"a":1}]`, "$.a", `[{"a":1}]`},
		{`{"a":[[1,2],[3,4]]}`, "$.a[*][0]", `{"a":[[null,2],[null,4]]}`},
	}
	for _, tc := range cases {
		n, err := parseJSON([]byte(tc.doc))
		if err != nil {
			t.Fatal(err)
		}
		p, err := ParseJSONPath(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		n.canonicalize()
		p.remove(&n)
		if got := string(appendJSON(nil, &n)); got != tc.want {
			t.Errorf("remove %s from %s = %s, want %s", tc.path, tc.doc, got, tc.want)
		}
	}
}

func FuzzJSONPath(f *testing.F) {
	for _, s := range []string{"$", "$.a", "$['a b'][0]", "$..x[*]", "$.a[-1].b", `$["q\"q"]`, "$..*", "$[", "$.a[", "$..['x']"} {
		f.Add(s)
	}
	const doc = `{"a":[{"b":1,"x":[1,2]},{"b":2}],"x":{"a":{"b":3}},"a b":[]}`
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseJSONPath(s)
		if err != nil {
			var pe *JSONPathError
			if !errors.As(err, &pe) {
				t.Fatalf("error of type %T", err)
			}
			return
		}
		// The canonical spelling parses back to the same path.
		q, err := ParseJSONPath(p.String())
		if err != nil {
			t.Fatalf("String() %q of %q does not parse: %v", p.String(), s, err)
		}
		if q.String() != p.String() {
			t.Fatalf("round trip %q -> %q -> %q", s, p.String(), q.String())
		}
		// Removing never panics and leaves valid JSON.
		d, err := parseJSON([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		p.remove(&d)
		if _, err := CanonicalJSON(appendJSON(nil, &d)); err != nil {
			t.Fatalf("remove %q left invalid JSON: %v", s, err)
		}
	})
}
