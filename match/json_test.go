package match

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestCanonicalJSON(t *testing.T) {
	cases := []struct{ in, want string }{
		{`{"b":1,"a":2}`, `{"a":2,"b":1}`},
		{" { \"a\" : [ 1 , { \"z\":null, \"y\" : true } ] , \"b\":false }\n", `{"a":[1,{"y":true,"z":null}],"b":false}`},
		{`1.0`, `1.0`},
		{`[1E5, -0, 0.5e-3]`, `[1E5,-0,0.5e-3]`},
		{`"\u0041\/\u00e9\n\u0001"`, `"A/é\n\u0001"`},
		{`"\ud83d\ude00"`, `"😀"`},
		{`"\ud800"`, `"` + "\uFFFD" + `"`},
		{"\"\xff\"", `"` + "\uFFFD" + `"`},
		{`{"a":1,"a":2}`, `{"a":2}`},
		{`{"\u0062":1,"a":2}`, `{"a":2,"b":1}`},
		{`{}`, `{}`},
		{`[]`, `[]`},
		{`"<&>"`, `"<&>"`},
	}
	for _, tc := range cases {
		got, err := CanonicalJSON([]byte(tc.in))
		if err != nil {
			t.Errorf("CanonicalJSON(%q): %v", tc.in, err)
			continue
		}
		if string(got) != tc.want {
			t.Errorf("CanonicalJSON(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestCanonicalJSONRejects(t *testing.T) {
	for _, in := range []string{``, ` `, `{`, `[1,]`, `{"a":1,}`, `01`, `1.`, `.5`, `-`, `1e`, `tru`, `nul`, `"a`, "\"a\nb\"", `"\x"`, `"\u12"`, `{"a" 1}`, `{1:2}`, `[1 2]`, `1 2`, "\ufeff{}", `NaN`, `'a'`} {
		if out, err := CanonicalJSON([]byte(in)); err == nil {
			t.Errorf("CanonicalJSON(%q) = %s, want an error", in, out)
		}
		if json.Valid([]byte(in)) {
			t.Errorf("test case %q is valid JSON per encoding/json", in)
		}
	}
	deep := strings.Repeat("[", maxJSONDepth+1) + strings.Repeat("]", maxJSONDepth+1)
	if _, err := CanonicalJSON([]byte(deep)); err == nil {
		t.Error("nesting beyond the limit accepted")
	}
	ok := strings.Repeat("[", 100) + strings.Repeat("]", 100)
	if _, err := CanonicalJSON([]byte(ok)); err != nil {
		t.Errorf("nesting of 100: %v", err)
	}
}

func TestJSONOffsets(t *testing.T) {
	src := []byte(` {"a" : [1, "x"], "b":{"c":null}} `)
	n, err := parseJSON(src)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(src[n.start:n.end]); got != `{"a" : [1, "x"], "b":{"c":null}}` {
		t.Errorf("object span = %q", got)
	}
	if got := string(src[n.mem[0].val.start:n.mem[0].val.end]); got != `[1, "x"]` {
		t.Errorf("a span = %q", got)
	}
	if got := string(src[n.mem[0].val.arr[1].start:n.mem[0].val.arr[1].end]); got != `"x"` {
		t.Errorf("a[1] span = %q", got)
	}
}

func FuzzCanonicalJSON(f *testing.F) {
	for _, s := range []string{
		`{"b":1,"a":[1,2,{"c":"d"}]}`, `[]`, `{}`, `"\u00e9\ud83d\ude00"`, `1e10`, `-0.0`, `null`, `{"a":1,"a":2}`,
		`{"method":"tools/list","jsonrpc":"2.0","id":1}`, "\"\xff\"", `"\ud800"`, `[1,]`, ` {"a" : true } `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := CanonicalJSON(b)
		if valid := json.Valid(b); valid != (err == nil) {
			t.Fatalf("CanonicalJSON err = %v but json.Valid = %v for %q", err, valid, b)
		}
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("canonical output %q of %q is not valid JSON", out, b)
		}
		again, err := CanonicalJSON(out)
		if err != nil {
			t.Fatalf("canonical output %q does not parse: %v", out, err)
		}
		if string(again) != string(out) {
			t.Fatalf("not idempotent: %q -> %q -> %q", b, out, again)
		}
		// Same meaning as far as encoding/json can tell.
		var x, y any
		if json.Unmarshal(b, &x) == nil && json.Unmarshal(out, &y) == nil {
			xb, _ := json.Marshal(x)
			yb, _ := json.Marshal(y)
			if string(xb) != string(yb) {
				t.Fatalf("meaning changed: %q -> %q", b, out)
			}
		}
	})
}
