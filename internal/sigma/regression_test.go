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
