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

// poolSizes spans both buffer classes and their edges.
var poolSizes = []int{minPooledBody, 1500, smallPooledBody - 64, smallPooledBody + 1, 8 << 10, 16 << 10, 24 << 10, 32 << 10, 40 << 10}

// poolBody is the answer to /n: 512 B to 40 KB, different for every n, and
// for a third of them carrying a secret that redaction rewrites (so some
// recorded bodies are the captured buffer, some a redacted copy, some the
// memo's).
func poolBody(n int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"n":%d,"items":[`, n)
	size := poolSizes[n%len(poolSizes)]
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, `{"i":%d,"text":"answer %d line %d"},`, i, n, i)
	}
	if n%3 == 0 {
		b.WriteString(`{"api_key":"sk-live-0123456789abcdefghijklmn"},`)
	}
	b.WriteString(`{}]}`)
	return b.Bytes()
}

// TestRecycledCaptureBuffersNeverLeak records many bodies of every pooled
// size from 16 clients at once, some repeated (memo hits), some unique, some
// redacted: every client gets its exact bytes, and every stored body is its
// own URL's answer, never bytes of another request that reused a buffer. In
// live mode repeats are answered from the index, which holds the recorded
// bodies: a buffer recycled under it would answer someone else's bytes.
func TestRecycledCaptureBuffersNeverLeak(t *testing.T) {
	for _, mode := range []Mode{ModeRecord, ModeLive} {
		t.Run(string(mode), func(t *testing.T) { recycledBuffers(t, mode) })
	}
}

func recycledBuffers(t *testing.T, mode Mode) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/"))
		body := poolBody(n)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	}))
	defer up.Close()
	st, err := store.Open(filepath.Join(t.TempDir(), "c.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rec := st.NewRecorder(store.RecorderOptions{})
	srv, c := startTestServer(t, mode, nil, func(cfg *Config) { cfg.Recorder = rec })
	const clients, each = 16, 60
	var wg sync.WaitGroup
	for w := range clients {
		wg.Go(func() {
			for i := range each {
				n := (w*each + i) % 150 // repeats across clients
				resp, err := c.Get(fmt.Sprintf("%s/%d", up.URL, n))
				if err != nil {
					t.Error(err)
					return
				}
				got, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				want := poolBody(n)
				if mode == ModeLive && n%3 == 0 && bytes.Contains(got, []byte("[REDACTED")) {
					want = want[:bytes.Index(want, []byte(`{"api_key"`))] // replayed from the index: as recorded
					got = got[:min(len(got), len(want))]
				}
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("client got the wrong answer for /%d (%v): %.60q…", n, err, got)
					return
				}
			}
		})
	}
	wg.Wait()
	// Bodies over 4 KiB are saved by workers after the client has its
	// answer: Shutdown waits until every recording reached the recorder.
	if err := srv.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	ins, err := st.Interactions("t")
	if err != nil {
		t.Fatal(err)
	}
	if mode == ModeRecord && len(ins) != clients*each {
		t.Fatalf("%d interactions recorded, want %d", len(ins), clients*each)
	}
	for _, in := range ins {
		n, _ := strconv.Atoi(in.Request.URL[strings.LastIndexByte(in.Request.URL, '/')+1:])
		want := poolBody(n)
		if n%3 == 0 {
			if !bytes.Contains(in.Response.Body, []byte("[REDACTED")) || bytes.Contains(in.Response.Body, []byte("sk-live-")) {
				t.Fatalf("/%d: secret not redacted", n)
			}
			want = want[:bytes.Index(want, []byte(`{"api_key"`))]
		}
		if !bytes.HasPrefix(in.Response.Body, want) {
			t.Fatalf("/%d: stored body is not its answer: %.80q", n, in.Response.Body)
		}
	}
}
