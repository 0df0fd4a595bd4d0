package origin

import (
	"bufio"
	"context"
	"encoding/json"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/loupe-sec/loupe/internal/event"
	"github.com/loupe-sec/loupe/internal/finding"
	"github.com/loupe-sec/loupe/internal/pipeline"
	"github.com/loupe-sec/loupe/internal/source"
)

// repoFile is a path under the repository root.
func repoFile(parts ...string) string {
	return filepath.Join(append([]string{"..", "..", ".."}, parts...)...)
}

// falcoCorpus returns the Falco alerts to load into log stores: the shared
// dataset's events.jsonl when it is present ($LOUPE_SHARED or ../shared
// beside the repository), else the repository's testdata/attack/falco.jsonl.
func falcoCorpus(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("LOUPE_SHARED")
	if dir == "" {
		dir = repoFile("..", "shared")
	}
	if p := filepath.Join(dir, "data", "falco", "events.jsonl"); fileExists(p) {
		t.Logf("Falco corpus: %s (shared dataset)", p)
		return p
	}
	p := repoFile("testdata", "attack", "falco.jsonl")
	t.Logf("Falco corpus: %s (shared dataset absent)", p)
	return p
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir()
}

// readLines returns the non-blank lines of a file.
func readLines(t testing.TB, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		if len(sc.Bytes()) > 0 {
			out = append(out, slices.Clone(sc.Bytes()))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// collect drains a sequence, failing on any error.
func collect(t testing.TB, seq iter.Seq2[*event.Event, error]) []*event.Event {
	t.Helper()
	var out []*event.Event
	for ev, err := range seq {
		if err != nil {
			t.Fatalf("event %d: %v", len(out)+1, err)
		}
		out = append(out, ev)
	}
	return out
}

// analyze runs the pipeline (what an investigation runs) over events.
func analyze(t testing.TB, seq iter.Seq2[*event.Event, error]) []*finding.Finding {
	t.Helper()
	var out []*finding.Finding
	for f, err := range pipeline.Run(context.Background(), seq, pipeline.Options{}, nil) {
		if err != nil {
			t.Fatalf("pipeline: %v", err)
		}
		out = append(out, f)
	}
	return out
}

// fileFindings analyses a file with the file source.
func fileFindings(t testing.TB, path string) []*finding.Finding {
	t.Helper()
	return analyze(t, source.ReadFiles(context.Background(), []string{path}, source.Options{}))
}

// comparable renders findings as JSON lines; withIDs false blanks what
// depends on how an input names its records (finding and record ids, line
// numbers), which differs between a file and a log store when records
// carry no id of their own.
func comparable(t testing.TB, fs []*finding.Finding, withIDs bool) []string {
	t.Helper()
	out := make([]string, 0, len(fs))
	for _, f := range fs {
		c := *f
		if !withIDs {
			c.ID = ""
			c.Evidence = slices.Clone(f.Evidence)
			for i := range c.Evidence {
				c.Evidence[i].RecordID = ""
				c.Evidence[i].Line = 0
			}
		}
		b, err := json.Marshal(&c)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

// sameFindings fails unless got and want are the same findings in the
// same order.
func sameFindings(t testing.TB, what string, got, want []*finding.Finding, withIDs bool) {
	t.Helper()
	if len(want) == 0 {
		t.Fatalf("%s: the file source finds nothing: the comparison would prove nothing", what)
	}
	g, w := comparable(t, got, withIDs), comparable(t, want, withIDs)
	if !slices.Equal(g, w) {
		t.Errorf("%s: %d findings, the file source %d", what, len(g), len(w))
		for i := range max(len(g), len(w)) {
			var a, b string
			if i < len(g) {
				a = g[i]
			}
			if i < len(w) {
				b = w[i]
			}
			if a != b {
				t.Errorf("finding %d:\n got  %s\n want %s", i, a, b)
				break
			}
		}
	}
}
