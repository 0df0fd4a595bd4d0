package sigma

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"io/fs"

	"compress/gzip"
	"context"
	"encoding/json"
	"github.com/loupe-sec/loupe/internal/event"
	"gopkg.in/yaml.v3"
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
// directory; LOUPE_SIGMA_RULES the rules): each info.yml names its rule
// under rule_metadata and its samples under regression_tests_info, and the
// JSON rendering of each sample's .evtx lies beside it. A sample passes
// when its rule matches as many of its events as match_count says, or at
// least one when it says nothing.
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
	x := rs.NewEngine()
	var total, pass int
	var misses []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "info.yml" {
			return err
		}
		var info struct {
			Rules []struct{ ID, Title string } `yaml:"rule_metadata"`
			Tests []struct {
				Name  string `yaml:"name"`
				Type  string `yaml:"type"`
				Count int    `yaml:"match_count"`
				Path  string `yaml:"path"`
			} `yaml:"regression_tests_info"`
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := yaml.Unmarshal(b, &info); err != nil || len(info.Rules) == 0 {
			t.Errorf("%s: not a regression info file: %v", p, err)
			return nil
		}
		for _, tc := range info.Tests {
			sample := filepath.Join(filepath.Dir(p), strings.TrimSuffix(filepath.Base(tc.Path), filepath.Ext(tc.Path))+".json")
			evs, err := regressionEvents(sample)
			if err != nil {
				continue // the sample's JSON rendering is not in this copy
			}
			r := rs.Rule(info.Rules[0].ID)
			problem := loadProblem(rs, info.Rules[0].ID)
			if r == nil && problem == "" {
				t.Logf("skipped: %s (%s): the rule is not in %s", info.Rules[0].Title, info.Rules[0].ID, rules)
				continue
			}
			total++
			why := ""
			switch {
			case r == nil:
				why = "rule not loaded: " + problem
			default:
				n := 0
				for _, ev := range evs {
					if x.Match(r, ev) {
						n++
					}
				}
				switch {
				case tc.Count > 0 && n != tc.Count:
					why = fmt.Sprintf("%d of %d events matched, want %d", n, len(evs), tc.Count)
				case n == 0:
					why = fmt.Sprintf("none of %d events matched", len(evs))
				}
			}
			if why == "" {
				pass++
				continue
			}
			misses = append(misses, fmt.Sprintf("%s (%s): %s", info.Rules[0].Title, info.Rules[0].ID, why))
		}
		return nil
	})
	if total == 0 {
		t.Skipf("no regression samples with JSON renderings under %s", dir)
	}
	for _, m := range misses {
		t.Log("miss:", m)
	}
	t.Logf("%d of %d regression samples match their rule as often as they should", pass, total)
	if float64(pass) < 0.98*float64(total) {
		t.Errorf("only %d of %d samples pass", pass, total)
	}
}

// regressionEvents reads a sample's JSON rendering: one or more JSON
// objects (or arrays of them), pretty-printed or not.
func regressionEvents(path string) ([]*event.Event, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	var out []*event.Event
	for i := int64(1); ; i++ {
		var v json.RawMessage
		if err := dec.Decode(&v); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		var items []json.RawMessage
		if len(v) > 0 && v[0] == '[' {
			if err := json.Unmarshal(v, &items); err != nil {
				return nil, err
			}
		} else {
			items = []json.RawMessage{v}
		}
		for _, it := range items {
			var line bytes.Buffer
			if err := json.Compact(&line, it); err != nil {
				return nil, err
			}
			ev, err := source.ParseLine(line.Bytes(), i, source.Options{Name: filepath.Base(path)})
			if err != nil {
				return nil, err
			}
			out = append(out, ev)
		}
	}
	return out, nil
}

// loadProblem is why the rule with id did not load; "" when no file had it.
func loadProblem(rs *Ruleset, id string) string {
	for _, p := range rs.Problems {
		if p.ID == id {
			return p.Reason
		}
	}
	return ""
}
