package runner

import (
	"strings"
	"testing"

	"github.com/cassetteproxy/cassetteproxy/match"
	"github.com/cassetteproxy/cassetteproxy/proxy"
)

// TestProxyCheckBodyNotRecorded: an answer blocked body_not_recorded (its
// body was not kept) fails a strict run with its own class, blocks a
// replay whose command then failed, and orders with the other blocks by
// which came first.
func TestProxyCheckBodyNotRecorded(t *testing.T) {
	noBody := Request{Method: "POST", URL: "https://pay.test/v1/charge", Reason: proxy.ReasonBodyNotRecorded}
	miss := Request{Method: "GET", URL: "https://h.test/x", Reason: proxy.ReasonUnrecorded}
	mut := Request{Method: "POST", URL: "https://h.test/y", Reason: proxy.ReasonMutation}
	for _, tc := range []struct {
		name    string
		mode    match.Mode
		exit    int
		blocked []Request
		want    []string // status/class of each failure, in order
	}{
		{"strict, alone", "strict", 0, []Request{noBody}, []string{"failed/body_not_recorded"}},
		{"strict, first", "strict", 0, []Request{noBody, miss, mut}, []string{"failed/body_not_recorded", "failed/unrecorded_request", "failed/mutation_blocked"}},
		{"strict, after a miss", "strict", 0, []Request{miss, noBody}, []string{"failed/unrecorded_request", "failed/body_not_recorded"}},
		{"strict, after a mutation", "strict", 0, []Request{mut, noBody, miss}, []string{"failed/mutation_blocked", "failed/body_not_recorded", "failed/unrecorded_request"}},
		{"replay, command fine", "replay", 0, []Request{noBody}, nil},
		{"replay, command failed", "replay", 1, []Request{noBody, miss}, []string{"blocked/body_not_recorded"}},
		{"live, command failed after a miss", "live", 1, []Request{miss, noBody}, []string{"blocked/unrecorded_request"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fails := ProxyCheck{}.Check(&Evidence{Mode: tc.mode, ExitCode: tc.exit, Blocked: tc.blocked})
			var got []string
			for _, f := range fails {
				got = append(got, f.Status+"/"+f.Class)
				if f.Class == ClassBodyNotRecorded && !strings.Contains(f.Reason, "pay.test/v1/charge (body_not_recorded)") {
					t.Errorf("reason does not list the request: %s", f.Reason)
				}
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("failures %v, want %v", got, tc.want)
			}
		})
	}
}
