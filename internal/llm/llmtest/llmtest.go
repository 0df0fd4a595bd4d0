// Package llmtest is a fake language-model server for tests: it records
// every request it gets and answers in the wire format of the OpenAI,
// Anthropic or Ollama API, as a test's Reply function says.
package llmtest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// Call is one recorded request.
type Call struct {
	Method, Path string
	Header       http.Header
	Body         []byte
}

// Reply is how the server answers one call.
type Reply struct {
	Status int               // 0: 200
	Header map[string]string // extra response headers, e.g. Retry-After
	Text   string            // the model's answer, wrapped in the provider's format
	Raw    string            // when set, the whole response body instead of Text
	Stall  time.Duration     // wait this long (or until the client gives up) first
}

// Server is a fake model API of one provider.
type Server struct {
	*httptest.Server
	Provider string

	reply func(n int, c Call) Reply
	mu    sync.Mutex
	calls []Call
}

// New starts a fake server for provider ("openai", "anthropic", "ollama");
// reply is called with the 0-based call number. It is closed when t ends.
func New(t testing.TB, provider string, reply func(n int, c Call) Reply) *Server {
	s := &Server{Provider: provider, reply: reply}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// BaseURL is the base URL to configure a client with.
func (s *Server) BaseURL() string {
	if s.Provider == "openai" {
		return s.URL + "/v1"
	}
	return s.URL
}

// Calls returns the requests received so far.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	reqBody, _ := io.ReadAll(r.Body)
	c := Call{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: reqBody}
	s.mu.Lock()
	n := len(s.calls)
	s.calls = append(s.calls, c)
	s.mu.Unlock()
	rep := s.reply(n, c)
	if rep.Stall > 0 {
		select {
		case <-r.Context().Done():
			return
		case <-time.After(rep.Stall):
		}
	}
	for k, v := range rep.Header {
		w.Header().Set(k, v)
	}
	out := rep.Raw
	if out == "" {
		var req struct {
			ToolChoice struct{ Name string } `json:"tool_choice"`
		}
		json.Unmarshal(reqBody, &req)
		out = body(s.Provider, rep.Text, req.ToolChoice.Name)
	}
	w.Header().Set("Content-Type", "application/json")
	if rep.Status != 0 {
		w.WriteHeader(rep.Status)
	}
	io.WriteString(w, out)
}

// Body is a successful response of provider whose answer is text. For
// Anthropic the answer is the input of a call of the tool named alert_analysis
// (the server uses the tool the request forces); text that is not JSON comes
// back as a text block instead.
func Body(provider, text string) string { return body(provider, text, "") }

func body(provider, text, tool string) string {
	if tool == "" {
		tool = "alert_analysis"
	}
	var v any
	switch provider {
	case "openai":
		v = map[string]any{
			"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "fake",
			"choices": []any{map[string]any{"index": 0, "finish_reason": "stop",
				"message": map[string]any{"role": "assistant", "content": text}}},
			"usage": map[string]any{"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
		}
	case "anthropic":
		input := json.RawMessage(text)
		if !json.Valid(input) {
			// A tool input that is not JSON cannot travel inside the
			// response; send it as text so the client finds no tool call.
			v = map[string]any{"id": "msg_1", "type": "message", "role": "assistant", "model": "fake",
				"content":     []any{map[string]any{"type": "text", "text": text}},
				"stop_reason": "end_turn", "usage": map[string]any{"input_tokens": 11, "output_tokens": 7}}
			break
		}
		v = map[string]any{"id": "msg_1", "type": "message", "role": "assistant", "model": "fake",
			"content": []any{map[string]any{"type": "tool_use", "id": "toolu_1", "name": tool,
				"input": input}},
			"stop_reason": "tool_use", "usage": map[string]any{"input_tokens": 11, "output_tokens": 7}}
	default: // ollama, one NDJSON line with stream off
		v = map[string]any{"model": "fake", "created_at": "2026-01-01T00:00:00Z",
			"message": map[string]any{"role": "assistant", "content": text},
			"done":    true, "done_reason": "stop", "prompt_eval_count": 11, "eval_count": 7}
	}
	b, _ := json.Marshal(v)
	return string(b) + "\n"
}
