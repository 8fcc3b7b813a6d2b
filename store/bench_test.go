package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

var vocabulary = strings.Fields(`the of and to a in is it you that he was for on are with as I his they be at
one have this from or had by hot word but what some we can out other were all there when up use your how said
an each she which do their time if will way about many then them write would like so these her long make thing
see him two has look more day could go come did number sound no most people my over know water than call first
who may down side been now find any new work part take get place made live where after back little only round
man year came show every good me give our under name very through just form sentence great think say help low
line differ turn cause much mean before move right boy old too same tell does set three want air well also play
small end put home read hand port large spell add even land here must big high such follow act why ask men
change went light kind off need house picture try us again animal point mother world near build self earth
father head stand own page should country found answer school grow study still learn plant cover food sun four
between state keep eye never last let thought city tree cross farm hard start might story saw far sea draw left
late run don't while press close night real life few north open seem together next white children begin got
walk example ease paper group always music those both mark often letter until mile river car feet care second
book carry took science eat room friend began idea fish mountain stop once base hear horse cut sure watch color
face wood main enough plain girl usual young ready above ever red list though feel talk bird soon body dog
family direct pose leave song measure door product black short numeral class wind question happen complete ship
area half rock order fire south problem piece told knew pass since top whole king space heard best hour better
true during hundred five remember step early hold west ground interest reach fast verb sing listen six table
travel less morning ten simple several vowel toward war lay against pattern slow center love person money serve
appear road map rain rule govern pull cold notice voice unit power town fine certain fly fall lead cry dark
machine note wait plan figure star box noun field rest correct able pound done beauty drive stood contain front
teach week final gave green oh quick develop ocean warm free minute strong special mind behind clear tail
produce fact street inch multiply nothing course stay wheel full force blue object decide surface deep moon
island foot system busy test record boat common gold possible plane stead dry wonder laugh thousand ago ran
check game shape equate miss brought heat snow tire bring yes distant fill east paint language among grand ball
yet wave drop heart am present heavy dance engine position arm wide sail material size vary settle speak weight
general ice matter circle pair include divide syllable felt perhaps pick sudden count square reason length
represent art subject region energy hunt probable bed brother egg ride cell believe fraction forest sit race
window store summer train sleep prove lone leg exercise wall catch mount wish sky board joy winter sat written
wild instrument kept glass grass cow job edge sign visit past soft fun bright gas weather month million bear
finish happy hope flower clothe strange gone jump baby eight village meet root buy raise solve metal whether
push seven paragraph third shall held hair describe cook floor either result burn hill safe cat century
consider type law bit coast copy phrase silent tall sand soil roll temperature finger industry value fight lie
beat excite natural view sense ear else quite broke case middle kill son lake moment scale loud spring observe
child straight consonant nation dictionary milk speed method organ pay age section dress cloud surprise quiet
stone tiny climb cool design poor lot experiment bottom key iron single stick flat twenty skin smile crease
hole trade melody trip office receive row mouth exact symbol die least trouble shout except wrote seed tone
join suggest clean break lady yard rise bad blow oil blood touch grew cent mix team wire cost lost brown wear
garden equal sent choose fell fit flow fair bank collect save control decimal gentle woman captain practice
separate difficult doctor please protect noon whose locate ring character insect caught period indicate radio
spoke atom human history effect electric expect crop modern element hit student corner party supply bone rail
imagine provide agree thus capital won't chair danger fruit rich thick soldier process operate guess necessary
sharp wing create neighbor wash bat rather crowd corn compare poem string bell depend meat rub tube famous
dollar stream fear sight thin triangle planet hurry chief colony clock mine tie enter major fresh search send
yellow gun allow print dead spot desert suit current lift rose continue block chart hat sell success company
subtract event particular deal swim term opposite wife shoe shoulder spread arrange camp invent cotton born
determine quart nine truck noise level chance gather shop stretch throw shine property column molecule select
wrong gray repeat require broad prepare salt nose plural anger claim continent oxygen sugar death pretty skill`)

// prose returns about n bytes of English-like text (Zipf-distributed words).
func prose(rng *rand.Rand, n int) string {
	z := rand.NewZipf(rng, 1.07, 2, uint64(len(vocabulary)-1))
	var sb strings.Builder
	for sb.Len() < n {
		w := vocabulary[z.Uint64()]
		if sb.Len() == 0 || rng.IntN(14) == 0 {
			if sb.Len() > 0 {
				sb.WriteString(". ")
			}
			w = strings.ToUpper(w[:1]) + w[1:]
		} else {
			sb.WriteByte(' ')
		}
		sb.WriteString(w)
		if rng.IntN(25) == 0 {
			fmt.Fprintf(&sb, " %d", rng.IntN(100000))
		}
	}
	return sb.String()
}

func hexID(rng *rand.Rand, n int) string {
	const digits = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = digits[rng.IntN(16)]
	}
	return string(b)
}

// proseChatJSON builds an OpenAI-style chat request of about size bytes whose
// bulk is prose: a system prompt, tool definitions, and a conversation whose
// tool results are web search hits (titles, URLs with random slugs, snippets).
// English prose compresses about 2.3-2.8× with zstd at any level (Tom Sawyer:
// 2.3×), so this is the floor, not the typical case.
func proseChatJSON(seed uint64, size int) []byte {
	rng := rand.New(rand.NewPCG(seed, 7))
	return chatRequest(rng, size, func() string {
		var hits []any
		for range 5 {
			hits = append(hits, map[string]any{
				"id":        hexID(rng, 16),
				"title":     prose(rng, 50),
				"url":       "https://" + vocabulary[rng.IntN(len(vocabulary))] + ".example.org/" + strings.ReplaceAll(prose(rng, 30), " ", "-") + "-" + hexID(rng, 6),
				"snippet":   prose(rng, 220),
				"published": time.Date(2020+rng.IntN(5), time.Month(1+rng.IntN(12)), 1+rng.IntN(28), 0, 0, 0, 0, time.UTC).Format(time.RFC3339),
				"score":     rng.Float64(),
			})
		}
		res, _ := json.Marshal(map[string]any{"results": hits, "took_ms": rng.IntN(900)})
		return string(res)
	})
}

// agentChatJSON builds the typical body of an agent loop: a chat request of
// about size bytes whose tool results are REST API records (GitHub issues,
// with the fields and URL shapes GitHub's API returns) between prose turns.
func agentChatJSON(seed uint64, size int) []byte {
	rng := rand.New(rand.NewPCG(seed, 8))
	owners := []string{"acme", "cassetteproxy", "octo-org", "data-tools"}
	repos := []string{"api-server", "web-console", "ingest", "billing-service"}
	logins := make([]string, 12)
	for i := range logins {
		logins[i] = vocabulary[rng.IntN(len(vocabulary))] + "-" + vocabulary[rng.IntN(len(vocabulary))] + fmt.Sprint(rng.IntN(100))
	}
	user := func() map[string]any {
		l := logins[rng.IntN(len(logins))]
		id := 1000000 + rng.IntN(9000000)
		u := "https://api.github.com/users/" + l
		return map[string]any{
			"login": l, "id": id, "node_id": "MDQ6VXNlcj" + hexID(rng, 8),
			"avatar_url": fmt.Sprintf("https://avatars.githubusercontent.com/u/%d?v=4", id), "gravatar_id": "",
			"url": u, "html_url": "https://github.com/" + l, "followers_url": u + "/followers",
			"following_url": u + "/following{/other_user}", "gists_url": u + "/gists{/gist_id}",
			"starred_url": u + "/starred{/owner}{/repo}", "subscriptions_url": u + "/subscriptions",
			"organizations_url": u + "/orgs", "repos_url": u + "/repos", "events_url": u + "/events{/privacy}",
			"received_events_url": u + "/received_events", "type": "User", "user_view_type": "public", "site_admin": false,
		}
	}
	labels := []string{"bug", "enhancement", "good first issue", "needs-triage", "p1", "documentation"}
	return chatRequest(rng, size, func() string {
		owner, repo := owners[rng.IntN(len(owners))], repos[rng.IntN(len(repos))]
		base := "https://api.github.com/repos/" + owner + "/" + repo
		var issues []any
		for range 3 {
			n := 1 + rng.IntN(4000)
			u := fmt.Sprintf("%s/issues/%d", base, n)
			var ls []any
			for range rng.IntN(3) {
				name := labels[rng.IntN(len(labels))]
				ls = append(ls, map[string]any{"id": 1e9 + rng.IntN(1e9), "node_id": "LA_kwDO" + hexID(rng, 14),
					"url": base + "/labels/" + name, "name": name, "color": hexID(rng, 6), "default": name == "bug", "description": prose(rng, 30)})
			}
			created := time.Date(2024, time.Month(1+rng.IntN(12)), 1+rng.IntN(28), rng.IntN(24), rng.IntN(60), rng.IntN(60), 0, time.UTC)
			issues = append(issues, map[string]any{
				"url": u, "repository_url": base, "labels_url": u + "/labels{/name}", "comments_url": u + "/comments",
				"events_url": u + "/events", "html_url": fmt.Sprintf("https://github.com/%s/%s/issues/%d", owner, repo, n),
				"id": 2e9 + rng.IntN(1e9), "node_id": "I_kwDO" + hexID(rng, 16), "number": n, "title": prose(rng, 60),
				"user": user(), "labels": ls, "state": "open", "locked": false, "assignee": nil, "assignees": []any{},
				"milestone": nil, "comments": rng.IntN(20), "created_at": created.Format(time.RFC3339),
				"updated_at": created.Add(time.Duration(rng.IntN(1e6)) * time.Second).Format(time.RFC3339), "closed_at": nil,
				"author_association": "CONTRIBUTOR", "active_lock_reason": nil, "sub_issues_summary": map[string]any{"total": 0, "completed": 0, "percent_completed": 0},
				"body": prose(rng, 300), "closed_by": nil, "timeline_url": u + "/timeline", "performed_via_github_app": nil, "state_reason": nil,
				"reactions": map[string]any{"url": u + "/reactions", "total_count": 0, "+1": 0, "-1": 0, "laugh": 0, "hooray": 0, "confused": 0, "heart": 0, "rocket": 0, "eyes": 0},
			})
		}
		res, _ := json.Marshal(issues)
		return string(res)
	})
}

// chatRequest assembles an OpenAI-style chat request of about size bytes,
// calling toolResult for the content of each tool message.
func chatRequest(rng *rand.Rand, size int, toolResult func() string) []byte {
	type msg map[string]any
	tools := []any{}
	for _, name := range []string{"web_search", "list_issues", "run_sql", "read_file"} {
		tools = append(tools, map[string]any{"type": "function", "function": map[string]any{
			"name": name, "description": prose(rng, 160),
			"parameters": map[string]any{"type": "object", "required": []string{"query"}, "properties": map[string]any{
				"query": map[string]any{"type": "string", "description": prose(rng, 60)},
				"limit": map[string]any{"type": "integer", "minimum": 1, "maximum": 50},
			}},
		}})
	}
	msgs := []msg{{"role": "system", "content": prose(rng, 1500)}, {"role": "user", "content": prose(rng, 300)}}
	body := map[string]any{"model": "gpt-4o-2024-08-06", "temperature": 0.2, "stream": true, "tools": tools}
	for {
		body["messages"] = msgs
		b, _ := json.Marshal(body)
		if len(b) >= size {
			return b
		}
		call := "call_" + hexID(rng, 24)
		msgs = append(msgs, msg{"role": "assistant", "content": nil, "tool_calls": []any{map[string]any{
			"id": call, "type": "function",
			"function": map[string]any{"name": "web_search", "arguments": fmt.Sprintf(`{"query":%q,"limit":5}`, prose(rng, 40))},
		}}})
		msgs = append(msgs, msg{"role": "tool", "tool_call_id": call, "content": toolResult()})
		msgs = append(msgs, msg{"role": "assistant", "content": prose(rng, 400)})
		msgs = append(msgs, msg{"role": "user", "content": prose(rng, 120)})
	}
}

// sseStream is an OpenAI-style streamed completion of about size bytes, one
// chat.completion.chunk per token, with its events, as the proxy records it.
func sseStream(seed uint64, size int) ([]byte, []Event) {
	rng := rand.New(rand.NewPCG(seed, 9))
	id := "chatcmpl-" + hexID(rng, 29)
	words := strings.Fields(prose(rng, size/8))
	var body []byte
	var evs []Event
	for i := 0; len(body) < size; i++ {
		tok, _ := json.Marshal(" " + words[i%len(words)])
		ev := fmt.Appendf(nil, `data: {"id":%q,"object":"chat.completion.chunk","created":1732672803,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_0ba0d124f1","choices":[{"index":0,"delta":{"content":%s},"logprobs":null,"finish_reason":null}]}`+"\n\n", id, tok)
		body = append(body, ev...)
		evs = append(evs, Event{OffsetMs: int64(i*20 + rng.IntN(20)), Data: ev})
	}
	return body, evs
}

// llmShapes are the 50 KB LLM-style bodies measured by the ratio test and
// BenchmarkRecordLLMJSON, with the lowest acceptable compression ratio
// (body bytes / stored value bytes).
var llmShapes = []struct {
	name     string
	minRatio float64
	make     func() Interaction
}{
	{"agent-request", 4, func() Interaction { return llmRequest(agentChatJSON(1, 50<<10)) }},
	{"sse-stream", 4, func() Interaction {
		in := llmRequest([]byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello."}],"stream":true}`))
		in.Response.Header = http.Header{"Content-Type": {"text/event-stream"}}
		in.Response.Body, in.Response.Events = sseStream(1, 50<<10)
		in.Response.Streamed = true
		return in
	}},
	{"prose-heavy", 2, func() Interaction { return llmRequest(proseChatJSON(1, 50<<10)) }},
}

func llmRequest(body []byte) Interaction {
	in := sample(0, 1, "POST https://api.openai.com/v1/chat/completions")
	in.Request.Method = "POST"
	in.Request.URL = "https://api.openai.com/v1/chat/completions"
	in.Request.Header = http.Header{"Content-Type": {"application/json"}, "Authorization": {"Bearer [REDACTED]"}}
	in.Request.Body = body
	return in
}

// bodyLen is the size of the LLM body of in (the request, or the streamed response).
func bodyLen(in *Interaction) int {
	if in.Response.Streamed {
		return len(in.Response.Body)
	}
	return len(in.Request.Body)
}

// jsonInteraction is a ~2 KB JSON API exchange.
func jsonInteraction(rng *rand.Rand, i int) Interaction {
	in := sample(0, i, fmt.Sprint("GET https://api.example.com/items/", i%50))
	in.Response.Body = fmt.Appendf(nil, `{"id":%q,"items":[{"name":%q,"note":%q},{"name":%q,"note":%q}],"page":%d}`,
		hexID(rng, 16), prose(rng, 40), prose(rng, 900), prose(rng, 40), prose(rng, 900), i)
	return in
}

// TestCompressionRatioLLMJSON holds the compression targets for 50 KB
// LLM-style bodies: ≥4× for agent requests and streamed completions.
func TestCompressionRatioLLMJSON(t *testing.T) {
	for _, sh := range llmShapes {
		t.Run(sh.name, func(t *testing.T) {
			in := sh.make()
			if n := bodyLen(&in); n < 50<<10 || n > 60<<10 {
				t.Fatalf("body is %d bytes", n)
			}
			stored := storedSize(t, &in)
			ratio := float64(bodyLen(&in)) / float64(stored)
			t.Logf("body %d B, stored %d B, ratio %.2f×", bodyLen(&in), stored, ratio)
			if ratio < sh.minRatio {
				t.Fatalf("compression ratio %.2f× < %.0f×", ratio, sh.minRatio)
			}
		})
	}
}

func BenchmarkRecord32Writers(b *testing.B) {
	s, err := Open(b.TempDir()+"/bench.db", Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	rec := s.NewRecorder(RecorderOptions{})
	pool := make([]Interaction, 64)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range pool {
		pool[i] = jsonInteraction(rng, i)
	}
	b.SetBytes(int64(len(pool[0].Response.Body)))
	b.SetParallelism((32 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	var next atomic.Int64
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1)
			if err := rec.Record("bench", pool[i%int64(len(pool))]); err != nil {
				b.Error(err)
				return
			}
		}
	})
	if err := rec.Flush(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
	b.StopTimer()
	if err := rec.Close(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkRecordLLMJSON records 50 KB LLM-style exchanges: every body
// different (each one redacted, compressed and stored: the cost of new
// answers) or the same body again (stored once: hashed, not compressed).
func BenchmarkRecordLLMJSON(b *testing.B) {
	for _, sh := range llmShapes {
		for _, unique := range []bool{true, false} {
			b.Run(sh.name+map[bool]string{true: "/unique", false: "/repeated"}[unique], func(b *testing.B) {
				s, err := Open(b.TempDir()+"/bench.db", Options{})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				rec := s.NewRecorder(RecorderOptions{})
				in := sh.make()
				size := storedSize(b, &in)
				b.SetBytes(int64(bodyLen(&in)))
				b.ResetTimer()
				i := 0
				for b.Loop() {
					rin := in
					if unique { // a different body each time: the first bytes carry the count
						i++
						rin.Request.Body = stamp(in.Request.Body, i)
						rin.Response.Body = stamp(in.Response.Body, i)
					}
					if err := rec.Record("llm", rin); err != nil {
						b.Fatal(err)
					}
				}
				if err := rec.Flush(); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(size), "stored-B/op")
				b.ReportMetric(float64(bodyLen(&in))/float64(size), "ratio")
			})
		}
	}
}

// stamp returns a copy of body whose first bytes are n in decimal.
func stamp(body []byte, n int) []byte {
	out := bytes.Clone(body)
	copy(out, strconv.Itoa(n))
	return out
}

// storedSize is what in costs the store the first time: its value plus, when
// its body is kept apart, the packed body.
func storedSize(tb testing.TB, in *Interaction) int {
	v, sb, err := encodeForStore(in, nil, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if sb != nil {
		return len(v) + len(sb.packed)
	}
	return len(v)
}

func BenchmarkInteractions1k(b *testing.B) {
	s, err := Open(b.TempDir()+"/bench.db", Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	rec := s.NewRecorder(RecorderOptions{})
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range 1000 {
		if err := rec.Record("c", jsonInteraction(rng, i)); err != nil {
			b.Fatal(err)
		}
	}
	if err := rec.Close(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		ins, err := s.Interactions("c")
		if err != nil || len(ins) != 1000 {
			b.Fatalf("%d, %v", len(ins), err)
		}
	}
}
