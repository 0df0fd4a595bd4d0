package main

import (
	"encoding/json"
	"net"
	"strings"
	"testing"

	"github.com/loupe-sec/loupe/internal/finding"
	"github.com/loupe-sec/loupe/internal/llm/llmtest"
)

type jsonReport struct {
	Findings []finding.Finding `json:"findings"`
}

func analyzeJSON(t *testing.T, args ...string) (jsonReport, string) {
	t.Helper()
	code, out, errOut := loupe(t, "", append([]string{"analyze", "--format", "json", "--quiet=false"}, args...)...)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var r jsonReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("report: %v\n%s", err, out)
	}
	ids := map[string]bool{}
	for _, f := range r.Findings {
		if ids[f.ID] {
			t.Errorf("finding %s twice in the report", f.ID)
		}
		ids[f.ID] = true
	}
	return r, errOut
}

func TestAnalyzeLLM(t *testing.T) {
	offline, _ := analyzeJSON(t, "--demo")
	answer := `{"findings":[{"cluster":"C1","records":["E1"],"tactic":"Execution","technique":"T1059","question":"","conclusion":"Model view of the first cluster.","priority":"high"}]}`
	s := llmtest.New(t, "ollama", func(int, llmtest.Call) llmtest.Reply { return llmtest.Reply{Text: answer} })
	r, errOut := analyzeJSON(t, "--demo", "--llm", "ollama", "--llm-base-url", s.URL, "--llm-model", "tiny")
	if len(s.Calls()) == 0 || !strings.Contains(errOut, "llm ollama/tiny") {
		t.Fatalf("%d calls; stderr %s", len(s.Calls()), errOut)
	}
	llmFound := 0
	for _, f := range r.Findings {
		if f.Source == "llm" {
			llmFound++
			if f.LLM == nil || f.LLM.Model != "tiny" || f.LLM.PromptVersion == "" {
				t.Errorf("provenance %+v", f.LLM)
			}
		}
	}
	if llmFound != 1 || len(r.Findings) != len(offline.Findings)+1 {
		t.Errorf("%d findings (%d by the model), offline %d", len(r.Findings), llmFound, len(offline.Findings))
	}

	// Provider down: the same offline findings, marked.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + l.Addr().String() + "/v1"
	l.Close()
	r, errOut = analyzeJSON(t, "--demo", "--llm", "openai", "--llm-base-url", down)
	marked := 0
	for _, f := range r.Findings {
		if f.Source == "llm" {
			t.Errorf("model finding from a provider that is down: %+v", f)
		}
		if f.LLM != nil && strings.Contains(f.LLM.Fallback, "llm") {
			marked++
		}
	}
	if len(r.Findings) != len(offline.Findings) || marked == 0 || !strings.Contains(errOut, "fallback") {
		t.Errorf("%d findings (offline %d), %d marked; stderr %s", len(r.Findings), len(offline.Findings), marked, errOut)
	}

	if code, _, errOut := loupe(t, "", "analyze", "--demo", "--llm", "gpt"); code != exitUsage || !strings.Contains(errOut, "--llm") {
		t.Errorf("bad provider: exit %d, %s", code, errOut)
	}
}
