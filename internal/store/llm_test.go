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
		if err := s.AddFindings(ctx, inv, []*finding.Finding{byModel, marked}); err != nil {
			t.Fatal(err)
		}
		got, _, err := s.Findings(ctx, inv, Filter{}, Page{})
		if err != nil || len(got) != 2 {
			t.Fatalf("%d findings, %v", len(got), err)
		}
		for _, f := range got {
			switch f.ID {
			case "m1":
				want := Provenance{Provider: "ollama", Model: "tiny", PromptVersion: "clusters_v1"}
				if f.Provenance != want || f.LLM == nil || f.LLM.Model != "tiny" {
					t.Errorf("model finding provenance %+v, llm %+v", f.Provenance, f.LLM)
				}
			case "o1":
				if f.Provenance != (Provenance{}) || f.LLM != nil {
					t.Errorf("offline finding given provenance %+v", f.Provenance)
				}
			}
		}
	})
}
