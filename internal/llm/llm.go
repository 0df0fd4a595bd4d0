// Package llm asks a language model for one JSON answer that follows a JSON
// Schema. Provider hides who answers: OpenAI (or any server speaking its chat
// completions API, such as vLLM, llama.cpp or Ollama's /v1), Anthropic, or
// Ollama's native API; each is built on the vendor's official Go SDK.
//
// The SDKs' own retries are switched off (max retries 0); the HTTP client
// given to New is wrapped so that 429 and 5xx answers are retried here, at
// most twice, with exponential backoff and jitter, honouring Retry-After.
// A call's deadline comes from its context.
//
// Guard wraps a Provider for work at scale: bounded concurrency, token
// buckets of calls and tokens per minute, a per-call timeout and a circuit
// breaker (open after consecutive failures, one half-open probe after a
// cooldown). Cache keeps validated answers by key with a TTL, in memory.
package llm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Provider names accepted by New.
const (
	OpenAI    = "openai"
	Anthropic = "anthropic"
	Ollama    = "ollama"
)

// Defaults used by New when model or base URL are empty.
const (
	DefaultOllamaModel    = "llama3.1:8b"
	DefaultOllamaURL      = "http://127.0.0.1:11434"
	DefaultOpenAIModel    = "gpt-4o-mini"
	DefaultAnthropicModel = "claude-sonnet-4-5"
	defaultMaxTokens      = 2048
)

// Request is one question to a model.
type Request struct {
	System     string         // instructions
	User       string         // the question, including the data to reason about
	Schema     map[string]any // JSON Schema (an object) the answer must follow
	SchemaName string         // short name of the schema, [a-zA-Z0-9_-]
	MaxTokens  int            // bound on the answer; 0: 2048
}

// Response is a model's answer.
type Response struct {
	Text         string // the answer: a JSON document when the model obeyed the schema
	InputTokens  int
	OutputTokens int
	Latency      time.Duration
}

// Provider is a language model behind an API. Implementations are safe for
// concurrent use.
type Provider interface {
	Name() string  // openai, anthropic or ollama
	Model() string // model name sent with each request
	Generate(ctx context.Context, r Request) (Response, error)
}

// ErrEmptyAnswer is returned when a model answers with no content.
var ErrEmptyAnswer = errors.New("llm: empty answer")

// New returns the provider named provider ("openai", "anthropic" or
// "ollama"). baseURL empty means the vendor's public endpoint (for Ollama,
// a local server); hc nil means a new client without timeout, the context of
// each call bounding it. The API key is sent only to baseURL and is never
// logged.
func New(provider, model, baseURL, apiKey string, hc *http.Client) (Provider, error) {
	if hc == nil {
		hc = &http.Client{}
	}
	rc := retrying(hc)
	switch strings.ToLower(strings.TrimSpace(provider)) {
	case OpenAI:
		return newOpenAI(orDefault(model, DefaultOpenAIModel), baseURL, apiKey, rc), nil
	case Anthropic:
		return newAnthropic(orDefault(model, DefaultAnthropicModel), baseURL, apiKey, rc), nil
	case Ollama:
		return newOllama(orDefault(model, DefaultOllamaModel), orDefault(baseURL, DefaultOllamaURL), apiKey, rc)
	default:
		return nil, fmt.Errorf("llm: unknown provider %q (want openai, anthropic or ollama)", provider)
	}
}

func orDefault(s, def string) string {
	if strings.TrimSpace(s) == "" {
		return def
	}
	return strings.TrimSpace(s)
}

func maxTokens(n int) int64 {
	if n <= 0 {
		return defaultMaxTokens
	}
	return int64(n)
}

func schemaName(s string) string {
	if s == "" {
		return "answer"
	}
	return s
}
