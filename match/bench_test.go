package match

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cassetteproxy/cassetteproxy/store"
)

// chatBody is a ~2 KB chat completion request.
func chatBody(i int) string {
	var msgs []string
	for j := range 8 {
		msgs = append(msgs, fmt.Sprintf(`{"role":"user","content":%q,"name":"agent-%d"}`, strings.Repeat(fmt.Sprintf("message %d of request %d. ", j, i), 7), j))
	}
	return fmt.Sprintf(`{"model":"gpt-4o-mini","temperature":0.2,"stream":false,"metadata":{"request_id":"r-%d","tags":["a","b"]},"messages":[%s]}`, i, strings.Join(msgs, ","))
}

func BenchmarkKey(b *testing.B) {
	req := rq("POST", "https://api.openai.com/v1/chat/completions?api-version=2024-01-01", ctJSON, chatBody(1),
		"Authorization", "Bearer [REDACTED:bearer:0a1b2c]", "X-Stainless-Os", "Linux")
	r := DefaultRules()
	b.SetBytes(int64(len(req.Body)))
	b.ReportAllocs()
	for b.Loop() {
		_ = r.Key(req)
	}
}

// BenchmarkKeyGET is the replay path's common case: a GET without a body
// (the load harness's requests).
func BenchmarkKeyGET(b *testing.B) {
	req := rq("GET", "http://127.0.0.1:34171/1k.json", "", "", "User-Agent", "Go-http-client/1.1", "Accept-Encoding", "gzip")
	r := DefaultRules()
	b.ReportAllocs()
	for b.Loop() {
		_ = r.digest(req)
	}
}

func BenchmarkKeyWithRules(b *testing.B) {
	req := rq("POST", "https://api.openai.com/v1/chat/completions", ctJSON, chatBody(1), "X-Tenant", "acme")
	r := mustRules(b, `
rules:
  - host: api.openai.com
    path: /v1/chat/*
    match_headers: [X-Tenant]
    ignore_body_paths: ["$.metadata.request_id", "$.messages[*].name"]
`)
	b.SetBytes(int64(len(req.Body)))
	b.ReportAllocs()
	for b.Loop() {
		_ = r.Key(req)
	}
}

// lookupIndex builds a cassette of n interactions over 50 paths, each
// request recorded twice, and the lookups to run against it.
func lookupIndex(b *testing.B, n int) (*Index, []*store.Request) {
	ins := make([]store.Interaction, n)
	for i := range ins {
		u := fmt.Sprintf("https://api.example.com/v1/r%d?id=%d&page=%d", i%50, i/2, i%7)
		ins[i] = ia(uint64(i+1), rq("POST", u, ctJSON, fmt.Sprintf(`{"q":"find %d","limit":10}`, i/2)), 200)
	}
	ix := NewIndex(nil, ins)
	reqs := make([]*store.Request, 1024)
	for j := range reqs {
		i := (j * 7919) % n
		reqs[j] = &ins[i].Request
	}
	return ix, reqs
}

func benchmarkLookup(b *testing.B, n int) {
	ix, reqs := lookupIndex(b, n)
	b.ReportAllocs()
	j := 0
	for b.Loop() {
		if _, st, _ := ix.Next(reqs[j%len(reqs)]); st == NotFound {
			b.Fatal("not found")
		}
		j++
	}
}

func BenchmarkLookup1k(b *testing.B)   { benchmarkLookup(b, 1_000) }
func BenchmarkLookup100k(b *testing.B) { benchmarkLookup(b, 100_000) }

func BenchmarkClosest100k(b *testing.B) {
	ix, _ := lookupIndex(b, 100_000)
	req := rq("POST", "https://api.example.com/v1/r3?id=12345&page=6", ctJSON, `{"q":"find 12346","limit":10}`)
	b.ReportAllocs()
	for b.Loop() {
		if c, _ := ix.Closest(req); c == nil {
			b.Fatal("nil")
		}
	}
}

func BenchmarkNewIndex100k(b *testing.B) {
	ins := make([]store.Interaction, 100_000)
	for i := range ins {
		u := fmt.Sprintf("https://api.example.com/v1/r%d?id=%d", i%50, i)
		ins[i] = ia(uint64(i+1), rq("POST", u, ctJSON, fmt.Sprintf(`{"q":"find %d","limit":10}`, i)), 200)
	}
	for b.Loop() {
		NewIndex(nil, ins)
	}
}
