package sigma

import (
	"bufio"

	"compress/gzip"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/loupe-sec/loupe/internal/source"
)

// sharedFile is a file of the project's shared data, or "".
func sharedFile(name string) string {
	base := os.Getenv("LOUPE_SHARED")
	if base == "" {
		base = filepath.Join("..", "..", "..", "shared")
	}
	p := filepath.Join(base, "data", name)
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

// TestSigmaRegression replays the SigmaHQ regression samples, when the
// shared data has them: each positive sample must trigger its own rule.
// A line names its rule (rule_id, id, rule or sigma_id) and holds the
// event (event, log, sample or record: an object or a JSON string).
func TestSigmaRegression(t *testing.T) {
	samples := sharedFile("sigma-regression.jsonl.gz")
	dir := sharedSigma()
	if samples == "" || !dirExists(dir) {
		t.Skipf("no ../shared/data/sigma-regression.jsonl.gz or SigmaHQ rules at %s", dir)
	}
	rs, err := Load(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(samples)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	x := rs.NewEngine()
	var total, hit, noRule int
	misses := map[string]int{}
	for sc.Scan() {
		var line map[string]json.RawMessage
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			continue
		}
		id := firstString(line, "rule_id", "id", "rule", "sigma_id")
		raw := firstRaw(line, "event", "log", "sample", "record")
		if id == "" || raw == nil {
			continue
		}
		if raw[0] == '"' {
			var s string
			json.Unmarshal(raw, &s)
			raw = []byte(s)
		}
		total++
		r := rs.Rule(id)
		if r == nil {
			noRule++
			misses["rule not loaded"]++
			continue
		}
		matched := false
		for ev, err := range source.Read(context.Background(), strings.NewReader(string(raw)+"\n"), source.Options{Name: "sample"}) {
			if err == nil && x.Match(r, ev) {
				matched = true
			}
		}
		if matched {
			hit++
		} else {
			misses[r.Logsource.String()]++
		}
	}
	if total == 0 {
		t.Skip("no samples recognised in the regression file")
	}
	keys := make([]string, 0, len(misses))
	for k := range misses {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Logf("missed %d: %s", misses[k], k)
	}
	t.Logf("%d of %d samples match their rule (%d rules not loaded)", hit, total, noRule)
	if float64(hit) < 0.98*float64(total) {
		t.Errorf("only %d of %d samples match their rule", hit, total)
	}
}

func firstString(m map[string]json.RawMessage, keys ...string) string {
	for _, k := range keys {
		var s string
		if v, ok := m[k]; ok && json.Unmarshal(v, &s) == nil && s != "" {
			return s
		}
	}
	return ""
}

func firstRaw(m map[string]json.RawMessage, keys ...string) []byte {
	for _, k := range keys {
		if v, ok := m[k]; ok && len(v) > 0 && (v[0] == '{' || v[0] == '"') {
			return v
		}
	}
	return nil
}

// TestSigmaRegressionData replays regression samples laid out as in the
// SigmaHQ repository's regression_data/ (LOUPE_SIGMA_REGRESSION names the
// directory; LOUPE_SIGMA_RULES the rules) with RunRegression.
func TestSigmaRegressionData(t *testing.T) {
	dir, rules := os.Getenv("LOUPE_SIGMA_REGRESSION"), sharedSigma()
	if dir == "" {
		if s := sharedFile("sigma-regression"); s != "" {
			dir = s
		}
	}
	if !dirExists(dir) || !dirExists(rules) {
		t.Skipf("no regression_data directory (set LOUPE_SIGMA_REGRESSION) or SigmaHQ rules at %q", rules)
	}
	rs, err := Load(rules, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := RunRegression(rs, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Cases) == 0 {
		t.Skipf("no regression samples with JSON renderings under %s", dir)
	}
	for _, c := range rep.Cases {
		if !c.Passed() {
			t.Logf("miss: %s (%s): %s", c.RuleTitle, c.RuleID, c.Why())
		}
	}
	t.Logf("%d of %d regression samples match their rule as often as they should (%d skipped)", rep.Passed(), len(rep.Cases), len(rep.Skipped))
	if float64(rep.Passed()) < 0.98*float64(len(rep.Cases)) {
		t.Errorf("only %d of %d samples pass", rep.Passed(), len(rep.Cases))
	}
}

// RunRegression on a small layout of its own: a pass, a count that is
// off, a rule that did not load, a rule not in the set, a sample of two
// concatenated objects, one with no JSON rendering.
func TestRunRegression(t *testing.T) {
	rules := `title: Whoami
id: 11111111-1111-4111-8111-111111111111
logsource: {product: windows, category: process_creation}
detection: {sel: {Image|endswith: '\whoami.exe'}, condition: sel}
---
title: Broken
id: 22222222-2222-4222-8222-222222222222
logsource: {product: windows, category: process_creation}
detection: {sel: {Image: x}, condition: sel and not filter}
`
	rs := Parse("r.yml", []byte(rules), Options{})
	dir := t.TempDir()
	sysmon := func(image string) string {
		return `{"Event":{"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Sysmon"}},"EventID":1,` +
			`"Channel":"Microsoft-Windows-Sysmon/Operational","Computer":"h","TimeCreated":{"#attributes":{"SystemTime":"2025-10-25T16:56:16Z"}}},` +
			`"EventData":{"Image":"C:\\Windows\\System32\\` + image + `"}}}`
	}
	write := func(name, id, count string, samples ...string) {
		d := filepath.Join(dir, name)
		os.MkdirAll(d, 0o755)
		info := "id: x\nrule_metadata:\n    - id: " + id + "\n      title: " + name + "\nregression_tests_info:\n    - name: Positive\n      type: evtx\n" +
			count + "      path: regression_data\\rules\\" + name + "\\" + id + ".evtx\n"
		os.WriteFile(filepath.Join(d, "info.yml"), []byte(info), 0o644)
		if samples != nil {
			os.WriteFile(filepath.Join(d, id+".json"), []byte(strings.Join(samples, "\n")), 0o644)
		}
	}
	write("pass", "11111111-1111-4111-8111-111111111111", "      match_count: 2\n", sysmon("whoami.exe"), "["+sysmon("whoami.exe")+","+sysmon("cmd.exe")+"]")
	write("off", "11111111-1111-4111-8111-111111111111", "      match_count: 1\n", sysmon("whoami.exe"), sysmon("whoami.exe"))
	write("broken", "22222222-2222-4222-8222-222222222222", "", sysmon("x"))
	write("absent", "33333333-3333-4333-8333-333333333333", "", sysmon("x"))
	write("nojson", "11111111-1111-4111-8111-111111111111", "")
	rep, err := RunRegression(rs, dir)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range rep.Cases {
		got[filepath.Base(filepath.Dir(c.Sample))] = c.Why()
	}
	want := map[string]string{"pass": "", "off": "2 of 2 events matched, want 1", "broken": `rule not loaded: condition: unknown search identifier "filter"`}
	if len(got) != len(want) {
		t.Fatalf("cases %v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q", k, got[k], v)
		}
	}
	if rep.Passed() != 1 || len(rep.Skipped) != 2 {
		t.Errorf("passed %d, skipped %v", rep.Passed(), rep.Skipped)
	}
}
