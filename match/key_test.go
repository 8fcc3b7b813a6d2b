package match

import (
	"github.com/cassetteproxy/cassetteproxy/store"
	"regexp"
	"testing"
)

const (
	ctJSON = "application/json"
	ctForm = "application/x-www-form-urlencoded"
	ctBin  = "application/octet-stream"
)

func TestKeyEqualities(t *testing.T) {
	const chatTS1 = `{"model":"m","messages":[{"role":"user","content":"hi","timestamp":"2026-11-27T01:59:56Z"}]}`
	const chatTS2 = `{"model":"m","messages":[{"role":"user","content":"hi","timestamp":"2026-11-27T02:03:11Z"}]}`
	const ignoreTS = `
rules:
  - host: api.example.com
    ignore_body_paths: ["$.messages[*].timestamp"]
`
	const ignoreTSOtherHost = `
rules:
  - host: other.example.com
    ignore_body_paths: ["$.messages[*].timestamp"]
`
	cases := []struct {
		name  string
		rules string
		a, b  *store.Request
		equal bool
	}{
		// JSON bodies
		{"json key order", "", rq("POST", "https://api.example.com/x", ctJSON, `{"a":1,"b":{"d":2,"c":3}}`), rq("POST", "https://api.example.com/x", ctJSON, `{"b":{"c":3,"d":2},"a":1}`), true},
		{"json whitespace", "", rq("POST", "https://api.example.com/x", ctJSON, "{ \"a\" : [1, 2,\n 3] }\n"), rq("POST", "https://api.example.com/x", ctJSON, `{"a":[1,2,3]}`), true},
		{"json value differs", "", rq("POST", "https://api.example.com/x", ctJSON, `{"a":1}`), rq("POST", "https://api.example.com/x", ctJSON, `{"a":2}`), false},
		{"json array order matters", "", rq("POST", "https://api.example.com/x", ctJSON, `[1,2]`), rq("POST", "https://api.example.com/x", ctJSON, `[2,1]`), false},
		{"json number literal kept", "", rq("POST", "https://api.example.com/x", ctJSON, `{"a":1.0}`), rq("POST", "https://api.example.com/x", ctJSON, `{"a":1}`), false},
		{"json string escapes decoded", "", rq("POST", "https://api.example.com/x", ctJSON, `{"a":"\u0041\/"}`), rq("POST", "https://api.example.com/x", ctJSON, `{"a":"A/"}`), true},
		{"json duplicate key: last wins", "", rq("POST", "https://api.example.com/x", ctJSON, `{"a":1,"a":2}`), rq("POST", "https://api.example.com/x", ctJSON, `{"a":2}`), true},
		{"json without content type", "", rq("POST", "https://api.example.com/x", "text/plain", `{"a":1, "b":2}`), rq("POST", "https://api.example.com/x", "", `{"b":2,"a":1}`), true},
		{"json string vs number", "", rq("POST", "https://api.example.com/x", ctJSON, `{"a":"1"}`), rq("POST", "https://api.example.com/x", ctJSON, `{"a":1}`), false},
		{"invalid json hashed as bytes", "", rq("POST", "https://api.example.com/x", ctJSON, `{"a":1,}`), rq("POST", "https://api.example.com/x", ctJSON, `{"a": 1,}`), false},
		// URL
		{"query order", "", rq("GET", "https://api.example.com/x?b=2&a=1", "", ""), rq("GET", "https://api.example.com/x?a=1&b=2", "", ""), true},
		{"query repeated values sorted", "", rq("GET", "https://api.example.com/x?a=2&a=1", "", ""), rq("GET", "https://api.example.com/x?a=1&a=2", "", ""), true},
		{"query escapes decoded", "", rq("GET", "https://api.example.com/x?q=a%20b", "", ""), rq("GET", "https://api.example.com/x?q=a+b", "", ""), true},
		{"query value differs", "", rq("GET", "https://api.example.com/x?a=1", "", ""), rq("GET", "https://api.example.com/x?a=2", "", ""), false},
		{"query extra param", "", rq("GET", "https://api.example.com/x?a=1", "", ""), rq("GET", "https://api.example.com/x?a=1&b=2", "", ""), false},
		{"empty query", "", rq("GET", "https://api.example.com/x?", "", ""), rq("GET", "https://api.example.com/x", "", ""), true},
		{"https default port", "", rq("GET", "https://api.example.com:443/x", "", ""), rq("GET", "https://api.example.com/x", "", ""), true},
		{"http default port", "", rq("GET", "http://api.example.com:80/x", "", ""), rq("GET", "http://api.example.com/x", "", ""), true},
		{"non-default port", "", rq("GET", "https://api.example.com:8443/x", "", ""), rq("GET", "https://api.example.com/x", "", ""), false},
		{"443 is not http's default", "", rq("GET", "http://api.example.com:443/x", "", ""), rq("GET", "http://api.example.com/x", "", ""), false},
		{"scheme matters", "", rq("GET", "http://api.example.com/x", "", ""), rq("GET", "https://api.example.com/x", "", ""), false},
		{"host case", "", rq("GET", "HTTPS://API.Example.COM/x", "", ""), rq("GET", "https://api.example.com/x", "", ""), true},
		{"path case matters", "", rq("GET", "https://api.example.com/X", "", ""), rq("GET", "https://api.example.com/x", "", ""), false},
		{"path unreserved escape", "", rq("GET", "https://api.example.com/a%7eb", "", ""), rq("GET", "https://api.example.com/a~b", "", ""), true},
		{"path %2F is not /", "", rq("GET", "https://api.example.com/a%2Fb", "", ""), rq("GET", "https://api.example.com/a/b", "", ""), false},
		{"empty path is /", "", rq("GET", "https://api.example.com", "", ""), rq("GET", "https://api.example.com/", "", ""), true},
		{"userinfo and fragment dropped", "", rq("GET", "https://u:p@api.example.com/x#frag", "", ""), rq("GET", "https://api.example.com/x", "", ""), true},
		{"ipv6 default port", "", rq("GET", "https://[::1]:443/x", "", ""), rq("GET", "https://[::1]/x", "", ""), true},
		{"method case", "", rq("post", "https://api.example.com/x", "", ""), rq("POST", "https://api.example.com/x", "", ""), true},
		{"method differs", "", rq("PUT", "https://api.example.com/x", "", ""), rq("POST", "https://api.example.com/x", "", ""), false},
		// forms and bytes
		{"form sorted", "", rq("POST", "https://api.example.com/x", ctForm, "b=2&a=1&a=0"), rq("POST", "https://api.example.com/x", ctForm+"; charset=utf-8", "a=0&a=1&b=2"), true},
		{"form value differs", "", rq("POST", "https://api.example.com/x", ctForm, "a=1&b=2"), rq("POST", "https://api.example.com/x", ctForm, "a=1&b=3"), false},
		{"binary body same", "", rq("POST", "https://api.example.com/x", ctBin, "\x00\x01\xff"), rq("POST", "https://api.example.com/x", ctBin, "\x00\x01\xff"), true},
		{"binary body differs", "", rq("POST", "https://api.example.com/x", ctBin, "\x00\x01\xff"), rq("POST", "https://api.example.com/x", ctBin, "\x00\x01\xfe"), false},
		{"text body is bytes", "", rq("POST", "https://api.example.com/x", "text/plain", "b a"), rq("POST", "https://api.example.com/x", "text/plain", "a b"), false},
		{"no body vs empty body", "", rq("POST", "https://api.example.com/x", "", ""), &store.Request{Method: "POST", URL: "https://api.example.com/x", Body: []byte{}}, true},
		// JSON-RPC
		{"jsonrpc id ignored", "", rq("POST", "http://127.0.0.1:38100/mcp", ctJSON, `{"method":"tools/list","jsonrpc":"2.0","id":1}`), rq("POST", "http://127.0.0.1:38100/mcp", ctJSON, `{"jsonrpc":"2.0","id":"abc","method":"tools/list"}`), true},
		{"jsonrpc method still matters", "", rq("POST", "http://127.0.0.1:38100/mcp", ctJSON, `{"method":"tools/list","jsonrpc":"2.0","id":1}`), rq("POST", "http://127.0.0.1:38100/mcp", ctJSON, `{"method":"prompts/list","jsonrpc":"2.0","id":1}`), false},
		{"jsonrpc batch ids ignored", "", rq("POST", "http://h/mcp", ctJSON, `[{"jsonrpc":"2.0","id":1,"method":"a"},{"jsonrpc":"2.0","id":2,"method":"b"}]`), rq("POST", "http://h/mcp", ctJSON, `[{"jsonrpc":"2.0","id":7,"method":"a"},{"jsonrpc":"2.0","id":8,"method":"b"}]`), true},
		{"id of non-jsonrpc body matters", "", rq("POST", "http://h/x", ctJSON, `{"id":1}`), rq("POST", "http://h/x", ctJSON, `{"id":2}`), false},
		{"nested jsonrpc-looking id matters", "", rq("POST", "http://h/x", ctJSON, `{"jsonrpc":"2.0","params":{"id":1}}`), rq("POST", "http://h/x", ctJSON, `{"jsonrpc":"2.0","params":{"id":2}}`), false},
		// redaction
		{"fingerprint stripped in json", "", rq("POST", "https://api.example.com/x", ctJSON, `{"key":"[REDACTED:api_key:ab12ef]"}`), rq("POST", "https://api.example.com/x", ctJSON, `{"key":"[REDACTED:api_key:99cd00]"}`), true},
		{"fingerprint stripped vs none", "", rq("POST", "https://api.example.com/x", ctJSON, `{"key":"Bearer [REDACTED:api_key:ab12ef]"}`), rq("POST", "https://api.example.com/x", ctJSON, `{"key":"Bearer [REDACTED:api_key]"}`), true},
		{"redaction kind matters", "", rq("POST", "https://api.example.com/x", ctJSON, `{"key":"[REDACTED:api_key:ab12ef]"}`), rq("POST", "https://api.example.com/x", ctJSON, `{"key":"[REDACTED:password:ab12ef]"}`), false},
		{"fingerprint stripped in query", "", rq("GET", "https://api.example.com/x?token=[REDACTED:token:abcd]", "", ""), rq("GET", "https://api.example.com/x?token=%5BREDACTED%3Atoken%3A9999%5D", "", ""), true},
		{"fingerprint stripped in path", "", rq("GET", "https://api.example.com/keys/%5bREDACTED%3atoken%3aabcd%5d/x", "", ""), rq("GET", "https://api.example.com/keys/%5BREDACTED%3Atoken%3A0123%5D/x", "", ""), true},
		{"fingerprint stripped in form", "", rq("POST", "https://api.example.com/x", ctForm, "k=%5BREDACTED%3Atoken%3Aabcd%5D"), rq("POST", "https://api.example.com/x", ctForm, "k=[REDACTED:token:ffff]"), true},
		{"fingerprint stripped in bytes", "", rq("POST", "https://api.example.com/x", "text/plain", "key=[REDACTED:k:01] end"), rq("POST", "https://api.example.com/x", "text/plain", "key=[REDACTED:k:02] end"), true},
		{"not a marker: not stripped", "", rq("POST", "https://api.example.com/x", "text/plain", "[REDACTED:k:zz]"), rq("POST", "https://api.example.com/x", "text/plain", "[REDACTED:k:yy]"), false},
		// rules: bodies
		{"changing timestamp, no rule", "", rq("POST", "https://api.example.com/v1/chat", ctJSON, chatTS1), rq("POST", "https://api.example.com/v1/chat", ctJSON, chatTS2), false},
		{"changing timestamp, ignore_body_paths", ignoreTS, rq("POST", "https://api.example.com/v1/chat", ctJSON, chatTS1), rq("POST", "https://api.example.com/v1/chat", ctJSON, chatTS2), true},
		{"ignore_body_paths: other field still keyed", ignoreTS, rq("POST", "https://api.example.com/v1/chat", ctJSON, chatTS1), rq("POST", "https://api.example.com/v1/chat", ctJSON, `{"model":"m","messages":[{"role":"user","content":"bye","timestamp":"x"}]}`), false},
		{"ignore_body_paths: absent field", ignoreTS, rq("POST", "https://api.example.com/v1/chat", ctJSON, chatTS1), rq("POST", "https://api.example.com/v1/chat", ctJSON, `{"model":"m","messages":[{"role":"user","content":"hi"}]}`), true},
		{"ignore_body_paths: rule for another host", ignoreTSOtherHost, rq("POST", "https://api.example.com/v1/chat", ctJSON, chatTS1), rq("POST", "https://api.example.com/v1/chat", ctJSON, chatTS2), false},
		{"ignore_body_paths descendant", "rules: [{ignore_body_paths: ['$..nonce']}]", rq("POST", "https://h/x", ctJSON, `{"a":{"nonce":1,"b":[{"nonce":2}]}}`), rq("POST", "https://h/x", ctJSON, `{"a":{"nonce":3,"b":[{"nonce":4}]}}`), true},
		{"ignore_body_paths index keeps places", "rules: [{ignore_body_paths: ['$.a[0]']}]", rq("POST", "https://h/x", ctJSON, `{"a":[1,2]}`), rq("POST", "https://h/x", ctJSON, `{"a":[9,2]}`), true},
		{"ignore_body_paths index: others keyed", "rules: [{ignore_body_paths: ['$.a[0]']}]", rq("POST", "https://h/x", ctJSON, `{"a":[1,2]}`), rq("POST", "https://h/x", ctJSON, `{"a":[1,3]}`), false},
		{"ignore_body_paths on a form field", "rules: [{ignore_body_paths: ['$.nonce']}]", rq("POST", "https://h/x", ctForm, "a=1&nonce=123"), rq("POST", "https://h/x", ctForm, "nonce=456&a=1"), true},
		{"body: ignore", "rules: [{body: ignore}]", rq("POST", "https://h/x", ctJSON, `{"a":1}`), rq("POST", "https://h/x", ctJSON, `{"a":2}`), true},
		{"body: exact", "rules: [{body: exact}]", rq("POST", "https://h/x", ctJSON, `{"a":1,"b":2}`), rq("POST", "https://h/x", ctJSON, `{"b":2,"a":1}`), false},
		{"body: json forces json", "rules: [{body: json}]", rq("POST", "https://h/x", "text/plain", `"a"`), rq("POST", "https://h/x", "text/plain", ` "a" `), true},
		{"body rule: first match wins", "rules: [{path: /x, body: exact}, {body: ignore}]", rq("POST", "https://h/x", "", "a"), rq("POST", "https://h/x", "", "b"), false},
		// rules: query
		{"changing query, no rule", "", rq("GET", "https://api.example.com/x?ts=1&q=a", "", ""), rq("GET", "https://api.example.com/x?q=a&ts=2", "", ""), false},
		{"changing query, ignore_query", "rules: [{ignore_query: [ts, 'utm_*']}]", rq("GET", "https://api.example.com/x?ts=1&q=a&utm_source=x", "", ""), rq("GET", "https://api.example.com/x?q=a&ts=2", "", ""), true},
		{"ignore_query: other param still keyed", "rules: [{ignore_query: [ts]}]", rq("GET", "https://api.example.com/x?ts=1&q=a", "", ""), rq("GET", "https://api.example.com/x?q=b&ts=1", "", ""), false},
		{"ignore_query: path glob", "rules: [{path: '/v1/*', ignore_query: [ts]}]", rq("GET", "https://api.example.com/v1/a/b?ts=1", "", ""), rq("GET", "https://api.example.com/v1/a/b?ts=2", "", ""), true},
		{"ignore_query: path glob miss", "rules: [{path: '/v1/*', ignore_query: [ts]}]", rq("GET", "https://api.example.com/v2/a?ts=1", "", ""), rq("GET", "https://api.example.com/v2/a?ts=2", "", ""), false},
		{"ignore_query: host glob", "rules: [{host: '*.example.com', ignore_query: [ts]}]", rq("GET", "https://API.eu.example.com/?ts=1", "", ""), rq("GET", "https://api.eu.example.com/?ts=2", "", ""), true},
		// rules: headers
		{"headers not keyed by default", "", rq("GET", "https://h/x", "", "", "X-Tenant", "a"), rq("GET", "https://h/x", "", "", "X-Tenant", "b"), true},
		{"match_headers", "rules: [{match_headers: [X-Tenant]}]", rq("GET", "https://h/x", "", "", "X-Tenant", "a"), rq("GET", "https://h/x", "", "", "x-tenant", "b"), false},
		{"match_headers same value", "rules: [{match_headers: [x-tenant]}]", rq("GET", "https://h/x", "", "", "X-Tenant", "a", "X-Other", "1"), rq("GET", "https://h/x", "", "", "X-Tenant", "a", "X-Other", "2"), true},
		{"match_headers missing header", "rules: [{match_headers: [X-Tenant]}]", rq("GET", "https://h/x", "", "", "X-Tenant", "a"), rq("GET", "https://h/x", "", ""), false},
		{"match_headers * never keys defaults", "rules: [{match_headers: ['*']}]",
			rq("GET", "https://h/x", "", "", "User-Agent", "a", "Date", "d1", "traceparent", "00-1", "X-Stainless-Os", "Linux", "X-B3-TraceId", "1", "Idempotency-Key", "k1", "Mcp-Session-Id", "s1", "Content-Length", "3"),
			rq("GET", "https://h/x", "", "", "User-Agent", "b", "Date", "d2", "traceparent", "00-2", "X-Stainless-Os", "MacOS", "X-B3-TraceId", "2", "Idempotency-Key", "k2", "Mcp-Session-Id", "s2", "Content-Length", "4"), true},
		{"match_headers * keys others", "rules: [{match_headers: ['*']}]", rq("GET", "https://h/x", "", "", "Accept", "a"), rq("GET", "https://h/x", "", "", "Accept", "b"), false},
		{"ignore_headers beats match_headers", "rules: [{match_headers: ['*']}, {ignore_headers: [accept]}]", rq("GET", "https://h/x", "", "", "Accept", "a"), rq("GET", "https://h/x", "", "", "Accept", "b"), true},
		{"match_headers fingerprint stripped", "rules: [{match_headers: [Authorization]}]", rq("GET", "https://h/x", "", "", "Authorization", "Bearer [REDACTED:bearer:aa11]"), rq("GET", "https://h/x", "", "", "Authorization", "Bearer [REDACTED:bearer:bb22]"), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var r *Rules
			if tc.rules != "" {
				r = mustRules(t, tc.rules)
			}
			ka, kb := r.Key(tc.a), r.Key(tc.b)
			if (ka == kb) != tc.equal {
				t.Errorf("keys equal = %v, want %v\n a: %s %s %q\n b: %s %s %q", ka == kb, tc.equal, tc.a.Method, tc.a.URL, tc.a.Body, tc.b.Method, tc.b.URL, tc.b.Body)
			}
		})
	}
}

var hexKey = regexp.MustCompile(`^[0-9a-f]{64}$`)

func TestKeyShapeAndStability(t *testing.T) {
	r := DefaultRules()
	req := rq("POST", "https://api.example.com/x?a=1", ctJSON, `{"a":1}`)
	k := r.Key(req)
	if !hexKey.MatchString(k) {
		t.Fatalf("key %q is not hex SHA-256", k)
	}
	var nilRules *Rules
	if nilRules.Key(req) != k || (&Rules{}).Key(req) != k {
		t.Fatal("nil and zero Rules must key like DefaultRules")
	}
	if string(req.Body) != `{"a":1}` || req.URL != "https://api.example.com/x?a=1" {
		t.Fatal("Key modified the request")
	}
}

// The two MCP captures are the same logical session recorded twice: the
// session id, SSE event ids and dates differ, the requests must not.
func TestKeyMCPSessionsPairwise(t *testing.T) {
	s1 := loadCapture(t, "mcp-session-1.json")
	s2 := loadCapture(t, "mcp-session-2.json")
	if len(s1) != len(s2) || len(s1) != 7 {
		t.Fatalf("sessions have %d and %d exchanges, want 7", len(s1), len(s2))
	}
	for _, rulesYAML := range []string{"", "rules: [{match_headers: ['*']}]"} {
		var r *Rules
		if rulesYAML != "" {
			r = mustRules(t, rulesYAML)
		}
		seen := map[string]int{}
		for i := range s1 {
			k1, k2 := r.Key(&s1[i].Request), r.Key(&s2[i].Request)
			if k1 != k2 {
				t.Errorf("rules %q: exchange %d (%s %s): keys differ", rulesYAML, i, s1[i].Request.Method, s1[i].Request.Body)
			}
			if j, dup := seen[k1]; dup {
				t.Errorf("rules %q: exchanges %d and %d share a key", rulesYAML, j, i)
			}
			seen[k1] = i
		}
	}
	// And the headers differ between the sessions, so this is not vacuous.
	if s1[1].Request.Header.Get("Mcp-Session-Id") == s2[1].Request.Header.Get("Mcp-Session-Id") {
		t.Fatal("expected different mcp-session-id headers in the two captures")
	}
}

func TestStripFingerprints(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", ""},
		{"plain", "plain"},
		{"[REDACTED:api_key]", "[REDACTED:api_key]"},
		{"[REDACTED:api_key:0aF9]", "[REDACTED:api_key]"},
		{"a [REDACTED:x:01] b [REDACTED:y.z-1:ff] c", "a [REDACTED:x] b [REDACTED:y.z-1] c"},
		{"[REDACTED:x:0g]", "[REDACTED:x:0g]"},
		{"[REDACTED:x:01", "[REDACTED:x:01"},
		{"[REDACTED::01]", "[REDACTED::01]"},
		{"[REDACTED:[REDACTED:k:01]", "[REDACTED:[REDACTED:k]"},
		{"%5BREDACTED%3Atoken%3Aabcd%5D", "%5BREDACTED%3Atoken%5D"},
		{"%5bREDACTED%3atoken%3aabcd%5d", "%5bREDACTED%3atoken%5d"},
	}
	for _, tc := range cases {
		if got := StripFingerprints(tc.in); got != tc.want {
			t.Errorf("StripFingerprints(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzKey(f *testing.F) {
	f.Add("POST", "https://api.example.com:443/v1/x?b=2&a=1#f", "application/json", []byte(`{"jsonrpc":"2.0","id":1,"method":"m"}`))
	f.Add("GET", "http://[::1]:80/%7e?q=%zz&x", "", []byte(nil))
	f.Add("PUT", "/relative?token=[REDACTED:t:ab]", ctForm, []byte("a=%zz&b=[REDACTED:k:01]"))
	r := mustRules(f, "rules: [{match_headers: ['*'], ignore_query: ['a*'], ignore_body_paths: ['$..id', '$.a[-1]']}]")
	f.Fuzz(func(t *testing.T, method, url, ct string, body []byte) {
		req := rq(method, url, ct, string(body), "X-A", url)
		k1 := r.Key(req)
		if k1 != r.Key(req) || !hexKey.MatchString(k1) {
			t.Fatal("unstable or malformed key")
		}
		_ = DefaultRules().Key(req)
		ix := NewIndex(r, []store.Interaction{{Request: *req}})
		if _, st, _ := ix.Next(req); st != Found {
			t.Fatalf("a request does not find itself: %v", st)
		}
		if c, _ := ix.Closest(req); c == nil || len(c.Differences) != 0 {
			t.Fatalf("closest to itself: %+v", c)
		}
	})
}

// TestKeyGolden pins keys as earlier versions computed them: stored
// cassettes carry their keys, so a faster way to compute one must give the
// same bytes.
func TestKeyGolden(t *testing.T) {
	r := mustRules(t, "rules:\n  - host: api.example.com\n    match_headers: [\"x-tenant\"]\n")
	cases := []struct {
		method, url, contentType, body string
		hdr                            []string
		key                            string
	}{
		{"GET", "http://tool.test/v1/items/1", "", "", nil, "de46e4620858297e81cbb94117a9c3de2814772f8a148d163235564e83a77723"},
		{"GET", "https://tool.test/v1/items?page=2&a=1", "", "", nil, "fad078a2165e9a2713e79639fe19d995aec7cc4d28f386af794f55e536b2d5f9"},
		{"POST", "https://api.example.com/v1/chat", ctJSON, `{"model":"m","messages":[]}`, []string{"X-Tenant", "t1"}, "e217b596aa341fea1f45c723252007a7553783de6b5adcb9137df9bd3b2be7c9"},
		{"POST", "https://api.example.com/v1/chat?stream=true", ctJSON, `{"model":"m"}`, nil, "5ed342105a775fb6a36b39eb5402d11740952563fcd320ebe6c3ed4591302e95"},
	}
	for _, tc := range cases {
		if got := r.Key(rq(tc.method, tc.url, tc.contentType, tc.body, tc.hdr...)); got != tc.key {
			t.Errorf("%s %s: key %s, want %s", tc.method, tc.url, got, tc.key)
		}
	}
}
