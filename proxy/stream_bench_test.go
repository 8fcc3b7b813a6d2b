package proxy

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkSSEFirstEvent measures time to first event of an SSE stream,
// straight to the upstream and through the proxy in record mode (the tee
// and the recording included), in the same run. The upstream writes the
// first event at once and the rest after it; ttfe-µs is the mean time from
// sending the request to holding the first event.
//
//	go test -run XXX -bench SSEFirstEvent -benchtime 2000x ./proxy/
func BenchmarkSSEFirstEvent(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n")
		w.(http.Flusher).Flush()
		io.WriteString(w, "data: {\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\n\ndata: [DONE]\n\n")
	}))
	defer up.Close()
	_, viaProxy := startTestServer(b, ModeRecord, nil)
	direct := &http.Client{Transport: &http.Transport{}}
	for _, c := range []struct {
		name   string
		client *http.Client
	}{{"direct", direct}, {"proxy", viaProxy}} {
		b.Run(c.name, func(b *testing.B) {
			var total time.Duration
			for i := 0; i < b.N; i++ {
				start := time.Now()
				resp, err := c.client.Get(up.URL + "/v1/chat/completions")
				if err != nil {
					b.Fatal(err)
				}
				br := bufio.NewReader(resp.Body)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						b.Fatal(err)
					}
					if line == "\n" {
						break
					}
				}
				total += time.Since(start)
				io.Copy(io.Discard, br)
				resp.Body.Close()
			}
			b.ReportMetric(float64(total.Microseconds())/float64(b.N), "ttfe-µs")
		})
	}
}
