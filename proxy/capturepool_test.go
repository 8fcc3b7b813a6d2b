package proxy

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/cassetteproxy/cassetteproxy/store"
)

// TestRecordedBodiesSurviveBufferReuse records many different bodies of
// every pooled size, each twice (the second answer is a redaction-memo hit,
// which hands its capture buffer back to the pool while other captures are
// filling theirs), from concurrent clients, and checks every stored body
// byte for byte: a buffer recycled while the recording still used it would
// show up as another answer's bytes.
func TestRecordedBodiesSurviveBufferReuse(t *testing.T) {
	body := func(size, i int) []byte {
		var b bytes.Buffer
		for b.Len() < size {
			fmt.Fprintf(&b, `{"size":%d,"i":%d,"pad":"%s"},`, size, i, strings.Repeat(string(rune('a'+i%26)), 17))
		}
		return b.Bytes()[:size]
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var size, i int
		if _, err := fmt.Sscanf(r.URL.Path, "/b/%d/%d", &size, &i); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		b := body(size, i)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(b))) // only a body of known length is pooled
		w.Write(b)
	}))
	defer up.Close()

	st, err := store.Open(filepath.Join(t.TempDir(), "pool.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rec := st.NewRecorder(store.RecorderOptions{})
	srv, client := startTestServer(t, ModeRecord, nil, func(c *Config) { c.Recorder = rec })

	sizes := []int{minPooledBody, 600, 1500, smallPooledBody, smallPooledBody + 1, 20000, maxPooledBody}
	const distinct = 30
	var urls []string
	for _, size := range sizes {
		for i := range distinct {
			u := fmt.Sprintf("%s/b/%d/%d", up.URL, size, i)
			urls = append(urls, u, u)
		}
	}
	work := make(chan string)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for u := range work {
				resp, err := client.Get(u)
				if err != nil {
					t.Error(err)
					continue
				}
				got, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				var size, i int
				fmt.Sscanf(strings.TrimPrefix(u, up.URL), "/b/%d/%d", &size, &i)
				if err != nil || !bytes.Equal(got, body(size, i)) {
					t.Errorf("%s: answer differs from upstream (err %v)", u, err)
				}
			}
		})
	}
	for _, u := range urls {
		work <- u
	}
	close(work)
	wg.Wait()
	// Larger bodies are saved by workers after the client has its answer:
	// Shutdown waits for every recording to reach the recorder.
	if err := srv.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := rec.Flush(); err != nil {
		t.Fatal(err)
	}
	ins, err := st.Interactions("t")
	if err != nil {
		t.Fatal(err)
	}
	if len(ins) != len(urls) {
		t.Fatalf("stored %d interactions, want %d", len(ins), len(urls))
	}
	for _, in := range ins {
		var size, i int
		if _, err := fmt.Sscanf(strings.TrimPrefix(in.Request.URL, up.URL), "/b/%d/%d", &size, &i); err != nil {
			t.Fatalf("stored URL %q: %v", in.Request.URL, err)
		}
		if !bytes.Equal(in.Response.Body, body(size, i)) {
			t.Errorf("%s: stored body differs from what upstream sent (%d bytes stored)", in.Request.URL, len(in.Response.Body))
		}
	}
}
