package alert

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loupe-sec/loupe/internal/attack"
)

// offlineQuality analyses every Falco event of a JSONL file offline and
// checks that each gets a technique from the ATT&CK table and a tactic
// consistent with its own mitre_* tags. It returns coverage counts.
func offlineQuality(t *testing.T, path string) (events, tagged int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for line := 1; sc.Scan(); line++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		a, err := Parse([]byte(`{"alert":` + sc.Text() + `}`))
		if err != nil {
			t.Errorf("%s:%d: %v", path, line, err)
			continue
		}
		an, err := Offline{}.Analyze(context.Background(), a, Context{})
		if err != nil {
			t.Errorf("%s:%d: %v", path, line, err)
			continue
		}
		if err := an.Validate(); err != nil {
			t.Errorf("%s:%d: invalid analysis: %v", path, line, err)
		}
		events++
		tech, tactics, ok := attack.Lookup(an.MitreAttack.Technique)
		if !ok {
			t.Errorf("%s:%d (%s): technique %q is not in the ATT&CK table", path, line, a.Rule, an.MitreAttack.Technique)
			continue
		}
		if an.MitreAttack.TechniqueName != tech.Name {
			t.Errorf("%s:%d: technique name %q, table says %q", path, line, an.MitreAttack.TechniqueName, tech.Name)
		}
		var tagTactics []string
		for _, tag := range a.Tags {
			if strings.HasPrefix(strings.ToLower(tag), "mitre_") {
				if ta, ok := attack.TacticByName(tag); ok {
					tagTactics = append(tagTactics, ta.Name)
				}
			}
		}
		if len(tagTactics) > 0 {
			tagged++
			consistent := false
			for _, n := range tagTactics {
				consistent = consistent || strings.EqualFold(n, an.MitreAttack.Tactic)
			}
			if !consistent {
				t.Errorf("%s:%d (%s): tactic %q, but the alert is tagged %v", path, line, a.Rule, an.MitreAttack.Tactic, tagTactics)
			}
		} else {
			// Untagged: the tactic must at least be one the technique belongs to.
			belongs := false
			for _, ta := range tactics {
				belongs = belongs || strings.EqualFold(ta.Name, an.MitreAttack.Tactic)
			}
			if !belongs {
				t.Errorf("%s:%d (%s): tactic %q is not a tactic of %s", path, line, a.Rule, an.MitreAttack.Tactic, tech.ID)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return events, tagged
}

func TestOfflineQualityRepoCorpus(t *testing.T) {
	n, tagged := offlineQuality(t, filepath.Join("..", "..", "testdata", "attack", "falco.jsonl"))
	if n == 0 {
		t.Fatal("no events analysed")
	}
	t.Logf("%d events, %d with mitre_* tags, all with a valid technique and a consistent tactic", n, tagged)
}

// TestOfflineQualitySharedFalco runs the same check on the shared Falco
// dataset. LOUPE_QUALITY_OUT=FILE writes the coverage line for RESULTS.md.
func TestOfflineQualitySharedFalco(t *testing.T) {
	dir := os.Getenv("LOUPE_SHARED")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared")
	}
	path := filepath.Join(dir, "data", "falco", "events.jsonl")
	if _, err := os.Stat(path); err != nil {
		t.Skipf("shared Falco dataset not available (%v): set LOUPE_SHARED or place ../shared beside the repository", err)
	}
	n, tagged := offlineQuality(t, path)
	msg := fmt.Sprintf("%d Falco events analysed offline, %d with mitre_* tags; failures: see test output\n", n, tagged)
	if !t.Failed() {
		msg = fmt.Sprintf("%d Falco events analysed offline (%d with mitre_* tags): 100%% have a technique from the ATT&CK table and a consistent tactic\n", n, tagged)
	}
	if p := os.Getenv("LOUPE_QUALITY_OUT"); p != "" {
		os.WriteFile(p, []byte(msg), 0o644)
	}
	t.Log(msg)
}
