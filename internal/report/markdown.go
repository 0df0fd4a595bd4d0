package report

import (
	"bufio"
	"io"
	"net/url"
	"strings"
	"unicode"

	"github.com/loupe-sec/loupe/internal/finding"
)

// Markdown writes the report as GitHub-flavoured Markdown. All text taken
// from findings is escaped, so log content cannot inject markup, HTML or
// break table cells.
func Markdown(w io.Writer, findings []*finding.Finding, s Summary) error {
	s = s.complete(findings)
	bw := bufio.NewWriter(w)
	ws := func(parts ...string) {
		for _, p := range parts {
			bw.WriteString(p)
		}
	}

	ws("# loupe report\n\n")
	if len(s.Inputs) > 0 {
		ws("- **Inputs:** ", md(strings.Join(s.Inputs, ", ")), "\n")
	}
	if !s.Started.IsZero() {
		ws("- **Started:** ", utc(s.Started), " (took ", duration(s.Duration), ")\n")
	}
	ws("- **Events:** ", thousands(s.Events))
	if s.BadLines > 0 || s.Bytes > 0 {
		var extra []string
		if s.BadLines > 0 {
			extra = append(extra, thousands(s.BadLines)+" bad lines")
		}
		if s.Bytes > 0 {
			extra = append(extra, byteSize(s.Bytes)+" read")
		}
		ws(" (", strings.Join(extra, ", "), ")")
	}
	ws("\n- **Findings:** ", thousands(s.Findings))
	if pc := priorityCounts(s.ByPriority); pc != "" {
		ws(" (", pc, ")")
	}
	ws("\n")

	if len(findings) == 0 {
		ws("\nNo findings in ", thousands(s.Events), " events.\n")
		return flushErr(bw)
	}
	for _, sec := range sections(findings) {
		ws("\n## ", md(sec.tactic))
		if sec.tacticID != "" {
			ws(" (", md(sec.tacticID), ")")
		}
		ws("\n\n_", md(sec.question), "_\n")
		for _, f := range sec.findings {
			ws("\n**", strings.ToUpper(f.Priority.String()), "** · ", md(f.Conclusion), "\n")
			if l := LLMLine(f); l != "" {
				ws("\n_", md(l), "_\n")
			}
			if t := techniqueList(f.Techniques); t != "" {
				ws("\nTechniques: ", md(t), "\n")
			}
			shown := f.Evidence[:min(len(f.Evidence), MaxEvidence)]
			if len(shown) > 0 {
				ws("\nEvidence (", evidenceNote(f, len(shown)), "):\n\n")
				ws("| Record | Time | Host | Summary |\n|---|---|---|---|\n")
				for _, e := range shown {
					ws("| ", md(orDash(e.RecordID)), " | ", utc(e.Time), " | ", md(orDash(e.Host)), " | ", md(orDash(e.Summary)), " |\n")
				}
			}
			title, rest := ruleParts(f.Rule)
			ws("\nRule: ", mdLink(orDash(title), f.Rule.Link))
			for _, r := range rest {
				ws(" · ", md(r))
			}
			if f.Rule.Link != "" && !safeLink(f.Rule.Link) {
				ws(" · ", md(f.Rule.Link))
			}
			ws("\n")
		}
	}
	return flushErr(bw)
}

// md escapes text for Markdown: punctuation with a Markdown meaning is
// backslash-escaped, HTML-special characters become entities, and line
// breaks become spaces so text stays in its paragraph or table cell.
func md(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 8)
	for _, r := range s {
		switch {
		case r == '<':
			b.WriteString("&lt;")
		case r == '>':
			b.WriteString("&gt;")
		case r == '&':
			b.WriteString("&amp;")
		case strings.ContainsRune("\\`*_[]|~$", r):
			b.WriteByte('\\')
			b.WriteRune(r)
		case unicode.IsControl(r):
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// safeLink accepts only absolute http(s) URLs for links.
func safeLink(link string) bool {
	u, err := url.Parse(link)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" &&
		!strings.ContainsAny(link, " \t\r\n<>\"'`")
}

// mdLink renders the title as a link when link is a safe URL, else as text.
func mdLink(title, link string) string {
	if link == "" || !safeLink(link) {
		return md(title)
	}
	dest := strings.NewReplacer("(", "%28", ")", "%29").Replace(link)
	return "[" + md(title) + "](" + dest + ")"
}
