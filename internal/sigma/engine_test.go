package sigma

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/loupe-sec/loupe/internal/detect"
	"github.com/loupe-sec/loupe/internal/event"
	"github.com/loupe-sec/loupe/internal/source"
)

// readEvents parses a corpus file with loupe's own source parsers.
func readEvents(t testing.TB, path string) []*event.Event {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []*event.Event
	for ev, err := range source.Read(context.Background(), f, source.Options{Name: filepath.Base(path)}) {
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, ev)
	}
	return out
}

func loadTestRules(t testing.TB) *Ruleset {
	t.Helper()
	rs, err := Load("testdata/rules", Options{})
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// corpusMatches runs the test rules over a corpus and returns
// "rule title <- summary" lines, sorted.
func corpusMatches(t *testing.T, rs *Ruleset, path string) []string {
	var got []string
	x := rs.NewEngine()
	emit := func(d detect.Detection) {
		got = append(got, d.Rule.Title+" <- "+d.Event.Summary())
	}
	for _, ev := range readEvents(t, path) {
		x.Observe(ev, emit)
	}
	x.Flush(emit)
	sort.Strings(got)
	return got
}

func TestCorpusMatches(t *testing.T) {
	rs := loadTestRules(t)
	for _, p := range rs.Problems {
		t.Log("problem:", p)
	}
	for _, c := range []string{"evtx.jsonl", "falco.jsonl", "auth.log"} {
		got := corpusMatches(t, rs, filepath.Join("..", "demo", "corpus", c))
		t.Logf("%s:\n%s", c, strings.Join(got, "\n"))
	}
}
