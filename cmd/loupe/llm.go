package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/loupe-sec/loupe/internal/config"
	"github.com/loupe-sec/loupe/internal/llm"
	"github.com/loupe-sec/loupe/internal/metrics"
	"github.com/loupe-sec/loupe/internal/reason/deep"
)

// llmFlags select the language-model reasoning stage (package deep). The
// provider, model and base URL flags override llm.provider, llm.model and
// llm.base_url of the configuration; the API key comes, as for the SIB
// analysis, from LOUPE_LLM_API_KEY(_FILE), the provider's own variable
// (OPENAI_API_KEY, ANTHROPIC_API_KEY, or their _FILE forms) or the config
// file, never from a flag.
type llmFlags struct {
	provider, model, baseURL string
	timeout                  time.Duration
	maxCalls, concurrency    int
	perMinute, tokensPerMin  int
}

// bindLLMFlags binds the flags of loupe analyze.
func bindLLMFlags(fs *flag.FlagSet, usage string) *llmFlags {
	f := &llmFlags{}
	fs.StringVar(&f.provider, "llm", "", usage)
	fs.StringVar(&f.model, "llm-model", "", "model for --llm (default: llm.model, else the provider's default)")
	fs.StringVar(&f.baseURL, "llm-base-url", "", "provider endpoint for --llm, e.g. http://127.0.0.1:11434 or an OpenAI-compatible /v1 URL")
	f.bindLimits(fs)
	return f
}

// bindServeLLMFlags binds the flags of loupe serve, whose provider, model
// and base URL are the configuration's llm.* settings (--llm-provider…).
func bindServeLLMFlags(fs *flag.FlagSet) *llmFlags {
	f := &llmFlags{}
	f.bindLimits(fs)
	return f
}

func (f *llmFlags) bindLimits(fs *flag.FlagSet) {
	fs.DurationVar(&f.timeout, "llm-timeout", 60*time.Second, "bound on one model call, retries included")
	fs.IntVar(&f.maxCalls, "llm-max-calls", deep.DefaultMaxCalls, "model calls per run (also at most one per 10000 events)")
	fs.IntVar(&f.concurrency, "llm-concurrency", 4, "model calls in flight")
	fs.IntVar(&f.perMinute, "llm-calls-per-minute", 60, "model calls per minute (token bucket)")
	fs.IntVar(&f.tokensPerMin, "llm-tokens-per-minute", 200000, "model tokens per minute, prompts estimated (token bucket)")
}

// enabled reports whether a provider was named.
func (f *llmFlags) enabled() bool {
	p := strings.ToLower(strings.TrimSpace(f.provider))
	return p != "" && p != "none"
}

// getenv overlays the flags on the environment as the LOUPE_LLM_*
// variables, so that config.Load validates them and picks the provider's
// key variable as it does for the SIB analysis.
func (f *llmFlags) getenv(next func(string) (string, bool)) func(string) (string, bool) {
	over := map[string]string{}
	if f.enabled() {
		over["LOUPE_LLM_PROVIDER"] = f.provider
	}
	if f.model != "" {
		over["LOUPE_LLM_MODEL"] = f.model
	}
	if f.baseURL != "" {
		over["LOUPE_LLM_BASE_URL"] = f.baseURL
	}
	return func(k string) (string, bool) {
		if v, ok := over[k]; ok {
			return v, true
		}
		return next(k)
	}
}

// check validates the flags before any work.
func (f *llmFlags) check() error {
	switch p := strings.ToLower(strings.TrimSpace(f.provider)); p {
	case "", "none", llm.Ollama, llm.OpenAI, llm.Anthropic:
	default:
		return fmt.Errorf("--llm: %q is not ollama, openai or anthropic", f.provider)
	}
	if f.timeout <= 0 || f.maxCalls <= 0 || f.concurrency <= 0 || f.perMinute <= 0 || f.tokensPerMin <= 0 {
		return fmt.Errorf("--llm-timeout, --llm-max-calls, --llm-concurrency, --llm-calls-per-minute and --llm-tokens-per-minute must be positive")
	}
	return nil
}

// newAnalyst builds the reasoning stage from the loaded configuration; with
// cache set, answers are kept per cfg's cache settings.
func newAnalyst(cfg config.Config, f *llmFlags, log *slog.Logger, cache bool, m *metrics.Metrics) (*deep.Analyst, error) {
	p, err := llm.New(cfg.LLMProvider, cfg.LLMModel, cfg.LLMBaseURL, cfg.LLMAPIKey, &http.Client{})
	if err != nil {
		return nil, err
	}
	if m != nil { // serve: calls, tokens and latency in /metrics
		p = m.Provider(p)
	}
	dc := deep.Config{
		Provider: p,
		Limits: llm.Limits{Concurrency: f.concurrency, CallsPerMinute: f.perMinute, TokensPerMinute: f.tokensPerMin,
			Timeout: f.timeout},
		MaxCalls: f.maxCalls,
		Log:      log,
	}
	if cache && cfg.CacheEnabled {
		dc.Cache = llm.NewCache(cfg.CacheTTL, 0)
		if m != nil {
			if err := m.WatchCache("llm", dc.Cache); err != nil {
				return nil, err
			}
		}
	}
	return deep.New(dc)
}
