package match

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/cassetteproxy/cassetteproxy/store"
)

const policyRules = `rules:
  - host: "*.full.test"
    store: full
  - host: hash.test
    path: /public/*
    store: full
  - host: hash.test
    store: hash
  - host: fields.test
    store: fields
    keep: [$.id, "$.items[*].name", $.missing]
  - host: fields.test
    store: hash
  - host: "*"
    ignore_body_paths: [$.nonce]
`

func TestStorePolicyFor(t *testing.T) {
	r := mustRules(t, policyRules)
	for _, tc := range []struct {
		url, want string
		keep      int
	}{
		{"https://hash.test/v1/send", store.StoreHash, 0},
		{"https://HASH.test:443/v1/send?x=1", store.StoreHash, 0},
		{"https://hash.test/public/a", store.StoreFull, 0}, // the first rule that sets store wins
		{"https://fields.test/x", store.StoreFields, 3},
		{"https://api.full.test/x", store.StoreFull, 0},
		{"https://other.test/x", store.StoreFull, 0}, // no rule sets it: full
		{"http://hash.test:8080/x", store.StoreHash, 0},
	} {
		p := r.StorePolicyFor(tc.url)
		if p.Kind != tc.want || len(p.Keep) != tc.keep {
			t.Errorf("StorePolicyFor(%s) = %s with %d paths, want %s with %d", tc.url, p.Kind, len(p.Keep), tc.want, tc.keep)
		}
	}
	if p := (*Rules)(nil).StorePolicyFor("https://x/"); p.Kind != store.StoreFull {
		t.Errorf("nil rules: %s, want full", p.Kind)
	}
}

func TestKeepFields(t *testing.T) {
	paths := func(ps ...string) []JSONPath {
		var out []JSONPath
		for _, p := range ps {
			jp, err := ParseJSONPath(p)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, jp)
		}
		return out
	}
	doc := `{"id": 7, "status": "ok", "secret": "s3", "user": {"name": "a", "email": "e"},
		"items": [{"name": "x", "price": 1}, {"name": "y", "price": 2}, {"price": 3}]}`
	for _, tc := range []struct {
		name, body string
		keep       []string
		want       string // "" = nil
	}{
		{"members", doc, []string{"$.id", "$.status"}, `{"id":7,"status":"ok"}`},
		{"nested member", doc, []string{"$.user.name"}, `{"user":{"name":"a"}}`},
		{"wildcard elements", doc, []string{"$.items[*].name"}, `{"items":[{"name":"x"},{"name":"y"}]}`},
		{"index keeps places before", doc, []string{"$.items[1].price"}, `{"items":[null,{"price":2}]}`},
		{"negative index", doc, []string{"$.items[-1]"}, `{"items":[null,null,{"price":3}]}`},
		{"descendant", doc, []string{"$..name"}, `{"user":{"name":"a"},"items":[{"name":"x"},{"name":"y"}]}`},
		{"whole and part", doc, []string{"$.user.name", "$.user"}, `{"user":{"name":"a","email":"e"}}`},
		{"part then whole", doc, []string{"$.user", "$.user.name"}, `{"user":{"name":"a","email":"e"}}`},
		{"member wildcard", `{"a":{"x":1,"y":[2]}}`, []string{"$.a.*"}, `{"a":{"x":1,"y":[2]}}`},
		{"root", `[1,2]`, []string{"$"}, `[1,2]`},
		{"top-level array", `[{"id":1,"n":2},{"id":3}]`, []string{"$[*].id"}, `[{"id":1},{"id":3}]`},
		{"nothing selected", doc, []string{"$.nope", "$.items[9]"}, ""},
		{"not JSON", `id=7&status=ok`, []string{"$.id"}, ""},
		{"empty", ``, []string{"$.id"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := KeepFields([]byte(tc.body), paths(tc.keep...))
			if tc.want == "" {
				if got != nil {
					t.Fatalf("kept %s, want nothing", got)
				}
				return
			}
			if string(got) != tc.want {
				t.Fatalf("kept %s, want %s", got, tc.want)
			}
		})
	}
}

// TestApplyStorePolicy: hash keeps no byte of either body, fields keeps
// exactly the listed paths, full and empty bodies are left alone; the
// request stays matchable by what it was, and only by that.
func TestApplyStorePolicy(t *testing.T) {
	const marker = "MARKER-q7Zx"
	reqBody := `{"id": 7, "nonce": "n1", "text": "` + marker + `", "items": [{"name": "x", "note": "` + marker + `"}]}`
	respBody := `{"id": 9, "status": "sent", "echo": "` + marker + `", "items": [{"name": "r", "secret": "` + marker + `"}]}`
	r := mustRules(t, policyRules)
	sum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	mk := func(url string) store.Interaction {
		return store.Interaction{
			Request: store.Request{Method: "POST", URL: url, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(reqBody)},
			Response: store.Response{Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(respBody),
				Streamed: true, Events: []store.Event{{Data: []byte(respBody)}}},
		}
	}
	for _, tc := range []struct {
		name, url, policy    string
		reqFields, rspFields string
	}{
		{"hash", "https://hash.test/v1/send", store.StoreHash, "", ""},
		{"fields", "https://fields.test/v1/send", store.StoreFields, `{"id":7,"items":[{"name":"x"}]}`, `{"id":9,"items":[{"name":"r"}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			orig := mk(tc.url)
			in := orig.Clone()
			if p := r.ApplyStorePolicy(&in); p.Kind != tc.policy {
				t.Fatalf("policy %s, want %s", p.Kind, tc.policy)
			}
			js, err := json.Marshal(in)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(js, []byte(marker)) {
				t.Fatalf("a body byte was kept: %s", js)
			}
			q, p := in.Request.NotRecorded, in.Response.NotRecorded
			if in.Request.Body != nil || in.Response.Body != nil || in.Response.Events != nil || in.Response.Streamed {
				t.Fatalf("bodies left: %+v", in)
			}
			if q == nil || p == nil {
				t.Fatalf("markers missing: %+v %+v", q, p)
			}
			if q.Policy != tc.policy || p.Policy != tc.policy || q.Reason != "body_not_recorded" || p.Reason != "body_not_recorded" {
				t.Errorf("markers name %q/%q (%q/%q)", q.Policy, p.Policy, q.Reason, p.Reason)
			}
			if q.Size != int64(len(reqBody)) || q.SHA256 != sum(reqBody) || p.Size != int64(len(respBody)) || p.SHA256 != sum(respBody) {
				t.Errorf("sizes or hashes wrong: %+v %+v", q, p)
			}
			if string(q.Fields) != tc.reqFields || string(p.Fields) != tc.rspFields {
				t.Errorf("fields kept: request %s, response %s; want %s, %s", q.Fields, p.Fields, tc.reqFields, tc.rspFields)
			}
			if !strings.HasPrefix(q.Match, "json:") || p.Match != "" {
				t.Errorf("match parts: request %q, response %q", q.Match, p.Match)
			}

			// Matching: the stripped request is found by the original
			// request, by one differing only in an ignored path, and not
			// by one differing in a keyed value.
			if r.Key(&in.Request) != r.Key(&orig.Request) {
				t.Fatal("the key changed when the body was left out")
			}
			ix := NewIndex(r, []store.Interaction{in})
			same := orig.Request.Clone()
			same.Body = bytes.Replace(same.Body, []byte(`"n1"`), []byte(`"n2"`), 1)
			if got, st, _ := ix.Next(&same); st != Found || got.Response.NotRecorded == nil {
				t.Fatalf("lookup of the recorded request: %v", st)
			}
			other := orig.Request.Clone()
			other.Body = bytes.Replace(other.Body, []byte(`"id": 7`), []byte(`"id": 8`), 1)
			if _, st, _ := ix.Next(&other); st != NotFound {
				t.Fatalf("a request with another body matched: %v", st)
			}
			c, _ := ix.Closest(&other)
			if c == nil || !strings.Contains(string(mustJSON(t, c)), "not kept by the store policy") {
				t.Errorf("closest does not say the body was not kept: %s", mustJSON(t, c))
			}
		})
	}

	t.Run("full", func(t *testing.T) {
		in := mk("https://api.full.test/x")
		r.ApplyStorePolicy(&in)
		if string(in.Request.Body) != reqBody || string(in.Response.Body) != respBody || in.Request.NotRecorded != nil || in.Response.NotRecorded != nil {
			t.Fatalf("full policy changed the interaction: %+v", in)
		}
	})
	t.Run("empty bodies", func(t *testing.T) {
		in := store.Interaction{Request: store.Request{Method: "GET", URL: "https://hash.test/x"}, Response: store.Response{Status: 204}}
		r.ApplyStorePolicy(&in)
		if in.Request.NotRecorded != nil || in.Response.NotRecorded != nil {
			t.Fatalf("empty bodies got markers: %+v", in)
		}
	})
	t.Run("websocket messages", func(t *testing.T) {
		in := store.Interaction{Request: store.Request{Method: "GET", URL: "https://hash.test/ws"}, Response: store.Response{Status: 101, Upgrade: true,
			Events: []store.Event{{Dir: store.DirClient, Data: []byte("a" + marker)}, {Dir: store.DirServer, Data: []byte("b")}}}}
		r.ApplyStorePolicy(&in)
		if m := in.Response.NotRecorded; m == nil || m.Size != int64(len(marker)+2) || m.SHA256 != sum("a"+marker+"b") || in.Response.Events != nil {
			t.Fatalf("messages not replaced by a marker: %+v", in.Response)
		}
	})
	t.Run("over max-body", func(t *testing.T) {
		in := store.Interaction{Request: store.Request{Method: "GET", URL: "https://hash.test/big"},
			Response: store.Response{Status: 200, NotRecorded: &store.BodyMarker{Size: 1 << 30, SHA256: "raw", Reason: "body_not_recorded"}}}
		r.ApplyStorePolicy(&in)
		if m := in.Response.NotRecorded; m.Policy != "" || m.SHA256 != "raw" {
			t.Fatalf("the max-body marker changed: %+v", m)
		}
	})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
