package report

import "github.com/loupe-sec/loupe/internal/finding"

// LLMLine says how a language model took part in f, for the readable
// reports: who wrote a model's conclusion, the note it added to an offline
// finding, or why its part is missing. "" when no model was involved.
func LLMLine(f *finding.Finding) string {
	l := f.LLM
	if l == nil {
		return ""
	}
	who := l.Provider
	if l.Model != "" {
		who += " " + l.Model
	}
	if l.PromptVersion != "" {
		who += ", prompt " + l.PromptVersion
	}
	switch {
	case l.Fallback != "":
		return "Model analysis missing (" + who + "): " + l.Fallback
	case f.Source == "llm":
		return "Conclusion by a language model (" + who + ")"
	case l.Note != "":
		return "Model (" + who + "): " + l.Note
	}
	return ""
}
