package llm

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/ollama/ollama/api"
)

// ollama asks through Ollama's native /api/chat with format set to the
// schema and streaming off.
type ollama struct {
	client *api.Client
	model  string
}

func newOllama(model, baseURL, apiKey string, hc *http.Client) (*ollama, error) {
	u, err := url.Parse(baseURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("llm: ollama base url %q is not an absolute URL", baseURL)
	}
	if apiKey != "" {
		// Ollama itself needs no key; a proxy in front of it may.
		c := *hc
		c.Transport = bearer{key: apiKey, base: hc.Transport}
		hc = &c
	}
	return &ollama{client: api.NewClient(u, hc), model: model}, nil
}

func (p *ollama) Name() string  { return Ollama }
func (p *ollama) Model() string { return p.model }

func (p *ollama) Generate(ctx context.Context, r Request) (Response, error) {
	start := time.Now()
	stream := false
	req := &api.ChatRequest{
		Model:    p.model,
		Messages: []api.Message{{Role: "system", Content: r.System}, {Role: "user", Content: r.User}},
		Stream:   &stream,
		Options:  map[string]any{"num_predict": maxTokens(r.MaxTokens), "temperature": 0},
	}
	if r.Schema != nil {
		f, err := json.Marshal(r.Schema)
		if err != nil {
			return Response{}, fmt.Errorf("ollama: schema: %w", err)
		}
		req.Format = f
	}
	var resp Response
	err := p.client.Chat(ctx, req, func(c api.ChatResponse) error {
		resp.Text += c.Message.Content
		if c.Done {
			resp.InputTokens, resp.OutputTokens = c.PromptEvalCount, c.EvalCount
		}
		return nil
	})
	resp.Latency = time.Since(start)
	if err != nil {
		return Response{}, fmt.Errorf("ollama: %w", err)
	}
	if resp.Text == "" {
		return resp, fmt.Errorf("ollama: %w", ErrEmptyAnswer)
	}
	return resp, nil
}

// bearer adds an Authorization header to every request.
type bearer struct {
	key  string
	base http.RoundTripper
}

func (b bearer) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", "Bearer "+b.key)
	base := b.base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(r)
}
