package llm_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loupe-sec/loupe/internal/llm"
	"github.com/loupe-sec/loupe/internal/llm/gguftiny"
)

// The integration tests below talk to a real Ollama server, through loupe's
// three providers: Ollama's native /api/chat, the OpenAI SDK against its
// /v1/chat/completions and the Anthropic SDK against its /v1/messages. They
// run when LOUPE_OLLAMA_URL names a server serving the tiny model of
// internal/llm/gguftiny (scripts/ollama.sh start does both; scripts/test.sh
// runs them), as LOUPE_OLLAMA_MODEL (default loupe-tiny).

func realOllama(t *testing.T) (url, model string) {
	t.Helper()
	url = strings.TrimRight(os.Getenv("LOUPE_OLLAMA_URL"), "/")
	if url == "" {
		t.Skip("LOUPE_OLLAMA_URL not set: no real Ollama server to test against " +
			"(export LOUPE_OLLAMA_URL=$(scripts/ollama.sh start) LOUPE_OLLAMA_MODEL=loupe-tiny)")
	}
	model = os.Getenv("LOUPE_OLLAMA_MODEL")
	if model == "" {
		model = "loupe-tiny"
	}
	return url, model
}

// realProvider returns the provider named name pointed at the Ollama server:
// the OpenAI one at its /v1 base, the others at its root. Ollama ignores API
// keys; the SDKs want one.
func realProvider(t *testing.T, name string) llm.Provider {
	t.Helper()
	url, model := realOllama(t)
	base, key := url, "ollama"
	switch name {
	case llm.OpenAI:
		base = url + "/v1"
	case llm.Ollama:
		key = ""
	}
	p, err := llm.New(name, model, base, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

const triagePrompt = "Alert: Terminal shell in container (user=[USER-1] container=[CONTAINER-1] " +
	"shell=bash parent=runc cmdline=bash -i). Give the triage verdict."

// TestRealOllamaProviders asks each provider for a triage answer following
// gguftiny.ToolSchema and checks the answer against the schema, and that
// token counts and latency are reported.
func TestRealOllamaProviders(t *testing.T) {
	realOllama(t)
	schema := gguftiny.ToolSchema()
	for _, name := range []string{llm.Ollama, llm.OpenAI, llm.Anthropic} {
		t.Run(name, func(t *testing.T) {
			p := realProvider(t, name)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			resp, err := p.Generate(ctx, llm.Request{
				System:     "You triage security alerts. Answer with the requested JSON only.",
				User:       triagePrompt,
				Schema:     schema,
				SchemaName: gguftiny.DefaultToolName,
				MaxTokens:  256,
			})
			if err != nil {
				t.Fatalf("%s via %s: %v", p.Model(), name, err)
			}
			if err := validJSON(schema, resp.Text); err != nil {
				t.Fatalf("answer %q: %v", resp.Text, err)
			}
			if resp.InputTokens <= 0 || resp.OutputTokens <= 0 {
				t.Errorf("tokens in %d out %d, want both > 0", resp.InputTokens, resp.OutputTokens)
			}
			if resp.Latency <= 0 || resp.Latency > 2*time.Minute {
				t.Errorf("latency %v", resp.Latency)
			}
			t.Logf("%s: %s (%d in, %d out tokens, %v)", name, resp.Text, resp.InputTokens, resp.OutputTokens, resp.Latency.Round(time.Millisecond))
		})
	}
}

// richSchema has what JSON answers are made of (nesting, arrays, bounded
// integers, booleans, enums, bounded strings) but nothing the tiny model was
// built around: only the server's schema-constrained decoding can make the
// answer follow it.
func richSchema() map[string]any {
	obj := func(props map[string]any) map[string]any {
		req := make([]string, 0, len(props))
		for k := range props {
			req = append(req, k)
		}
		slices.Sort(req)
		return map[string]any{"type": "object", "properties": props, "required": req, "additionalProperties": false}
	}
	return obj(map[string]any{
		"cluster": obj(map[string]any{
			"template": map[string]any{"type": "string", "maxLength": 60},
			"count":    map[string]any{"type": "integer", "minimum": 1, "maximum": 1000},
			"tactics": map[string]any{"type": "array", "maxItems": 3,
				"items": map[string]any{"type": "string", "enum": []any{"Execution", "Persistence", "Discovery"}}},
		}),
		"malicious":  map[string]any{"type": "boolean"},
		"confidence": map[string]any{"type": "string", "enum": []any{"low", "medium", "high"}},
		"questions":  map[string]any{"type": "array", "maxItems": 2, "items": map[string]any{"type": "string", "maxLength": 80}},
	})
}

// TestRealOllamaConstrainedDecoding checks the two grammar-constrained paths
// (native format, OpenAI json_schema) with a schema the model knows nothing
// of, and that without a schema the same model's answer does not follow it:
// the constraint, not the model, makes the answer valid.
func TestRealOllamaConstrainedDecoding(t *testing.T) {
	realOllama(t)
	schema := richSchema()
	for _, name := range []string{llm.Ollama, llm.OpenAI} {
		t.Run(name, func(t *testing.T) {
			p := realProvider(t, name)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			req := llm.Request{System: "Summarise the cluster.", User: triagePrompt, Schema: schema, SchemaName: "cluster_summary", MaxTokens: 400}
			resp, err := p.Generate(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if err := validJSON(schema, resp.Text); err != nil {
				t.Fatalf("answer %q: %v", resp.Text, err)
			}
			t.Logf("%s: %s (%d in, %d out tokens, %v)", name, resp.Text, resp.InputTokens, resp.OutputTokens, resp.Latency.Round(time.Millisecond))
		})
	}
	t.Run("unconstrained", func(t *testing.T) {
		p := realProvider(t, llm.Ollama)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		resp, err := p.Generate(ctx, llm.Request{User: triagePrompt, MaxTokens: 64})
		if err != nil {
			t.Fatal(err)
		}
		if validJSON(schema, resp.Text) == nil {
			t.Fatalf("answer %q follows the schema without being asked to", resp.Text)
		}
	})
}

// validJSON decodes text as one JSON value and checks it against schema.
func validJSON(schema map[string]any, text string) error {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	if dec.More() {
		return errors.New("trailing data after the JSON value")
	}
	return checkSchema(schema, v, "$")
}

// checkSchema validates v against the part of JSON Schema that loupe's
// answer schemas use: type, enum, properties, required,
// additionalProperties false, items, min/maxLength, min/maxItems,
// minimum/maximum.
func checkSchema(s map[string]any, v any, at string) error {
	if enum, ok := s["enum"].([]any); ok && !slices.ContainsFunc(enum, func(e any) bool { return fmt.Sprint(e) == fmt.Sprint(v) }) {
		return fmt.Errorf("%s: %v is not one of %v", at, v, enum)
	}
	num := func(k string) (float64, bool) {
		switch n := s[k].(type) {
		case int:
			return float64(n), true
		case float64:
			return n, true
		}
		return 0, false
	}
	switch typ, _ := s["type"].(string); typ {
	case "object":
		obj, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: %T is not an object", at, v)
		}
		props, _ := s["properties"].(map[string]any)
		var req []string
		switch r := s["required"].(type) {
		case []string:
			req = r
		case []any:
			for _, k := range r {
				req = append(req, fmt.Sprint(k))
			}
		}
		for _, k := range req {
			if _, ok := obj[k]; !ok {
				return fmt.Errorf("%s: required property %q missing", at, k)
			}
		}
		for k, pv := range obj {
			ps, ok := props[k].(map[string]any)
			if !ok {
				if s["additionalProperties"] == false {
					return fmt.Errorf("%s: property %q not allowed", at, k)
				}
				continue
			}
			if err := checkSchema(ps, pv, at+"."+k); err != nil {
				return err
			}
		}
	case "array":
		arr, ok := v.([]any)
		if !ok {
			return fmt.Errorf("%s: %T is not an array", at, v)
		}
		if m, ok := num("maxItems"); ok && float64(len(arr)) > m {
			return fmt.Errorf("%s: %d items, at most %v allowed", at, len(arr), m)
		}
		if m, ok := num("minItems"); ok && float64(len(arr)) < m {
			return fmt.Errorf("%s: %d items, at least %v needed", at, len(arr), m)
		}
		items, _ := s["items"].(map[string]any)
		for i, e := range arr {
			if items != nil {
				if err := checkSchema(items, e, fmt.Sprintf("%s[%d]", at, i)); err != nil {
					return err
				}
			}
		}
	case "string":
		str, ok := v.(string)
		if !ok {
			return fmt.Errorf("%s: %T is not a string", at, v)
		}
		n := float64(len([]rune(str)))
		if m, ok := num("maxLength"); ok && n > m {
			return fmt.Errorf("%s: %d characters, at most %v allowed", at, int(n), m)
		}
		if m, ok := num("minLength"); ok && n < m {
			return fmt.Errorf("%s: %d characters, at least %v needed", at, int(n), m)
		}
	case "integer", "number":
		jn, ok := v.(json.Number)
		if !ok {
			return fmt.Errorf("%s: %T is not a number", at, v)
		}
		f, err := jn.Float64()
		if err != nil {
			return fmt.Errorf("%s: %w", at, err)
		}
		if typ == "integer" && (f != math.Trunc(f) || strings.ContainsAny(jn.String(), ".eE")) {
			return fmt.Errorf("%s: %s is not an integer", at, jn)
		}
		if m, ok := num("minimum"); ok && f < m {
			return fmt.Errorf("%s: %v below minimum %v", at, f, m)
		}
		if m, ok := num("maximum"); ok && f > m {
			return fmt.Errorf("%s: %v above maximum %v", at, f, m)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("%s: %T is not a boolean", at, v)
		}
	case "":
	default:
		return fmt.Errorf("%s: schema type %q not supported by this checker", at, typ)
	}
	return nil
}

// TestCheckSchema makes sure the checker the integration tests rely on
// rejects what it must.
func TestCheckSchema(t *testing.T) {
	s := richSchema()
	good := `{"cluster":{"template":"sshd <*>","count":3,"tactics":["Execution"]},"malicious":false,"confidence":"low","questions":[]}`
	if err := validJSON(s, good); err != nil {
		t.Fatalf("valid answer rejected: %v", err)
	}
	for _, bad := range []string{
		``,
		`{"cluster":{"template":"x","count":3,"tactics":[]},"malicious":false,"confidence":"low","questions":[]} {}`,
		`{"cluster":{"template":"x","count":3,"tactics":[]},"malicious":false,"confidence":"low"}`,
		`{"cluster":{"template":"x","count":3,"tactics":[]},"malicious":false,"confidence":"sure","questions":[]}`,
		`{"cluster":{"template":"x","count":0,"tactics":[]},"malicious":false,"confidence":"low","questions":[]}`,
		`{"cluster":{"template":"x","count":2.5,"tactics":[]},"malicious":false,"confidence":"low","questions":[]}`,
		`{"cluster":{"template":"x","count":3,"tactics":["Impact"]},"malicious":false,"confidence":"low","questions":[]}`,
		`{"cluster":{"template":"x","count":3,"tactics":[]},"malicious":"no","confidence":"low","questions":[]}`,
		`{"cluster":{"template":"x","count":3,"tactics":[],"extra":1},"malicious":false,"confidence":"low","questions":[]}`,
		`{"cluster":{"template":"x","count":3,"tactics":[]},"malicious":false,"confidence":"low","questions":["a","b","c"]}`,
		`{"cluster":{"template":"` + strings.Repeat("x", 61) + `","count":3,"tactics":[]},"malicious":false,"confidence":"low","questions":[]}`,
	} {
		if validJSON(s, bad) == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}
