package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loupe-sec/loupe/internal/sigma"
)

var sigmaTestRules = filepath.Join("..", "..", "internal", "sigma", "testdata", "rules")

func TestRulesCheck(t *testing.T) {
	code, out, _ := loupe(t, "", "rules", "check", sigmaTestRules)
	if code != exitError {
		t.Errorf("exit %d, want %d (the test rules include invalid ones)", code, exitError)
	}
	for _, want := range []string{
		"invalid/broken.yaml: : invalid: YAML:",
		`invalid/bad_condition.yml#1: Unknown Identifier (8c1f6a57-6c2e-4a59-9a0b-1f2d1e5a0018): invalid: condition: unknown search identifier "filter"`,
		"unsupported/lookahead.yml#1", "unsupported: regex: not RE2 syntax",
		"expand: placeholder %admin_accounts% not configured",
		"  regex        1\n", "  invalid      2\n",
		"    windows             10 loaded     4 not loaded (71.4%)\n", "    (correlation)        1 loaded     0 not loaded (100.0%)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}

	// Only the valid rules: exit 0 unless --strict (unsupported ones left).
	dir := t.TempDir()
	for _, sub := range []string{"windows", "unsupported"} {
		copyDir(t, filepath.Join(sigmaTestRules, sub), filepath.Join(dir, sub))
	}
	if code, out, _ := loupe(t, "", "rules", "check", dir); code != exitOK {
		t.Errorf("valid rules: exit %d:\n%s", code, out)
	}
	if code, _, _ := loupe(t, "", "rules", "check", "--strict", dir); code != exitError {
		t.Errorf("--strict with unsupported rules: exit %d, want %d", code, exitError)
	}
	code, out, _ = loupe(t, "", "rules", "check", "--json", dir)
	var rep struct {
		Loaded, Unsupported, Invalid int
		ByReason                     map[string]int `json:"by_reason"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != exitOK {
		t.Fatalf("--json: exit %d, %v:\n%s", code, err, out)
	}
	if rep.Unsupported != 3 || rep.Invalid != 0 || rep.ByReason["aggregation"] != 1 || rep.Loaded < 10 {
		t.Errorf("--json report: %+v", rep)
	}
	if code, _, errOut := loupe(t, "", "rules", "check"); code != exitUsage || !strings.Contains(errOut, "want one rule directory") {
		t.Errorf("no DIR: exit %d, %s", code, errOut)
	}
	if code, _, _ := loupe(t, "", "rules", "check", filepath.Join(dir, "missing")); code != exitError {
		t.Errorf("missing DIR: exit %d", code)
	}
}

func TestRulesList(t *testing.T) {
	t.Setenv("LOUPE_RULES", filepath.Join(sigmaTestRules, "windows"))
	code, out, errOut := loupe(t, "", "rules", "list")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"TITLE", "PsExec Service Installed", "8c1f6a57-6c2e-4a59-9a0b-1f2d1e5a0006", "windows/system",
		"correlation:event_count", "loupe tests"} {
		if !strings.Contains(out, want) {
			t.Errorf("list lacks %q:\n%s", want, out)
		}
	}
}

// analyze --rules adds Sigma findings, attributed, to the built-in ones.
func TestAnalyzeWithRules(t *testing.T) {
	evtx := filepath.Join(attackDir, "evtx.jsonl")
	code, out, errOut := loupe(t, "", "analyze", "--quiet", "--format", "json", "--rules", sigmaTestRules, evtx)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep struct {
		Findings []struct {
			Source   string
			Question string
			Tactic   string
			Rule     struct{ ID, Title, Author, Link, Level, Status string }
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	var sigmaN, builtin int
	for _, f := range rep.Findings {
		if f.Source != "sigma" {
			builtin++
			continue
		}
		sigmaN++
		if f.Rule.Title == "PsExec Service Installed" {
			if f.Rule.Link != "https://example.org/loupe/psexec" || f.Rule.Author != "loupe tests" || f.Rule.Status != "test" ||
				f.Tactic != "Lateral Movement" || f.Question != "How did the attacker move laterally?" {
				t.Errorf("psexec finding: %+v", f)
			}
		}
	}
	if sigmaN < 5 || builtin == 0 {
		t.Errorf("%d sigma and %d built-in findings", sigmaN, builtin)
	}
	// Without --rules no Sigma finding.
	code, out, _ = loupe(t, "", "analyze", "--quiet", "--format", "json", evtx)
	if code != exitOK || strings.Contains(out, `"source": "sigma"`) {
		t.Errorf("without --rules: exit %d, sigma findings present", code)
	}
	if code, _, errOut := loupe(t, "", "analyze", "--rules", filepath.Join(t.TempDir(), "none"), evtx); code != exitError {
		t.Errorf("missing rules dir: exit %d %s", code, errOut)
	}
	// The rules key of a config file does what --rules does.
	cfgFile := filepath.Join(t.TempDir(), "loupe.yaml")
	if err := os.WriteFile(cfgFile, []byte("rules: "+sigmaTestRules+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = loupe(t, "", "analyze", "--quiet", "--format", "json", "--config", cfgFile, evtx)
	if code != exitOK || !strings.Contains(out, `"title": "PsExec Service Installed"`) {
		t.Errorf("rules from the config file: exit %d, no sigma finding (%s)", code, errOut)
	}
}

// SIGHUP reloads; a failed reload keeps the old set.
func TestWatchRulesReload(t *testing.T) {
	dir := t.TempDir()
	copyDir(t, filepath.Join(sigmaTestRules, "linux"), dir)
	o := &rulesOptions{dir: dir}
	sets := make(chan *sigma.Ruleset, 4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hup := make(chan os.Signal, 1)
	go watchRules(ctx, hup, o, func(rs *sigma.Ruleset) { sets <- rs }, slog.New(slog.DiscardHandler))

	data, err := os.ReadFile(filepath.Join(sigmaTestRules, "cloud", "aws_trail.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "aws.yml"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	hup <- os.Interrupt
	select {
	case rs := <-sets:
		if rs.Rule("8c1f6a57-6c2e-4a59-9a0b-1f2d1e5a0014") == nil || len(rs.Rules) != 3 {
			t.Errorf("reloaded set has %d rules, without the new one", len(rs.Rules))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no reload")
	}
	os.RemoveAll(dir)
	hup <- os.Interrupt
	select {
	case <-sets:
		t.Error("a failed reload replaced the rules")
	case <-time.After(200 * time.Millisecond):
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.Walk(from, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if fi.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// rules test replays regression samples in SigmaHQ's layout: exit 0 when
// every sample triggers its rule, 1 with the misses named.
func TestRulesTest(t *testing.T) {
	dir := t.TempDir()
	sample := func(cmd string) string {
		return `{"Event":{"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Sysmon"}},"EventID":1,` +
			`"Channel":"Microsoft-Windows-Sysmon/Operational","Computer":"h"},"EventData":{"CommandLine":"` + cmd + `"}}}`
	}
	write := func(name, count, body string) {
		d := filepath.Join(dir, name)
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, "info.yml"), []byte("rule_metadata:\n    - id: 8c1f6a57-6c2e-4a59-9a0b-1f2d1e5a0005\n      title: Credential Dumping Tools\n"+
			"regression_tests_info:\n    - type: evtx\n"+count+"      path: regression_data/"+name+"/s.evtx\n"), 0o644)
		os.WriteFile(filepath.Join(d, "s.json"), []byte(body), 0o644)
	}
	write("mimikatz", "      match_count: 1\n", sample("mimikatz.exe sekurlsa::logonpasswords"))
	code, out, errOut := loupe(t, "", "rules", "test", sigmaTestRules, dir)
	if code != exitOK || !strings.Contains(out, "1 of 1 samples match") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	write("benign", "", sample("whoami"))
	code, out, _ = loupe(t, "", "rules", "test", sigmaTestRules, dir)
	if code != exitError || !strings.Contains(out, "MISS") || !strings.Contains(out, "none of 1 events matched") || !strings.Contains(out, "1 of 2 samples") {
		t.Errorf("with a miss: exit %d\n%s", code, out)
	}
	if code, _, errOut := loupe(t, "", "rules", "test", sigmaTestRules); code != exitUsage || !strings.Contains(errOut, "regression data directory") {
		t.Errorf("one argument: exit %d %s", code, errOut)
	}
}
