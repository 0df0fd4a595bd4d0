package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/loupe-sec/loupe/internal/finding"
)

// FuzzAgentForms checks that any finding text gives valid JSON in both
// agent forms, with the text preserved.
func FuzzAgentForms(f *testing.F) {
	f.Add("rec-1", "idx", "On WS01, user alice did \"x\".", "Persistence", "line 3: bad")
	f.Add("a\x00b", "", "<script>\u2028", "", "\xff\xfe")
	f.Fuzz(func(t *testing.T, id, index, conclusion, tactic, errMsg string) {
		fd := &finding.Finding{ID: "f", Tactic: tactic, Question: "Q?", Conclusion: conclusion,
			Evidence: []finding.Evidence{{RecordID: id, Index: index}, {RecordID: "second"}}}
		for _, form := range []Form{FormLines, FormSummaries} {
			var buf bytes.Buffer
			a := NewAgentWriter(&buf, form)
			if err := a.WriteFinding(fd); err != nil {
				t.Fatal(err)
			}
			if err := a.Keepalive(); err != nil {
				t.Fatal(err)
			}
			if err := a.WriteError(errMsg); err != nil {
				t.Fatal(err)
			}
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			if form == FormSummaries {
				var v struct {
					Summaries []json.RawMessage `json:"summaries"`
				}
				if err := json.Unmarshal(buf.Bytes(), &v); err != nil || len(v.Summaries) < 2 {
					t.Fatalf("summaries %q: %v", buf.String(), err)
				}
				continue
			}
			for _, line := range strings.Split(buf.String(), "\n") {
				if line != "" && !json.Valid([]byte(line)) {
					t.Fatalf("invalid line %q", line)
				}
			}
		}
	})
}

// FuzzMarkdownEscape checks that escaped text cannot open HTML, break a
// table cell or a line.
func FuzzMarkdownEscape(f *testing.F) {
	f.Add("a | b <script>*x*</script>\n# h")
	f.Add("\\|`[x](javascript:y)`")
	f.Fuzz(func(t *testing.T, s string) {
		out := md(s)
		if strings.ContainsAny(out, "<>\n\r") {
			t.Fatalf("md(%q) = %q keeps raw markup", s, out)
		}
		// Every pipe must be escaped by a backslash that is not itself escaped.
		for i := 0; i < len(out); i++ {
			if out[i] != '|' {
				continue
			}
			bs := 0
			for j := i - 1; j >= 0 && out[j] == '\\'; j-- {
				bs++
			}
			if bs%2 == 0 {
				t.Fatalf("md(%q) = %q has an unescaped pipe at %d", s, out, i)
			}
		}
	})
}
