package redact

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand"
	"strings"
	"testing"

	"github.com/cassetteproxy/cassetteproxy/store"
)

func FuzzRedactJSON(f *testing.F) {
	for _, seed := range []string{
		`{"a":1}`,
		`{"password":"x","n":[1,{"token":2}],"s":"sk-abcdefgh12345678"}`,
		`[{"key":["a",["b",{"c":"d"}]]},"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc"]`,
		`{"arguments":"{\"api_key\":\"k\\\"x\",\"n\":2}","u":"https:\/\/a:b@c\/?token=1\u0026x=2"}`,
		`{"customer":{"email":"a@b.c"},"deep":{"pin":-1.5e3},"blob":{"x":[1,2]}}`,
		"{\"k\":\"-----BEGIN RSA PRIVATE KEY-----\\nMIIB\\n-----END RSA PRIVATE KEY-----\"}",
		`{"a":"Bearer abcdefgh12345678","b":"x=1&secret=2","c":"\"token\": \"v\""}`,
		`{"truncated": "sk-abc`,
		"{\"a\":1}\n{\"password\":\"p\"}\n",
		`"\u0000\ud800"`,
	} {
		f.Add([]byte(seed))
	}
	cfg := Config{Secret: []byte("fuzz"), Fields: []string{"email"}, JSONPaths: []string{"$.customer.email", "$..pin", "$.blob", "$[*].key"}, Patterns: []string{"acct-[0-9]+"}}
	r, err := New(cfg)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		orig := append([]byte(nil), data...)
		out := r.body(data, "application/json", true)
		if !bytes.Equal(data, orig) {
			t.Fatalf("input modified")
		}
		if json.Valid(orig) && !json.Valid(out) {
			t.Fatalf("valid JSON became invalid:\n%q\n%q", orig, out)
		}
		again := r.body(append([]byte(nil), out...), "application/json", true)
		if json.Valid(orig) && !bytes.Equal(again, out) {
			t.Fatalf("not idempotent:\n%q\n%q\n%q", orig, out, again)
		}
		// Text and SSE paths must not panic either.
		r.body(data, "text/plain", true)
		r.body(data, "text/event-stream", true)
		r.body(data, "", false)
		r.String(string(data))
	})
}

// FuzzRedactText: text, SSE, form and JSON scrubbing of arbitrary input
// never panics and is idempotent, and so is String.
func FuzzRedactText(f *testing.F) {
	for _, s := range []string{"a token=x b", `{"password": "x"}`, "https://a:b@c/?key=1#token=2", "Bearer abcdefgh1234 sk-abcdefgh1234", "-----BEGIN RSA PRIVATE KEY-----\nabc", `\"api_key\":\"x\"`} {
		f.Add(s)
	}
	r, err := New(Config{Secret: []byte("k")})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, ct := range []string{"text/plain", "text/event-stream", "application/x-www-form-urlencoded", "application/json"} {
			a := r.body([]byte(s), ct, true)
			b := r.body(append([]byte(nil), a...), ct, true)
			if string(a) != string(b) {
				t.Fatalf("%s: %q\n%q\n%q", ct, s, a, b)
			}
		}
		a := r.String(s)
		if b := r.String(a); a != b {
			t.Fatalf("String: %q\n%q\n%q", s, a, b)
		}
	})
}

// llmJSON builds an LLM-style chat request of about n bytes: messages with
// long prose, code with escapes, tool definitions, tool calls whose
// arguments are JSON in a string, and a couple of secrets.
func llmJSON(n int) []byte {
	rng := rand.New(rand.NewSource(1))
	words := strings.Fields("the a proxy records replays agent tool request response stream token budget model function call returns JSON value field error retry cache upstream header body status latency cassette fixture monitor gate verdict hello world über café naïve 東京")
	sentence := func(k int) string {
		var b strings.Builder
		for i := 0; i < k; i++ {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(words[rng.Intn(len(words))])
		}
		return b.String() + "."
	}
	var b bytes.Buffer
	b.WriteString(`{"model":"gpt-4o-mini","temperature":0.2,"max_tokens":1024,"stream":true,"tools":[`)
	for i := 0; i < 4; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"type":"function","function":{"name":"tool_%d","description":%q,"parameters":{"type":"object","properties":{"query":{"type":"string","description":%q},"limit":{"type":"integer","minimum":1},"token":{"type":"string"}},"required":["query"]}}}`, i, sentence(20), sentence(8))
	}
	b.WriteString(`],"messages":[{"role":"system","content":` + jsonStr(sentence(60)) + `}`)
	for i := 0; b.Len() < n-600; i++ {
		switch i % 4 {
		case 0:
			b.WriteString(`,{"role":"user","content":` + jsonStr(sentence(80)+"\n\n```go\nfunc main() {\n\tfmt.Println(\"hi\")\n}\n```\n"+sentence(40)) + `}`)
		case 1:
			args := `{"query":` + jsonStr(sentence(6)) + `,"limit":10,"api_key":"fv-inline-key-1234"}`
			fmt.Fprintf(&b, `,{"role":"assistant","content":null,"tool_calls":[{"id":"call_%d","type":"function","function":{"name":"tool_1","arguments":%s}}]}`, i, jsonStr(args))
		case 2:
			fmt.Fprintf(&b, `,{"role":"tool","tool_call_id":"call_%d","content":%s}`, i-1, jsonStr(`{"results":[{"title":`+jsonStr(sentence(8))+`,"url":"https://example.com/a?b=1&c=2","score":0.93}],"total":1}`))
		case 3:
			b.WriteString(`,{"role":"assistant","content":` + jsonStr(sentence(120)) + `}`)
		}
	}
	b.WriteString(`,{"role":"user","content":"use key sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z and Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"}],"user":"u-1"}`)
	return b.Bytes()
}

func benchJSON(b *testing.B, cfg Config) {
	r, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	body := llmJSON(50 << 10)
	if !json.Valid(body) {
		b.Fatal("bench body is not JSON")
	}
	req := store.Request{Method: "POST", URL: "https://api.openai.com/v1/chat/completions",
		Header: map[string][]string{"Content-Type": {"application/json"}}}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req.Body = body // redaction copies on first write; body itself is never modified
		r.Request(&req)
	}
	b.StopTimer()
	if bytes.Contains(req.Body, []byte("sk-proj-Ab3d")) || !json.Valid(req.Body) {
		b.Fatalf("bad result")
	}
}

// BenchmarkRedactLLMJSON50KB: a 50 KB chat request with defaults.
func BenchmarkRedactLLMJSON50KB(b *testing.B) { benchJSON(b, Config{Secret: []byte("k")}) }

// With user rules: fields, JSON paths and two regular expressions with a
// literal prefix (found by bytes.Index, then matched where they occur).
func BenchmarkRedactLLMJSON50KBUserRules(b *testing.B) {
	benchJSON(b, Config{Secret: []byte("k"), Fields: []string{"ssn"}, JSONPaths: []string{"$.customer.email", "$..pin"}, Patterns: []string{"acct-[0-9]{8}", `internal-[a-z]+`}})
}

// A pattern without a literal prefix runs Go's regexp over every string.
func BenchmarkRedactLLMJSON50KBRegexNoPrefix(b *testing.B) {
	benchJSON(b, Config{Secret: []byte("k"), Patterns: []string{`(?i)internal-[a-z]+`}})
}

func TestBenchBodyShape(t *testing.T) {
	body := llmJSON(50 << 10)
	if !json.Valid(body) || len(body) < 45<<10 || len(body) > 55<<10 {
		t.Fatalf("len %d valid %v", len(body), json.Valid(body))
	}
	r := mustNew(t, Config{})
	out := r.body(body, "application/json", false)
	if bytes.Contains(out, []byte("fv-inline-key-1234")) || bytes.Contains(out, []byte("sk-proj-")) || !json.Valid(out) {
		t.Fatal("bench body not scrubbed as expected")
	}
}
