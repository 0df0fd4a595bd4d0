package pipeline

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loupe-sec/loupe/internal/finding"
	"github.com/loupe-sec/loupe/internal/report"
	"github.com/loupe-sec/loupe/internal/source"
)

var update = flag.Bool("update", false, "rewrite golden files")

func analyzeFile(t testing.TB, path string) []*finding.Finding {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx := context.Background()
	var out []*finding.Finding
	for fd, err := range Run(ctx, source.Read(ctx, f, source.Options{Name: filepath.Base(path)}), Options{}, nil) {
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, fd)
	}
	return out
}

func tactics(fs []*finding.Finding) []string {
	var ts []string
	for _, f := range fs {
		if !slices.Contains(ts, f.Tactic) {
			ts = append(ts, f.Tactic)
		}
	}
	slices.Sort(ts)
	return ts
}

// The synthetic intrusions must be answered in the tactics they contain.
func TestAttackCorporaAnswerTheirTactics(t *testing.T) {
	want := map[string][]string{
		"evtx.jsonl":              {"Credential Access", "Defense Evasion", "Execution", "Impact", "Initial Access", "Persistence"},
		"auth.log":                {"Credential Access", "Defense Evasion", "Initial Access", "Persistence"},
		"falco.jsonl":             {"Credential Access", "Defense Evasion", "Execution", "Privilege Escalation"},
		"timesketch-flat.jsonl":   {"Defense Evasion", "Execution", "Persistence"},
		"timesketch-nested.jsonl": {"Defense Evasion", "Execution", "Persistence"},
	}
	for file, tacs := range want {
		fs := analyzeFile(t, filepath.Join("..", "..", "testdata", "attack", file))
		got := tactics(fs)
		for _, tc := range tacs {
			if !slices.Contains(got, tc) {
				t.Errorf("%s: no finding answers %q; tactics found: %v", file, tc, got)
			}
		}
		for _, f := range fs {
			if len(f.Evidence) == 0 || f.Evidence[0].RecordID == "" {
				t.Errorf("%s: finding %s has no evidence record id", file, f.ID)
			}
			if f.Question == "" || f.Conclusion == "" || f.Rule.ID == "" || f.Rule.Title == "" {
				t.Errorf("%s: incomplete finding %+v", file, f)
			}
		}
	}
}

// Ordinary activity must produce no finding at all.
func TestBenignCorporaAreQuiet(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "benign", "*"))
	if len(files) == 0 {
		t.Fatal("no benign corpus")
	}
	for _, p := range files {
		if strings.HasSuffix(p, ".md") {
			continue
		}
		for _, f := range analyzeFile(t, p) {
			t.Errorf("%s: false positive: %s (%s)", filepath.Base(p), f.Conclusion, f.Rule.ID)
		}
	}
}

// The readable report of the Windows intrusion is kept as a golden file so
// any change in detection or wording is seen in review.
func TestGoldenReports(t *testing.T) {
	for _, file := range []string{"evtx.jsonl", "auth.log", "falco.jsonl"} {
		fs := analyzeFile(t, filepath.Join("..", "..", "testdata", "attack", file))
		var buf bytes.Buffer
		if err := report.Markdown(&buf, fs, report.Summary{Inputs: []string{file}}); err != nil {
			t.Fatal(err)
		}
		golden := filepath.Join("testdata", strings.TrimSuffix(file, filepath.Ext(file))+".md.golden")
		if *update {
			os.MkdirAll("testdata", 0o755)
			os.WriteFile(golden, buf.Bytes(), 0o644)
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run go test -update)", err)
		}
		if !bytes.Equal(buf.Bytes(), want) {
			t.Errorf("%s report differs from %s (go test -update if intended):\n%s", file, golden, buf.String())
		}
	}
}

// A finding must come out as soon as its evidence has been read, while the
// input is still open.
func TestFindingsStreamBeforeEndOfInput(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan *finding.Finding, 1)
	go func() {
		for f, err := range Run(ctx, source.Read(ctx, pr, source.Options{Name: "pipe"}), Options{}, nil) {
			if err == nil {
				got <- f
				return
			}
		}
	}()
	fmt.Fprintln(pw, `Mar  1 10:00:00 web01 sshd[1]: Accepted publickey for deploy from 10.0.0.5 port 5000 ssh2`)
	fmt.Fprintln(pw, `{"Event":{"System":{"Provider":{"Name":"Microsoft-Windows-Eventlog"},"EventID":1102,"Channel":"Security","Computer":"dc01","TimeCreated":{"SystemTime":"2024-05-01T10:00:00Z"},"EventRecordID":77},"UserData":{"LogFileCleared":{"SubjectUserName":"mallory"}}}}`)
	select {
	case f := <-got:
		if f.Tactic != "Defense Evasion" || f.Evidence[0].RecordID != "dc01:Security:77" {
			t.Errorf("unexpected finding %+v", f)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no finding while the input is still open")
	}
}

// Stopping the consumer stops the run, and a cancelled context ends it.
func TestCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var last error
	for _, err := range Run(ctx, source.Read(ctx, strings.NewReader(strings.Repeat("{}\n", 1000)), source.Options{}), Options{}, nil) {
		last = err
	}
	if last == nil {
		t.Fatal("cancelled run ended without an error")
	}
}

// Bad lines are passed through as line errors and the run goes on.
func TestBadLinesPassThrough(t *testing.T) {
	in := "{bad json\n" + `{"Event":{"System":{"EventID":1102,"Channel":"Security","Computer":"dc01","EventRecordID":1}}}` + "\n"
	ctx := context.Background()
	var st Stats
	var errs, finds int
	for f, err := range Run(ctx, source.Read(ctx, strings.NewReader(in), source.Options{}), Options{}, &st) {
		if err != nil {
			errs++
			if !strings.Contains(err.Error(), "line 1") {
				t.Errorf("error does not name the line: %v", err)
			}
			continue
		}
		if f != nil {
			finds++
		}
	}
	if errs != 1 || finds != 1 || st.Errors.Load() != 1 || st.Events.Load() != 1 || st.Findings.Load() != 1 {
		t.Errorf("errs=%d finds=%d stats=%d/%d/%d", errs, finds, st.Errors.Load(), st.Events.Load(), st.Findings.Load())
	}
}
