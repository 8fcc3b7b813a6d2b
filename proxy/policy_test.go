package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cassetteproxy/cassetteproxy/match"
	"github.com/cassetteproxy/cassetteproxy/redact"
	"github.com/cassetteproxy/cassetteproxy/store"
)

// TestPolicyTable walks the policy table: for every mode and every
// situation, a real client sends real requests through the proxy to a real
// upstream on loopback, and what happened (the answer, the upstream's
// count, the recordings committed, the index) must be what the table's
// cell says.
func TestPolicyTable(t *testing.T) {
	var hits atomic.Int64
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, "upstream "+r.URL.Path)
	})
	up := httptest.NewServer(handler)
	defer up.Close()
	upTLS := httptest.NewTLSServer(handler) // a host the cassette never saw, reached by CONNECT
	defer upTLS.Close()
	roots := x509.NewCertPool()
	roots.AddCert(upTLS.Certificate())
	ca, err := LoadOrCreateCA(filepath.Join(t.TempDir(), "home"))
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(ca.CertPath)
	if err != nil {
		t.Fatal(err)
	}
	clientRoots := x509.NewCertPool()
	clientRoots.AppendCertsFromPEM(caPEM)
	red, err := redact.New(redact.Config{})
	if err != nil {
		t.Fatal(err)
	}
	blockIncomplete, err := match.ParseRules([]byte("incomplete: block\n"))
	if err != nil {
		t.Fatal(err)
	}
	notAllowed, err := match.ParseHostPatterns([]string{"allowed.test"})
	if err != nil {
		t.Fatal(err)
	}

	recorded := func(path string, at time.Time, resp store.Response) store.Interaction {
		return store.Interaction{RecordedAt: at, Request: store.Request{Method: "GET", URL: up.URL + path}, Response: resp}
	}
	now, old := time.Now(), time.Now().Add(-48*time.Hour)
	cassette := func() []store.Interaction {
		return []store.Interaction{
			recorded("/hit", now, store.Response{Status: 200, Body: []byte("recorded /hit")}),
			recorded("/old", old, store.Response{Status: 200, Body: []byte("recorded /old")}),
			recorded("/cut", now, store.Response{Status: 200, Body: []byte("cut"), Incomplete: true, ContentLength: 10}),
			recorded("/big", now, store.Response{Status: 200, NotRecorded: &store.BodyMarker{Size: 1 << 30}}),
			recorded("/ws", now, store.Response{Status: http.StatusSwitchingProtocols, Upgrade: true,
				Events: []store.Event{{Dir: store.DirServer, Data: []byte("hello")}}}),
		}
	}
	wsHeader := http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"},
		"Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}, "Sec-Websocket-Version": {"13"}}

	// How each situation is brought about: the requests sent (the last is
	// judged) and the configuration.
	situations := [numSituations]struct {
		method, path string
		times        int // requests sent: the last one is judged
		header       http.Header
		tls          bool // to the never-recorded host, through a CONNECT tunnel
		tweak        func(*Config)
	}{
		Hit:                {method: "GET", path: "/hit", times: 1},
		HitExhausted:       {method: "GET", path: "/hit", times: 2},
		HitIncompleteBlock: {method: "GET", path: "/cut", times: 1, tweak: func(c *Config) { c.Rules = blockIncomplete }},
		HitExpired:         {method: "GET", path: "/old", times: 1, tweak: func(c *Config) { c.MaxRecordingAge = time.Hour }},
		HitExpiredBlock:    {method: "GET", path: "/old", times: 1, tweak: func(c *Config) { c.MaxRecordingAge, c.ExpiredBlock = time.Hour, true }},
		HitNotKept:         {method: "GET", path: "/big", times: 1},
		MissSafe:           {method: "GET", path: "/never", times: 1},
		MissMutating:       {method: "POST", path: "/never", times: 2},
		HostNotAllowed:     {method: "GET", path: "/hit", times: 1, tweak: func(c *Config) { c.AllowHosts = notAllowed }},
		HostUnknown:        {method: "GET", path: "/never", times: 1, tls: true},
		WebSocket:          {method: "GET", path: "/ws", times: 1, header: wsHeader},
		Upgrade:            {method: "GET", path: "/up", times: 1, header: http.Header{"Connection": {"Upgrade"}, "Upgrade": {"example/1"}}},
	}

	for _, pol := range policies {
		for sit, how := range situations {
			sit := Situation(sit)
			rule := pol.On[sit]
			t.Run(string(pol.Mode)+"/"+sit.String(), func(t *testing.T) {
				var rec *store.Recorder
				if pol.Dials {
					st, err := store.Open(filepath.Join(t.TempDir(), "c.db"), store.Options{})
					if err != nil {
						t.Fatal(err)
					}
					defer st.Close()
					rec = st.NewRecorder(store.RecorderOptions{})
				}
				var mu sync.Mutex
				var outs []Outcome
				cfg := Config{Mode: pol.Mode, Cassette: "t", Interactions: cassette(), Recorder: rec, Rules: match.DefaultRules(),
					Redactor: red, CA: ca, UpstreamRoots: roots,
					Observe: func(o Outcome) { mu.Lock(); outs = append(outs, o); mu.Unlock() }}
				if how.tweak != nil {
					how.tweak(&cfg)
				}
				s, err := New(cfg)
				if err != nil {
					t.Fatal(err)
				}
				if _, noDial := s.upstream.(noUpstream); noDial == pol.Dials {
					t.Fatalf("Dials %v, but the server's upstream is %T", pol.Dials, s.upstream)
				}
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				go s.Serve(ln)
				pu, _ := url.Parse("http://" + ln.Addr().String())
				client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu), TLSClientConfig: &tls.Config{RootCAs: clientRoots}}}
				defer client.CloseIdleConnections()

				target := up.URL + how.path
				if how.tls {
					target = upTLS.URL + how.path
				}
				before := hits.Load()
				var status int
				var blocked string
				var connectErr error
				for range how.times {
					req, _ := http.NewRequest(how.method, target, nil)
					for k, v := range how.header {
						req.Header[k] = v
					}
					resp, err := client.Do(req)
					if err != nil {
						connectErr = err
						break
					}
					status, blocked = resp.StatusCode, resp.Header.Get(BlockedHeader)
					if resp.StatusCode != http.StatusSwitchingProtocols {
						io.Copy(io.Discard, resp.Body)
					}
					resp.Body.Close()
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if err := s.Shutdown(ctx); err != nil {
					t.Fatal(err)
				}
				var committed int64
				if rec != nil {
					if err := rec.Close(); err != nil {
						t.Fatal(err)
					}
					committed = rec.Committed()
				}
				upstream := hits.Load() - before
				mu.Lock()
				var last Outcome
				if len(outs) > 0 {
					last = outs[len(outs)-1]
				}
				mu.Unlock()

				if sit == HostUnknown {
					// The tunnel is refused, or passed to be judged like
					// any other request: a miss.
					if rule.Action == Block {
						if connectErr == nil || last.Method != http.MethodConnect || last.Reason != rule.Reason {
							t.Fatalf("CONNECT not refused %s: err %v, outcome %+v", rule.Reason, connectErr, last)
						}
						return
					}
					if connectErr != nil {
						t.Fatalf("CONNECT refused: %v", connectErr)
					}
					rule = pol.On[MissSafe]
				}
				if connectErr != nil {
					t.Fatal(connectErr)
				}
				switch rule.Action {
				case Block:
					if blocked != rule.Reason || status != http.StatusForbidden || last.Decision != DecisionBlocked || upstream != 0 {
						t.Fatalf("want blocked %s: status %d, header %q, outcome %+v, upstream %d", rule.Reason, status, blocked, last, upstream)
					}
				case Replay, ReplayExpired:
					want := http.StatusOK
					if sit == WebSocket {
						want = http.StatusSwitchingProtocols
					}
					if status != want || last.Decision != DecisionReplayed || upstream != 0 || (rule.Action == ReplayExpired) != (last.Reason == ReasonExpired) {
						t.Fatalf("want %v: status %d, outcome %+v, upstream %d", rule.Action, status, last, upstream)
					}
				case Record, RecordAdd:
					want := DecisionRecorded
					if sit == WebSocket || sit == Upgrade {
						want = DecisionTunnelled
					}
					if last.Decision != want || upstream != int64(how.times) || committed != int64(how.times) {
						t.Fatalf("want %v: outcome %+v, upstream %d, committed %d", rule.Action, last, upstream, committed)
					}
					if added := s.index.Len() - len(cassette()); added != 0 != (rule.Action == RecordAdd) {
						t.Fatalf("want %v: the index grew by %d", rule.Action, added)
					}
				default:
					t.Fatalf("action %v in a request's cell", rule.Action)
				}
			})
		}
	}
}

// TestPolicyColumns: the columns that summarize a row agree with its cells.
func TestPolicyColumns(t *testing.T) {
	for _, m := range match.Modes {
		pol := PolicyFor(m)
		if pol.Mode != m {
			t.Fatalf("PolicyFor(%s) is %s's row", m, pol.Mode)
		}
		forwards := false
		for _, r := range pol.On {
			forwards = forwards || r.Action == Record || r.Action == RecordAdd
			if (r.Action == Block) != (r.Reason != "") {
				t.Errorf("%s: a cell %+v: a block needs a reason, and only a block has one", m, r)
			}
		}
		if pol.Dials != forwards {
			t.Errorf("%s: Dials %v, but a cell forwards: %v", m, pol.Dials, forwards)
		}
		for _, r := range []Rule{pol.On[HostNotAllowed], pol.On[HitExpiredBlock]} {
			if r.Action == Block && !pol.FailsRun(r.Reason) {
				t.Errorf("%s: %s does not fail the run", m, r.Reason)
			}
		}
		if pol.FailsRun(ReasonUnrecorded) != pol.BlockFailsRun {
			t.Errorf("%s: an unrecorded request fails the run: %v", m, pol.FailsRun(ReasonUnrecorded))
		}
	}
}

// TestPolicyDocumented: docs/internals.md shows the table as it is here.
func TestPolicyDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/internals.md")
	if err != nil {
		t.Fatal(err)
	}
	if want := policyMarkdown(); !strings.Contains(string(doc), want) {
		t.Fatalf("docs/internals.md does not hold the policy table as policy.go has it; the table is:\n%s", want)
	}
}

// policyMarkdown renders the table: a row per situation, a column per mode.
func policyMarkdown() string {
	var b strings.Builder
	b.WriteString("| situation |")
	for _, p := range policies {
		b.WriteString(" `" + string(p.Mode) + "` |")
	}
	b.WriteString("\n| --- |" + strings.Repeat(" --- |", len(policies)) + "\n")
	for s := range numSituations {
		b.WriteString("| " + s.String() + " |")
		for _, p := range policies {
			r := p.On[s]
			cell := map[Action]string{Pass: "intercepted", Replay: "replayed", ReplayExpired: "replayed, marked expired",
				Record: "forwarded, recorded", RecordAdd: "forwarded, recorded, replayed next time"}[r.Action]
			if r.Action == Block {
				cell = "blocked `" + r.Reason + "`"
				if r.FailsRun {
					cell += ", fails the run"
				}
			}
			b.WriteString(" " + cell + " |")
		}
		b.WriteString("\n")
	}
	row := func(name string, f func(*Policy) bool) {
		b.WriteString("| " + name + " |")
		for i := range policies {
			b.WriteString(map[bool]string{true: " yes |", false: " no |"}[f(&policies[i])])
		}
		b.WriteString("\n")
	}
	row("upstream dialer", func(p *Policy) bool { return p.Dials })
	row("every block fails the run", func(p *Policy) bool { return p.BlockFailsRun })
	return b.String()
}
