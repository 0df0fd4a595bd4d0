package store

import (
	"context"
	"testing"

	"github.com/loupe-sec/loupe/internal/finding"
)

// A finding the LLM stage wrote carries its provenance into the store
// without AddFindingsBy; an offline finding marked with a fallback does not
// pretend a model wrote it.
func TestLLMFindingProvenance(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *Store) {
		s = migrated(t, s)
		ctx := context.Background()
		inv := newInvestigation(t, s)
		byModel := &finding.Finding{ID: "m1", Question: "q", Conclusion: "c", Source: "llm",
			LLM: &finding.LLM{Provider: "ollama", Model: "tiny", PromptVersion: "clusters_v1"}}
		marked := &finding.Finding{ID: "o1", Question: "q", Conclusion: "c", Source: "rule",
			LLM: &finding.LLM{Provider: "ollama", Model: "tiny", PromptVersion: "clusters_v1", Fallback: "llm call failed"}}
		noted := &finding.Finding{ID: "o2", Question: "q", Conclusion: "c", Source: "sigma",
			LLM: &finding.LLM{Provider: "openai", Model: "m", PromptVersion: "clusters_v1", Note: "the same actor also ran whoami"}}
		offline := &finding.Finding{ID: "o3", Question: "q", Conclusion: "c", Source: "rule"}
		if err := s.AddFindings(ctx, inv, []*finding.Finding{byModel, marked, noted, offline}); err != nil {
			t.Fatal(err)
		}
		got, _, err := s.Findings(ctx, inv, Filter{}, Page{})
		if err != nil || len(got) != 4 {
			t.Fatalf("%d findings, %v", len(got), err)
		}
		for _, f := range got {
			switch f.ID {
			case "m1":
				want := Provenance{Provider: "ollama", Model: "tiny", PromptVersion: "clusters_v1"}
				if f.Provenance != want || f.LLM == nil || f.LLM.Model != "tiny" {
					t.Errorf("model finding provenance %+v, llm %+v", f.Provenance, f.LLM)
				}
			case "o1", "o2": // the model's note, or why it is missing, is kept; the conclusion stays offline
				want := marked.LLM
				if f.ID == "o2" {
					want = noted.LLM
				}
				if f.Provenance != (Provenance{}) || f.LLM == nil || *f.LLM != *want {
					t.Errorf("%s: provenance %+v, llm %+v; want none and %+v", f.ID, f.Provenance, f.LLM, want)
				}
			case "o3":
				if f.Provenance != (Provenance{}) || f.LLM != nil {
					t.Errorf("offline finding given provenance %+v, llm %+v", f.Provenance, f.LLM)
				}
			}
		}
	})
}
