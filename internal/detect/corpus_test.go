package detect

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loupe-sec/loupe/internal/source"
)

const testdata = "../../testdata"

// runCorpus reads one testdata file with the real parser and returns the
// detections of a fresh engine.
func runCorpus(t *testing.T, name string) []Detection {
	return runCorpusWith(t, name, Options{})
}

func runCorpusWith(t *testing.T, name string, opt Options) []Detection {
	t.Helper()
	path := filepath.Join(testdata, name)
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		t.Skipf("corpus %s not present", path)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	e := New(opt)
	var ds []Detection
	emit := func(d Detection) { ds = append(ds, d) }
	for ev, err := range source.Read(context.Background(), f, source.Options{Name: filepath.Base(path)}) {
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		e.Observe(ev, emit)
	}
	e.Flush(emit)
	return ds
}

func describe(ds []Detection) string {
	var b strings.Builder
	for _, d := range ds {
		fmt.Fprintf(&b, "\n  %s [%s] line %d: %s", d.Rule.ID, d.Priority, d.Event.Line, d.What)
	}
	return b.String()
}

func TestAttackCorpora(t *testing.T) {
	common := []string{
		"loupe-account-created", "loupe-admin-group-add", "loupe-cron-persistence", "loupe-download-exec",
		"loupe-reverse-shell", "loupe-history-cleared", "loupe-linux-log-cleared", "loupe-encoded-powershell",
		"loupe-certutil-download", "loupe-lsass-dump", "loupe-psexec-service", "loupe-windows-log-cleared",
	}
	want := map[string][]string{
		"attack/auth.log": {
			"loupe-brute-force", "loupe-brute-force-success", "loupe-account-created", "loupe-admin-group-add",
			"loupe-cron-persistence", "loupe-reverse-shell", "loupe-history-cleared", "loupe-linux-log-cleared",
		},
		"attack/evtx.jsonl": {
			"loupe-brute-force", "loupe-brute-force-success", "loupe-encoded-powershell", "loupe-certutil-download",
			"loupe-bits-transfer", "loupe-lsass-dump", "loupe-lsass-access", "loupe-sam-dump", "loupe-account-created",
			"loupe-admin-group-add", "loupe-service-installed", "loupe-psexec-service", "loupe-scheduled-task",
			"loupe-inhibit-recovery", "loupe-windows-log-cleared",
		},
		"attack/timesketch-flat.jsonl":   common,
		"attack/timesketch-nested.jsonl": common,
	}
	for name, rules := range want {
		t.Run(name, func(t *testing.T) {
			ds := runCorpus(t, name)
			fired := map[string]bool{}
			for _, d := range ds {
				fired[d.Rule.ID] = true
				if d.What == "" || d.Key == "" || d.Tactic == "" || d.Event == nil {
					t.Errorf("incomplete detection %+v", d)
				}
			}
			for _, r := range rules {
				if !fired[r] {
					t.Errorf("rule %s did not fire; got:%s", r, describe(ds))
				}
			}
		})
	}
	t.Run("attack/falco.jsonl", func(t *testing.T) {
		ds := runCorpus(t, "attack/falco.jsonl")
		if len(ds) != 20 {
			t.Fatalf("want one detection per alert (20), got %d:%s", len(ds), describe(ds))
		}
		for _, d := range ds {
			if d.Source != "falco" || !strings.HasPrefix(d.Rule.ID, "falco:") || d.TacticID == "" {
				t.Errorf("bad Falco detection %+v", d)
			}
		}
	})
}

// The Timesketch exports hold only 8 of the failed logons: with a lower
// threshold the same correlation must work on plaso-shaped records.
func TestTimesketchBruteForce(t *testing.T) {
	for _, name := range []string{"attack/timesketch-flat.jsonl", "attack/timesketch-nested.jsonl"} {
		t.Run(name, func(t *testing.T) {
			fired := map[string]bool{}
			for _, d := range runCorpusWith(t, name, Options{FailThreshold: 5}) {
				fired[d.Rule.ID] = true
			}
			if !fired["loupe-brute-force"] || !fired["loupe-brute-force-success"] {
				t.Errorf("brute force not correlated: %v", fired)
			}
		})
	}
}

func TestBenignCorpora(t *testing.T) {
	for _, name := range []string{"benign/evtx.jsonl", "benign/auth.log", "benign/app.jsonl"} {
		t.Run(name, func(t *testing.T) {
			if ds := runCorpus(t, name); len(ds) != 0 {
				t.Errorf("benign corpus made %d detections:%s", len(ds), describe(ds))
			}
		})
	}
}
