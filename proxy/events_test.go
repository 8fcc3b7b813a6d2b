package proxy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cassetteproxy/cassetteproxy/match"
	"github.com/cassetteproxy/cassetteproxy/store"
)

// eventSink is an Events sink that keeps what it is given.
type eventSink struct {
	mu     sync.Mutex
	events []store.RunEvent
	err    error
}

func (k *eventSink) take(ev store.RunEvent) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.err != nil {
		return 0, k.err
	}
	k.events = append(k.events, ev)
	return len(k.events), nil
}

// eventServer is a record-mode proxy for run "run-1" with an event sink and
// an observer counting the requests it reports; it returns the proxy's
// address and a client that sends everything through it.
func eventServer(t *testing.T, sink *eventSink, tweaks ...func(*Config)) (addr string, viaProxy *http.Client, observed *atomic.Int64) {
	t.Helper()
	observed = &atomic.Int64{}
	tweaks = append([]func(*Config){func(c *Config) {
		c.RunID = "run-1"
		if sink != nil {
			c.Events = sink.take
		}
		c.Observe = func(Outcome) { observed.Add(1) }
	}}, tweaks...)
	_, c := startTestServer(t, ModeRecord, nil, tweaks...)
	pu, _ := c.Transport.(*http.Transport).Proxy(nil)
	return pu.Host, c, observed
}

func postEvent(t *testing.T, c *http.Client, url, body string) (int, string) {
	t.Helper()
	resp, err := c.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestEventsAPI: each kind's rules, in origin form, answered 202 with a
// sequence number or 400 with one line of JSON naming the problem.
func TestEventsAPI(t *testing.T) {
	tests := []struct {
		name, body string
		status     int
		errHas     string
	}{
		{"checkpoint", `{"kind":"checkpoint","name":"fetched","data":{"issues":3}}`, 202, ""},
		{"retry", `{"kind":"retry","name":"search","data":{"attempt":2}}`, 202, ""},
		{"exception", `{"kind":"exception","name":"TimeoutError","data":"swallowed"}`, 202, ""},
		{"note", `{"kind":"note","name":"plan"}`, 202, ""},
		{"artifact path", `{"kind":"artifact","path":"out/report.json"}`, 202, ""},
		{"artifact ref", `{"kind":"artifact","ref":"msg-123"}`, 202, ""},
		{"state_ref", `{"kind":"state_ref","ref":"row:42"}`, 202, ""},
		{"claim", `{"kind":"claim","status":"done","artifact_refs":["out/report.json"],"side_effects":["POST https://api.example.com/v1/messages*",{"method":"PUT","url":"https://x.test/*","status":"201"}]}`, 202, ""},
		{"this run's id", `{"kind":"note","name":"n","run_id":"run-1"}`, 202, ""},
		{"not JSON", `{"kind":`, 400, "JSON object"},
		{"not an object", `["checkpoint"]`, 400, "JSON object"},
		{"null", `null`, 400, "JSON object"},
		{"no kind", `{"name":"x"}`, 400, `no "kind"`},
		{"unknown kind", `{"kind":"teleport","name":"x"}`, 400, `unknown event kind "teleport"`},
		{"field of another kind", `{"kind":"checkpoint","name":"x","path":"a"}`, 400, `not "path"`},
		{"unknown field", `{"kind":"note","name":"x","nmae":"y"}`, 400, `not "nmae"`},
		{"checkpoint without name", `{"kind":"checkpoint","data":1}`, 400, "needs a name"},
		{"artifact without path or ref", `{"kind":"artifact","name":"r"}`, 400, "path"},
		{"state_ref without ref", `{"kind":"state_ref"}`, 400, "needs a ref"},
		{"claim not done", `{"kind":"claim","status":"maybe"}`, 400, `"status": "done"`},
		{"claim side effect bad glob", `{"kind":"claim","status":"done","side_effects":["POST ftp.example.com/x"]}`, 400, "must start with http://"},
		{"claim side effect bad status", `{"kind":"claim","status":"done","side_effects":[{"method":"POST","url":"https://x/*","status":"2xy"}]}`, 400, "not a class"},
		{"wrong type", `{"kind":"note","name":7}`, 400, "note"},
		{"wrong run id", `{"kind":"note","name":"n","run_id":"run-2"}`, 400, `run_id "run-2" is not this proxy's run`},
		{"over the limit", `{"kind":"note","name":"n","data":"` + strings.Repeat("x", MaxEventBytes) + `"}`, 400, "over 64 KiB"},
	}
	sink := &eventSink{}
	addr, _, observed := eventServer(t, sink)
	direct := &http.Client{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(sink.events)
			status, body := postEvent(t, direct, "http://"+addr+EventsPath, tt.body)
			if status != tt.status {
				t.Fatalf("status %d, want %d: %s", status, tt.status, body)
			}
			if strings.Count(body, "\n") != 1 || !json.Valid([]byte(body)) {
				t.Errorf("answer is not one line of JSON: %q", body)
			}
			if tt.status == 202 {
				var a struct{ Seq int }
				if err := json.Unmarshal([]byte(body), &a); err != nil || a.Seq != before+1 {
					t.Errorf("answer %s, want seq %d", body, before+1)
				}
				return
			}
			var a struct{ Error string }
			if err := json.Unmarshal([]byte(body), &a); err != nil || !strings.Contains(a.Error, tt.errHas) {
				t.Errorf("error %q does not say %q", body, tt.errHas)
			}
			if len(sink.events) != before {
				t.Errorf("a refused event reached the sink")
			}
		})
	}
	if n := observed.Load(); n != 0 {
		t.Errorf("events were reported as %d tool requests", n)
	}
	claim := sink.events[7]
	if claim.Kind != "claim" || len(claim.SideEffects) != 2 || claim.SideEffects[0].Min != nil || claim.SideEffects[1].Status != "201" {
		t.Errorf("claim kept as %+v", claim)
	}
}

// TestEventsInEveryForm: an event reaches the proxy in origin form (a
// client without a proxy), absolute form (a client with HTTP_PROXY set),
// and through a CONNECT tunnel to the proxy's own address (undici); each
// is answered by the proxy, never forwarded, recorded or reported as a
// request.
func TestEventsInEveryForm(t *testing.T) {
	sink := &eventSink{}
	addr, viaProxy, observed := eventServer(t, sink)
	url := "http://" + addr + EventsPath
	if st, body := postEvent(t, &http.Client{}, url, `{"kind":"note","name":"origin"}`); st != 202 {
		t.Fatalf("origin form: %d %s", st, body)
	}
	if st, body := postEvent(t, viaProxy, url, `{"kind":"note","name":"absolute"}`); st != 202 {
		t.Fatalf("absolute form: %d %s", st, body)
	}
	if st, body := postEvent(t, viaProxy, "http://localhost:"+addr[strings.LastIndex(addr, ":")+1:]+EventsPath, `{"kind":"note","name":"localhost"}`); st != 202 {
		t.Fatalf("absolute form, localhost: %d %s", st, body)
	}

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	io.WriteString(conn, "CONNECT "+addr+" HTTP/1.1\r\nHost: "+addr+"\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("CONNECT to the proxy itself: %v %v", resp, err)
	}
	for i, name := range []string{"tunnel-1", "tunnel-2"} { // keep-alive inside the tunnel
		body := `{"kind":"note","name":"` + name + `"}`
		req, _ := http.NewRequest("POST", url, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if err := req.Write(conn); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			t.Fatalf("tunnel request %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 202 || !strings.Contains(string(b), `"seq":`) {
			t.Fatalf("tunnel request %d: %d %s", i, resp.StatusCode, b)
		}
	}

	var names []string
	for _, e := range sink.events {
		names = append(names, e.Name)
	}
	if got := strings.Join(names, ","); got != "origin,absolute,localhost,tunnel-1,tunnel-2" {
		t.Errorf("events kept: %s", got)
	}
	if n := observed.Load(); n != 0 {
		t.Errorf("%d of them were handled as tool requests", n)
	}
}

// TestEventsOversizedInTunnelClosesIt: a body over the limit is refused
// and, since its rest is unread, the tunnel is closed rather than read as
// the next request.
func TestEventsOversizedInTunnelClosesIt(t *testing.T) {
	addr, _, _ := eventServer(t, &eventSink{})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	io.WriteString(conn, "CONNECT "+addr+" HTTP/1.1\r\nHost: "+addr+"\r\n\r\n")
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("CONNECT: %v %v", resp, err)
	}
	big := `{"kind":"note","name":"n","data":"` + strings.Repeat("x", 2*MaxEventBytes) + `"}`
	req, _ := http.NewRequest("POST", "http://"+addr+EventsPath, strings.NewReader(big))
	go req.Write(conn) // the proxy stops reading part way
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 400 || !strings.Contains(string(b), "over 64 KiB") || !resp.Close {
		t.Fatalf("got %d close=%v %s", resp.StatusCode, resp.Close, b)
	}
	if _, err := br.ReadByte(); err == nil {
		t.Errorf("the tunnel stayed open after an oversized event")
	}
}

// TestEventsRefusedOutsideAnOpenRun: a proxy with no run (serve), and a
// run whose command has ended, refuse events with 409; a sink failure is a
// 500 that says the event was not committed.
func TestEventsRefusedOutsideAnOpenRun(t *testing.T) {
	tests := []struct {
		name   string
		sink   *eventSink
		status int
		errHas string
	}{
		{"no run", nil, 409, "no run is open"},
		{"run closed", &eventSink{err: ErrRunClosed}, 409, "run is closed"},
		{"limit", &eventSink{err: errors.Join(ErrEventLimit)}, 429, "limit"},
		{"store failure", &eventSink{err: errors.New("disk full")}, 500, "not committed: disk full"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, _, _ := eventServer(t, tt.sink)
			status, body := postEvent(t, &http.Client{}, "http://"+addr+EventsPath, `{"kind":"note","name":"late"}`)
			if status != tt.status || !strings.Contains(body, tt.errHas) || strings.Count(body, "\n") != 1 {
				t.Fatalf("got %d %q, want %d with %q", status, body, tt.status, tt.errHas)
			}
		})
	}
	addr, _, _ := eventServer(t, &eventSink{})
	resp, err := http.Get("http://" + addr + EventsPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET events: %d %v", resp.StatusCode, resp.Header)
	}
}

// TestEventsRedacted: what the agent reports is scrubbed before the sink
// sees it, in data, name, path and ref.
func TestEventsRedacted(t *testing.T) {
	sink := &eventSink{}
	addr, _, _ := eventServer(t, sink)
	const secret = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCD"
	body := `{"kind":"artifact","name":"key ` + secret + `","ref":"https://x.test/m?api_key=` + secret + `","data":{"api_key":"` + secret + `","note":"token ` + secret + `"}}`
	if st, b := postEvent(t, &http.Client{}, "http://"+addr+EventsPath, body); st != 202 {
		t.Fatalf("%d %s", st, b)
	}
	kept, _ := json.Marshal(sink.events)
	if bytes.Contains(kept, []byte("abcdefghijklmnopqrstuvwxyz")) {
		t.Fatalf("a secret reached the sink: %s", kept)
	}
	if !bytes.Contains(kept, []byte("REDACTED")) {
		t.Fatalf("nothing was redacted: %s", kept)
	}
}

// TestAllowHostsBlockInEveryMode: a request or a tunnel to a host outside
// the allow-list is blocked host_not_allowed, record mode included, and
// the upstream never sees it; an allowed host is forwarded.
func TestAllowHostsBlockInEveryMode(t *testing.T) {
	var hits atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, "ok")
	}))
	defer up.Close()
	upHost := strings.TrimPrefix(up.URL, "http://")
	setup := func(patterns ...string) func(*Config) {
		return func(c *Config) {
			h, err := match.ParseHostPatterns(patterns)
			if err != nil {
				t.Fatal(err)
			}
			c.AllowHosts = h
		}
	}
	for _, mode := range []Mode{ModeRecord, ModeLive, ModeReplay, ModeStrict} {
		t.Run(string(mode), func(t *testing.T) {
			hits.Store(0)
			var blocked atomic.Int64
			_, c := startTestServer(t, mode, nil, setup("*.allowed.test", "127.0.0.1:1"), func(c *Config) {
				c.Observe = func(o Outcome) {
					if o.Decision == DecisionBlocked && o.Reason == ReasonHostNotAllowed {
						blocked.Add(1)
					}
				}
			})
			resp, err := c.Get(up.URL + "/x")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 403 || resp.Header.Get(BlockedHeader) != ReasonHostNotAllowed || !strings.Contains(string(b), "--allow-host") {
				t.Fatalf("plain request: %d %v %s", resp.StatusCode, resp.Header, b)
			}
			// A tunnel to the same host is refused at CONNECT.
			pu, _ := c.Transport.(*http.Transport).Proxy(nil)
			conn, err := net.Dial("tcp", pu.Host)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			io.WriteString(conn, "CONNECT "+upHost+" HTTP/1.1\r\nHost: "+upHost+"\r\n\r\n")
			cr, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil || cr.StatusCode != 403 || cr.Header.Get(BlockedHeader) != ReasonHostNotAllowed {
				t.Fatalf("CONNECT: %v %v", cr, err)
			}
			if hits.Load() != 0 {
				t.Fatalf("the upstream saw %d requests", hits.Load())
			}
			if blocked.Load() != 2 {
				t.Fatalf("observer saw %d host_not_allowed blocks, want 2", blocked.Load())
			}
		})
	}
	t.Run("allowed host is forwarded", func(t *testing.T) {
		hits.Store(0)
		_, c := startTestServer(t, ModeRecord, nil, setup("*.allowed.test", upHost))
		resp, err := c.Get(up.URL + "/x")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || hits.Load() != 1 {
			t.Fatalf("allowed host: %d, upstream hits %d", resp.StatusCode, hits.Load())
		}
	})
}
