package llm

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
)

// anthropicProvider asks through the Messages API with a single tool whose
// input schema is the answer's schema, and forces the model to call it: the
// tool input is the answer.
type anthropicProvider struct {
	client anthropic.Client
	model  string
}

func newAnthropic(model, baseURL, apiKey string, hc *http.Client) *anthropicProvider {
	opts := []option.RequestOption{
		option.WithoutEnvironmentDefaults(), // no ANTHROPIC_* variables: config decides
		option.WithHTTPClient(hc),
		option.WithMaxRetries(0), // retries are retryTransport's
		option.WithAPIKey(apiKey),
	}
	if baseURL != "" {
		opts = append(opts, option.WithBaseURL(baseURL))
	}
	return &anthropicProvider{client: anthropic.NewClient(opts...), model: model}
}

func (p *anthropicProvider) Name() string  { return Anthropic }
func (p *anthropicProvider) Model() string { return p.model }

func (p *anthropicProvider) Generate(ctx context.Context, r Request) (Response, error) {
	start := time.Now()
	name := schemaName(r.SchemaName)
	params := anthropic.MessageNewParams{
		Model:     p.model,
		MaxTokens: maxTokens(r.MaxTokens),
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(r.User))},
	}
	if r.System != "" {
		params.System = []anthropic.TextBlockParam{{Text: r.System}}
	}
	if r.Schema != nil {
		params.Tools = []anthropic.ToolUnionParam{{OfTool: &anthropic.ToolParam{
			Name:        name,
			Description: anthropic.String("Record the answer. Call this exactly once with the complete answer."),
			InputSchema: inputSchema(r.Schema),
		}}}
		params.ToolChoice = anthropic.ToolChoiceParamOfTool(name)
	}
	m, err := p.client.Messages.New(ctx, params)
	if err != nil {
		return Response{}, fmt.Errorf("anthropic: %w", err)
	}
	resp := Response{
		InputTokens:  int(m.Usage.InputTokens),
		OutputTokens: int(m.Usage.OutputTokens),
		Latency:      time.Since(start),
	}
	for _, b := range m.Content {
		switch {
		case r.Schema != nil && b.Type == "tool_use" && b.Name == name:
			resp.Text = string(b.Input)
			return resp, nil
		case r.Schema == nil && b.Type == "text":
			resp.Text += b.Text
		}
	}
	if resp.Text == "" {
		return resp, fmt.Errorf("anthropic: %w (stop reason %q)", ErrEmptyAnswer, m.StopReason)
	}
	return resp, nil
}

// inputSchema splits a JSON Schema object into the SDK's tool input schema.
func inputSchema(s map[string]any) anthropic.ToolInputSchemaParam {
	in := anthropic.ToolInputSchemaParam{Properties: s["properties"], ExtraFields: map[string]any{}}
	switch req := s["required"].(type) {
	case []string:
		in.Required = req
	case []any:
		for _, v := range req {
			if s, ok := v.(string); ok {
				in.Required = append(in.Required, s)
			}
		}
	}
	for k, v := range s {
		if k != "properties" && k != "required" && k != "type" {
			in.ExtraFields[k] = v
		}
	}
	return in
}
