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

// storeIndex writes the interactions of lookupIndex, each answered with
// 2 KB of JSON (one in ten the same as another's), into a store, and
// indexes them with Load: the index a replaying proxy serves from.
func storeIndex(b *testing.B, n int) (*Index, []*store.Request) {
	st, err := store.Open(b.TempDir()+"/cassettes.db", store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	reqs := make([]*store.Request, 0, 8192)
	const chunk = 10_000
	for lo := 0; lo < n; lo += chunk {
		ins := make([]store.Interaction, 0, chunk)
		for i := lo; i < min(lo+chunk, n); i++ {
			u := fmt.Sprintf("https://api.example.com/v1/r%d?id=%d&page=%d", i%50, i/2, i%7)
			in := ia(uint64(i+1), rq("POST", u, ctJSON, fmt.Sprintf(`{"q":"find %d","limit":10}`, i/2)), 200)
			seed := i
			if i%10 == 9 {
				seed = i % 100
			}
			in.Response.Body = fmt.Appendf(nil, `{"answer":%d,"text":%q}`, seed, strings.Repeat(fmt.Sprintf("result %d ", seed), 200))
			ins = append(ins, in)
		}
		if err := st.WriteCassette("c", ins, lo == 0); err != nil {
			b.Fatal(err)
		}
	}
	r, err := st.Replay("c", store.ReplayOptions{})
	if err != nil {
		b.Fatal(err)
	}
	ix, err := Load(nil, r)
	if err != nil {
		b.Fatal(err)
	}
	for j := range cap(reqs) {
		i := (j * 7919) % n
		u := fmt.Sprintf("https://api.example.com/v1/r%d?id=%d&page=%d", i%50, i/2, i%7)
		reqs = append(reqs, rq("POST", u, ctJSON, fmt.Sprintf(`{"q":"find %d","limit":10}`, i/2)))
	}
	return ix, reqs
}

// benchmarkStoreLookup: Next over a store-backed index, answers read whole.
// hot: 8 requests again and again (served from the cache); cold: 8,192
// requests spread over the cassette (~20 MB of answers, five times the
// cache), each read from the file unless the cache still holds it.
func benchmarkStoreLookup(b *testing.B, ix *Index, reqs []*store.Request, hot bool) {
	if hot {
		reqs = reqs[:8]
	}
	b.ReportAllocs()
	j := 0
	for b.Loop() {
		in, st, err := ix.Next(reqs[j%len(reqs)])
		if err != nil || st == NotFound || len(in.Response.Body) < 1000 {
			b.Fatal(st, err)
		}
		j++
	}
}

func BenchmarkStoreLookup(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 100_000} {
		ix, reqs := storeIndex(b, n) // one store for both runs
		for _, hot := range []bool{true, false} {
			name := fmt.Sprintf("%d/cold", n)
			if hot {
				name = fmt.Sprintf("%d/hot", n)
			}
			b.Run(name, func(b *testing.B) { benchmarkStoreLookup(b, ix, reqs, hot) })
		}
	}
}
