package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestAbsPath: relative paths are made absolute against the current
// folder (globs stay globs), before anything reaches a child.
func TestAbsPath(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ in, want string }{
		{"", ""},
		{"h", filepath.Join(wd, "h")},
		{"./cassettes.db", filepath.Join(wd, "cassettes.db")},
		{"../x/state.txt", filepath.Join(filepath.Dir(wd), "x", "state.txt")},
		{"out/*.json", filepath.Join(wd, "out", "*.json")},
		{"/abs/ca-home", "/abs/ca-home"},
	}
	for _, c := range cases {
		if got := absPath(c.in); got != c.want {
			t.Errorf("absPath(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if got := absPaths([]string{"a", "/b"}); got[0] != filepath.Join(wd, "a") || got[1] != "/b" {
		t.Errorf("absPaths: %q", got)
	}
}
