package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

var (
	attackDir = filepath.Join("..", "..", "testdata", "attack")
	benignDir = filepath.Join("..", "..", "testdata", "benign")
)

// loupe runs the CLI in-process and returns exit code, stdout and stderr.
func loupe(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func files(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil || len(m) == 0 {
		t.Fatalf("no files in %s: %v", dir, err)
	}
	return m
}

type line struct {
	RecordID    string `json:"record_id"`
	Error       string `json:"error"`
	Annotations []struct {
		Question string `json:"investigative_question"`
	} `json:"annotations"`
	Loupe struct {
		Rule   struct{ ID string } `json:"rule"`
		Source string              `json:"source"`
	} `json:"loupe"`
}

func parseNDJSON(t *testing.T, s string) []line {
	t.Helper()
	var out []line
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("stdout line %q: %v", sc.Text(), err)
		}
		out = append(out, l)
	}
	return out
}

func rules(lines []line) []string {
	var ids []string
	for _, l := range lines {
		if !slices.Contains(ids, l.Loupe.Rule.ID) {
			ids = append(ids, l.Loupe.Rule.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

func TestAnalyzeNDJSON(t *testing.T) {
	in := filepath.Join(attackDir, "timesketch-nested.jsonl")
	// stdout is not a terminal, so ndjson is the default format.
	code, out, errOut := loupe(t, "", "analyze", in)
	if code != exitOK {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	lines := parseNDJSON(t, out)
	if len(lines) == 0 {
		t.Fatal("no ndjson lines")
	}
	raw, _ := os.ReadFile(in)
	for _, l := range lines {
		if l.RecordID == "" || len(l.Annotations) == 0 || l.Annotations[0].Question == "" {
			t.Fatalf("incomplete line %+v", l)
		}
		if !bytes.Contains(raw, []byte(`"_id":"`+l.RecordID+`"`)) {
			t.Errorf("record_id %q is not in the input", l.RecordID)
		}
	}

	// The same input on stdin ("-") gives the same lines.
	code, out2, _ := loupe(t, string(raw), "analyze", "--format", "ndjson", "-")
	if code != exitOK || out2 != out {
		t.Errorf("stdin run differs from file run (exit %d)", code)
	}

	// The summaries form is one JSON object.
	code, out3, _ := loupe(t, "", "analyze", "--agent-form", "summaries", in)
	var sum struct {
		Summaries []json.RawMessage `json:"summaries"`
	}
	if code != exitOK || json.Unmarshal([]byte(out3), &sum) != nil || len(sum.Summaries) == 0 {
		t.Errorf("summaries form: exit %d, %.200s", code, out3)
	}
}

func TestAnalyzeGzipAndManyFiles(t *testing.T) {
	plain := filepath.Join(attackDir, "auth.log")
	raw, err := os.ReadFile(plain)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	gz := filepath.Join(dir, "auth.log.gz")
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(raw)
	zw.Close()
	if err := os.WriteFile(gz, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	_, whole, _ := loupe(t, "", "analyze", "--format", "ndjson", plain)
	want := rules(parseNDJSON(t, whole))
	if len(want) == 0 {
		t.Fatal("no findings on auth.log")
	}
	// Compressed: same conclusions (ids are seeded by the input name).
	_, zipped, errOut := loupe(t, "", "analyze", "--format", "ndjson", gz)
	if got := rules(parseNDJSON(t, zipped)); !slices.Equal(got, want) {
		t.Errorf("gzip input rules %v, want %v (stderr %s)", got, want, errOut)
	}

	// Split in the middle of the password-guessing burst: one run over
	// both halves still sees every correlation.
	lines := strings.SplitAfter(string(raw), "\n")
	var fails []int
	for i, l := range lines {
		if strings.Contains(l, "Failed password") {
			fails = append(fails, i)
		}
	}
	cut := fails[len(fails)/2]
	a, b := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
	os.WriteFile(a, []byte(strings.Join(lines[:cut], "")), 0o600)
	os.WriteFile(b, []byte(strings.Join(lines[cut:], "")), 0o600)
	_, split, _ := loupe(t, "", "analyze", "--format", "ndjson", a, b)
	if got := rules(parseNDJSON(t, split)); !slices.Equal(got, want) {
		t.Errorf("split input rules %v, want %v", got, want)
	}
}

func TestFailOn(t *testing.T) {
	code, _, errOut := loupe(t, "", append([]string{"analyze", "--quiet", "--fail-on", "high"}, files(t, attackDir)...)...)
	if code != exitFailOn {
		t.Errorf("attack corpus --fail-on high: exit %d, want %d (stderr %s)", code, exitFailOn, errOut)
	}
	code, _, errOut = loupe(t, "", append([]string{"analyze", "--quiet", "--fail-on", "high"}, files(t, benignDir)...)...)
	if code != exitOK {
		t.Errorf("benign corpus --fail-on high: exit %d, want 0 (stderr %s)", code, errOut)
	}
	// Without --fail-on, findings alone do not change the exit code.
	code, _, _ = loupe(t, "", append([]string{"analyze", "--quiet"}, files(t, attackDir)...)...)
	if code != exitOK {
		t.Errorf("attack corpus without --fail-on: exit %d", code)
	}
	if code, _, _ = loupe(t, "", "analyze", "--fail-on", "severe", "x"); code != exitUsage {
		t.Errorf("bad --fail-on: exit %d, want %d", code, exitUsage)
	}
}

func TestBadLineReported(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(attackDir, "timesketch-nested.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(raw), "\n")
	bad := `{"_id":"broken","_source":{` + "\n"
	body := strings.Join(lines[:2], "") + bad + strings.Join(lines[2:], "")
	p := filepath.Join(t.TempDir(), "mixed.jsonl")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := loupe(t, "", "analyze", "--format", "ndjson", p)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(errOut, p+":3: ") {
		t.Errorf("stderr %q lacks %s:3:", errOut, p)
	}
	if !strings.Contains(errOut, "1 bad line") {
		t.Errorf("stderr %q lacks the bad line count", errOut)
	}
	_, clean, _ := loupe(t, "", "analyze", "--format", "ndjson", filepath.Join(attackDir, "timesketch-nested.jsonl"))
	if out != clean {
		t.Error("findings differ when a bad line is added: processing did not go on")
	}
	// --quiet suppresses the messages.
	_, _, errOut = loupe(t, "", "analyze", "--quiet", "--format", "ndjson", p)
	if errOut != "" {
		t.Errorf("--quiet still printed %q", errOut)
	}
}

// ATT&CK enterprise tactic order.
var tacticOrder = []string{"TA0043", "TA0042", "TA0001", "TA0002", "TA0003", "TA0004", "TA0005",
	"TA0006", "TA0007", "TA0008", "TA0009", "TA0011", "TA0010", "TA0040"}

func TestMarkdownTacticOrder(t *testing.T) {
	out := filepath.Join(t.TempDir(), "report.md") // format from the extension
	code, _, errOut := loupe(t, "", append([]string{"analyze", "--quiet", "--output", out}, files(t, attackDir)...)...)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	md, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	heading := regexp.MustCompile(`(?m)^## .*\((TA\d{4})\)$`)
	var seen []int
	for _, m := range heading.FindAllSubmatch(md, -1) {
		i := slices.Index(tacticOrder, string(m[1]))
		if i < 0 {
			t.Fatalf("unknown tactic %s", m[1])
		}
		seen = append(seen, i)
	}
	if len(seen) < 3 {
		t.Fatalf("only %d tactic headings in:\n%s", len(seen), md)
	}
	if !slices.IsSorted(seen) {
		t.Errorf("tactic headings not in ATT&CK order: %v", seen)
	}
}

func TestDemo(t *testing.T) {
	code, out, errOut := loupe(t, "", "analyze", "--demo")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"demo/auth.log", "Credential Access", "Persistence"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo report lacks %q:\n%s", want, out)
		}
	}
	if strings.HasPrefix(strings.TrimSpace(out), "{") {
		t.Error("demo printed JSON, want a text report")
	}
	if code, _, _ := loupe(t, "", "analyze", "--demo", "x.log"); code != exitUsage {
		t.Errorf("--demo with files: exit %d, want %d", code, exitUsage)
	}
}

func TestFormats(t *testing.T) {
	in := filepath.Join(attackDir, "evtx.jsonl")
	code, out, _ := loupe(t, "", "analyze", "--format", "json", in)
	var doc map[string]json.RawMessage
	if code != exitOK || json.Unmarshal([]byte(out), &doc) != nil {
		t.Fatalf("json format: exit %d, %.300s", code, out)
	}
	code, out, _ = loupe(t, "", "analyze", "--format", "text", in)
	if code != exitOK || !strings.Contains(out, "Credential Access") {
		t.Errorf("text format: exit %d, %.300s", code, out)
	}
	if code, _, _ := loupe(t, "", "analyze", "--format", "pdf", in); code != exitUsage {
		t.Errorf("bad format: exit %d", code)
	}
}

func TestUsageAndErrors(t *testing.T) {
	code, out, _ := loupe(t, "", "version")
	if code != exitOK || !strings.HasPrefix(out, "loupe ") || len(strings.TrimSpace(out)) < len("loupe x") {
		t.Errorf("version: %d %q", code, out)
	}
	if code, out, _ := loupe(t, "", "help"); code != exitOK || !strings.Contains(out, "analyze") || !strings.Contains(out, "serve") {
		t.Errorf("help: %d %q", code, out)
	}
	if code, _, errOut := loupe(t, "", "help", "analyze"); code != exitOK || !strings.Contains(errOut, "--fail-on") && !strings.Contains(errOut, "-fail-on") {
		t.Errorf("help analyze: %d %q", code, errOut)
	}
	if code, _, _ := loupe(t, ""); code != exitUsage {
		t.Errorf("no args: exit %d", code)
	}
	if code, _, _ := loupe(t, "", "frobnicate"); code != exitUsage {
		t.Errorf("unknown command: exit %d", code)
	}
	if code, _, _ := loupe(t, "", "analyze", "--no-such-flag"); code != exitUsage {
		t.Errorf("unknown flag: exit %d", code)
	}
	if code, _, errOut := loupe(t, "", "analyze", filepath.Join(t.TempDir(), "missing.log")); code != exitError || !strings.Contains(errOut, "missing.log") {
		t.Errorf("missing file: exit %d, %q", code, errOut)
	}
	if code, _, _ := loupe(t, "", "serve", "extra"); code != exitUsage {
		t.Errorf("serve with an argument: exit %d", code)
	}
	if code, _, _ := loupe(t, "", "serve", "--token", "x"); code != exitUsage {
		t.Errorf("serve --token was accepted: exit %d", code)
	}
}

func TestProgressLine(t *testing.T) {
	got := progressLine(2_500_000, 3<<30, 7, 12, 2*time.Second)
	for _, want := range []string{"2.50M events", "1.25M/s", "3.0 GiB read", "7 bad lines", "12 findings"} {
		if !strings.Contains(got, want) {
			t.Errorf("progress line %q lacks %q", got, want)
		}
	}
	if got := progressLine(0, 10, 0, 0, 0); !strings.Contains(got, "0 events") || !strings.Contains(got, "10 B read") {
		t.Errorf("empty progress line %q", got)
	}
}

func TestProgressDraws(t *testing.T) {
	var buf syncBuffer
	var st = newStatsForTest()
	p := newProgress(&buf, st.stats, st.read, time.Now(), true)
	st.stats.Events.Add(42)
	time.Sleep(3 * progressEvery)
	p.println("file:1: bad")
	p.stop()
	s := buf.String()
	if !strings.Contains(s, "\r\x1b[K42 events") {
		t.Errorf("no progress redraw in %q", s)
	}
	if !strings.Contains(s, "\r\x1b[Kfile:1: bad\n") {
		t.Errorf("message not printed on a cleared line: %q", s)
	}
	if !strings.HasSuffix(s, "\r\x1b[K") && !strings.HasSuffix(s, "bad\n") {
		t.Errorf("progress line not cleared at the end: %q", s)
	}
}
