// Package report writes findings: the Timesketch NDJSON agent forms, JSON,
// and readable text and Markdown reports.
package report

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/loupe-sec/loupe/internal/attack"
	"github.com/loupe-sec/loupe/internal/finding"
	"github.com/loupe-sec/loupe/internal/reason"
)

// MaxEvidence is the most evidence events shown per conclusion in the text
// and Markdown reports.
const MaxEvidence = 5

// Summary describes one analysis run.
type Summary struct {
	Inputs   []string      `json:"inputs"`
	Events   int64         `json:"events"`
	Bytes    int64         `json:"bytes"`
	BadLines int64         `json:"bad_lines"`
	Findings int64         `json:"findings"`
	Started  time.Time     `json:"started,omitzero"`
	Duration time.Duration `json:"-"`
	// ByPriority counts findings per priority name; when empty it is
	// counted from the findings.
	ByPriority map[string]int64 `json:"by_priority"`
}

// MarshalJSON adds the duration in seconds and as text.
func (s Summary) MarshalJSON() ([]byte, error) {
	type plain Summary
	return json.Marshal(struct {
		plain
		DurationSeconds float64 `json:"duration_seconds"`
		Duration        string  `json:"duration"`
	}{plain(s), s.Duration.Seconds(), s.Duration.String()})
}

// complete fills counts the caller left out from the findings.
func (s Summary) complete(findings []*finding.Finding) Summary {
	if s.Findings == 0 {
		s.Findings = int64(len(findings))
	}
	if len(s.ByPriority) == 0 && len(findings) > 0 {
		s.ByPriority = make(map[string]int64)
		for _, f := range findings {
			s.ByPriority[f.Priority.String()]++
		}
	}
	if s.Inputs == nil {
		s.Inputs = []string{}
	}
	return s
}

// JSON writes {"summary": {...}, "findings": [...]}, indented.
func JSON(w io.Writer, findings []*finding.Finding, s Summary) error {
	if findings == nil {
		findings = []*finding.Finding{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	err := enc.Encode(struct {
		Summary  Summary            `json:"summary"`
		Findings []*finding.Finding `json:"findings"`
	}{s.complete(findings), findings})
	if err != nil {
		return fmt.Errorf("write JSON report: %w", err)
	}
	return nil
}

// section is one tactic's findings in report order.
type section struct {
	tactic, tacticID string
	question         string
	findings         []*finding.Finding
}

// sections groups findings by tactic in ATT&CK kill-chain order (unknown
// tactics last, by name); within a tactic by priority, highest first, then
// time, then id.
func sections(findings []*finding.Finding) []section {
	var out []section
	idx := map[string]int{}
	for _, f := range findings {
		name := f.Tactic
		if name == "" {
			name = "Other"
		}
		i, ok := idx[name]
		if !ok {
			i = len(out)
			idx[name] = i
			q := f.Question
			if q == "" {
				q = reason.Question(f.Tactic)
			}
			out = append(out, section{tactic: name, tacticID: f.TacticID, question: q})
		}
		out[i].findings = append(out[i].findings, f)
	}
	slices.SortStableFunc(out, func(a, b section) int {
		return cmp.Or(cmp.Compare(attack.Order(a.tactic), attack.Order(b.tactic)), strings.Compare(a.tactic, b.tactic))
	})
	for _, s := range out {
		slices.SortStableFunc(s.findings, func(a, b *finding.Finding) int {
			return cmp.Or(
				cmp.Compare(b.Priority, a.Priority),
				compareTime(a.First, b.First),
				strings.Compare(a.ID, b.ID),
			)
		})
	}
	return out
}

// compareTime orders known times first, oldest first.
func compareTime(a, b time.Time) int {
	switch {
	case a.IsZero() && b.IsZero():
		return 0
	case a.IsZero():
		return 1
	case b.IsZero():
		return -1
	}
	return a.Compare(b)
}

var priorityOrder = []finding.Priority{finding.Critical, finding.High, finding.Medium, finding.Low, finding.Info}

// priorityCounts phrases "2 critical, 1 high"; "" when there are none.
func priorityCounts(by map[string]int64) string {
	var parts []string
	for _, p := range priorityOrder {
		if n := by[p.String()]; n > 0 {
			parts = append(parts, thousands(n)+" "+p.String())
		}
	}
	return strings.Join(parts, ", ")
}

func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	if n < 0 {
		return s
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// byteSize phrases a byte count: "812 B", "12.3 MB".
func byteSize(n int64) string {
	const unit = 1000
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}

func utc(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.DateTime) + " UTC"
}

func duration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	}
	return d.Round(10 * time.Millisecond).String()
}

// evidenceNote says how many events are shown: "3 events" or "5 of 1,234 events".
func evidenceNote(f *finding.Finding, shown int) string {
	total := f.Count
	if total < int64(len(f.Evidence)) {
		total = int64(len(f.Evidence))
	}
	noun := "events"
	if total == 1 {
		noun = "event"
	}
	if int64(shown) == total {
		return thousands(total) + " " + noun
	}
	return strconv.Itoa(shown) + " of " + thousands(total) + " " + noun
}

// ruleParts lists the attribution fields present: title, id, author, link.
func ruleParts(r finding.Rule) (title string, rest []string) {
	title = r.Title
	if title == "" {
		title = r.ID
	}
	if r.ID != "" && r.ID != title {
		rest = append(rest, "id "+r.ID)
	}
	if r.Author != "" {
		rest = append(rest, "author "+r.Author)
	}
	return title, rest
}

func techniqueList(ts []finding.Technique) string {
	var parts []string
	for _, t := range ts {
		if s := strings.TrimSpace(t.ID + " " + t.Name); s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, "; ")
}
