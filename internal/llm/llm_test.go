package llm

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/loupe-sec/loupe/internal/llm/llmtest"
)

var testSchema = map[string]any{
	"type":                 "object",
	"properties":           map[string]any{"verdict": map[string]any{"type": "string", "enum": []string{"yes", "no"}}},
	"required":             []string{"verdict"},
	"additionalProperties": false,
}

var providers = []string{OpenAI, Anthropic, Ollama}

func newProvider(t *testing.T, s *llmtest.Server, key string) Provider {
	t.Helper()
	p, err := New(s.Provider, "test-model", s.BaseURL(), key, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func shortBackoff(t *testing.T) {
	old := baseBackoff
	baseBackoff = 5 * time.Millisecond
	t.Cleanup(func() { baseBackoff = old })
}

func TestWireFormat(t *testing.T) {
	for _, name := range providers {
		t.Run(name, func(t *testing.T) {
			s := llmtest.New(t, name, func(int, llmtest.Call) llmtest.Reply { return llmtest.Reply{Text: `{"verdict":"yes"}`} })
			p := newProvider(t, s, "sk-test-123")
			resp, err := p.Generate(context.Background(), Request{System: "be brief", User: "is it?", Schema: testSchema, SchemaName: "verdict", MaxTokens: 99})
			if err != nil {
				t.Fatal(err)
			}
			if resp.Text != `{"verdict":"yes"}` || resp.InputTokens != 11 || resp.OutputTokens != 7 || resp.Latency <= 0 {
				t.Errorf("response %+v", resp)
			}
			if p.Name() != name || p.Model() != "test-model" {
				t.Errorf("name %q model %q", p.Name(), p.Model())
			}
			calls := s.Calls()
			if len(calls) != 1 {
				t.Fatalf("%d calls", len(calls))
			}
			var body map[string]any
			if err := json.Unmarshal(calls[0].Body, &body); err != nil {
				t.Fatal(err)
			}
			if body["model"] != "test-model" {
				t.Errorf("model %v", body["model"])
			}
			raw := string(calls[0].Body)
			if !strings.Contains(raw, "be brief") || !strings.Contains(raw, "is it?") {
				t.Errorf("system or user text missing: %s", raw)
			}
			h := calls[0].Header
			switch name {
			case OpenAI:
				if calls[0].Path != "/v1/chat/completions" || h.Get("Authorization") != "Bearer sk-test-123" {
					t.Errorf("path %s auth %q", calls[0].Path, h.Get("Authorization"))
				}
				rf := body["response_format"].(map[string]any)
				js := rf["json_schema"].(map[string]any)
				if rf["type"] != "json_schema" || js["strict"] != true || js["name"] != "verdict" || js["schema"] == nil {
					t.Errorf("response_format %v", rf)
				}
				if body["max_completion_tokens"] != 99.0 {
					t.Errorf("max tokens %v", body["max_completion_tokens"])
				}
			case Anthropic:
				if calls[0].Path != "/v1/messages" || h.Get("Authorization") != "Bearer sk-test-123" && h.Get("X-Api-Key") != "sk-test-123" {
					t.Errorf("path %s key %q headers %v", calls[0].Path, h.Get("X-Api-Key"), h)
				}
				tools := body["tools"].([]any)
				tool := tools[0].(map[string]any)
				is := tool["input_schema"].(map[string]any)
				if len(tools) != 1 || tool["name"] != "verdict" || is["type"] != "object" || is["additionalProperties"] != false || is["properties"] == nil {
					t.Errorf("tools %v", tools)
				}
				if tc := body["tool_choice"].(map[string]any); tc["type"] != "tool" || tc["name"] != "verdict" {
					t.Errorf("tool_choice %v", tc)
				}
				if body["max_tokens"] != 99.0 {
					t.Errorf("max tokens %v", body["max_tokens"])
				}
			case Ollama:
				if calls[0].Path != "/api/chat" || body["stream"] != false {
					t.Errorf("path %s stream %v", calls[0].Path, body["stream"])
				}
				if f := body["format"].(map[string]any); f["type"] != "object" || f["properties"] == nil {
					t.Errorf("format %v", body["format"])
				}
				if h.Get("Authorization") != "Bearer sk-test-123" {
					t.Errorf("auth %q", h.Get("Authorization"))
				}
			}
		})
	}
}

// Each provider retries a 429 and a 500 and then succeeds; with the SDKs'
// own retries off, three failures are exactly three requests.
func TestRetries(t *testing.T) {
	shortBackoff(t)
	for _, name := range providers {
		t.Run(name, func(t *testing.T) {
			s := llmtest.New(t, name, func(n int, _ llmtest.Call) llmtest.Reply {
				switch n {
				case 0:
					return llmtest.Reply{Status: 429, Raw: `{"error":"slow down"}`}
				case 1:
					return llmtest.Reply{Status: 500, Raw: `{"error":"oops"}`}
				}
				return llmtest.Reply{Text: `{"verdict":"no"}`}
			})
			resp, err := newProvider(t, s, "k").Generate(context.Background(), Request{User: "q", Schema: testSchema, SchemaName: "verdict"})
			if err != nil || resp.Text != `{"verdict":"no"}` {
				t.Fatalf("%+v %v", resp, err)
			}
			calls := s.Calls()
			if len(calls) != 3 {
				t.Fatalf("%d calls, want 3", len(calls))
			}
			if string(calls[2].Body) != string(calls[0].Body) {
				t.Error("retried request has a different body")
			}

			always := llmtest.New(t, name, func(int, llmtest.Call) llmtest.Reply {
				return llmtest.Reply{Status: 503, Raw: `{"error":"down"}`}
			})
			if _, err := newProvider(t, always, "k").Generate(context.Background(), Request{User: "q"}); err == nil {
				t.Fatal("no error from a server that always fails")
			}
			if n := len(always.Calls()); n != 1+maxRetries {
				t.Errorf("%d calls to a failing server, want %d", n, 1+maxRetries)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	s := llmtest.New(t, OpenAI, func(n int, _ llmtest.Call) llmtest.Reply {
		if n == 0 {
			return llmtest.Reply{Status: 429, Header: map[string]string{"Retry-After": "1"}, Raw: `{"error":{"message":"rate"}}`}
		}
		return llmtest.Reply{Text: `{"verdict":"yes"}`}
	})
	start := time.Now()
	if _, err := newProvider(t, s, "k").Generate(context.Background(), Request{User: "q"}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("retried after %v, before Retry-After's 1s", d)
	}

	// A Retry-After beyond the bound is not waited for.
	long := llmtest.New(t, Anthropic, func(int, llmtest.Call) llmtest.Reply {
		return llmtest.Reply{Status: 429, Header: map[string]string{"Retry-After": "3600"}, Raw: `{"type":"error"}`}
	})
	start = time.Now()
	_, err := newProvider(t, long, "k").Generate(context.Background(), Request{User: "q"})
	if err == nil || time.Since(start) > 2*time.Second || len(long.Calls()) != 1 {
		t.Errorf("err %v after %v, %d calls", err, time.Since(start), len(long.Calls()))
	}
}

func TestDeadlineFromContext(t *testing.T) {
	for _, name := range providers {
		t.Run(name, func(t *testing.T) {
			s := llmtest.New(t, name, func(int, llmtest.Call) llmtest.Reply { return llmtest.Reply{Stall: 10 * time.Second} })
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := newProvider(t, s, "").Generate(ctx, Request{User: "q"})
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("err %v, want deadline exceeded", err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("returned after %v", d)
			}
		})
	}
}

func TestConnectionRefused(t *testing.T) {
	s := llmtest.New(t, Ollama, nil)
	url := s.BaseURL()
	s.Close()
	p, err := New(Ollama, "", url, "", &http.Client{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Generate(context.Background(), Request{User: "q"}); err == nil {
		t.Error("no error from a closed server")
	}
}

func TestNew(t *testing.T) {
	p, err := New("Ollama", "", "", "", nil)
	if err != nil || p.Model() != DefaultOllamaModel || p.Name() != Ollama {
		t.Errorf("%v %v", p, err)
	}
	if _, err := New("gemini", "", "", "", nil); err == nil {
		t.Error("unknown provider accepted")
	}
	if _, err := New(Ollama, "", "not a url", "", nil); err == nil {
		t.Error("bad ollama url accepted")
	}
}

func TestWait(t *testing.T) {
	tr := &retryTransport{}
	for attempt := range 3 {
		d, ok := tr.wait(attempt, "")
		full := baseBackoff << attempt
		if !ok || d < full/2 || d > full {
			t.Errorf("attempt %d: %v %v", attempt, d, ok)
		}
	}
	if d, ok := tr.wait(0, "2"); !ok || d != 2*time.Second {
		t.Errorf("Retry-After 2: %v %v", d, ok)
	}
	if d, ok := tr.wait(0, time.Now().Add(3*time.Second).UTC().Format(http.TimeFormat)); !ok || d < time.Second || d > 3*time.Second {
		t.Errorf("Retry-After date: %v %v", d, ok)
	}
	if _, ok := tr.wait(0, "60"); ok {
		t.Error("waits beyond maxWait")
	}
}
