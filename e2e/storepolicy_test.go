package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cassetteproxy/cassetteproxy/store"
)

// The store policy tests put these in every body they want kept out: found
// anywhere in the store, a body byte was kept.
const (
	hashMark   = "HASHMARK-7d41c9"  // bodies to and from the hash-only host
	fieldsMark = "FIELDMARK-2be88a" // the parts of the fields host's bodies not listed in keep
	fullMark   = "FULLMARK-93aa0e"  // the full host's answer: kept, as a control
)

// storePolicyWorld is three HTTPS tool hosts (one per policy) and a rules
// file giving the first store: hash and the second store: fields.
type storePolicyWorld struct {
	hash, fields, full *upstream
	rules              string
	agent              string // a script that calls all three through the proxy
}

func newStorePolicyWorld(t *testing.T) *storePolicyWorld {
	w := &storePolicyWorld{}
	w.hash = newUpstream(t, true, http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		rw.Header().Set("Content-Type", "application/json")
		io.WriteString(rw, `{"id": "ch_1", "status": "succeeded", "receipt": "`+hashMark+`"}`)
	}))
	w.fields = newUpstream(t, true, http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		rw.Header().Set("Content-Type", "application/json")
		io.WriteString(rw, `{"id": 7, "email": "`+fieldsMark+`", "items": [{"name": "a", "note": "`+fieldsMark+`"}, {"name": "b"}]}`)
	}))
	w.full = newUpstream(t, true, http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "application/json")
		io.WriteString(rw, `{"doc": "`+fullMark+`"}`)
	}))
	host := func(u *upstream) string { return strings.TrimPrefix(u.URL, "https://") }
	w.rules = writeRules(t, fmt.Sprintf(`rules:
  - host: "%s"
    store: hash
  - host: "%s"
    store: fields
    keep: [$.id, "$.items[*].name"]
`, host(w.hash), host(w.fields)))
	// Each call fails the script unless the answer came back whole: record
	// mode hands the client the upstream's bytes, whatever is stored.
	w.agent = fmt.Sprintf(`set -e
curl -sf -X POST -H 'Content-Type: application/json' -d '{"model": "%[1]s", "amount": 5}' %[2]s/v1/charges | grep -q %[1]s
curl -sf -X POST -H 'Content-Type: application/json' -d '{"id": 7, "comment": "%[3]s"}' %[4]s/v1/contacts | grep -q %[3]s
curl -sf %[5]s/v1/doc | grep -q %[6]s
`, hashMark, w.hash.URL, fieldsMark, w.fields.URL, w.full.URL, fullMark)
	return w
}

// TestStorePolicyPerHost records a run against a hash-only host, a
// fields-only host and a full one, and checks what reached the store, what
// `cassettes show` and `export` say, the side effect on the hash-only host,
// and replay: blocked body_not_recorded for the hosts whose bodies were
// not kept, answered for the full one, and a failed strict run.
func TestStorePolicyPerHost(t *testing.T) {
	e := newEnv(t)
	w := newStorePolicyWorld(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "agent.sh"), []byte(w.agent), 0o644)
	out, errOut, code := e.runIn(dir, nil, "--mode", "record", "--cassette", "sp", "--rules", w.rules, "--upstream-ca", w.hash.caFile,
		"--side-effect", "POST "+w.hash.URL+"/v1/charges*", "--", "sh", "agent.sh")
	r := e.showRun("")
	if code != 0 || r.Status != "passed" {
		t.Fatalf("record run: exit %d, %s/%s %q\n%s%s", code, r.Status, r.FailureClass, r.FailureReason, out, errOut)
	}

	// The store file: no byte of a body kept out, raw or decoded; nor
	// the run record (it reads models from request bodies).
	if runJSON, _, _ := e.cli("runs", "show", r.RunID, "--json"); strings.Contains(runJSON, hashMark) || !strings.Contains(runJSON, `"side_effects"`) {
		t.Errorf("the run record:\n%s", runJSON)
	}
	raw, err := os.ReadFile(e.db)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{hashMark, fieldsMark} {
		if bytes.Contains(raw, []byte(m)) {
			t.Errorf("the store file holds %s", m)
		}
	}
	ins := storedInteractions(t, e.db, "sp")
	if len(ins) != 3 {
		t.Fatalf("%d interactions stored, want 3", len(ins))
	}
	var decoded bytes.Buffer
	for _, in := range ins {
		js, _ := json.Marshal(in)
		decoded.Write(js)
		decoded.Write(in.Request.Body)
		decoded.Write(in.Response.Body)
		for _, ev := range in.Response.Events {
			decoded.Write(ev.Data)
		}
	}
	for _, m := range []string{hashMark, fieldsMark} {
		if bytes.Contains(decoded.Bytes(), []byte(m)) {
			t.Errorf("a decoded interaction holds %s", m)
		}
	}
	if !bytes.Contains(decoded.Bytes(), []byte(fullMark)) {
		t.Error("the full host's answer was not kept (the scan would find nothing anyway)")
	}
	for _, in := range ins {
		q, p := in.Request.NotRecorded, in.Response.NotRecorded
		switch {
		case strings.HasPrefix(in.Request.URL, w.hash.URL):
			if q == nil || p == nil || q.Policy != "hash" || p.Policy != "hash" || q.Fields != nil || p.Fields != nil || len(p.SHA256) != 64 || p.Size == 0 {
				t.Errorf("hash host: markers %+v %+v", q, p)
			}
		case strings.HasPrefix(in.Request.URL, w.fields.URL):
			// Exactly the listed paths, from both bodies.
			if q == nil || p == nil || string(q.Fields) != `{"id":7}` || string(p.Fields) != `{"id":7,"items":[{"name":"a"},{"name":"b"}]}` {
				t.Errorf("fields host kept %s and %s", fieldsOf(q), fieldsOf(p))
			}
		default:
			if q != nil || p != nil {
				t.Errorf("full host got markers: %+v %+v", q, p)
			}
		}
	}

	// cassettes show says what was kept, and nothing else.
	show, _, _ := e.cli("cassettes", "show", "sp")
	for _, want := range []string{"hash sha256:", "store:hash", `fields {"id":7,"items":[{"name":"a"},{"name":"b"}]} of`, "store:fields"} {
		if !strings.Contains(show, want) {
			t.Errorf("cassettes show lacks %q:\n%s", want, show)
		}
	}
	showJSON, _, _ := e.cli("cassettes", "show", "sp", "--json")
	if strings.Contains(show+showJSON, hashMark) || strings.Contains(show+showJSON, fieldsMark) || !strings.Contains(showJSON, `"policy": "hash"`) {
		t.Errorf("cassettes show --json:\n%s", showJSON)
	}

	// Export keeps the constraint; the fixture imports back the same.
	fx := filepath.Join(t.TempDir(), "fx")
	if _, errOut, code := e.cli("export", "--cassette", "sp", "--out", fx); code != 0 {
		t.Fatalf("export: %s", errOut)
	}
	tc, _ := os.ReadFile(filepath.Join(fx, "tool_cassettes.json"))
	if bytes.Contains(tc, []byte(hashMark)) || bytes.Contains(tc, []byte(fieldsMark)) || !bytes.Contains(tc, []byte(`"policy": "fields"`)) {
		t.Errorf("tool_cassettes.json:\n%s", tc)
	}
	if _, errOut, code := e.cli("import", "--in", fx, "--cassette", "sp-back"); code != 0 {
		t.Fatalf("import: %s", errOut)
	}
	back := storedInteractions(t, e.db, "sp-back")
	for i := range back {
		a, _ := store.EncodeInteraction(&ins[i])
		b, _ := store.EncodeInteraction(&back[i])
		if !bytes.Equal(a, b) {
			t.Errorf("interaction %d differs after export and import:\n%+v\n%+v", i, ins[i], back[i])
		}
	}

	// Replay, the tools gone: the hosts whose answers were not kept are
	// blocked, saying which host and which policy; the full one answers.
	w.hash.Close()
	w.fields.Close()
	w.full.Close()
	p := e.serve("--mode", "replay", "--cassette", "sp", "--rules", w.rules)
	c := e.client(p)
	for _, tt := range []struct {
		method, url, body, blocked string
		says                       []string
	}{
		{"POST", w.hash.URL + "/v1/charges", `{"model": "` + hashMark + `", "amount": 5}`, "body_not_recorded",
			[]string{"of " + strings.TrimPrefix(w.hash.URL, "https://") + " (", "store: hash"}},
		{"POST", w.fields.URL + "/v1/contacts", `{"id": 7, "comment": "` + fieldsMark + `"}`, "body_not_recorded",
			[]string{"of " + strings.TrimPrefix(w.fields.URL, "https://") + " (", "store: fields"}},
		{"GET", w.full.URL + "/v1/doc", "", "", []string{fullMark}},
		{"POST", w.hash.URL + "/v1/charges", `{"model": "` + hashMark + `", "amount": 6}`, "mutation_blocked", []string{"never recorded"}},
	} {
		a := do(t, c, tt.method, tt.url, tt.body)
		says := true
		for _, s := range tt.says {
			says = says && bytes.Contains(a.body, []byte(s))
		}
		if a.header.Get("X-Cassetteproxy-Blocked") != tt.blocked || !says {
			t.Errorf("%s %s: %d %q %s; want blocked %q saying %q", tt.method, tt.url, a.status, a.header.Get("X-Cassetteproxy-Blocked"), a.body, tt.blocked, tt.says)
		}
	}
	p.stop()

	// A strict run that needs the hash-only answer fails, with the block counted.
	os.WriteFile(filepath.Join(dir, "replay.sh"), []byte(fmt.Sprintf(
		"curl -s -X POST -H 'Content-Type: application/json' -d '{\"model\": \"%s\", \"amount\": 5}' %s/v1/charges > /dev/null\ncurl -sf %s/v1/doc > /dev/null\n",
		hashMark, w.hash.URL, w.full.URL)), 0o644)
	out, errOut, code = e.runIn(dir, nil, "--mode", "strict", "--cassette", "sp", "--rules", w.rules, "--", "sh", "replay.sh")
	rr := e.lastRun()
	if code != 3 || rr.Status != "failed" || rr.FailureClass != "body_not_recorded" || !strings.Contains(rr.FailureReason, w.hash.URL+"/v1/charges (body_not_recorded)") {
		t.Fatalf("strict run: exit %d, %s/%s %q\n%s%s", code, rr.Status, rr.FailureClass, rr.FailureReason, out, errOut)
	}
}

// TestStorePolicyBadRules: a store policy the rules file gets wrong stops
// the proxy with one line naming the file and line, and leaves the store
// as it was.
func TestStorePolicyBadRules(t *testing.T) {
	e := newEnv(t)
	for _, tt := range []struct {
		rules, want string
	}{
		{"rules:\n  - host: a.test\n    store: bytes\n", `rules.yaml:3: store must be full, fields or hash, not "bytes"`},
		{"rules:\n  - host: a.test\n    store: fields\n    keep:\n      - $.id\n      - $.a[\n", `rules.yaml:6: invalid JSON path "$.a["`},
		{"rules:\n  - host: a.test\n    keep: [$.id]\n", "rules.yaml:3: keep needs store: fields"},
		{"rules:\n  - host: a.test\n    store: fields\n", "rules.yaml:3: store: fields needs keep"},
	} {
		_, stderr, code := e.cli("serve", "--listen", "127.0.0.1:0", "--mode", "record", "--cassette", "x", "--rules", writeRules(t, tt.rules))
		if code != 1 || !strings.Contains(stderr, tt.want) || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
			t.Errorf("exit %d, stderr %q: want one line with %q", code, stderr, tt.want)
		}
	}
	if _, err := os.Stat(e.db); err == nil {
		if out, errOut, code := e.cli("cassettes", "ls"); code != 0 || strings.Contains(out, "x ") {
			t.Errorf("a refused rules file left a cassette: %s%s", out, errOut)
		}
	}
}

func storedInteractions(t *testing.T, db, cassette string) []store.Interaction {
	t.Helper()
	st, err := store.Open(db, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ins, err := st.Interactions(cassette)
	if err != nil {
		t.Fatal(err)
	}
	return ins
}

func fieldsOf(m *store.BodyMarker) string {
	if m == nil {
		return "(no marker)"
	}
	return string(m.Fields)
}
