package e2e

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"testing"
)

// echoUpgrade answers a WebSocket-style upgrade with 101, then echoes each
// line it reads, prefixed: enough to see bytes cross the tunnel both ways.
func echoUpgrade() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "upgrade required", http.StatusUpgradeRequired)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		for {
			line, err := brw.ReadString('\n')
			if err != nil {
				return
			}
			brw.WriteString("echo: " + line)
			brw.Flush()
		}
	})
}

func upgradeRequest(t *testing.T, url string) *http.Request {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	return req
}

// TestUpgradeTunnelledThenBlocked: record mode tunnels an upgrade both ways
// and notes it in the cassette; replay and strict block it with
// upgrade_not_replayable, without contacting the upstream.
func TestUpgradeTunnelledThenBlocked(t *testing.T) {
	for _, tlsOn := range []bool{false, true} {
		t.Run(map[bool]string{false: "http", true: "https"}[tlsOn], func(t *testing.T) {
			e := newEnv(t)
			up := newUpstream(t, tlsOn, echoUpgrade())
			args := []string{"--mode", "record", "--cassette", "ws"}
			if tlsOn {
				args = append(args, "--upstream-ca", up.caFile)
			}
			p := e.serve(args...)
			c := e.client(p)
			c.Timeout = 0 // a timeout wraps the 101 body, which must stay writable
			resp, err := c.Do(upgradeRequest(t, up.URL+"/socket"))
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusSwitchingProtocols {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("record: status %d %s, want 101", resp.StatusCode, b)
			}
			rw, ok := resp.Body.(io.ReadWriteCloser)
			if !ok {
				t.Fatalf("101 body is %T, not writable", resp.Body)
			}
			br := bufio.NewReader(rw)
			for _, msg := range []string{"hello\n", "again\n"} {
				if _, err := io.WriteString(rw, msg); err != nil {
					t.Fatal(err)
				}
				got, err := br.ReadString('\n')
				if err != nil || got != "echo: "+msg {
					t.Fatalf("through the tunnel: %q (%v), want %q", got, err, "echo: "+msg)
				}
			}
			rw.Close()
			p.stop()
			out, _, _ := e.cli("cassettes", "show", "ws")
			if !strings.Contains(out, "/socket") || !strings.Contains(out, "upgrade") {
				t.Errorf("cassettes show does not note the upgrade:\n%s", out)
			}
			before := up.conns.Load()
			for _, mode := range []string{"replay", "strict"} {
				p = e.serve("--mode", mode, "--cassette", "ws")
				resp, err := e.client(p).Do(upgradeRequest(t, up.URL+"/socket"))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != 403 || resp.Header.Get("X-Cassetteproxy-Blocked") != "upgrade_not_replayable" {
					t.Errorf("%s: %d %q, want 403 upgrade_not_replayable", mode, resp.StatusCode, resp.Header.Get("X-Cassetteproxy-Blocked"))
				}
				p.stop()
			}
			if n := up.conns.Load(); n != before {
				t.Errorf("replay contacted the upstream (%d new connections)", n-before)
			}
		})
	}
}
