package e2e

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

// wsServer greets, then answers each {"op":"sub","n":N} with an ack and a
// data message, as a realtime tool server does.
func wsServer(t *testing.T) http.Handler {
	up := websocket.Upgrader{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		c.WriteMessage(websocket.TextMessage, []byte(`{"hello":"ws"}`))
		for {
			var msg struct {
				Op string `json:"op"`
				N  int    `json:"n"`
			}
			if err := c.ReadJSON(&msg); err != nil {
				return
			}
			c.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf(`{"ack":%d}`, msg.N)))
			c.WriteMessage(websocket.BinaryMessage, []byte{byte(msg.N), 0xFF})
		}
	})
}

func (e *env) wsDial(p *proxyProc, target string) (*websocket.Conn, error) {
	e.t.Helper()
	pool := e.caPool()
	proxyURL, _ := url.Parse("http://" + p.addr)
	d := websocket.Dialer{Proxy: http.ProxyURL(proxyURL), TLSClientConfig: &tls.Config{RootCAs: pool}}
	c, resp, err := d.Dial(target, nil)
	if err != nil && resp != nil {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("%w: %s %v %s", err, resp.Status, resp.Header, b)
	}
	return c, err
}

// exchange sends the subscriptions and returns every server message read,
// each as "text:..." or "binary:<hex>".
func wsExchange(t *testing.T, c *websocket.Conn, subs ...string) ([]string, error) {
	t.Helper()
	var got []string
	read := func() error {
		kind, b, err := c.ReadMessage()
		if err != nil {
			return err
		}
		if kind == websocket.BinaryMessage {
			got = append(got, fmt.Sprintf("binary:%x", b))
		} else {
			got = append(got, "text:"+string(b))
		}
		return nil
	}
	if err := read(); err != nil { // the greeting
		return got, err
	}
	for _, s := range subs {
		if err := c.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
			return got, err
		}
		for range 2 {
			if err := read(); err != nil {
				return got, err
			}
		}
	}
	return got, nil
}

// WebSocket messages are recorded through the tunnel and replayed with the
// server gone; a client message that was never recorded closes the
// connection with 1008 and counts as a miss.
func TestWebSocketRecordReplay(t *testing.T) {
	e := newEnv(t)
	up := newUpstream(t, true, wsServer(t))
	target := "wss" + strings.TrimPrefix(up.URL, "https") + "/realtime"
	subs := []string{`{"op":"sub","n":1}`, `{ "n": 2, "op": "sub" }`}

	rec := e.serve("--mode", "record", "--cassette", "ws", "--upstream-ca", up.caFile)
	c, err := e.wsDial(rec, target)
	if err != nil {
		t.Fatal(err)
	}
	live, err := wsExchange(t, c, subs...)
	if err != nil {
		t.Fatal(err)
	}
	c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	c.Close()
	rec.stop()
	if len(live) != 5 {
		t.Fatalf("live exchange: %q", live)
	}

	out, _, _ := e.cli("cassettes", "show", "ws", "--json")
	var shown struct {
		Interactions []struct {
			Response struct {
				Events []struct {
					Dir string `json:"dir"`
				} `json:"events"`
			} `json:"response"`
		} `json:"interactions"`
	}
	if err := json.Unmarshal([]byte(out), &shown); err != nil || len(shown.Interactions) != 1 || len(shown.Interactions[0].Response.Events) != 7 {
		t.Fatalf("cassettes show --json: %v\n%s", err, out)
	}

	up.Close()
	before := up.conns.Load()
	rep := e.serve("--mode", "replay", "--cassette", "ws")
	c, err = e.wsDial(rep, target)
	if err != nil {
		rep.stop()
		t.Fatalf("replayed upgrade: %v\n%s", err, rep.stderr.String())
	}
	// The second subscription is sent with other spacing and key order:
	// JSON messages match canonically.
	replayed, err := wsExchange(t, c, `{"op":"sub","n":1}`, `{"op":"sub","n":2}`)
	c.Close()
	if err != nil || strings.Join(replayed, "\n") != strings.Join(live, "\n") {
		t.Fatalf("replay: %v\n got %q\nwant %q", err, replayed, live)
	}

	c, err = e.wsDial(rep, target)
	if err != nil {
		t.Fatal(err)
	}
	_, err = wsExchange(t, c, `{"op":"sub","n":3}`)
	c.Close()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.ClosePolicyViolation {
		t.Fatalf("a changed message: %v, want close 1008", err)
	}
	rep.stop()
	if !strings.Contains(rep.stderr.String(), "websocket message not recorded") {
		t.Errorf("the miss is not logged:\n%s", rep.stderr.String())
	}
	if n := up.conns.Load() - before; n != 0 {
		t.Errorf("replay opened %d upstream connections", n)
	}
}
