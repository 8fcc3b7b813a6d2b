package proxy

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cassetteproxy/cassetteproxy/match"
	"github.com/cassetteproxy/cassetteproxy/redact"
	"github.com/cassetteproxy/cassetteproxy/store"
)

// TestStartWithCassette: Start with PrepareCassette, as serve does, for
// every way a cassette starts: a real upstream, a real client, and what the
// store holds after Drain.
func TestStartWithCassette(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "live "+r.URL.Path) }))
	defer up.Close()
	ca, err := LoadOrCreateCA(filepath.Join(t.TempDir(), "home"))
	if err != nil {
		t.Fatal(err)
	}
	red, err := redact.New(redact.Config{})
	if err != nil {
		t.Fatal(err)
	}
	replayRule, err := match.ParseRules([]byte("rules:\n  - host: replayed.test\n    mode: replay\n"))
	if err != nil {
		t.Fatal(err)
	}
	old := store.Interaction{Request: store.Request{Method: "GET", URL: up.URL + "/old"}, Response: store.Response{Status: 200, Body: []byte("old")}}
	cases := []struct {
		name      string
		mode      Mode
		rules     *match.Rules
		append    bool
		stored    bool   // the cassette exists, holding /old
		wantErr   string // PrepareCassette's
		wantBody  string // GET /old through the proxy
		wantAfter int    // interactions in the store after Drain
	}{
		{"record starts afresh", ModeRecord, nil, false, true, "", "live /old", 1},
		{"record appends", ModeRecord, nil, true, true, "", "live /old", 2},
		{"record creates with --append", ModeRecord, nil, true, false, "", "live /old", 1},
		{"record with replay rules loads and adds", ModeRecord, replayRule, false, true, "", "live /old", 2},
		{"replay serves", ModeReplay, nil, false, true, "", "old", 1},
		{"replay needs the cassette", ModeReplay, nil, false, false, `cassette "c" not found in`, "", 0},
		{"live adds", ModeLive, nil, false, true, "", "old", 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rules := tc.rules
			if rules == nil {
				rules = match.DefaultRules()
			}
			st, err := store.Open(filepath.Join(t.TempDir(), "c.db"), store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if tc.stored {
				if err := st.WriteCassette("c", []store.Interaction{old}, true); err != nil {
					t.Fatal(err)
				}
			}
			start, err := PrepareCassette(st, "c", rules, PlanFor(tc.mode, rules), tc.mode, tc.append)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("error %v, want one line with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			r, err := Start(Launch{Listener: ln, RecordTo: st, Cassette: start, Config: Config{Mode: tc.mode, Cassette: "c",
				Rules: rules, Redactor: red, CA: ca, Logger: slog.New(slog.DiscardHandler)}})
			if err != nil {
				t.Fatal(err)
			}
			pu, _ := url.Parse("http://" + r.Addr)
			client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu)}}
			resp, err := client.Get(up.URL + "/old")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			client.CloseIdleConnections()
			if string(body) != tc.wantBody {
				t.Errorf("answer %q, want %q", body, tc.wantBody)
			}
			if lost, reason, err := r.Drain(); lost != 0 || err != nil {
				t.Fatalf("drain: %d lost (%s), %v", lost, reason, err)
			}
			if err := <-r.Served(); err != nil {
				t.Fatalf("served: %v", err)
			}
			ins, err := st.Interactions("c")
			if err != nil || len(ins) != tc.wantAfter {
				t.Fatalf("the store holds %d interactions (%v), want %d", len(ins), err, tc.wantAfter)
			}
		})
	}
}

// TestStartFailureLeavesNothing: a Config New refuses closes the listener
// and leaves the cassette as it was.
func TestStartFailureLeavesNothing(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "c.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.WriteCassette("c", []store.Interaction{{Request: store.Request{Method: "GET", URL: "http://t.test/"}, Response: store.Response{Status: 200}}}, true); err != nil {
		t.Fatal(err)
	}
	start, err := PrepareCassette(st, "c", match.DefaultRules(), PlanFor(ModeRecord, nil), ModeRecord, false)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Start(Launch{Listener: ln, RecordTo: st, Cassette: start, Config: Config{Mode: ModeRecord}}); err == nil {
		t.Fatal("Start without CA, rules and redactor succeeded")
	}
	if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		c.Close()
		t.Error("the listener is still open")
	}
	if ins, _ := st.Interactions("c"); len(ins) != 1 {
		t.Errorf("a failed start emptied the cassette: %d interactions", len(ins))
	}
}

func TestLoadRoots(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o644)
	cases := []struct {
		files   []string
		wantErr string
	}{
		{nil, ""},
		{[]string{filepath.Join(dir, "missing.pem")}, "read --upstream-ca"},
		{[]string{notPEM}, "no PEM certificate"},
	}
	for _, c := range cases {
		pool, err := LoadRoots(c.files)
		switch {
		case c.wantErr == "" && (err != nil || pool != nil):
			t.Errorf("%v: %v, %v", c.files, pool, err)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("%v: error %v, want %q", c.files, err, c.wantErr)
		}
	}
}
