package server

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loupe-sec/loupe/internal/config"
	"github.com/loupe-sec/loupe/internal/jobs"
	"github.com/loupe-sec/loupe/internal/llm"
	"github.com/loupe-sec/loupe/internal/llm/llmtest"
	"github.com/loupe-sec/loupe/internal/reason/deep"
)

// noErrors fails on error lines in a stream.
func noErrors(t *testing.T, lines []agentLine) {
	for _, l := range lines {
		if l.Error != "" {
			t.Errorf("error line %q", l.Error)
		}
	}
}

func deepAnalyst(t *testing.T, url string, timeout time.Duration) *deep.Analyst {
	p, err := llm.New(llm.Ollama, "tiny", url, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := deep.New(deep.Config{Provider: p, Limits: llm.Limits{Timeout: timeout}})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// With a language model, the stream carries its findings after the offline
// ones; with a model that stalls, the stream still ends, with every offline
// line.
func TestAnalyzeLogsWithLLM(t *testing.T) {
	lines := corpus(t, "timesketch-flat.jsonl")
	ids := recordIndex(t, lines)
	ts := newTestServer(t, nil)
	offline := analyze(t, ts, lines)
	key := func(l agentLine) string { b, _ := json.Marshal(l.Annotations); return l.RecordID + string(b) }
	want := map[string]bool{}
	for _, l := range offline {
		want[key(l)] = true
	}

	answer := `{"findings":[{"cluster":"C1","records":["E1"],"tactic":"Execution","technique":"","question":"","conclusion":"A model conclusion.","priority":"medium"}]}`
	good := llmtest.New(t, llm.Ollama, func(int, llmtest.Call) llmtest.Reply { return llmtest.Reply{Text: answer} })
	ts.srv.SetDeep(deepAnalyst(t, good.URL, 5*time.Second))
	withLLM := analyze(t, ts, lines)
	noErrors(t, withLLM)
	model := 0
	got := map[string]bool{}
	for _, l := range withLLM {
		got[key(l)] = true
		if len(l.Annotations) == 1 && strings.Contains(strings.Join(l.Annotations[0].Conclusions, " "), "A model conclusion.") {
			model++
			if _, ok := ids[l.RecordID]; !ok {
				t.Errorf("model line for unknown record %q", l.RecordID)
			}
		}
	}
	if model != 1 || len(good.Calls()) == 0 {
		t.Errorf("%d model lines, %d calls", model, len(good.Calls()))
	}
	for k := range want {
		if !got[k] {
			t.Errorf("offline line missing with the model on: %s", k)
		}
	}

	stall := llmtest.New(t, llm.Ollama, func(int, llmtest.Call) llmtest.Reply { return llmtest.Reply{Stall: 20 * time.Second} })
	ts.srv.SetDeep(deepAnalyst(t, stall.URL, 300*time.Millisecond))
	start := time.Now()
	stalled := analyze(t, ts, lines)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("stream with a stalled model took %s", d)
	}
	got = map[string]bool{}
	for _, l := range stalled {
		got[key(l)] = true
	}
	for k := range want {
		if !got[k] {
			t.Errorf("offline line missing with a stalled model: %s", k)
		}
	}
}

// With llm.reasoning, an investigation's run ends with the model's reading
// too: its findings are stored with the model named, and the offline ones
// stay as they are.
func TestInvestigationWithLLM(t *testing.T) {
	answer := `{"findings":[{"cluster":"C1","records":["E1"],"tactic":"Execution","technique":"","question":"","conclusion":"A model conclusion.","priority":"medium"}]}`
	model := llmtest.New(t, llm.Ollama, func(int, llmtest.Call) llmtest.Reply { return llmtest.Reply{Text: answer} })
	s := newInvServer(t, filepath.Join(t.TempDir(), "loupe.db"), func(_ *config.Config, jc *jobs.Config) {
		jc.Pipeline.Deep = deepAnalyst(t, model.URL, 5*time.Second)
	})
	inv := s.create(t, map[string]any{"source": map[string]any{"kind": "file", "paths": []string{filepath.Join(s.root, "auth.log")}}})
	if done := s.poll(t, inv.ID); done.Status != "done" {
		t.Fatalf("ended %+v", done)
	}
	var byModel, offline int
	for _, f := range s.all(t, inv.ID, "", 1000) {
		switch {
		case f.Source == "llm":
			byModel++
			if f.Conclusion != "A model conclusion." || f.Provenance == nil || f.Provenance.Provider != "ollama" || f.Provenance.Model != "tiny" {
				t.Errorf("model finding %+v", f)
			}
		default:
			offline++
		}
	}
	if byModel != 1 || offline == 0 || len(model.Calls()) == 0 {
		t.Errorf("%d model and %d offline findings, %d calls", byModel, offline, len(model.Calls()))
	}
}
