package match

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/cassetteproxy/cassetteproxy/store"
)

// trafficDir holds the captured MCP and OpenAI-SDK exchanges (a copy of
// shared/testdata/traffic, kept in the repo so CI needs nothing beside it).
const trafficDir = "../testdata/traffic"

// capture is the format of the files in trafficDir (see its README).
type capture struct {
	Exchanges []struct {
		Request struct {
			Method  string      `json:"method"`
			URL     string      `json:"url"`
			Headers [][2]string `json:"headers"`
			Body    string      `json:"body"`
		} `json:"request"`
		Response struct {
			Status  int         `json:"status"`
			Headers [][2]string `json:"headers"`
			Body    string      `json:"body"`
		} `json:"response"`
	} `json:"exchanges"`
}

// loadCapture turns a captured session into interactions, in order.
func loadCapture(t testing.TB, name string) []store.Interaction {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(trafficDir, name))
	if err != nil {
		t.Skipf("test data not available: %v", err)
	}
	var c capture
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var out []store.Interaction
	for i, ex := range c.Exchanges {
		in := store.Interaction{Seq: uint64(i + 1)}
		in.Request.Method = ex.Request.Method
		in.Request.URL = ex.Request.URL
		in.Request.Header = http.Header{}
		for _, h := range ex.Request.Headers {
			in.Request.Header.Add(h[0], h[1])
		}
		if ex.Request.Body != "" {
			in.Request.Body = []byte(ex.Request.Body)
		}
		in.Response.Status = ex.Response.Status
		in.Response.Header = http.Header{}
		for _, h := range ex.Response.Headers {
			in.Response.Header.Add(h[0], h[1])
		}
		in.Response.Body = []byte(ex.Response.Body)
		out = append(out, in)
	}
	return out
}

// rq builds a request; hdr is name, value pairs.
func rq(method, url, contentType, body string, hdr ...string) *store.Request {
	r := &store.Request{Method: method, URL: url, Header: http.Header{}}
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	if body != "" {
		r.Body = []byte(body)
	}
	return r
}

func mustRules(t testing.TB, y string) *Rules {
	t.Helper()
	r, err := ParseRules([]byte(y))
	if err != nil {
		t.Fatalf("ParseRules: %v", err)
	}
	return r
}
