package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// cutUpstream serves a 200 KB body of known length: the first half at
// once, the rest a kilobyte at a time until done or until the proxy hangs
// up (a slow download the client gives up on).
func cutUpstream(t *testing.T, tlsOn bool, body []byte) *upstream {
	return newUpstream(t, tlsOn, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		half := len(body) / 2
		w.Write(body[:half])
		w.(http.Flusher).Flush()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for off := half; off < len(body); off += 1024 {
			select {
			case <-r.Context().Done():
				return
			case <-tick.C:
			}
			if _, err := w.Write(body[off:min(off+1024, len(body))]); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	}))
}

// TestCutShortReplaysCutShort: a client abandons a 200 KB download halfway
// while recording. The recording is marked incomplete with the announced
// length (cassettes show, the fixture, the HAR); in replay a client reading
// the whole body gets the recorded bytes and then an error (HTTP/1.1: the
// connection closes short of the length; HTTP/2: the stream is reset),
// never a clean 200 with a short body; a run replaying it counts it in its
// record.
func TestCutShortReplaysCutShort(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 200<<10/16)
	for _, proto := range []string{"http", "https", "h2"} {
		tlsOn := proto != "http"
		t.Run(proto, func(t *testing.T) {
			e := newEnv(t)
			up := cutUpstream(t, tlsOn, body)
			client := func(p *proxyProc) *http.Client {
				if proto == "h2" {
					return e.protoClient(p, true)
				}
				return e.client(p)
			}
			args := []string{"--mode", "record", "--cassette", "cut"}
			if tlsOn {
				args = append(args, "--upstream-ca", up.caFile)
			}
			p := e.serve(args...)
			resp, err := client(p).Get(up.URL + "/big.bin")
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(io.LimitReader(resp.Body, int64(len(body)/2)))
			if err != nil || len(got) != len(body)/2 {
				t.Fatalf("the first half: %d bytes, %v", len(got), err)
			}
			resp.Body.Close() // the client gives up
			p.stop()

			out, _, code := e.cli("cassettes", "show", "cut")
			if code != 0 || !strings.Contains(out, "incomplete:") || !strings.Contains(out, "/204800B") {
				t.Fatalf("cassettes show does not mark the cut (want incomplete:N/204800B):\n%s", out)
			}

			p = e.serve("--mode", "replay", "--cassette", "cut")
			resp, err = client(p).Get(up.URL + "/big.bin")
			if err != nil {
				t.Fatal(err)
			}
			got, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil {
				t.Fatalf("replay served a clean %d with %d of %d bytes: a cut-short answer must end in an error", resp.StatusCode, len(got), len(body))
			}
			if proto != "h2" && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("replay ended with %v, want an unexpected EOF", err)
			}
			if proto == "h2" && (resp.ProtoMajor != 2 || !strings.Contains(err.Error(), "stream error")) {
				t.Errorf("replay over %s ended with %v, want a reset HTTP/2 stream", resp.Proto, err)
			}
			if resp.ContentLength != int64(len(body)) {
				t.Errorf("replay announced %d bytes, want the recorded %d", resp.ContentLength, len(body))
			}
			if len(got) < len(body)/2 || len(got) >= len(body) || !bytes.Equal(got, body[:len(got)]) {
				t.Errorf("replay sent %d bytes, want the recorded prefix (at least %d, fewer than %d)", len(got), len(body)/2, len(body))
			}
			p.stop()

			// A run that replays it counts it.
			dir := t.TempDir()
			_, stderr, code := e.runIn(dir, nil, "--mode", "replay", "--cassette", "cut", "--", "curl", "-sS", "-o", "/dev/null", up.URL+"/big.bin")
			if code == 0 {
				t.Errorf("curl read the replayed cut-short body without an error:\n%s", stderr)
			}
			if r := e.lastRun(); r.ReplayedIncomplete != 1 {
				t.Errorf("run record replayed_incomplete = %d, want 1", r.ReplayedIncomplete)
			}

			// Export marks it: the fixture and the HAR.
			fx := filepath.Join(t.TempDir(), "fx")
			if _, stderr, code := e.cli("export", "--cassette", "cut", "--out", fx); code != 0 {
				t.Fatal(stderr)
			}
			var tc struct {
				Interactions []struct {
					Response struct {
						Incomplete    bool  `json:"incomplete"`
						ContentLength int64 `json:"content_length"`
					} `json:"response"`
				} `json:"interactions"`
			}
			raw, _ := os.ReadFile(filepath.Join(fx, "tool_cassettes.json"))
			if err := json.Unmarshal(raw, &tc); err != nil || len(tc.Interactions) != 1 ||
				!tc.Interactions[0].Response.Incomplete || tc.Interactions[0].Response.ContentLength != int64(len(body)) {
				t.Errorf("the fixture does not mark the cut (%v): %+v", err, tc)
			}
			har := filepath.Join(t.TempDir(), "cut.har")
			if _, stderr, code := e.cli("export", "--cassette", "cut", "--out", har, "--format", "har"); code != 0 {
				t.Fatal(stderr)
			}
			raw, _ = os.ReadFile(har)
			if !bytes.Contains(raw, []byte(`"_incomplete": true`)) || !bytes.Contains(raw, []byte(`"_contentLength": 204800`)) ||
				!bytes.Contains(raw, []byte(`"comment": "cut short: `)) {
				t.Errorf("the HAR does not mark the cut")
			}
		})
	}
}

// TestStrictBlocksIncompleteWhenRulesSay: with `incomplete: block` in the
// rules file, strict mode answers a request whose recording was cut short
// with a blocked answer, reason incomplete_recording, instead of the
// recorded bytes and a break; replay mode, and strict mode without the
// key, still replay it cut short. A bad value stops the proxy in one line.
func TestStrictBlocksIncompleteWhenRulesSay(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 200<<10/16)
	e := newEnv(t)
	up := cutUpstream(t, false, body)
	p := e.serve("--mode", "record", "--cassette", "cut")
	resp, err := e.client(p).Get(up.URL + "/big.bin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(io.LimitReader(resp.Body, int64(len(body)/2))); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close() // the client gives up: the recording is cut short
	p.stop()

	block := writeRules(t, "incomplete: block\n")
	for _, tc := range []struct {
		name    string
		args    []string
		blocked bool
	}{
		{"strict, incomplete: block", []string{"--mode", "strict", "--rules", block}, true},
		{"strict, no rules", []string{"--mode", "strict"}, false},
		{"strict, incomplete: replay", []string{"--mode", "strict", "--rules", writeRules(t, "incomplete: replay\n")}, false},
		{"replay, incomplete: block", []string{"--mode", "replay", "--rules", block}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := e.serve(append([]string{"--cassette", "cut"}, tc.args...)...)
			defer p.stop()
			resp, err := e.client(p).Get(up.URL + "/big.bin")
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !tc.blocked {
				if err == nil || resp.Header.Get("X-Cassetteproxy-Blocked") != "" {
					t.Fatalf("status %d, blocked %q, read error %v: want the recorded bytes, then a break", resp.StatusCode, resp.Header.Get("X-Cassetteproxy-Blocked"), err)
				}
				return
			}
			if err != nil {
				t.Fatalf("reading the blocked answer: %v", err)
			}
			var ans struct {
				Reason  string `json:"reason"`
				Message string `json:"message"`
			}
			if jerr := json.Unmarshal(got, &ans); jerr != nil || resp.StatusCode != http.StatusForbidden ||
				resp.Header.Get("X-Cassetteproxy-Blocked") != "incomplete_recording" || ans.Reason != "incomplete_recording" {
				t.Fatalf("status %d, header %q, body %.300s: want 403 incomplete_recording", resp.StatusCode, resp.Header.Get("X-Cassetteproxy-Blocked"), got)
			}
			if !strings.Contains(ans.Message, "of the 204800 bytes announced") {
				t.Errorf("message %q does not say how much was recorded", ans.Message)
			}
		})
	}

	_, stderr, code := e.cli("serve", "--listen", "127.0.0.1:0", "--mode", "strict", "--cassette", "cut", "--rules", writeRules(t, "rules: []\nincomplete: sometimes\n"))
	if code != 1 || !strings.Contains(stderr, "rules.yaml:2:") || !strings.Contains(stderr, "incomplete must be block or replay") || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
		t.Errorf("exit %d, stderr %q: want one line naming rules.yaml, line 2 and the allowed values", code, stderr)
	}
}
