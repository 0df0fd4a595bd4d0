package demo

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The embedded corpus must be a byte-for-byte copy of its testdata/attack
// files. After regenerating the corpora, refresh it with:
//
//	cp testdata/attack/{auth.log,evtx.jsonl,falco.jsonl} internal/demo/corpus/
func TestCorpusMatchesTestdata(t *testing.T) {
	dir := filepath.Join("..", "..", "testdata", "attack")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, e := range entries {
		if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), "timesketch-") {
			want = append(want, e.Name())
		}
	}
	if got := Files(); !slices.Equal(got, want) {
		t.Fatalf("embedded files %v, testdata/attack has %v", got, want)
	}
	for _, name := range want {
		disk, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		emb, err := fs.ReadFile(FS, name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(disk, emb) {
			t.Errorf("%s: embedded copy differs from testdata/attack (run: cp testdata/attack/* internal/demo/corpus/)", name)
		}
	}
}
