package llm

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"
)

// openAI asks through the chat completions API with a strict json_schema
// response format. It also serves OpenAI-compatible servers via base URL.
type openAI struct {
	client openai.Client
	model  string
}

func newOpenAI(model, baseURL, apiKey string, hc *http.Client) *openAI {
	opts := []option.RequestOption{
		option.WithHTTPClient(hc),
		option.WithMaxRetries(0), // retries are retryTransport's
		option.WithAPIKey(apiKey),
	}
	if baseURL != "" {
		opts = append(opts, option.WithBaseURL(baseURL))
	}
	return &openAI{client: openai.NewClient(opts...), model: model}
}

func (p *openAI) Name() string  { return OpenAI }
func (p *openAI) Model() string { return p.model }

func (p *openAI) Generate(ctx context.Context, r Request) (Response, error) {
	start := time.Now()
	params := openai.ChatCompletionNewParams{
		Model: p.model,
		Messages: []openai.ChatCompletionMessageParamUnion{
			openai.SystemMessage(r.System),
			openai.UserMessage(r.User),
		},
		MaxCompletionTokens: openai.Int(maxTokens(r.MaxTokens)),
	}
	if r.Schema != nil {
		params.ResponseFormat = openai.ChatCompletionNewParamsResponseFormatUnion{
			OfJSONSchema: &shared.ResponseFormatJSONSchemaParam{
				JSONSchema: shared.ResponseFormatJSONSchemaJSONSchemaParam{
					Name:   schemaName(r.SchemaName),
					Schema: r.Schema,
					Strict: openai.Bool(true),
				},
			},
		}
	}
	c, err := p.client.Chat.Completions.New(ctx, params)
	if err != nil {
		return Response{}, fmt.Errorf("openai: %w", err)
	}
	resp := Response{
		InputTokens:  int(c.Usage.PromptTokens),
		OutputTokens: int(c.Usage.CompletionTokens),
		Latency:      time.Since(start),
	}
	if len(c.Choices) == 0 {
		return resp, fmt.Errorf("openai: %w", ErrEmptyAnswer)
	}
	msg := c.Choices[0].Message
	if msg.Content == "" {
		if msg.Refusal != "" {
			return resp, fmt.Errorf("openai: model refused: %.200s", msg.Refusal)
		}
		return resp, fmt.Errorf("openai: %w", ErrEmptyAnswer)
	}
	resp.Text = msg.Content
	return resp, nil
}
