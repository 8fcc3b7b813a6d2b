package redact_test

import (
	"strings"
	"testing"

	"github.com/cassetteproxy/cassetteproxy/redact"
)

// TestRulesWhereTheScanIsBusy: the second layer runs string by string in
// the JSON scanner's pass, its anchor bytes handled a batch at a time; a
// string with many of them, or with many of the first layer's candidates,
// or a keyword in one string and its secret in another, must lose its
// secrets all the same.
func TestRulesWhereTheScanIsBusy(t *testing.T) {
	r, err := redact.New(redact.Config{})
	if err != nil {
		t.Fatal(err)
	}
	const hf = "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"
	const hex40 = "3f9a1c2e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39"
	cases := []struct {
		name, ct, body string
		secrets        []string
	}{
		{"many anchor bytes before", "application/json",
			`{"note": "` + strings.Repeat("Ax.p_ ", 300) + hf + ` end"}`, []string{hf}},
		{"many anchor bytes around", "application/json",
			`{"note": "` + strings.Repeat("x. ", 100) + hf + strings.Repeat(" p.", 100) + " " + hf[:3] + "ZZ" + hf[5:] + `"}`,
			[]string{hf, hf[:3] + "ZZ" + hf[5:]}},
		{"many first-layer candidates", "application/json",
			`{"note": "` + strings.Repeat("sk-a ", 60) + hf + `"}`, []string{hf}},
		{"keyword in one string, secret in another", "application/json",
			`{"a": "sourcegraph", "b": {"c": "` + hex40 + `"}}`, []string{hex40}},
		{"percent-encoded in a JSON string", "application/json",
			`{"url": "/q?s=_gitlab_session%3Dk7ff2obtcha7zpjkjiub3otk4a1q83vg&x=1"}`, []string{"k7ff2obtcha7zpjkjiub3otk4a1q83vg"}},
		{"encoded twice", "application/json",
			`{"url": "/q?s=_gitlab_session%253Dk7ff2obtcha7zpjkjiub3otk4a1q83vg"}`, []string{"k7ff2obtcha7zpjkjiub3otk4a1q83vg"}},
		{"in a key", "application/json",
			`{"` + hf + `": 1}`, []string{hf}},
		{"in stray text of broken JSON", "application/json",
			`{"a": 1, ` + hf + ` }`, []string{hf}},
		{"SSE text lines as one text", "text/event-stream",
			"event: key\ndata: -----BEGIN PRIVATE KEY-----\ndata: MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSj\ndata: -----END PRIVATE KEY-----\n\ndata: {\"ok\": true}\n\n",
			[]string{"MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSj"}},
		{"SSE JSON and text lines", "text/event-stream",
			"data: {\"a\": \"" + hf + "\"}\n\nevent: x\ndata: see " + hf + "\n\n", []string{hf}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := string(r.BodyForTest([]byte(c.body), c.ct, true))
			for _, s := range c.secrets {
				if strings.Contains(out, s) {
					t.Errorf("%s kept:\n%.400s", s, out)
				}
			}
		})
	}
}

// TestLowEntropy: the table-driven entropy test agrees with the long way.
func TestLowEntropy(t *testing.T) {
	for _, s := range []string{"", "a", "aaaaaaaa", "abcdefgh", "abababab", "AIzaSyD-1234567890abcdefghijklmnopqrstu",
		"00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000001",
		"naïve-東京-token", "abcd\x80efgh"} {
		for _, min := range []float64{0, 1, 2, 2.5, 3, 3.5, 4, 4.5} {
			if got, want := redact.LowEntropyForTest(s, min), redact.ShannonEntropyForTest(s) <= min; got != want {
				t.Errorf("%q at %v: %v, want %v", s, min, got, want)
			}
		}
	}
}
