package main

import (
	"maps"
	"strings"
	"testing"
)

func TestParseOTLPHeaders(t *testing.T) {
	cases := []struct {
		in   string
		want map[string]string
		err  string
	}{
		{"", map[string]string{}, ""},
		{"api-key=abc123", map[string]string{"api-key": "abc123"}, ""},
		{" a = 1 , b=2,", map[string]string{"a": "1", "b": "2"}, ""},
		{"Authorization=Bearer%20tok%2Cen", map[string]string{"Authorization": "Bearer tok,en"}, ""},
		{"x=a=b", map[string]string{"x": "a=b"}, ""},
		{"novalue", nil, "entry 1 is not key=value"},
		{"a=1,=secretvalue", nil, "entry 2 is not key=value"},
		{"k=%zzsecretvalue", nil, "the value of k is not percent-encoded"},
	}
	for _, tc := range cases {
		got, err := parseOTLPHeaders(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "secretvalue") {
				t.Errorf("%q: err %v, want %q without the value", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || (got == nil) != (tc.want == nil) || !maps.Equal(got, tc.want) {
			t.Errorf("%q: %v %v, want %v", tc.in, got, err, tc.want)
		}
	}
}
