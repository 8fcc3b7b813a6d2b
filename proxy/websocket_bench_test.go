package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/cassetteproxy/cassetteproxy/store"
)

// BenchmarkWebSocketRoundTrip is one message to a wss:// server and its
// answer back (gorilla/websocket at both ends), on one connection:
// directly; through the proxy recording it; and through the proxy
// replaying a recording of the same exchange with the server gone. The
// replay sub-benchmark records its b.N exchanges first, untimed, so give
// it a count:
//
//	go test -run '^$' -bench WebSocketRoundTrip -benchtime 20000x ./proxy/
func BenchmarkWebSocketRoundTrip(b *testing.B) {
	up := httptest.NewTLSServer(echoWS())
	b.Cleanup(up.Close)
	target := "wss" + strings.TrimPrefix(up.URL, "https") + "/realtime"
	upRoots := x509.NewCertPool()
	upRoots.AddCert(up.Certificate())

	b.Run("direct", func(b *testing.B) {
		c, _, err := (&websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: upRoots}}).Dial(target, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		b.ResetTimer()
		roundTrips(b, c, b.N)
	})
	b.Run("record", func(b *testing.B) {
		_, _, c := recordWS(b, upRoots, target)
		b.ResetTimer()
		roundTrips(b, c, b.N)
		b.StopTimer()
		c.Close()
	})
	b.Run("replay", func(b *testing.B) {
		s, st, c := recordWS(b, upRoots, target)
		roundTrips(b, c, b.N)
		c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
		c.Close()
		s.Shutdown(b.Context())
		s.cfg.Recorder.Close()
		ins, err := st.Interactions("t")
		if err != nil || len(ins) != 1 {
			b.Fatalf("recorded %d interactions: %v", len(ins), err)
		}
		rs, client := startTestServer(b, ModeReplay, ins, func(cfg *Config) { cfg.CA = s.cfg.CA })
		defer rs.Shutdown(b.Context())
		c = dialWS(b, client, s.cfg.CA, target)
		defer c.Close()
		b.ResetTimer()
		roundTrips(b, c, b.N)
	})
}

// echoWS answers each message {"n":N} with {"echo":N}.
func echoWS() http.Handler {
	up := websocket.Upgrader{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			_, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(websocket.TextMessage, []byte(`{"echo":`+strings.TrimSuffix(strings.TrimPrefix(string(msg), `{"n":`), "}")+"}")); err != nil {
				return
			}
		}
	})
}

// roundTrips sends {"n":i} for i < n and reads each answer.
func roundTrips(b *testing.B, c *websocket.Conn, n int) {
	for i := range n {
		if err := c.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `{"n":%d}`, i)); err != nil {
			b.Fatal(err)
		}
		_, got, err := c.ReadMessage()
		if err != nil {
			b.Fatalf("message %d: %v", i, err)
		}
		if want := fmt.Sprintf(`{"echo":%d}`, i); string(got) != want {
			b.Fatalf("message %d: got %s, want %s", i, got, want)
		}
	}
}

// recordWS starts a recording proxy with a store of its own and opens a
// WebSocket through it.
func recordWS(b *testing.B, upRoots *x509.CertPool, target string) (*Server, *store.Store, *websocket.Conn) {
	st, err := store.Open(filepath.Join(b.TempDir(), "ws.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	rec := st.NewRecorder(store.RecorderOptions{})
	s, client := startTestServer(b, ModeRecord, nil, func(cfg *Config) { cfg.Recorder, cfg.UpstreamRoots = rec, upRoots })
	return s, st, dialWS(b, client, s.cfg.CA, target)
}

func dialWS(b *testing.B, client *http.Client, ca *CA, target string) *websocket.Conn {
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	proxyURL, _ := client.Transport.(*http.Transport).Proxy(nil)
	d := websocket.Dialer{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: proxyURL.Host}), TLSClientConfig: &tls.Config{RootCAs: roots}}
	c, _, err := d.Dial(target, nil)
	if err != nil {
		b.Fatal(err)
	}
	return c
}
