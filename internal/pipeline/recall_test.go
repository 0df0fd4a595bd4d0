package pipeline

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/loupe-sec/loupe/internal/source"
)

// sharedDir locates ../shared (the project's shared datasets) or $LOUPE_SHARED.
func sharedDir(t testing.TB) string {
	if d := os.Getenv("LOUPE_SHARED"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "..", "shared")
}

// The EVTX-ATTACK-SAMPLES tactic folders that name an ATT&CK tactic.
var sampleTactics = []string{
	"Command and Control", "Credential Access", "Defense Evasion", "Discovery", "Execution",
	"Lateral Movement", "Persistence", "Privilege Escalation", "Initial Access", "Collection",
	"Exfiltration", "Impact",
}

func normTactic(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// labelOf finds the sample's tactic folder and file name among the record's
// top-level fields other than the event itself (the dataset stores them as
// labels beside "Event"; field names vary, so any string field is examined).
func labelOf(line []byte) (tactic, file string) {
	gjson.ParseBytes(line).ForEach(func(k, v gjson.Result) bool {
		if k.String() == "Event" || v.Type != gjson.String {
			return true
		}
		s := v.String()
		if strings.HasSuffix(strings.ToLower(s), ".evtx") {
			file = s
		}
		if tactic == "" {
			ns := normTactic(s)
			for _, t := range sampleTactics {
				if strings.Contains(ns, normTactic(t)) {
					tactic = t
					break
				}
			}
		}
		return true
	})
	if file == "" {
		file = tactic // one bucket per tactic when no file label exists
	}
	return tactic, file
}

// TestRecallEVTXAttackSamples runs the engine on each sample file of
// EVTX-ATTACK-SAMPLES and checks that some finding's tactic matches the
// tactic folder the file came from. Set LOUPE_RECALL_OUT=FILE to write the
// per-tactic table (for bench/RESULTS.md).
func TestRecallEVTXAttackSamples(t *testing.T) {
	path := filepath.Join(sharedDir(t), "data", "evtx-attack-samples.jsonl.gz")
	f, err := os.Open(path)
	if err != nil {
		t.Skipf("shared dataset not available (%v): set LOUPE_SHARED or place ../shared beside the repository", err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	type sample struct {
		tactic string
		lines  bytes.Buffer
	}
	samples := map[string]*sample{}
	sc := bufio.NewScanner(gz)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		tactic, file := labelOf(sc.Bytes())
		if tactic == "" {
			continue // "Other", "AutomatedTestingTools": no tactic to recall
		}
		s := samples[file]
		if s == nil {
			s = &sample{tactic: tactic}
			samples[file] = s
		}
		s.lines.Write(sc.Bytes())
		s.lines.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(samples) == 0 {
		t.Fatal("no labelled samples found: the dataset's label fields were not recognised")
	}
	type tally struct{ files, hit int }
	per := map[string]*tally{}
	var missed []string
	ctx := context.Background()
	for file, s := range samples {
		tl := per[s.tactic]
		if tl == nil {
			tl = &tally{}
			per[s.tactic] = tl
		}
		tl.files++
		want := normTactic(s.tactic)
		found := false
		events := source.Read(ctx, bytes.NewReader(s.lines.Bytes()), source.Options{Name: file})
		for fd, err := range Run(ctx, events, Options{}, nil) {
			if err == nil && normTactic(fd.Tactic) == want {
				found = true
			}
		}
		if found {
			tl.hit++
		} else {
			missed = append(missed, s.tactic+": "+file)
		}
	}
	var out strings.Builder
	fmt.Fprintln(&out, "| tactic | sample files | recalled | recall |")
	fmt.Fprintln(&out, "|---|---:|---:|---:|")
	var tf, th int
	names := make([]string, 0, len(per))
	for k := range per {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		tl := per[k]
		tf += tl.files
		th += tl.hit
		fmt.Fprintf(&out, "| %s | %d | %d | %.0f%% |\n", k, tl.files, tl.hit, 100*float64(tl.hit)/float64(tl.files))
	}
	overall := float64(th) / float64(tf)
	fmt.Fprintf(&out, "| **all** | %d | %d | **%.0f%%** |\n", tf, th, 100*overall)
	t.Log("\n" + out.String())
	slices.Sort(missed)
	t.Logf("missed %d files:\n%s", len(missed), strings.Join(missed, "\n"))
	if p := os.Getenv("LOUPE_RECALL_OUT"); p != "" {
		os.WriteFile(p, []byte(out.String()+"\nMissed:\n\n- "+strings.Join(missed, "\n- ")+"\n"), 0o644)
	}
	if overall < 0.70 {
		t.Errorf("overall recall %.0f%% is below the 70%% target", 100*overall)
	}
}
