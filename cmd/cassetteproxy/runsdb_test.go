package main

import (
	"slices"
	"testing"
)

func TestDSNPassword(t *testing.T) {
	tests := []struct{ dsn, want string }{
		{"postgres://u:s3cret-pw@db:5432/runs", "s3cret-pw"},
		{"postgresql://u@db/runs?password=s3cret-pw&sslmode=require", "s3cret-pw"},
		{"postgres://u@db/runs", ""},
		{"", ""},
		{"postgres://u:s3cret-pw@db:bad/runs", ""}, // unparsable: refused before use
	}
	for _, tc := range tests {
		if got := dsnPassword(tc.dsn); got != tc.want {
			t.Errorf("dsnPassword(%q) = %q, want %q", tc.dsn, got, tc.want)
		}
	}
}

func TestWithoutRunsDB(t *testing.T) {
	tests := []struct{ in, want []string }{
		{[]string{"A=1", "CASSETTEPROXY_RUNS_DB=postgres://u:pw@db/x", "B=2"}, []string{"A=1", "B=2"}},
		{[]string{"CASSETTEPROXY_RUNS_DBX=1", "CASSETTEPROXY_DB=x.db"}, []string{"CASSETTEPROXY_RUNS_DBX=1", "CASSETTEPROXY_DB=x.db"}},
		{nil, []string{}},
	}
	for _, tc := range tests {
		in := slices.Clone(tc.in)
		if got := withoutRunsDB(in); !slices.Equal(got, tc.want) {
			t.Errorf("withoutRunsDB(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if !slices.Equal(in, tc.in) {
			t.Errorf("withoutRunsDB changed its input: %q", in)
		}
	}
}
