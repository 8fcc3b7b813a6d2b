package yamlerr

import (
	"errors"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestError(t *testing.T) {
	var v any
	yamlErr := yaml.Unmarshal([]byte("a: [1\nb: 2\n"), &v)
	if yamlErr == nil {
		t.Fatal("want a YAML error")
	}
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"file and line", At("rules.yaml", 7, "bad %s", "path"), "rules.yaml:7: bad path"},
		{"line only", At("", 7, "bad"), "line 7: bad"},
		{"file only", At("rules.yaml", 0, "bad"), "rules.yaml: bad"},
		{"neither", At("", 0, "bad"), "bad"},
		{"named afterwards", InFile(At("", 3, "bad"), "r.yaml"), "r.yaml:3: bad"},
		{"another error kept", InFile(errors.New("plain"), "r.yaml"), "plain"},
		{"syntax", Syntax("r.yaml", errors.New("yaml: line 2: did not find expected ',' or ']'")), "r.yaml:2: did not find expected ',' or ']'"},
		{"syntax without a line", Syntax("", errors.New("yaml: control characters are not allowed")), "control characters are not allowed"},
	}
	for _, c := range cases {
		if got := c.err.Error(); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
	if e := Syntax("", yamlErr); e.Line == 0 {
		t.Errorf("yaml's own error %q: no line", yamlErr)
	}
}
