package telemetry

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// otlpHTTP is the SDK exporter's client (otlptrace.Client) for OTLP/HTTP
// with protobuf bodies. The official otlptracehttp client speaks the same
// protocol, one POST, but its configuration package links gRPC (69
// packages) into the binary whether traces are on or not: with this client
// the binary is 3 MB smaller and an idle `serve --mode record` holds 33.9
// MiB resident instead of 35.3 (the proxy's peak-RSS budget is 48 MiB).
type otlpHTTP struct {
	url      string
	headers  map[string]string
	timeout  time.Duration // one attempt
	maxRetry time.Duration // retries of one batch, in all (0: none)
	client   *http.Client
}

func (c *otlpHTTP) Start(context.Context) error { return nil }

func (c *otlpHTTP) Stop(context.Context) error {
	c.client.CloseIdleConnections()
	return nil
}

// UploadTraces sends one ExportTraceServiceRequest (field 1, repeated
// ResourceSpans), retrying what the OTLP/HTTP specification calls
// retryable (a failed connection, 429, 502, 503, 504) with a backoff from
// 250 ms to 1 s until maxRetry has passed.
func (c *otlpHTTP) UploadTraces(ctx context.Context, spans []*tracepb.ResourceSpans) error {
	var body []byte
	for _, rs := range spans {
		m, err := proto.Marshal(rs)
		if err != nil {
			return fmt.Errorf("encode spans: %w", err)
		}
		body = protowire.AppendTag(body, 1, protowire.BytesType)
		body = protowire.AppendBytes(body, m)
	}
	deadline := time.Now().Add(c.maxRetry)
	wait := 250 * time.Millisecond
	for {
		retry, err := c.post(ctx, body)
		if err == nil || !retry || time.Now().Add(wait).After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

// post makes one attempt; retry says whether another may succeed.
func (c *otlpHTTP) post(ctx context.Context, body []byte) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return true, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusBadGateway,
		resp.StatusCode == http.StatusServiceUnavailable, resp.StatusCode == http.StatusGatewayTimeout:
		return true, fmt.Errorf("collector answered %s", resp.Status)
	}
	return false, fmt.Errorf("collector answered %s", resp.Status)
}
