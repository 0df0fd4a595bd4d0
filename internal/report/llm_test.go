package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/loupe-sec/loupe/internal/finding"
)

func TestLLMParts(t *testing.T) {
	base := func(id string) *finding.Finding {
		return &finding.Finding{ID: id, Tactic: "Execution", TacticID: "TA0002", Question: "What was executed?",
			Conclusion: "bash ran curl.", Priority: finding.High, Source: "rule", Rule: finding.Rule{ID: "r1", Title: "R1"},
			Evidence: []finding.Evidence{{RecordID: "rec-" + id}}}
	}
	plain := base("a")
	enriched := base("b")
	enriched.LLM = &finding.LLM{Provider: "ollama", Model: "tiny", PromptVersion: "clusters_v1", Note: "A <b>download</b> cradle."}
	marked := base("c")
	marked.LLM = &finding.LLM{Provider: "openai", Model: "m", Fallback: "llm call timed out"}
	byModel := base("d")
	byModel.Source, byModel.LLM = "llm", &finding.LLM{Provider: "anthropic", Model: "c", PromptVersion: "clusters_v1"}
	all := []*finding.Finding{plain, enriched, marked, byModel}

	var buf bytes.Buffer
	w := NewAgentWriter(&buf, FormLines)
	for _, f := range all {
		if err := w.WriteFinding(f); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	type agentOut struct {
		RecordID    string `json:"record_id"`
		Annotations []struct {
			Conclusions []string `json:"conclusions"`
		} `json:"annotations"`
		Loupe map[string]json.RawMessage `json:"loupe"`
	}
	var lines []agentOut
	for _, l := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte{'\n'}) {
		var v agentOut
		if err := json.Unmarshal(l, &v); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, v)
	}
	if len(lines) != 4 {
		t.Fatalf("%d lines", len(lines))
	}
	if _, ok := lines[0].Loupe["llm"]; ok {
		t.Error("offline finding carries an llm object")
	}
	if c := lines[1].Annotations[0].Conclusions; len(c) != 2 || !strings.HasPrefix(c[1], "Model (ollama tiny): A <b>") {
		t.Errorf("enriched conclusions %q", c)
	}
	if !strings.Contains(string(lines[2].Loupe["llm"]), `"fallback":"llm call timed out"`) || len(lines[2].Annotations[0].Conclusions) != 1 {
		t.Errorf("marked line %s", lines[2].Loupe["llm"])
	}
	if !strings.Contains(string(lines[3].Loupe["llm"]), `"provider":"anthropic"`) {
		t.Errorf("model line %s", lines[3].Loupe["llm"])
	}

	buf.Reset()
	if err := Markdown(&buf, all, Summary{}); err != nil {
		t.Fatal(err)
	}
	md := buf.String()
	for _, want := range []string{"Model (ollama tiny, prompt clusters\\_v1): A &lt;b&gt;download", "Model analysis missing (openai m): llm call timed out", "Conclusion by a language model (anthropic c, prompt clusters\\_v1)"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	if strings.Contains(md, "<b>") {
		t.Error("model text reaches Markdown unescaped")
	}
	buf.Reset()
	if err := Text(&buf, all, Summary{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "Model analysis missing (openai m): llm call timed out") {
		t.Errorf("text report lacks the fallback:\n%s", buf.String())
	}
}
