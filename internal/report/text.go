package report

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/loupe-sec/loupe/internal/finding"
)

// textWidth is the column text reports wrap at.
const textWidth = 100

// Text writes a plain-text report: totals, then per ATT&CK tactic in
// kill-chain order its question and conclusions with key evidence and rule
// attribution.
func Text(w io.Writer, findings []*finding.Finding, s Summary) error {
	s = s.complete(findings)
	bw := bufio.NewWriter(w)
	p := func(format string, a ...any) { fmt.Fprintf(bw, format, a...) }

	p("loupe report\n============\n")
	if len(s.Inputs) > 0 {
		writeWrapped(bw, "Inputs:   "+oneLine(strings.Join(s.Inputs, ", ")), "          ")
	}
	if !s.Started.IsZero() {
		p("Started:  %s (took %s)\n", utc(s.Started), duration(s.Duration))
	}
	ev := thousands(s.Events)
	var extra []string
	if s.BadLines > 0 {
		extra = append(extra, thousands(s.BadLines)+" bad lines")
	}
	if s.Bytes > 0 {
		extra = append(extra, byteSize(s.Bytes)+" read")
	}
	if len(extra) > 0 {
		ev += " (" + strings.Join(extra, ", ") + ")"
	}
	p("Events:   %s\n", ev)
	fl := thousands(s.Findings)
	if pc := priorityCounts(s.ByPriority); pc != "" {
		fl += " (" + pc + ")"
	}
	p("Findings: %s\n", fl)

	if len(findings) == 0 {
		p("\nNo findings in %s events.\n", thousands(s.Events))
		return flushErr(bw)
	}
	for _, sec := range sections(findings) {
		head := oneLine(sec.tactic)
		if sec.tacticID != "" {
			head += " (" + oneLine(sec.tacticID) + ")"
		}
		p("\n== %s ==\n", head)
		writeWrapped(bw, "Q: "+oneLine(sec.question), "   ")
		for _, f := range sec.findings {
			tag := "[" + strings.ToUpper(f.Priority.String()) + "] "
			bw.WriteByte('\n')
			writeWrapped(bw, "  "+tag+oneLine(f.Conclusion), strings.Repeat(" ", 2+len(tag)))
			if l := LLMLine(f); l != "" {
				writeWrapped(bw, "    "+oneLine(l), "      ")
			}
			if t := techniqueList(f.Techniques); t != "" {
				writeWrapped(bw, "    Techniques: "+oneLine(t), "                ")
			}
			shown := f.Evidence[:min(len(f.Evidence), MaxEvidence)]
			if len(shown) > 0 {
				p("    Evidence (%s):\n", evidenceNote(f, len(shown)))
			}
			for _, e := range shown {
				parts := []string{orDash(e.RecordID), utc(e.Time)}
				if e.Host != "" {
					parts = append(parts, e.Host)
				}
				if e.Summary != "" {
					parts = append(parts, e.Summary)
				}
				writeWrapped(bw, "      - "+oneLine(strings.Join(parts, " | ")), "        ")
			}
			title, rest := ruleParts(f.Rule)
			rule := "    Rule: " + orDash(title)
			if f.Rule.Link != "" {
				rest = append(rest, f.Rule.Link)
			}
			if len(rest) > 0 {
				rule += " (" + strings.Join(rest, ", ") + ")"
			}
			writeWrapped(bw, oneLine(rule), "          ")
		}
	}
	return flushErr(bw)
}

func flushErr(bw *bufio.Writer) error {
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine replaces control characters (newlines, tabs, escapes) with
// spaces so untrusted text cannot break the layout or the terminal.
func oneLine(s string) string {
	if strings.IndexFunc(s, unicode.IsControl) < 0 {
		return s
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

// writeWrapped writes s wrapped at textWidth columns at spaces; lines after
// the first start with indent. A word longer than a line stays whole.
func writeWrapped(w *bufio.Writer, s, indent string) {
	col := 0
	first := true
	for _, word := range strings.Split(s, " ") {
		n := utf8.RuneCountInString(word)
		switch {
		case first:
			first = false
		case col+1+n > textWidth && col > utf8.RuneCountInString(indent):
			w.WriteByte('\n')
			w.WriteString(indent)
			col = utf8.RuneCountInString(indent)
			if word == "" {
				continue
			}
		default:
			w.WriteByte(' ')
			col++
		}
		w.WriteString(word)
		col += n
	}
	w.WriteByte('\n')
}
