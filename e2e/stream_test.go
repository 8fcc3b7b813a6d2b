package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// readEvent reads one SSE event (through its blank line) or one NDJSON line.
func readEvent(br *bufio.Reader, sse bool) (string, error) {
	var b strings.Builder
	for {
		line, err := br.ReadString('\n')
		b.WriteString(line)
		if err != nil {
			return b.String(), err
		}
		if !sse || line == "\n" {
			return b.String(), nil
		}
	}
}

// readAllEvents reads events to the end; err is what ended the body (nil at a clean end).
func readAllEvents(br *bufio.Reader, sse bool) ([]string, error) {
	var out []string
	for {
		ev, err := readEvent(br, sse)
		if ev != "" {
			out = append(out, ev)
		}
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

type streamKind struct {
	name, contentType string
	sse               bool
	events            []string
}

var streamKinds = []streamKind{
	{"sse", "text/event-stream", true, []string{
		"event: start\ndata: {\"n\":0}\n\n",
		"data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n",
		"data: {\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\n\n",
		"data: [DONE]\n\n",
	}},
	{"ndjson", "application/x-ndjson", false, []string{"{\"n\":0}\n", "{\"n\":1}\n", "{\"n\":2}\n"}},
}

// gatedStream writes the first event, then waits for release before the rest.
func gatedStream(k streamKind, release <-chan struct{}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", k.contentType)
		w.Header().Set("X-Tool", "stream")
		fl := w.(http.Flusher)
		io.WriteString(w, k.events[0])
		fl.Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		for _, ev := range k.events[1:] {
			io.WriteString(w, ev)
			fl.Flush()
		}
	})
}

// TestStreamingNotBuffered: in record mode the first event of a stream
// reaches the client while the upstream still holds back the rest (a
// buffering proxy would deadlock here), over plain HTTP and inside a CONNECT
// tunnel, for SSE and NDJSON. Replay then serves the same events, in order,
// byte for byte, and `cassettes show` marks the streams.
func TestStreamingNotBuffered(t *testing.T) {
	for _, tlsOn := range []bool{false, true} {
		for _, k := range streamKinds {
			t.Run(map[bool]string{false: "http", true: "https"}[tlsOn]+"/"+k.name, func(t *testing.T) {
				e := newEnv(t)
				release := make(chan struct{})
				up := newUpstream(t, tlsOn, gatedStream(k, release))
				args := []string{"--mode", "record", "--cassette", "s"}
				if tlsOn {
					args = append(args, "--upstream-ca", up.caFile)
				}
				p := e.serve(args...)
				resp, err := e.client(p).Get(up.URL + "/stream")
				if err != nil {
					t.Fatal(err)
				}
				br := bufio.NewReader(resp.Body)
				first := make(chan string, 1)
				go func() { ev, _ := readEvent(br, k.sse); first <- ev }()
				select {
				case ev := <-first:
					if ev != k.events[0] {
						t.Fatalf("first event %q, want %q", ev, k.events[0])
					}
				case <-time.After(15 * time.Second):
					close(release)
					t.Fatal("the first event did not reach the client while the upstream held the rest: the proxy buffers streams")
				}
				close(release)
				rest, err := readAllEvents(br, k.sse)
				resp.Body.Close()
				if err != nil || strings.Join(rest, "") != strings.Join(k.events[1:], "") {
					t.Fatalf("rest of the stream %q (%v), want %q", rest, err, k.events[1:])
				}
				p.stop()
				up.Close()

				out, _, code := e.cli("cassettes", "show", "s")
				if code != 0 || !strings.Contains(out, fmt.Sprintf("stream:%d events", len(k.events))) && k.sse {
					t.Errorf("cassettes show does not mark the stream with its %d events:\n%s", len(k.events), out)
				}

				for _, timing := range []string{"fast", "scale:0.5"} {
					p = e.serve("--mode", "replay", "--cassette", "s", "--replay-timing", timing)
					resp, err = e.client(p).Get(up.URL + "/stream")
					if err != nil {
						t.Fatal(err)
					}
					got, err := readAllEvents(bufio.NewReader(resp.Body), k.sse)
					resp.Body.Close()
					if err != nil || strings.Join(got, "|") != strings.Join(k.events, "|") || len(got) != len(k.events) {
						t.Errorf("replay (%s) events %q (%v)\nwant %q", timing, got, err, k.events)
					}
					if resp.Header.Get("X-Tool") != "stream" || resp.Header.Get("Content-Type") != k.contentType {
						t.Errorf("replay headers %v", resp.Header)
					}
					p.stop()
				}
			})
		}
	}
}

// TestUpstreamBreaksStream: the upstream dies after two events. The client
// gets both events and then the break; the recording is marked incomplete;
// replay serves the same two events and the same break.
func TestUpstreamBreaksStream(t *testing.T) {
	events := []string{"data: one\n\n", "data: two\n\n"}
	for _, v := range []struct {
		name      string
		tlsOn, h2 bool // h2: the client speaks HTTP/2 to the proxy, which resets the stream at the break
	}{{"http", false, false}, {"https", true, false}, {"https-h2", true, true}} {
		tlsOn := v.tlsOn
		t.Run(v.name, func(t *testing.T) {
			e := newEnv(t)
			client := e.client
			if v.h2 {
				client = func(p *proxyProc) *http.Client { return e.protoClient(p, true) }
			}
			up := newUpstream(t, tlsOn, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				for _, ev := range events {
					io.WriteString(w, ev)
				}
				w.(http.Flusher).Flush()
				conn, _, err := http.NewResponseController(w).Hijack()
				if err == nil {
					conn.Close() // no terminating chunk: a broken stream
				}
			}))
			args := []string{"--mode", "record", "--cassette", "b"}
			if tlsOn {
				args = append(args, "--upstream-ca", up.caFile)
			}
			check := func(stage string, c *http.Client) {
				t.Helper()
				resp, err := c.Get(up.URL + "/s")
				if err != nil {
					t.Fatalf("%s: %v", stage, err)
				}
				got, err := readAllEvents(bufio.NewReader(resp.Body), true)
				resp.Body.Close()
				if strings.Join(got, "") != strings.Join(events, "") {
					t.Errorf("%s: events %q, want %q", stage, got, events)
				}
				if err == nil {
					t.Errorf("%s: the stream ended cleanly; the break was not passed on", stage)
				}
			}
			p := e.serve(args...)
			check("record", client(p))
			p.stop()
			up.Close()
			out, _, _ := e.cli("cassettes", "show", "b")
			if !strings.Contains(out, "incomplete") || !strings.Contains(out, "stream:2 events") {
				t.Errorf("cassettes show does not mark the broken stream:\n%s", out)
			}
			p = e.serve("--mode", "replay", "--cassette", "b")
			check("replay", client(p))
			p.stop()
		})
	}
}

// TestClientLeavesMidStream: the client drops a stream it has begun; the
// proxy cancels the upstream request (the upstream sees its context end)
// and keeps what arrived, marked incomplete.
func TestClientLeavesMidStream(t *testing.T) {
	for _, tlsOn := range []bool{false, true} {
		t.Run(map[bool]string{false: "http", true: "https"}[tlsOn], func(t *testing.T) {
			e := newEnv(t)
			cancelled := make(chan struct{})
			up := newUpstream(t, tlsOn, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				defer close(cancelled)
				w.Header().Set("Content-Type", "text/event-stream")
				io.WriteString(w, "data: first\n\n")
				w.(http.Flusher).Flush()
				// Keep-alive comments, as LLM APIs send, until the proxy hangs up.
				tick := time.NewTicker(5 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-r.Context().Done():
						return
					case <-tick.C:
						if _, err := io.WriteString(w, ": ping\n\n"); err != nil {
							return
						}
						w.(http.Flusher).Flush()
					}
				}
			}))
			args := []string{"--mode", "record", "--cassette", "c"}
			if tlsOn {
				args = append(args, "--upstream-ca", up.caFile)
			}
			p := e.serve(args...)
			resp, err := e.client(p).Get(up.URL + "/s")
			if err != nil {
				t.Fatal(err)
			}
			if ev, _ := readEvent(bufio.NewReader(resp.Body), true); ev != "data: first\n\n" {
				t.Fatalf("first event %q", ev)
			}
			resp.Body.Close()
			select {
			case <-cancelled:
			case <-time.After(15 * time.Second):
				t.Fatal("the upstream request was not cancelled after the client left")
			}
			p.stop()
			out, _, _ := e.cli("cassettes", "show", "c")
			if !strings.Contains(out, "incomplete") {
				t.Errorf("the partial recording is not marked incomplete:\n%s", out)
			}
		})
	}
}
