package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// PostEvent sends one event (a JSON object) to the events API of the proxy
// at baseURL (CASSETTEPROXY_URL), directly, never through a proxy, and
// returns its sequence number. An answer other than 202 is an error
// carrying the proxy's one-line reason.
func PostEvent(ctx context.Context, baseURL string, event []byte) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(baseURL, "/")+EventsPath, bytes.NewReader(event))
	if err != nil {
		return 0, fmt.Errorf("CASSETTEPROXY_URL %q: %w", baseURL, err)
	}
	req.Header.Set("Content-Type", "application/json")
	client := &http.Client{Transport: &http.Transport{Proxy: nil}}
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("send event to %s: %w", baseURL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var answer struct {
		Seq   int    `json:"seq"`
		Error string `json:"error"`
	}
	_ = json.Unmarshal(body, &answer)
	if resp.StatusCode != http.StatusAccepted {
		if answer.Error == "" {
			answer.Error = strings.TrimSpace(string(body))
		}
		return 0, fmt.Errorf("event refused (%d): %s", resp.StatusCode, answer.Error)
	}
	return answer.Seq, nil
}
