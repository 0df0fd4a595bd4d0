package config

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSIBDefaults(t *testing.T) {
	c := Default()
	if c.LLMProvider != "none" || !c.Obfuscation || !c.PreserveStructure || !c.CacheEnabled || c.CacheTTL != 24*time.Hour || c.Stack != "loki" {
		t.Fatalf("defaults %v", c)
	}
}

func TestSIBNestedYAML(t *testing.T) {
	file := writeFile(t, "config.yaml", `
llm:
  provider: Ollama
  model: llama3.1:8b
  base_url: http://host.docker.internal:11434/
obfuscation:
  enabled: false
  preserve_structure: true
cache:
  enabled: true
  ttl: 3600
server:
  host: 0.0.0.0
  port: 5000
loki.url: http://sib-loki:3100
grafana:
  url: https://grafana.example.com
`)
	c, err := Load(parse(t, Serve, "-config", file), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.LLMProvider != "ollama" || c.LLMModel != "llama3.1:8b" || c.LLMBaseURL != "http://host.docker.internal:11434" ||
		c.Obfuscation || !c.PreserveStructure || c.CacheTTL != time.Hour || c.Listen != "0.0.0.0:5000" ||
		c.LokiURL != "http://sib-loki:3100" || c.GrafanaURL != "https://grafana.example.com" {
		t.Fatalf("file not applied: %v", c)
	}
	for _, bad := range []string{"llm:\n  nope: 1\n", "llm:\n  provider: gpt\n", "cache:\n  ttl: -5\n", "server:\n  port: 70000\n",
		"loki:\n  url: ftp://x\n", "llm:\n  api_key: a\n  api_key_file: /x\n", "grafana:\n  url: http://admin:pw@grafana:3000\n"} {
		if _, err := Load(parse(t, Serve, "-config", writeFile(t, "bad.yaml", bad)), nil); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestSIBEnv(t *testing.T) {
	cases := []struct {
		env   map[string]string
		check func(Config) bool
	}{
		{map[string]string{"LOUPE_LLM_PROVIDER": "anthropic"}, func(c Config) bool { return c.LLMProvider == "anthropic" }},
		{map[string]string{"LOUPE_LLM_MODEL": "gpt-4o-mini"}, func(c Config) bool { return c.LLMModel == "gpt-4o-mini" }},
		{map[string]string{"LOUPE_LLM_BASE_URL": "http://ollama:11434"}, func(c Config) bool { return c.LLMBaseURL == "http://ollama:11434" }},
		{map[string]string{"LOUPE_OBFUSCATION_ENABLED": "false"}, func(c Config) bool { return !c.Obfuscation }},
		{map[string]string{"LOUPE_OBFUSCATION_PRESERVE_STRUCTURE": "0"}, func(c Config) bool { return !c.PreserveStructure }},
		{map[string]string{"LOUPE_CACHE_ENABLED": "false"}, func(c Config) bool { return !c.CacheEnabled }},
		{map[string]string{"LOUPE_CACHE_TTL": "90m"}, func(c Config) bool { return c.CacheTTL == 90*time.Minute }},
		{map[string]string{"ANALYSIS_CACHE_TTL": "600"}, func(c Config) bool { return c.CacheTTL == 10*time.Minute }},
		{map[string]string{"ANALYSIS_CACHE_TTL": "600", "LOUPE_CACHE_TTL": "1h"}, func(c Config) bool { return c.CacheTTL == time.Hour }},
		{map[string]string{"STACK": "vm"}, func(c Config) bool { return c.Stack == "vm" }},
		{map[string]string{"STACK": "grafana"}, func(c Config) bool { return c.Stack == "loki" }},
		{map[string]string{"LOUPE_SERVER_PORT": "5000"}, func(c Config) bool { return c.Listen == "127.0.0.1:5000" }},
		{map[string]string{"LOUPE_SERVER_HOST": "::"}, func(c Config) bool { return c.Listen == "[::]:8080" }},
		{map[string]string{"LOUPE_LOKI_URL": "http://l:3100"}, func(c Config) bool { return c.LokiURL == "http://l:3100" }},
		{map[string]string{"LOUPE_VICTORIALOGS_URL": "http://v:9428"}, func(c Config) bool { return c.VictoriaLogsURL == "http://v:9428" }},
		{map[string]string{"LOUPE_GRAFANA_URL": "http://g:3000"}, func(c Config) bool { return c.GrafanaURL == "http://g:3000" }},
		{map[string]string{"LOUPE_FALCO_URL": "http://f:8765"}, func(c Config) bool { return c.FalcoURL == "http://f:8765" }},
		{map[string]string{"LOUPE_FALCOSIDEKICK_URL": "http://s:2801"}, func(c Config) bool { return c.FalcosidekickURL == "http://s:2801" }},
		{map[string]string{"LOUPE_LLM_PROVIDER": "openai", "OPENAI_API_KEY": "sk-env"}, func(c Config) bool { return c.LLMAPIKey == "sk-env" }},
		{map[string]string{"LOUPE_LLM_PROVIDER": "anthropic", "OPENAI_API_KEY": "sk-env"}, func(c Config) bool { return c.LLMAPIKey == "" }},
		{map[string]string{"LOUPE_LLM_PROVIDER": "anthropic", "ANTHROPIC_API_KEY": "ak", "LOUPE_LLM_API_KEY": "lk"}, func(c Config) bool { return c.LLMAPIKey == "lk" }},
	}
	for _, c := range cases {
		got, err := Load(nil, env(c.env))
		if err != nil {
			t.Errorf("%v: %v", c.env, err)
			continue
		}
		if !c.check(got) {
			t.Errorf("%v: not applied: %v", c.env, got)
		}
	}
	for _, bad := range []map[string]string{
		{"LOUPE_LLM_PROVIDER": "gemini"}, {"ANALYSIS_CACHE_TTL": "soon"}, {"LOUPE_CACHE_ENABLED": "maybe"},
		{"LOUPE_LLM_API_KEY": "a", "LOUPE_LLM_API_KEY_FILE": "/x"},
		{"LOUPE_LLM_PROVIDER": "openai", "OPENAI_API_KEY": "a", "OPENAI_API_KEY_FILE": "/x"},
	} {
		if _, err := Load(nil, env(bad)); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestSIBKeyFileAndFlags(t *testing.T) {
	keyFile := writeFile(t, "key", "sk-from-file\n")
	c, err := Load(parse(t, Serve, "-llm-provider", "openai", "-obfuscation=false", "-cache-ttl", "120", "-stack", "vm"),
		env(map[string]string{"OPENAI_API_KEY_FILE": keyFile, "LOUPE_LLM_PROVIDER": "ollama"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.LLMProvider != "openai" || c.LLMAPIKey != "sk-from-file" || c.Obfuscation || c.CacheTTL != 2*time.Minute || c.Stack != "vm" {
		t.Fatalf("flags or key file not applied: %v", c)
	}
}

func TestSIBSecretsNeverPrinted(t *testing.T) {
	const key = "sk-very-secret-value"
	file := writeFile(t, "c.yaml", "llm:\n  provider: openai\n  api_key: "+key+"\n")
	c, err := Load(parse(t, Serve, "-config", file), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.LLMAPIKey != key {
		t.Fatalf("key not loaded")
	}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("config", "config", c)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("config", "config", c)
	for _, out := range []string{c.String(), fmt.Sprint(c), fmt.Sprintf("%v %+v %#v %s", c, c, c, c), logs.String()} {
		if strings.Contains(out, key) {
			t.Fatalf("API key printed: %s", out)
		}
		if !strings.Contains(out, "[redacted]") {
			t.Fatalf("redaction marker missing: %s", out)
		}
	}
}

func FuzzConfigFile(f *testing.F) {
	f.Add("llm:\n  provider: ollama\n  model: m\ncache:\n  ttl: 3600\nserver:\n  port: 5000\n")
	f.Add("listen: 127.0.0.1:1\nllm.api_key: k\nobfuscation: {enabled: false}\n")
	f.Add("grafana:\n  url: [1, 2]\n")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, body string) {
		p := filepath.Join(dir, "fuzz.yaml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		c := Default()
		if err := c.loadFile(p); err != nil {
			return
		}
		if c.CacheTTL <= 0 || c.Listen == "" || (c.Stack != "loki" && c.Stack != "vm") {
			t.Fatalf("accepted file left an invalid config: %v", c)
		}
		switch c.LLMProvider {
		case "ollama", "openai", "anthropic", "none":
		default:
			t.Fatalf("provider %q", c.LLMProvider)
		}
	})
}
