package redact

import (
	"bytes"
	"math/rand"
	"strings"

	"github.com/cassetteproxy/cassetteproxy/store"
)

// Hooks for the external test package (equivalence_test.go).

// BodyForTest is r.body: one decoded body scrubbed by its Content-Type.
func (r *Redactor) BodyForTest(b []byte, ct string, fp bool) []byte { return r.body(b, ct, fp) }

// SniffForTest is the form scrubBody gives a body without a Content-Type,
// as a Content-Type that forces it.
func SniffForTest(b []byte) string {
	switch {
	case startsJSON(b, 0, len(b)) && validJSON(b):
		return "application/json"
	case looksLikeForm(b):
		return "application/x-www-form-urlencoded"
	}
	return "text/plain"
}

// EquivInteractions is every interaction the table tests build: each sample
// in each of its placements.
func EquivInteractions() []*store.Interaction {
	var out []*store.Interaction
	// Auth scheme words in any case, Unicode folding included.
	for _, v := range []string{"BEARER abcdefgh12345678", "To\u212Aen abc123xyz", "NEGOT\u0130ATE abc", "bearer\t tok-1", "Basic",
		"Bearer [REDACTED:bearer]", "[REDACTED:header]", "aws4-hmac-sha256 Credential=AKIA/x, Signature=ff", "Digest  ", "x y z",
		"AWS4-HMAC-SHA256-AND-A-MUCH-LONGER-WORD zz", "\u212A\u212A\u212A\u212A\u212A\u212A\u212A\u212A\u212A tok"} {
		in := baseInteraction()
		in.Request.Header["Authorization"] = []string{v}
		in.Request.Header["X-Note"] = []string{"Authorization: " + v}
		in.Response.Header["Set-Cookie"] = []string{v, ""}
		out = append(out, in)
	}
	for _, s := range samples {
		for _, p := range placementsFor(s) {
			if in := p.build(s); in != nil {
				out = append(out, in)
			}
		}
	}
	return out
}

// EquivTexts is free text the tests feed to String and to bodies: the
// inputs of the URL, quoted-field, false-positive and pathological tests,
// the samples themselves, and the benchmark bodies.
func EquivTexts() []string {
	texts := []string{
		"https://alice:hunter2@db.example.com:5432/app?sslmode=require",
		"https://x.example/v1/keys/sk-abcdefgh12345678/usage?ok=1",
		"https://x.example/cb#access_token=abc.def&state=1",
		"https://x.example/?Signature=abc%2Bdef&X-Amz-Signature=00ff&a=b",
		"https://x.example/?q=Bearer+abcdefgh12345",
		"/v1/chat?apikey=xyz",
		"https://u:p@ss@h.example/",
		"https://ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8@github.com/o/r.git",
		"https://eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc:pw1@h.example/",
		"https://x.example/?user[password]=pw1",
		`log: {"password": "hunter2", "user": "bob"}`,
		`{"pin":1, "secret": 12345}`,
		`{"token": "cut off at the end`,
		`"{\"api_key\":\"k1\\\"x\",\"n\":2}"`,
		`"{\"args\":\"{\\\"token\\\":\\\"deep1\\\"}\"}"`,
		`curl -H "Authorization: Bearer abcdefgh12345678" u`,
		"level=info token=abc123 msg=ok",
		`"see https:\/\/x.io\/?a=1\u0026token=zz9 now"`,
		`"line\nsk-abcdefgh12345678"`,
		`"db":"mysql:\/\/root:toor99@10.0.0.1\/x"`,
		"-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg4LVWM9nuwNSk\n",
		`curl -H "Authorization: Token abc123xyz" -H 'X-Api-Key: k-1234567' https://x`,
		"db:\n  password: hunter2\n  user: bob\nmax_tokens: 100\npassword: required\nCookie: a=1; b=2\n",
		`"{\"headers\":[\"Cookie: sid=abc; t=1\"]}"`,
		"`password=hunter2` and (token=abc123)",
		"clone https://u:p@ss@h.example/ and mail a@b.example",
		"see https://eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc:pw1@h.example/",
		`{ "zeta": 1,  "password" : "hunter2x",
  "alpha": {"token": 12345, "b": [ "sk-abcdefgh12345678", 2.5e3 ], "c": "caf\u00e9 \"q\" \/"},
  "key": {"type": "string", "description": "JSON Schema property named key"},
  "arr": ["keep", {"api_key": ["one", "two", ["three"]], "n": null}],
  "aa": "x" }`,
		`{"customer":{"email":"alice@example.com","ssn":"123-45-6789","cardNumber":"4242424242424242"},` +
			`"other":{"email":"bob@example.com"},"orders":[{"note":"leave at door","id":7},{"note":"ring twice"}],` +
			`"deep":{"x":[{"pin":1234}]},"blob":{"a":[1,2,{"b":"c"}]},"memo":"acct-87654321 ok"}`,
		"acct-12345678 session=deadbeef00 internal-abc INTERNAL-xyz",
		`data: {"delta":{"content":"here sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z there"}}` + "\n\n" + `data: {"delta":{"password":"pw-1234567"}}` + "\n\n" + "data: [DONE]\n\n",
		"\xff\xd8\xff\xe0 sk-abcdefgh12345678 password=hunter2 \x00\x01",
		`{"password":"[REDACTED:field]","x":"[REDACTED:openai_key:0123abcd]","u":"https://a:%5BREDACTED%3Aurl_password%5D@h/"}`,
		// a span that ends right where the next rule starts
		"sk-secret12345678=hunter2 and sk-apikey12345678: hunter22 and ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8@x",
		`{"k":"sk-secret12345678=hunter2","n":"x-token:sk-abcdefgh12345678=1"}`,
	}
	texts = append(texts, falsePositiveTexts...)
	for _, s := range samples {
		texts = append(texts, s.text, "x "+s.text+" y", `{"`+s.name+`":`+jsonStr(s.text)+`}`)
		if s.field != "" {
			texts = append(texts, s.field+"="+s.text, `{"`+s.field+`":`+jsonStr(s.text)+`}`, s.field+": "+s.text)
		}
		if s.header != "" {
			texts = append(texts, s.header+": "+s.text)
		}
	}
	for _, unit := range []string{"-----BEGIN PRIVATE KEY-----", "-----BEGIN PRIVATE KEY-----\nMIIB", `\\\\\\\\"`, `"password": "`,
		`\"token\":\"`, "://a:b", "&token=", "[[[[]]]]", `{"a":{"a":[`, "Bearer ", "sk-sk-", "eyJ.", "acct-acct-", `"a`} {
		texts = append(texts, strings.Repeat(unit, 2048/len(unit)))
	}
	texts = append(texts, string(llmJSON(4<<10)), string(llmJSON(50<<10)), string(chatAnswer(1<<10)), string(smallChatRequest()))
	return texts
}

// EquivLLMJSON is the benchmark's request body generator.
func EquivLLMJSON(n int) []byte { return bytes.Clone(llmJSON(n)) }

// fragments are spliced into inputs by the mutator: pieces of every rule.
var fragments = []string{
	"sk-", "sk-proj-", "sk-ant-", "sk-abcdefgh12345678", "sk-test-0000", "AKIA", "AKIAIOSFODNN7EXAMPLE", "ASIA", "AIza",
	"AIzaSyD-1234567890abcdefghijklmnopqrstu", "ghp_", "ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8", "github_pat_", "xoxb-", "xoxb-123456789012-",
	"sk_live_", "rk_test_", "sk_live_51H8abcdefghijklmnopqrstuVWXYZ", "eyJ", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc", ".", "..",
	"-----BEGIN ", "-----BEGIN RSA PRIVATE KEY-----", "-----END RSA PRIVATE KEY-----", "-----END ", "-----", "PRIVATE KEY",
	"Bearer ", "bearer\t", "Basic ", "BASIC ", "YWxpY2U6czNjcjN0UGFzcw==", "abcdefgh12345678",
	"://", `:\/\/`, "https://u:p@h/", "@", ":", "=", "&", "?", "#", ";", ",", " ", "\t", "\n", "\r\n", "\\", `\\`, `\"`, `"`, "'", "`",
	"{", "}", "[", "]", `{"`, `":`, `": "`, `":"`, `\":\"`, `\\\":\\\"`, "null", "true", "-1.5e3", "123456",
	"password", "token", "key", "api_key", "apiKey", "x-amz-signature", "client_secret", "max_tokens", "ratelimit", "secret",
	"password=", "token=", "&token=", "?key=", `"password":`, `"token": `, `\"api_key\":`, "Authorization: ", "Cookie: ", "X-Api-Key: ",
	"password: ", "Token ", "user[password]=", "%5B", "%3A", "%5D", "%", "+", "%2B", "%40",
	"[REDACTED:", "[REDACTED:field]", "[REDACTED:openai_key:0123abcd]", "%5BREDACTED%3Aurl_password%5D", "REDACTED", "%5bredacted%3a",
	`\n`, `\u0026`, `\u00e9`, "\\u", "data:", "data: ", "\ndata: {\"a\":1}\n", "event: message\n", "--XyZb0undary\r\n",
	"Content-Disposition: form-data; name=\"token\"\r\n\r\n", "\r\n--B0und--\r\n",
	"acct-", "acct-12345678", "internal-", "INTERNAL-abc", "session=deadbeef", "123-45-6789", `"email":`, `"pin":`, `"blob":`, `"customer":{"email":`,
	"é", "東京", "\xff", "\x00", "\xc3", "\xe6\x9d", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xc0\xaf", "\xef\xbf\xbd",
}

// Mutate returns in with a few random edits: fragments of every rule
// spliced in, ranges deleted or duplicated, bytes replaced, truncation.
func Mutate(rng *rand.Rand, in []byte) []byte {
	b := bytes.Clone(in)
	n := 1 + rng.Intn(6)
	for k := 0; k < n; k++ {
		pos := 0
		if len(b) > 0 {
			pos = rng.Intn(len(b) + 1)
		}
		switch op := rng.Intn(10); {
		case op < 4: // insert a fragment
			f := fragments[rng.Intn(len(fragments))]
			b = append(b[:pos], append([]byte(f), b[pos:]...)...)
		case op < 5: // delete a range
			if len(b) > 0 {
				e := pos + rng.Intn(16)
				if e > len(b) {
					e = len(b)
				}
				b = append(b[:pos], b[e:]...)
			}
		case op < 6: // replace a byte
			if pos < len(b) {
				b[pos] = "\"\\:=&@-_ {}[],\n/ABJby0aZ%"[rng.Intn(25)]
			}
		case op < 7: // duplicate a range
			if len(b) > 0 && pos < len(b) {
				e := pos + rng.Intn(64)
				if e > len(b) {
					e = len(b)
				}
				b = append(b[:e], append(bytes.Clone(b[pos:e]), b[e:]...)...)
			}
		case op < 8: // truncate
			b = b[:pos]
		case op < 9: // insert a planted secret of a random kind
			f := fragments[rng.Intn(len(fragments))] + fragments[rng.Intn(len(fragments))] + "Zq81abcdEFGH12345678ijklMNOP"
			b = append(b[:pos], append([]byte(f), b[pos:]...)...)
		default: // random bytes
			for j := 0; j < 1+rng.Intn(4); j++ {
				b = append(b[:pos], append([]byte{byte(rng.Intn(256))}, b[pos:]...)...)
			}
		}
	}
	return b
}

// LoadTrafficForTest is loadTraffic, for the equivalence tests.
var LoadTrafficForTest = loadTraffic

// LowEntropyForTest and ShannonEntropyForTest are the entropy tests.
func LowEntropyForTest(s string, min float64) bool { return lowEntropy([]byte(s), min) }
func ShannonEntropyForTest(s string) float64       { return shannonEntropy([]byte(s)) }
