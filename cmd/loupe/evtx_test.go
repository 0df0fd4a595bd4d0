package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loupe-sec/loupe/internal/source"
	"github.com/loupe-sec/loupe/internal/source/evtxtest"
)

// A hostile .evtx (valid checksums, a record whose count makes the parser
// allocate without bound) does not take analyze down: its chunk is one
// error naming the file and the limit, and the next chunk is analysed.
func TestAnalyzeHostileEVTX(t *testing.T) {
	bomb := filepath.Join(t.TempDir(), "bomb.evtx")
	if err := os.WriteFile(bomb, evtxtest.Bomb(t), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { source.IsolateEVTX(nil) })
	code, out, errOut := loupe(t, "", "analyze", "--format", "json", bomb)
	if code != exitOK || !strings.Contains(errOut, "bomb.evtx") || !strings.Contains(errOut, "memory limit") {
		t.Fatalf("exit %d\nstderr: %s", code, errOut)
	}
	if !strings.Contains(out, `"events": 1`) && !strings.Contains(out, `"events":1`) {
		t.Errorf("the good chunk after the hostile one was not analysed: %.400s", out)
	}
}
