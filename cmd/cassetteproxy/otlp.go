package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/cassetteproxy/cassetteproxy/fixtures"
	"github.com/cassetteproxy/cassetteproxy/store"
	"github.com/cassetteproxy/cassetteproxy/telemetry"
)

// otlpCloseTimeout bounds how long a command waits, once its runs are
// over, for their traces to reach the collector.
const otlpCloseTimeout = 15 * time.Second

func otlpFlag() cli.Flag {
	return &cli.StringFlag{Name: "otlp-endpoint", EnvVars: []string{"OTEL_EXPORTER_OTLP_ENDPOINT"},
		Usage: "send each run's trace to this OTLP/HTTP collector `URL` (e.g. http://127.0.0.1:4318; headers from OTEL_EXPORTER_OTLP_HEADERS)"}
}

// newTelemetry builds the trace exporter from --otlp-endpoint and
// OTEL_EXPORTER_OTLP_HEADERS; nil when no endpoint is set.
func newTelemetry(c *cli.Context) (*telemetry.Exporter, error) {
	endpoint := strings.TrimSpace(c.String("otlp-endpoint"))
	if endpoint == "" {
		return nil, nil
	}
	headers, err := parseOTLPHeaders(os.Getenv("OTEL_EXPORTER_OTLP_HEADERS"))
	if err != nil {
		return nil, err
	}
	e, err := telemetry.New(telemetry.Config{Endpoint: endpoint, Headers: headers,
		Warn: func(s string) { fmt.Fprintln(c.App.ErrWriter, "cassetteproxy: warning: "+s) }})
	if err != nil {
		return nil, fmt.Errorf("--otlp-endpoint: %w", err)
	}
	return e, nil
}

// parseOTLPHeaders reads OTEL_EXPORTER_OTLP_HEADERS: key=value pairs
// separated by commas, values percent-encoded. Errors never show a value.
func parseOTLPHeaders(s string) (map[string]string, error) {
	out := map[string]string{}
	for i, part := range strings.Split(s, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_HEADERS: entry %d is not key=value", i+1)
		}
		dv, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_HEADERS: the value of %s is not percent-encoded properly", k)
		}
		out[k] = dv
	}
	return out, nil
}

// closeTelemetry sends what is queued and says, in one line, how many spans
// the collector did not get.
func closeTelemetry(c *cli.Context, e *telemetry.Exporter) {
	if e == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), otlpCloseTimeout)
	defer cancel()
	if err := e.Close(ctx); err != nil {
		fmt.Fprintln(c.App.ErrWriter, "cassetteproxy: warning: "+err.Error())
	}
}

// slimInteractions keeps of a cassette what a trace reads: every
// interaction's method, URL, run and duration, and the bodies of LLM calls
// only.
func slimInteractions(st *store.Store, cassette string) []store.Interaction {
	var out []store.Interaction
	_ = st.EachInteraction(cassette, func(in store.Interaction) error {
		out = append(out, slim(in))
		return nil
	})
	return out
}

func slim(in store.Interaction) store.Interaction {
	if _, ok := telemetry.GenAIOf(&in); ok {
		return in
	}
	return store.Interaction{RunID: in.RunID, DurationMs: in.DurationMs, RecordedAt: in.RecordedAt,
		Request: store.Request{Method: in.Request.Method, URL: in.Request.URL}}
}

// traceReplay emits the trace of a fixture's replay: its closed run record
// and events, the fixture's interactions, a link to the run it was
// recorded from.
func traceReplay(e *telemetry.Exporter, runs func(string) (store.Run, error), f *fixtures.Fixture, v fixtures.Verdict) error {
	if e == nil || v.RunID == "" {
		return nil
	}
	rec, err := runs(v.RunID)
	if err != nil {
		return fmt.Errorf("telemetry: run %s: %w", v.RunID, err)
	}
	ins, err := f.Interactions()
	if err != nil {
		return errors.Join(errors.New("telemetry: "+f.ID), err)
	}
	for i := range ins {
		ins[i] = slim(ins[i])
	}
	e.Emit(telemetry.Run{Record: rec, Interactions: ins, SourceRunID: f.Notes.SourceRunID})
	return nil
}
