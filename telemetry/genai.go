package telemetry

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/url"
	"strings"

	"go.opentelemetry.io/otel/attribute"

	"github.com/cassetteproxy/cassetteproxy/store"
)

// GenAI is what the proxy can read of an LLM call from its recorded bodies,
// as GenAI semantic-convention attributes.
type GenAI struct {
	Provider      string // openai, anthropic, or "" when the shape says nothing
	Operation     string // chat, text_completion, embeddings
	RequestModel  string
	ResponseModel string
	InputTokens   int64 // -1: not in the answer
	OutputTokens  int64
	FinishReasons []string
}

// Attrs are the gen_ai.* attributes.
func (g GenAI) Attrs() []attribute.KeyValue {
	var a []attribute.KeyValue
	if g.Provider != "" {
		a = append(a, attribute.String("gen_ai.provider.name", g.Provider), attribute.String("gen_ai.system", g.Provider))
	}
	if g.Operation != "" {
		a = append(a, attribute.String("gen_ai.operation.name", g.Operation))
	}
	if g.RequestModel != "" {
		a = append(a, attribute.String("gen_ai.request.model", g.RequestModel))
	}
	if g.ResponseModel != "" {
		a = append(a, attribute.String("gen_ai.response.model", g.ResponseModel))
	}
	if g.InputTokens >= 0 {
		a = append(a, attribute.Int64("gen_ai.usage.input_tokens", g.InputTokens))
	}
	if g.OutputTokens >= 0 {
		a = append(a, attribute.Int64("gen_ai.usage.output_tokens", g.OutputTokens))
	}
	if len(g.FinishReasons) > 0 {
		a = append(a, attribute.StringSlice("gen_ai.response.finish_reasons", g.FinishReasons))
	}
	return a
}

// llmRequest is the part of an OpenAI- or Anthropic-shaped request body
// that says it is an LLM call.
type llmRequest struct {
	Model    string          `json:"model"`
	Messages json.RawMessage `json:"messages"`
	Prompt   json.RawMessage `json:"prompt"`
	Input    json.RawMessage `json:"input"`
	System   json.RawMessage `json:"system"`
}

// usage covers both spellings: OpenAI chat (prompt/completion) and
// Anthropic and OpenAI Responses (input/output).
type usage struct {
	PromptTokens     *int64 `json:"prompt_tokens"`
	CompletionTokens *int64 `json:"completion_tokens"`
	InputTokens      *int64 `json:"input_tokens"`
	OutputTokens     *int64 `json:"output_tokens"`
}

// llmResponse is one JSON answer or one SSE event's data: an OpenAI chat
// completion or chunk, an Anthropic message or stream event, an OpenAI
// Responses object or event.
type llmResponse struct {
	Type    string `json:"type"`
	Object  string `json:"object"`
	Model   string `json:"model"`
	Usage   *usage `json:"usage"`
	Choices []struct {
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	StopReason *string   `json:"stop_reason"`
	Message    *struct { // Anthropic message_start
		Model string `json:"model"`
		Usage *usage `json:"usage"`
	} `json:"message"`
	Delta *struct { // Anthropic message_delta
		StopReason *string `json:"stop_reason"`
	} `json:"delta"`
	Response *struct { // OpenAI Responses response.completed
		Model string `json:"model"`
		Usage *usage `json:"usage"`
	} `json:"response"`
}

// GenAIOf reads an interaction as an LLM call: ok when its request body is
// a JSON object naming a model and carrying messages, a prompt or an input.
func GenAIOf(in *store.Interaction) (GenAI, bool) {
	g := GenAI{InputTokens: -1, OutputTokens: -1}
	var req llmRequest
	if err := json.Unmarshal(in.Request.Body, &req); err != nil || req.Model == "" ||
		(req.Messages == nil && req.Prompt == nil && req.Input == nil) {
		return g, false
	}
	g.RequestModel = req.Model
	path := ""
	host := ""
	if u, err := url.Parse(in.Request.URL); err == nil {
		path, host = u.Path, strings.ToLower(u.Hostname())
	}
	switch {
	case strings.HasSuffix(path, "/embeddings"):
		g.Operation = "embeddings"
	case strings.HasSuffix(path, "/completions") && !strings.HasSuffix(path, "/chat/completions"):
		g.Operation = "text_completion"
	default:
		g.Operation = "chat"
	}
	switch {
	case strings.Contains(host, "anthropic") || in.Request.Header.Get("Anthropic-Version") != "" || strings.HasSuffix(path, "/v1/messages"):
		g.Provider = "anthropic"
	case strings.Contains(host, "openai") || strings.HasSuffix(path, "/chat/completions") || strings.HasSuffix(path, "/responses"):
		g.Provider = "openai"
	}
	body := bytes.TrimSpace(in.Response.Body)
	if len(body) > 0 && body[0] == '{' {
		var r llmResponse
		if json.Unmarshal(body, &r) == nil {
			g.take(&r)
		}
		return g, true
	}
	// A stream: every SSE data line that holds JSON; later values win
	// (usage arrives in the final events).
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		data, ok := bytes.CutPrefix(line, []byte("data:"))
		if !ok {
			continue
		}
		data = bytes.TrimSpace(data)
		if len(data) == 0 || data[0] != '{' {
			continue
		}
		var r llmResponse
		if json.Unmarshal(data, &r) == nil {
			g.take(&r)
		}
	}
	return g, true
}

// take folds one answer (or stream event) in.
func (g *GenAI) take(r *llmResponse) {
	g.model(r.Model)
	g.usage(r.Usage)
	if r.Message != nil {
		g.model(r.Message.Model)
		g.usage(r.Message.Usage)
	}
	if r.Response != nil {
		g.model(r.Response.Model)
		g.usage(r.Response.Usage)
	}
	for _, c := range r.Choices {
		if c.FinishReason != nil && *c.FinishReason != "" {
			g.FinishReasons = append(g.FinishReasons, *c.FinishReason)
		}
	}
	if r.StopReason != nil && *r.StopReason != "" {
		g.FinishReasons = []string{*r.StopReason}
	}
	if r.Delta != nil && r.Delta.StopReason != nil && *r.Delta.StopReason != "" {
		g.FinishReasons = []string{*r.Delta.StopReason}
	}
}

func (g *GenAI) model(m string) {
	if m != "" {
		g.ResponseModel = m
	}
}

// usage keeps the latest counts. Anthropic streams input tokens in
// message_start and the final output count in message_delta, so a count
// absent from an event leaves the earlier one.
func (g *GenAI) usage(u *usage) {
	if u == nil {
		return
	}
	pick := func(a, b *int64) *int64 {
		if a != nil {
			return a
		}
		return b
	}
	if v := pick(u.InputTokens, u.PromptTokens); v != nil {
		g.InputTokens = *v
	}
	if v := pick(u.OutputTokens, u.CompletionTokens); v != nil {
		g.OutputTokens = *v
	}
}
