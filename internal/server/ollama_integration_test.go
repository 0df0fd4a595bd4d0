package server

import (
	"os"
	"strings"
	"testing"

	"github.com/loupe-sec/loupe/internal/config"
	"github.com/loupe-sec/loupe/internal/llm"
)

// TestSIBRealOllama sends an alert to POST /api/analyze of a loupe whose
// provider is a real Ollama server (LOUPE_OLLAMA_URL, serving the tiny model
// of internal/llm/gguftiny; scripts/ollama.sh starts one) and checks the
// analysis end to end: through the native API and the OpenAI-compatible
// endpoint the schema-constrained answer is used; through the
// Anthropic-compatible endpoint, where Ollama neither forces the tool nor
// constrains its input, the tiny model does not call loupe's tool and the
// alert gets the offline analysis, marked with why.
func TestSIBRealOllama(t *testing.T) {
	url := strings.TrimRight(os.Getenv("LOUPE_OLLAMA_URL"), "/")
	if url == "" {
		t.Skip("LOUPE_OLLAMA_URL not set: no real Ollama server to test against " +
			"(export LOUPE_OLLAMA_URL=$(scripts/ollama.sh start) LOUPE_OLLAMA_MODEL=loupe-tiny)")
	}
	model := os.Getenv("LOUPE_OLLAMA_MODEL")
	if model == "" {
		model = "loupe-tiny"
	}
	for _, provider := range []string{llm.Ollama, llm.OpenAI, llm.Anthropic} {
		t.Run(provider, func(t *testing.T) {
			base := url
			if provider == llm.OpenAI {
				base += "/v1"
			}
			hs, _, logs := llmServer(t, provider, base, func(c *config.Config) { c.LLMModel = model })
			an := analyzeAlert(t, hs.URL, map[string]any{"rule": "Terminal shell in container", "priority": "Notice", "output": sibOutput})
			t.Logf("meta %+v; severity %s, technique %s", an.Meta, an.RiskAssessment.Severity, an.MitreAttack.Technique)
			if provider == llm.Anthropic {
				if an.Meta.Fallback == "" {
					t.Fatalf("the tiny model answered loupe's tool through the Anthropic endpoint: %+v", an)
				}
				return
			}
			if an.Meta.Fallback != "" || an.Meta.Provider != provider || an.Meta.Model != model {
				t.Fatalf("not the model's analysis: meta %+v; log:\n%s", an.Meta, logs.String())
			}
		})
	}
}
