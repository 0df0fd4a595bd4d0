package deep

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/loupe-sec/loupe/internal/attack"
	"github.com/loupe-sec/loupe/internal/finding"
)

// UnknownTactic is the tactic a model gives when none fits.
const UnknownTactic = "Unknown"

var priorities = []string{"info", "low", "medium", "high", "critical"}

// Bounds of one conclusion written by a model.
const (
	maxConclusionRunes = 800
	maxQuestionRunes   = 200
)

// schema is the JSON Schema of an answer about b: the references it may
// cite are enumerated, so schema-constrained decoding cannot invent one.
func (b *batch) schema() map[string]any {
	str := func(desc string) map[string]any { return map[string]any{"type": "string", "description": desc} }
	enum := func(vals []string) map[string]any { return map[string]any{"type": "string", "enum": vals} }
	var tactics []string
	for _, t := range attack.Tactics() {
		tactics = append(tactics, t.Name)
	}
	tactics = append(tactics, UnknownTactic)
	item := map[string]any{
		"type": "object",
		"properties": map[string]any{
			"cluster":    enum(b.cRefs),
			"records":    map[string]any{"type": "array", "items": enum(b.eRefs), "description": "event references the conclusion rests on"},
			"tactic":     enum(tactics),
			"technique":  str(`ATT&CK technique id such as T1110.001, or ""`),
			"question":   str("the DFIQ investigative question answered"),
			"conclusion": str("one or two sentences"),
			"priority":   enum(priorities),
		},
		"required":             []string{"cluster", "conclusion", "priority", "question", "records", "tactic", "technique"},
		"additionalProperties": false,
	}
	return map[string]any{
		"type":                 "object",
		"properties":           map[string]any{"findings": map[string]any{"type": "array", "items": item}},
		"required":             []string{"findings"},
		"additionalProperties": false,
	}
}

// conclusion is one validated finding of a model's answer, still in
// obfuscated form.
type conclusion struct {
	cluster    string
	records    []string
	tacticID   string // "" for Unknown
	tactic     string
	technique  finding.Technique
	question   string
	conclusion string
	priority   finding.Priority
}

type rawAnswer struct {
	Findings []struct {
		Cluster    string   `json:"cluster"`
		Records    []string `json:"records"`
		Tactic     string   `json:"tactic"`
		Technique  string   `json:"technique"`
		Question   string   `json:"question"`
		Conclusion string   `json:"conclusion"`
		Priority   string   `json:"priority"`
	} `json:"findings"`
}

// decode reads and validates a model's answer about b: every reference must
// be one that was sent, every enum value valid. At most max findings are
// kept.
func (b *batch) decode(text string, max int) ([]conclusion, error) {
	text = strings.TrimSpace(text)
	// Some local models wrap the object in a Markdown code fence.
	if i, j := strings.IndexByte(text, '{'), strings.LastIndexByte(text, '}'); i >= 0 && j > i {
		text = text[i : j+1]
	}
	dec := json.NewDecoder(strings.NewReader(text))
	var a rawAnswer
	if err := dec.Decode(&a); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if dec.More() {
		return nil, errors.New("trailing data after the JSON object")
	}
	if len(a.Findings) > max {
		a.Findings = a.Findings[:max]
	}
	out := make([]conclusion, 0, len(a.Findings))
	for i, f := range a.Findings {
		at := func(format string, v ...any) error {
			return fmt.Errorf("findings[%d]: "+format, append([]any{i}, v...)...)
		}
		if _, ok := b.byRef[f.Cluster]; !ok {
			return nil, at("cluster %.40q was not sent", f.Cluster)
		}
		if len(f.Records) == 0 {
			return nil, at("no records")
		}
		var recs []string
		for _, r := range f.Records {
			if _, ok := b.events[r]; !ok {
				return nil, at("record %.40q was not sent", r)
			}
			if !slices.Contains(recs, r) {
				recs = append(recs, r)
			}
		}
		c := conclusion{cluster: f.Cluster, records: recs}
		if !strings.EqualFold(strings.TrimSpace(f.Tactic), UnknownTactic) {
			t, ok := attack.TacticByName(f.Tactic)
			if !ok {
				return nil, at("tactic %.60q is not an ATT&CK tactic", f.Tactic)
			}
			c.tactic, c.tacticID = t.Name, t.ID
		}
		p, err := finding.ParsePriority(f.Priority)
		if err != nil || !slices.Contains(priorities, strings.ToLower(strings.TrimSpace(f.Priority))) {
			return nil, at("priority %.30q is not one of %s", f.Priority, strings.Join(priorities, ", "))
		}
		c.priority = p
		if tech := strings.ToUpper(strings.TrimSpace(f.Technique)); tech != "" {
			if !attack.IsTechniqueID(tech) {
				return nil, at("technique %.30q is not an ATT&CK technique id", f.Technique)
			}
			c.technique = finding.Technique{ID: tech}
			if t, _, ok := attack.Lookup(tech); ok {
				c.technique = t
			}
		}
		c.conclusion = clipRunes(oneLine(f.Conclusion), maxConclusionRunes)
		if c.conclusion == "" {
			return nil, at("empty conclusion")
		}
		c.question = clipRunes(oneLine(f.Question), maxQuestionRunes)
		out = append(out, c)
	}
	return out, nil
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func clipRunes(s string, n int) string {
	i := 0
	for j := range s {
		if i == n {
			return s[:j] + "…"
		}
		i++
	}
	return s
}

// maxEchoedAnswer bounds the rejected answer quoted in a repair request.
const maxEchoedAnswer = 2 << 10

func repairPrompt(prompt, answer string, err error) string {
	var b strings.Builder
	b.WriteString(prompt)
	b.WriteString("\n\nYour previous answer was rejected: ")
	b.WriteString(clipBytes(err.Error(), 300))
	if answer != "" {
		b.WriteString("\nPrevious answer (as a JSON string):\n")
		b.WriteString(quote(clipBytes(answer, maxEchoedAnswer)))
	}
	b.WriteString("\nAnswer again with one corrected JSON object that follows the schema exactly, citing only the references given.")
	return b.String()
}
