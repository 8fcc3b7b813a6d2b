package match

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/cassetteproxy/cassetteproxy/store"
)

func closestFixture() []store.Interaction {
	return []store.Interaction{
		ia(1, rq("GET", "https://api.example.com/v1/items?page=1&limit=10", "", ""), 200),
		ia(2, rq("POST", "https://api.example.com/v1/chat", ctJSON, `{"model":"m","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}],"stream":false}`), 200),
		ia(3, rq("POST", "https://api.example.com/v1/chat", ctJSON, `{"model":"other","messages":[{"role":"user","content":"something else"}]}`), 200),
		ia(4, rq("POST", "https://api.example.com/v1/form", ctForm, "a=1&b=2"), 200),
		ia(5, rq("PUT", "https://files.example.com/blob", ctBin, "\x00\x01binary"), 200),
		ia(6, rq("GET", "https://api.example.com/v1/tenants", "", "", "X-Tenant", "acme"), 200),
	}
}

func TestClosest(t *testing.T) {
	cases := []struct {
		name  string
		rules string
		req   *store.Request
		seq   uint64
		diffs []Difference
	}{
		{"query value", "", rq("GET", "https://api.example.com/v1/items?limit=10&page=2", "", ""), 1,
			[]Difference{{Field: "query.page", Recorded: "1", Requested: "2", Kind: DiffChanged}}},
		{"query missing and extra", "", rq("GET", "https://api.example.com/v1/items?page=1&cursor=abc", "", ""), 1,
			[]Difference{
				{Field: "query.cursor", Requested: "abc", Kind: DiffExtra},
				{Field: "query.limit", Recorded: "10", Kind: DiffMissing},
			}},
		{"method", "", rq("DELETE", "https://api.example.com/v1/items?page=1&limit=10", "", ""), 1,
			[]Difference{{Field: "method", Recorded: "GET", Requested: "DELETE", Kind: DiffChanged}}},
		{"json body field", "", rq("POST", "https://api.example.com/v1/chat", ctJSON, `{"stream":false,"model":"m","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hello"}]}`), 2,
			[]Difference{{Field: "body.$.messages[1].content", Recorded: `"hi"`, Requested: `"hello"`, Kind: DiffChanged}}},
		{"json body missing and extra", "", rq("POST", "https://api.example.com/v1/chat", ctJSON, `{"model":"m","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}],"temperature":0.2}`), 2,
			[]Difference{
				{Field: "body.$.stream", Recorded: "false", Kind: DiffMissing},
				{Field: "body.$.temperature", Requested: "0.2", Kind: DiffExtra},
			}},
		{"json odd key", "", rq("POST", "https://api.example.com/v1/chat", ctJSON, `{"model":"m","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}],"stream":false,"a b":1}`), 2,
			[]Difference{{Field: "body.$['a b']", Requested: "1", Kind: DiffExtra}}},
		{"form field", "", rq("POST", "https://api.example.com/v1/form", ctForm, "b=3&a=1"), 4,
			[]Difference{{Field: "body.$.b", Recorded: "2", Requested: "3", Kind: DiffChanged}}},
		{"binary body", "", rq("PUT", "https://files.example.com/blob", ctBin, "\x00\x02binary"), 5,
			[]Difference{{Field: "body", Recorded: "(8 bytes, sha256 ", Requested: "(8 bytes, sha256 ", Kind: DiffChanged}}},
		{"other path, same host", "", rq("GET", "https://api.example.com/v1/itemz?page=1&limit=10", "", ""), 1,
			[]Difference{{Field: "path", Recorded: "/v1/items", Requested: "/v1/itemz", Kind: DiffChanged}}},
		{"other host", "", rq("GET", "https://api.example.org/v1/items?page=1&limit=10", "", ""), 1,
			[]Difference{{Field: "host", Recorded: "api.example.com", Requested: "api.example.org", Kind: DiffChanged}}},
		{"header when matched", "rules: [{match_headers: [X-Tenant]}]", rq("GET", "https://api.example.com/v1/tenants", "", "", "X-Tenant", "globex"), 6,
			[]Difference{{Field: "header.x-tenant", Recorded: "acme", Requested: "globex", Kind: DiffChanged}}},
		{"header not matched", "", rq("GET", "https://api.example.com/v1/tenants", "", "", "X-Tenant", "globex"), 6,
			[]Difference{}},
		{"ignored query not listed", "rules: [{ignore_query: [page]}]", rq("GET", "https://api.example.com/v1/items?page=9&limit=11", "", ""), 1,
			[]Difference{{Field: "query.limit", Recorded: "10", Requested: "11", Kind: DiffChanged}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var r *Rules
			if tc.rules != "" {
				r = mustRules(t, tc.rules)
			}
			c, _ := NewIndex(r, closestFixture()).Closest(tc.req)
			if c == nil {
				t.Fatal("nil Closest")
			}
			if c.Seq != tc.seq {
				t.Fatalf("closest seq %d (%s %s), want %d; differences %+v", c.Seq, c.Method, c.URL, tc.seq, c.Differences)
			}
			got := c.Differences
			if tc.name == "binary body" && len(got) == 1 {
				// Hashes vary; compare the prefix.
				got = []Difference{{Field: got[0].Field, Recorded: got[0].Recorded[:17], Requested: got[0].Requested[:17], Kind: got[0].Kind}}
			}
			// Closest gives an empty list, never nil, when nothing differs.
			if !slices.Equal(got, tc.diffs) || (got == nil) != (tc.diffs == nil) {
				t.Fatalf("differences\n %+v\nwant\n %+v", got, tc.diffs)
			}
		})
	}
}

func TestClosestPrefersFewestDifferences(t *testing.T) {
	ins := closestFixture()
	// Seq 3 differs from this request in one field; seq 2 in many.
	c, _ := NewIndex(nil, ins).Closest(rq("POST", "https://api.example.com/v1/chat", ctJSON, `{"model":"other","messages":[{"role":"user","content":"something else!"}]}`))
	if c.Seq != 3 || len(c.Differences) != 1 || c.Differences[0].Field != "body.$.messages[0].content" {
		t.Fatalf("got %+v", c)
	}
}

func TestClosestEmptyAndShape(t *testing.T) {
	if c, _ := NewIndex(nil, nil).Closest(rq("GET", "https://h/", "", "")); c != nil {
		t.Fatalf("empty index: %+v", c)
	}
	c, _ := NewIndex(nil, closestFixture()).Closest(rq("GET", "https://api.example.com/v1/items?page=2&limit=10", "", ""))
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"seq":1,"method":"GET","url":"https://api.example.com/v1/items?page=1\u0026limit=10","differences":[{"field":"query.page","recorded":"1","requested":"2","kind":"changed"}]}`
	if string(b) != want {
		t.Fatalf("JSON\n %s\nwant\n %s", b, want)
	}
}

func TestClosestTruncates(t *testing.T) {
	long := strings.Repeat("é", 500)
	ins := []store.Interaction{ia(1, rq("POST", "https://h/x?q="+strings.Repeat("a", 400), ctJSON, `{"text":"`+long+`"}`), 200)}
	c, _ := NewIndex(nil, ins).Closest(rq("POST", "https://h/x?q="+strings.Repeat("b", 400), ctJSON, `{"text":"`+long+`!"}`))
	if len(c.Differences) != 2 {
		t.Fatalf("differences %+v", c.Differences)
	}
	for _, d := range c.Differences {
		for _, v := range []string{d.Recorded, d.Requested} {
			if n := utf8.RuneCountInString(v); n > maxValueRunes+1 || !strings.HasSuffix(v, "…") {
				t.Errorf("%s: value of %d runes not truncated: %.40q…", d.Field, n, v)
			}
		}
	}
	if n := utf8.RuneCountInString(c.URL); n > maxValueRunes+1 {
		t.Errorf("URL of %d runes", n)
	}
}

func TestClosestCapsList(t *testing.T) {
	var a, b []string
	for i := range 50 {
		a = append(a, fmt.Sprintf(`"k%02d":%d`, i, i))
		b = append(b, fmt.Sprintf(`"k%02d":%d`, i, i+1))
	}
	ins := []store.Interaction{ia(1, rq("POST", "https://h/x", ctJSON, "{"+strings.Join(a, ",")+"}"), 200)}
	c, _ := NewIndex(nil, ins).Closest(rq("POST", "https://h/x", ctJSON, "{"+strings.Join(b, ",")+"}"))
	if len(c.Differences) != maxListed+1 {
		t.Fatalf("%d differences listed", len(c.Differences))
	}
	last := c.Differences[maxListed]
	if last.Kind != DiffTruncated || !strings.HasPrefix(last.Requested, "18 more") {
		t.Fatalf("last difference %+v", last)
	}
}

// On a large cassette where every interaction shares host and path, the
// ranking must still find the one nearest request, wherever it is.
func TestClosestLargeCassette(t *testing.T) {
	n := 20000
	if testing.Short() {
		n = 3000
	}
	ins := make([]store.Interaction, n)
	for i := range ins {
		body := fmt.Sprintf(`{"model":"m","n":%d,"messages":[{"role":"user","content":"hello"}]}`, i)
		ins[i] = ia(uint64(i+1), rq("POST", "https://api.example.com/v1/chat", ctJSON, body), 200)
	}
	ix := NewIndex(nil, ins)
	target := n * 3 / 4
	c, _ := ix.Closest(rq("POST", "https://api.example.com/v1/chat", ctJSON, fmt.Sprintf(`{"model":"m","n":%d,"messages":[{"role":"user","content":"bye"}]}`, target)))
	if c.Seq != uint64(target+1) {
		t.Fatalf("closest seq %d, want %d (%+v)", c.Seq, target+1, c.Differences)
	}
	if len(c.Differences) != 1 || c.Differences[0].Field != "body.$.messages[0].content" {
		t.Fatalf("differences %+v", c.Differences)
	}
}
