package e2e

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// heldBody answers with a body of known length: the head and the first
// `first` bytes at once, the rest only after release.
func heldBody(contentType string, body []byte, first int, release <-chan struct{}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		w.Write(body[:first])
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		w.Write(body[first:])
	})
}

// TestSlowBodiesStreamWhileRecording: in record mode the client gets the
// upstream's head, and the bytes of the body that have arrived, while the
// upstream holds back the rest, whatever the body's length and type, over
// plain HTTP and inside a CONNECT tunnel, HTTP/1.1 or HTTP/2 (a proxy that
// waited for the body, or for 4 KiB of it, would deadlock here). The
// recording is whole. Over HTTP/2 the head goes out with the first bytes
// (goproxy writes it), so the head-only case is HTTP/1.1's.
func TestSlowBodiesStreamWhileRecording(t *testing.T) {
	body := bytes.Repeat([]byte("x"), 1000)
	cases := []struct {
		name, contentType string
		first             int // bytes sent before the upstream waits
	}{
		{"json head only", "application/json", 0},
		{"json some bytes", "application/json", 10},
		{"octet-stream", "application/octet-stream", 100},
		{"text", "text/plain; charset=utf-8", 1},
	}
	for _, proto := range []string{"http", "https", "h2"} {
		tlsOn := proto != "http"
		for _, tc := range cases {
			if proto == "h2" && tc.first == 0 {
				continue
			}
			t.Run(proto+"/"+tc.name, func(t *testing.T) {
				e := newEnv(t)
				release := make(chan struct{})
				released := false
				defer func() {
					if !released {
						close(release)
					}
				}()
				up := newUpstream(t, tlsOn, heldBody(tc.contentType, body, tc.first, release))
				args := []string{"--mode", "record", "--cassette", "slow"}
				if tlsOn {
					args = append(args, "--upstream-ca", up.caFile)
				}
				p := e.serve(args...)
				type result struct {
					resp *http.Response
					head []byte
					err  error
				}
				got := make(chan result, 1)
				go func() {
					c := e.client(p)
					if proto == "h2" {
						c = e.protoClient(p, true)
					}
					resp, err := c.Get(up.URL + "/slow")
					if err != nil {
						got <- result{err: err}
						return
					}
					head := make([]byte, tc.first)
					_, err = io.ReadFull(resp.Body, head)
					got <- result{resp, head, err}
				}()
				var r result
				select {
				case r = <-got:
				case <-time.After(15 * time.Second):
					t.Fatalf("the head and the first %d bytes did not reach the client while the upstream held the rest: the proxy holds slow bodies back", tc.first)
				}
				if r.err != nil || !bytes.Equal(r.head, body[:tc.first]) || r.resp.ContentLength != int64(len(body)) {
					t.Fatalf("first bytes %q (%v), length %d", r.head, r.err, r.resp.ContentLength)
				}
				if want := map[bool]int{false: 1, true: 2}[proto == "h2"]; r.resp.ProtoMajor != want {
					t.Fatalf("served over %s, want HTTP/%d", r.resp.Proto, want)
				}
				close(release)
				released = true
				rest, err := io.ReadAll(r.resp.Body)
				r.resp.Body.Close()
				if err != nil || !bytes.Equal(append(r.head, rest...), body) {
					t.Fatalf("the whole body: %d bytes, %v", len(r.head)+len(rest), err)
				}
				p.stop()
				out, _, _ := e.cli("cassettes", "show", "slow")
				if !bytes.Contains([]byte(out), []byte("1000B")) || bytes.Contains([]byte(out), []byte("incomplete")) {
					t.Errorf("the recording is not the whole body:\n%s", out)
				}
			})
		}
	}
}

// gatedBody answers /warm at once and any other path with n bytes: the
// first, then the rest only once gate is closed (the client holds the first
// byte) or the request ends.
func gatedBody(n int, gate <-chan struct{}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		if r.URL.Path == "/warm" {
			io.WriteString(w, "warm")
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(n))
		w.WriteHeader(http.StatusOK)
		w.Write([]byte{'*'})
		w.(http.Flusher).Flush()
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
		w.Write(bytes.Repeat([]byte{'*'}, n-1))
	})
}

// TestDripFirstByteWhileRecording: a body's first byte reaches the client
// through record mode (plain HTTP, HTTP/1.1 and HTTP/2 in a tunnel) before
// the upstream has sent the rest: the upstream holds the rest back until
// the client has the first byte, so a proxy that waited for the whole body
// would never deliver it. BenchmarkDripFirstByte measures the latency.
func TestDripFirstByteWhileRecording(t *testing.T) {
	for _, proto := range []string{"http", "https", "h2"} {
		tlsOn := proto != "http"
		t.Run(proto, func(t *testing.T) {
			e := newEnv(t)
			gate := make(chan struct{})
			up := newUpstream(t, tlsOn, gatedBody(1000, gate))
			args := []string{"--mode", "record", "--cassette", "drip"}
			if tlsOn {
				args = append(args, "--upstream-ca", up.caFile)
			}
			p := e.serve(args...)
			c := e.client(p)
			if proto == "h2" {
				c = e.protoClient(p, true)
			}
			resp, err := c.Get(up.URL + "/drip")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got := make(chan error, 1)
			go func() {
				_, err := io.ReadFull(resp.Body, make([]byte, 1))
				got <- err
			}()
			select {
			case err := <-got:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(time.Minute):
				close(gate) // lets the proxy and the reader finish
				t.Fatal("the first byte never reached the client while the upstream held the rest back: record mode waits for whole bodies")
			}
			close(gate)
			rest, err := io.ReadAll(resp.Body)
			if err != nil || len(rest) != 999 {
				t.Fatalf("the rest: %d bytes, %v", len(rest), err)
			}
		})
	}
}
