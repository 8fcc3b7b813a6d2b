package proxy

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cassetteproxy/cassetteproxy/store"
)

// TestExpiredRecordings: an answer recorded longer ago than
// MaxRecordingAge is served with a warning (header and log line), or
// blocked with reason expired; a recent one, or any without the option, is
// served as recorded.
func TestExpiredRecordings(t *testing.T) {
	old := time.Now().Add(-48 * time.Hour)
	ins := []store.Interaction{
		{RecordedAt: old, Request: store.Request{Method: "GET", URL: "http://tool.test/old"},
			Response: store.Response{Status: 200, Body: []byte("old answer")}},
		{RecordedAt: time.Now(), Request: store.Request{Method: "GET", URL: "http://tool.test/new"},
			Response: store.Response{Status: 200, Body: []byte("new answer")}},
	}
	cases := []struct {
		name        string
		maxAge      time.Duration
		block       bool
		path        string
		wantStatus  int
		wantBody    string
		wantExpired bool   // X-Cassetteproxy-Expired set
		wantLog     string // in the log line
	}{
		{"no limit", 0, false, "/old", 200, "old answer", false, "decision=replayed"},
		{"recent", 24 * time.Hour, true, "/new", 200, "new answer", false, "decision=replayed"},
		{"old, warn", 24 * time.Hour, false, "/old", 200, "old answer", true, "level=WARN msg=request method=GET url=http://tool.test/old decision=replayed status=200"},
		{"old, block", 24 * time.Hour, true, "/old", 403, `"reason": "expired"`, false, "decision=blocked"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var logs bytes.Buffer
			_, client := startTestServer(t, ModeReplay, ins, func(cfg *Config) {
				cfg.MaxRecordingAge, cfg.ExpiredBlock = c.maxAge, c.block
				cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			})
			resp, err := client.Get("http://tool.test" + c.path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.wantStatus || !strings.Contains(string(body), c.wantBody) {
				t.Fatalf("status %d body %s", resp.StatusCode, body)
			}
			if got := resp.Header.Get(ExpiredHeader) != ""; got != c.wantExpired {
				t.Fatalf("%s header: %v, want %v", ExpiredHeader, got, c.wantExpired)
			}
			if c.block && c.wantStatus == 403 && resp.Header.Get(BlockedHeader) != ReasonExpired {
				t.Fatalf("blocked header %q", resp.Header.Get(BlockedHeader))
			}
			if !strings.Contains(logs.String(), c.wantLog) || (c.wantExpired || c.wantStatus == 403) != strings.Contains(logs.String(), "reason=expired") {
				t.Fatalf("log: %s", logs.String())
			}
		})
	}
}
