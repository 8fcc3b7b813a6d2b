package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cassetteproxy/cassetteproxy/internal/otlptest"
)

// llmUpstream answers like OpenAI's chat completions, with usage; seen
// gets each request's header, URL and body.
func llmUpstream(t *testing.T, seen chan<- string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		select {
		case seen <- r.Header.Get("Authorization") + " " + r.URL.String() + " " + string(body):
		default:
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o-mini-2024-07-18",`+
			`"choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}],`+
			`"usage":{"prompt_tokens":12,"completion_tokens":7,"total_tokens":19}}`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// closedURL is an http:// URL where nothing listens.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// The agent: one LLM call carrying the key in a header, the query and the
// body, then a checkpoint event whose data carries it too. (The names are
// put together at run time: the run record scrubs "api_key=..." from the
// command line itself, which would change the command replayed.)
const otlpAgent = `k=api; curl -sf -H "Authorization: Bearer $LLM_API_KEY" -H "Content-Type: application/json" ` +
	`-d "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"password\":\"$LLM_API_KEY\"}" ` +
	`"$UPSTREAM/v1/chat/completions?${k}_key=$LLM_API_KEY" -o answer.json && ` +
	`curl -sf -d "{\"kind\":\"checkpoint\",\"name\":\"asked\",\"data\":{\"note\":\"used $LLM_API_KEY\"}}" "$CASSETTEPROXY_URL/_cassetteproxy/v1/events"`

const otlpSecret = "s3cr3t-OTLP-value-9f8e7d6c5b4a3210"

func assertNoSecret(t *testing.T, what string, raw []byte) {
	t.Helper()
	for _, form := range []string{otlpSecret, url.QueryEscape(otlpSecret), base64.StdEncoding.EncodeToString([]byte(otlpSecret)), "colsecret-4242-abcd"} {
		if bytes.Contains(raw, []byte(form)) {
			t.Errorf("%s holds the secret (%q)", what, form)
		}
	}
}

func rootOf(spans []otlptest.Span) (otlptest.Span, []otlptest.Span) {
	var root otlptest.Span
	var kids []otlptest.Span
	for _, s := range spans {
		if s.ParentID == "" {
			root = s
		} else {
			kids = append(kids, s)
		}
	}
	return root, kids
}

// TestOTLPTraces: run, replay and monitor with --otlp-endpoint send one
// trace per run to a real OTLP/HTTP receiver (the official protobuf
// types): the run's root span with its record and verdict, the agent's
// event, the LLM call's HTTP and GenAI attributes, the replay linked to its
// source run; no secret in any byte received. With the receiver down, the
// same runs end the same way and the dropped spans are counted and said.
func TestOTLPTraces(t *testing.T) {
	rcv, err := otlptest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer rcv.Close()
	seen := make(chan string, 1)
	up := llmUpstream(t, seen)
	e := newEnv(t)
	vars := []string{"LLM_API_KEY=" + otlpSecret, "UPSTREAM=" + up.URL, "OTEL_EXPORTER_OTLP_HEADERS=x-collector-auth=colsecret-4242-abcd"}

	_, errs, code := e.cliIn(e.dir, vars, "run", "--mode", "record", "--cassette", "llm", "--isolate", "off", "--otlp-endpoint", rcv.URL, "--", "sh", "-c", otlpAgent)
	if code != 0 {
		t.Fatalf("run: exit %d\n%s", code, errs)
	}
	// The secret did travel: in the header, the query and the body.
	if got := <-seen; strings.Count(got, otlpSecret) != 3 {
		t.Fatalf("the agent did not send the secret three times: %s", got)
	}
	traces := rcv.Traces()
	if len(traces) != 1 {
		t.Fatalf("want one trace for one run, got %d", len(traces))
	}
	var runTrace string
	var spans []otlptest.Span
	for id, s := range traces {
		runTrace, spans = id, s
	}
	root, kids := rootOf(spans)
	runID := root.Attrs["cassetteproxy.run_id"]
	if runID == "" || root.Attrs["cassetteproxy.run_type"] != "production" || root.Attrs["cassetteproxy.status"] != "passed" ||
		root.StatusCode != "STATUS_CODE_OK" || root.Attrs["cassetteproxy.cassette"] != "llm" || root.Service != "cassetteproxy" {
		t.Fatalf("root span: %+v", root)
	}
	if len(root.Events) != 1 || root.Events[0].Name != "checkpoint" || root.Events[0].Attrs["cassetteproxy.event.name"] != "asked" ||
		!strings.Contains(root.Events[0].Attrs["cassetteproxy.event.data"], "REDACTED") {
		t.Errorf("agent events: %+v", root.Events)
	}
	if len(kids) != 1 {
		t.Fatalf("want one tool-call span, got %+v", kids)
	}
	llm := kids[0]
	for k, v := range map[string]string{"http.request.method": "POST", "http.response.status_code": "200", "cassetteproxy.decision": "recorded",
		"gen_ai.request.model": "gpt-4o-mini", "gen_ai.response.model": "gpt-4o-mini-2024-07-18", "gen_ai.usage.input_tokens": "12",
		"gen_ai.usage.output_tokens": "7", "gen_ai.operation.name": "chat"} {
		if llm.Attrs[k] != v {
			t.Errorf("LLM span %s = %q, want %q", k, llm.Attrs[k], v)
		}
	}
	if u := llm.Attrs["url.full"]; !strings.HasPrefix(u, up.URL+"/v1/chat/completions?api_key=") || !strings.Contains(u, "REDACTED") {
		t.Errorf("url.full %q: want the redacted URL", u)
	}
	if h := rcv.Headers(); len(h) == 0 || h[0].Get("X-Collector-Auth") != "colsecret-4242-abcd" {
		t.Errorf("OTEL_EXPORTER_OTLP_HEADERS not sent: %v", h)
	}
	if strings.Contains(errs, "colsecret") || strings.Contains(errs, otlpSecret) {
		t.Errorf("stderr shows a secret:\n%s", errs)
	}

	// The replay of its fixture is a trace of its own, linked to the run's.
	fx := filepath.Join(e.dir, "fx")
	if _, errs, code := e.cli("export", "--cassette", "llm", "--out", fx); code != 0 {
		t.Fatalf("export: %d %s", code, errs)
	}
	replayArgs := []string{"replay", fx, "--pass-env", "LLM_API_KEY", "--pass-env", "UPSTREAM"}
	stdout, errs, replayCode := e.cliIn(e.dir, vars, append(replayArgs, "--otlp-endpoint", rcv.URL)...)
	v := parseVerdict(t, stdout)
	if replayCode != 0 || v.Status != "passed" {
		t.Fatalf("replay: exit %d, %+v\n%s\n%s", replayCode, v, errs, stdout)
	}
	traces = rcv.Traces()
	if len(traces) != 2 {
		t.Fatalf("after the replay: %d traces, want 2 (exit %d)\n%s", len(traces), replayCode, errs)
	}
	var replayRoot otlptest.Span
	for id, s := range traces {
		if id != runTrace {
			replayRoot, _ = rootOf(s)
		}
	}
	if replayRoot.Attrs["cassetteproxy.run_id"] != v.RunID || replayRoot.Attrs["cassetteproxy.run_type"] != "replay" ||
		replayRoot.Attrs["cassetteproxy.status"] != v.Status || replayRoot.Attrs["cassetteproxy.source_run_id"] != runID {
		t.Fatalf("replay root: %+v (verdict %+v, source run %s)", replayRoot, v, runID)
	}
	if len(replayRoot.Links) != 1 || replayRoot.Links[0].TraceID != runTrace || replayRoot.Links[0].SpanID != root.SpanID ||
		replayRoot.Attrs["cassetteproxy.source_trace_id"] != runTrace {
		t.Fatalf("replay's link %+v, want trace %s span %s", replayRoot.Links, runTrace, root.SpanID)
	}
	if _, err := hex.DecodeString(runTrace); err != nil || len(runTrace) != 32 {
		t.Fatalf("trace id %q", runTrace)
	}

	// monitor: one trace per fixture replayed, counted in monitor.json.
	mout := filepath.Join(e.dir, "mon")
	_, errs, monCode := e.cliIn(e.dir, vars, "monitor", fx, "--out", mout, "--pass-env", "LLM_API_KEY", "--pass-env", "UPSTREAM", "--otlp-endpoint", rcv.URL)
	mon := readShardReport(t, mout)
	if len(rcv.Traces()) != 3 || mon.Telemetry == nil || mon.Telemetry.Exported == 0 || mon.Telemetry.Dropped != 0 {
		t.Fatalf("monitor: exit %d, %d traces, telemetry %+v\n%s", monCode, len(rcv.Traces()), mon.Telemetry, errs)
	}
	assertNoSecret(t, "the OTLP exports", rcv.Raw())

	// The collector down: same verdicts and exit codes; the drop is
	// counted and logged.
	down := closedURL(t)
	_, errs, code = e.cliIn(e.dir, vars, "run", "--mode", "record", "--cassette", "llm-down", "--isolate", "off", "--otlp-endpoint", down, "--", "sh", "-c", otlpAgent)
	if code != 0 || !strings.Contains(errs, "telemetry: dropped") || !strings.Contains(errs, "2 of 2 spans not delivered") {
		t.Fatalf("run, collector down: exit %d\n%s", code, errs)
	}
	stdout, errs, code = e.cliIn(e.dir, vars, append(replayArgs, "--otlp-endpoint", down)...)
	if v2 := parseVerdict(t, stdout); code != replayCode || v2.Status != v.Status || v2.FailureClass != v.FailureClass || !strings.Contains(errs, "spans not delivered") {
		t.Fatalf("replay, collector down: exit %d (up: %d), %+v (up: %+v)\n%s", code, replayCode, v2, v, errs)
	}
	_, errs, code = e.cliIn(e.dir, vars, "monitor", fx, "--out", mout, "--pass-env", "LLM_API_KEY", "--pass-env", "UPSTREAM", "--otlp-endpoint", down)
	mon2 := readShardReport(t, mout)
	if code != monCode || mon2.Gate != mon.Gate || mon2.Telemetry == nil || mon2.Telemetry.Dropped == 0 || mon2.Telemetry.Exported != 0 || !strings.Contains(errs, "telemetry: dropped") {
		t.Fatalf("monitor, collector down: exit %d (up: %d), %+v\n%s", code, monCode, mon2.Telemetry, errs)
	}
	if len(rcv.Traces()) != 3 {
		t.Fatalf("the receiver got traces it should not have")
	}
}
