package telemetry

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// otlpHTTP is the SDK's span exporter (sdktrace.SpanExporter) for OTLP/HTTP
// with protobuf bodies. The official exporters are not used, for what
// they would cost in memory: the otlptracehttp client's configuration
// package links gRPC (69 packages) into the binary whether traces are on or
// not, and the otlptrace exporter under it converts spans to the generated
// OTLP types and marshals them with proto.Marshal, which links the protobuf
// runtime (registry, reflection-driven marshalling, file descriptors built
// at init). The kernel keeps most of a binary's text and read-only data
// resident, so linked code counts against the proxy's 48 MiB peak-RSS
// budget even when unused. This exporter writes the request itself
// (otlpencode.go) with protowire, which links none of that, and sends it in
// one POST as otlptracehttp would.
type otlpHTTP struct {
	url      string
	headers  map[string]string
	timeout  time.Duration // one attempt
	maxRetry time.Duration // retries of one batch, in all (0: none)
	client   *http.Client
}

// Shutdown closes idle connections; the batch span processor exports
// nothing after it.
func (c *otlpHTTP) Shutdown(context.Context) error {
	c.client.CloseIdleConnections()
	return nil
}

// ExportSpans sends one ExportTraceServiceRequest holding spans (none: no
// request), retrying what the OTLP/HTTP specification calls retryable (a
// failed connection, 429, 502, 503, 504) with a backoff from 250 ms to 1 s
// until maxRetry has passed.
func (c *otlpHTTP) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	body := appendTraceRequest(nil, spans)
	if len(body) == 0 {
		return nil
	}
	if err := c.upload(ctx, body); err != nil {
		return fmt.Errorf("traces export: %w", err)
	}
	return nil
}

func (c *otlpHTTP) upload(ctx context.Context, body []byte) error {
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
