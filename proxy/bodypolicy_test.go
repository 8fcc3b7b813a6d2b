package proxy

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cassetteproxy/cassetteproxy/match"
	"github.com/cassetteproxy/cassetteproxy/store"
)

// TestStorePolicyRecordAndReplay: recorded through the proxy under a rules
// file's store policy, a hash host's bodies reach the store as markers only
// and a fields host's as its kept fields; replayed, their answers are
// blocked body_not_recorded (naming the host and the policy) in every mode
// that serves from the cassette, while a full host's are served, and a
// request with another body still misses.
func TestStorePolicyRecordAndReplay(t *testing.T) {
	const secret = "MARKER-5b1e"
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id": 41, "path": "`+r.URL.Path+`", "echo": `+string(b)+`, "note": "`+secret+`"}`)
	}))
	defer up.Close()
	rules, err := match.ParseRules([]byte("rules:\n  - path: /hash/*\n    store: hash\n  - path: /fields/*\n    store: fields\n    keep: [$.id]\n"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(t.TempDir(), "c.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rec := st.NewRecorder(store.RecorderOptions{})
	var mu sync.Mutex
	observed := map[string][]byte{} // path -> the request body the observer saw
	_, c := startTestServer(t, ModeRecord, nil, func(cfg *Config) {
		cfg.Recorder, cfg.Rules = rec, rules
		cfg.Observe = func(o Outcome) {
			mu.Lock()
			defer mu.Unlock()
			u, _ := url.Parse(o.URL)
			observed[u.Path] = o.Body
		}
	})
	reqBody := `{"text": "` + secret + `"}`
	post := func(c *http.Client, path, body string) *http.Response {
		t.Helper()
		resp, err := c.Post(up.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for _, p := range []string{"/hash/send", "/fields/send", "/full/send"} {
		resp := post(c, p, reqBody)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !bytes.Contains(b, []byte(secret)) {
			t.Fatalf("record mode changed the answer of %s: %s", p, b)
		}
	}
	// The run record (stored too) reads model names from what the observer
	// sees: only the full host's body.
	mu.Lock()
	if len(observed) != 3 {
		t.Errorf("the observer saw %d requests, want 3", len(observed))
	}
	for path, b := range observed {
		if want := path == "/full/send"; want != (string(b) == reqBody) {
			t.Errorf("the observer saw %q for %s", b, path)
		}
	}
	mu.Unlock()
	if err := rec.Flush(); err != nil {
		t.Fatal(err)
	}
	ins, err := st.Interactions("t")
	if err != nil || len(ins) != 3 {
		t.Fatalf("%d interactions (%v), want 3", len(ins), err)
	}
	for _, in := range ins {
		js, _ := json.Marshal(in)
		full := strings.Contains(in.Request.URL, "/full/")
		holds := bytes.Contains(js, []byte(secret)) || bytes.Contains(in.Request.Body, []byte(secret)) || bytes.Contains(in.Response.Body, []byte(secret))
		if full != holds {
			t.Errorf("%s: body bytes kept = %v, want %v: %s", in.Request.URL, !full, full, js)
		}
		if !full && (in.Request.NotRecorded == nil || in.Response.NotRecorded == nil || in.Request.NotRecorded.Match == "") {
			t.Errorf("%s: no markers: %s", in.Request.URL, js)
		}
		if strings.Contains(in.Request.URL, "/fields/") && string(in.Response.NotRecorded.Fields) != `{"id":41}` {
			t.Errorf("fields kept %s, want {\"id\":41}", in.Response.NotRecorded.Fields)
		}
	}

	for _, mode := range []Mode{ModeReplay, ModeStrict, ModeLive} {
		t.Run(string(mode), func(t *testing.T) {
			_, c := startTestServer(t, mode, ins, func(cfg *Config) { cfg.Rules = rules })
			for _, tc := range []struct{ path, body, blocked, says string }{
				{"/hash/send", reqBody, ReasonBodyNotRecorded, "store: hash"},
				{"/fields/send", reqBody, ReasonBodyNotRecorded, "store: fields"},
				{"/full/send", reqBody, "", secret},
				{"/hash/send", `{"text": "other"}`, ReasonMutation, ""},
			} {
				resp := post(c, tc.path, tc.body)
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if got := resp.Header.Get(BlockedHeader); got != tc.blocked {
					t.Errorf("%s %s: blocked %q, want %q: %s", tc.path, tc.body, got, tc.blocked, b)
				}
				if !bytes.Contains(b, []byte(tc.says)) {
					t.Errorf("%s: answer does not say %q: %s", tc.path, tc.says, b)
				}
				if tc.blocked == ReasonBodyNotRecorded && (!bytes.Contains(b, []byte(strings.TrimPrefix(up.URL, "http://"))) || bytes.Contains(b, []byte(secret))) {
					t.Errorf("%s: the answer must name the host and hold no body byte: %s", tc.path, b)
				}
			}
		})
	}
}
