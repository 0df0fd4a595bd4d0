package origin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loupe-sec/loupe/internal/source"
)

func TestSpecValidate(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ok := []Spec{
		{Kind: KindFile, Path: "a.jsonl"},
		{Kind: KindEVTX, Paths: []string{"a.evtx", "b.evtx"}},
		{Kind: KindLoki, URL: "http://loki:3100", Query: `{job="falco"}`, Start: t0},
		{Kind: KindVictoriaLogs, URL: "https://vl:9428/"},
		{Kind: KindOpenSearch, URL: "https://os:9200", Index: "logs-*", Slices: 4, Query: `{"match_all":{}}`},
		{Kind: KindElasticsearch, URL: "http://es:9200", Index: "idx", Query: "user:root"},
	}
	for _, s := range ok {
		if err := s.Validate(); err != nil {
			t.Errorf("%v: %v", s, err)
		}
	}
	bad := []struct {
		spec  Spec
		field string
	}{
		{Spec{}, "kind: missing"},
		{Spec{Kind: "splunk", URL: "http://x"}, `kind: unknown "splunk"`},
		{Spec{Kind: KindFile}, "path:"},
		{Spec{Kind: KindFile, Paths: []string{" "}}, "paths: file 1 has an empty path"},
		{Spec{Kind: KindFile, Path: "a", URL: "http://x"}, "kind: a file source takes no url"},
		{Spec{Kind: KindFile, Path: "a", Password: "p"}, "credentials"},
		{Spec{Kind: KindFile, Path: "a", Slices: 2}, "slices:"},
		{Spec{Kind: KindVictoriaLogs, URL: "http://x", Index: "i"}, "index:"},
		{Spec{Kind: KindVictoriaLogs, URL: "http://x", Tenant: "t"}, "tenant:"},
		{Spec{Kind: KindLoki, URL: "http://x", Query: "{a=\"b\"}", Start: t0, TimeField: "ts"}, "slices:"},
		{Spec{Kind: KindLoki, URL: "http://l", Start: t0}, "query:"},
		{Spec{Kind: KindLoki, URL: "http://l", Query: "{a=\"b\"}"}, "start:"},
		{Spec{Kind: KindLoki, URL: "http://l", Query: "{a=\"b\"}", Start: t0, End: t0}, "end:"},
		{Spec{Kind: KindVictoriaLogs}, "url: a victorialogs source needs"},
		{Spec{Kind: KindVictoriaLogs, URL: "ftp://x"}, `url: scheme "ftp"`},
		{Spec{Kind: KindVictoriaLogs, URL: "http://u:p@x"}, "url: credentials belong"},
		{Spec{Kind: KindVictoriaLogs, URL: "http://x?a=b"}, "url: a base URL takes no query"},
		{Spec{Kind: KindVictoriaLogs, URL: "http://x", Path: "f"}, "path:"},
		{Spec{Kind: KindVictoriaLogs, URL: "http://x", Password: "p"}, "username:"},
		{Spec{Kind: KindOpenSearch, URL: "http://x"}, "index:"},
		{Spec{Kind: KindOpenSearch, URL: "http://x", Index: "a/../b"}, "index:"},
		{Spec{Kind: KindOpenSearch, URL: "http://x", Index: "a", Query: "{oops"}, "query:"},
		{Spec{Kind: KindOpenSearch, URL: "http://x", Index: "a", Slices: MaxSlices + 1}, "slices:"},
		{Spec{Kind: KindOpenSearch, URL: "http://x", Index: "a", PageSize: -1}, "page_size:"},
		{Spec{Kind: KindOpenSearch, URL: "http://x", Index: "a", MaxLineBytes: -1}, "max_line_bytes:"},
	}
	for _, c := range bad {
		err := c.spec.Validate()
		if !errors.Is(err, ErrSpec) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%v: error %v, want one about %q", c.spec, err, c.field)
		}
		if _, oerr := Open(context.Background(), c.spec); !errors.Is(oerr, ErrSpec) {
			t.Errorf("Open(%v) = %v", c.spec, oerr)
		}
	}
}

func TestParseSpec(t *testing.T) {
	s, err := ParseSpec([]byte(`{"kind":"loki","url":"http://loki:3100","query":"{job=\"falco\"}",
		"start":"2026-01-01T00:00:00Z","end":"2026-01-02T00:00:00Z","page_size":500,"tenant":"t1"}`))
	if err != nil || s.Kind != KindLoki || s.PageSize != 500 || s.Tenant != "t1" || !s.End.Equal(s.Start.Add(24*time.Hour)) {
		t.Fatalf("%+v, %v", s, err)
	}
	for _, in := range []string{
		`{"kind":"file","path":"a","colour":"red"}`,            // unknown field
		`{"kind":"file","path":"a"} {}`,                        // trailing data
		`{"kind":"file","path":7}`,                             // wrong type
		`{"kind":"loki","url":"http://l","query":"{a=\"b\"}"}`, // no start
	} {
		if _, err := ParseSpec([]byte(in)); !errors.Is(err, ErrSpec) {
			t.Errorf("%s: %v", in, err)
		}
	}
}

// A Spec in a log line or printed never shows its password.
func TestSpecNeverLogsPassword(t *testing.T) {
	s := Spec{Kind: KindOpenSearch, URL: "https://os:9200", Index: "i", Username: "analyst", Password: "s3cret-pw"}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("open", "source", s)
	out := buf.String() + fmt.Sprint(s) + fmt.Sprintf("%v %+v %s", s, s, s)
	if strings.Contains(out, "s3cret-pw") || !strings.Contains(out, "analyst") || !strings.Contains(out, "[REDACTED]") {
		t.Errorf("logged: %s", out)
	}
}

// A file origin yields exactly what source.ReadFiles yields.
func TestFileOriginIsTheFileSource(t *testing.T) {
	paths := []string{repoFile("testdata", "attack", "auth.log"), repoFile("testdata", "attack", "evtx.jsonl")}
	seq, err := Open(context.Background(), Spec{Kind: KindFile, Paths: paths})
	if err != nil {
		t.Fatal(err)
	}
	got := collect(t, seq)
	want := collect(t, source.ReadFiles(context.Background(), paths, source.Options{}))
	if len(got) != len(want) || len(got) == 0 {
		t.Fatalf("%d events, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i].ID != want[i].ID || !bytes.Equal(got[i].Raw, want[i].Raw) || got[i].Line != want[i].Line {
			t.Fatalf("event %d differs", i+1)
		}
	}
	// A time range keeps the events inside it.
	start, end := want[10].Time, want[40].Time
	seq, err = Open(context.Background(), Spec{Kind: KindFile, Paths: paths, Start: start, End: end})
	if err != nil {
		t.Fatal(err)
	}
	var in []string
	for _, ev := range want {
		if !ev.Time.Before(start) && ev.Time.Before(end) {
			in = append(in, ev.ID)
		}
	}
	var ranged []string
	for _, ev := range collect(t, seq) {
		ranged = append(ranged, ev.ID)
	}
	if len(in) == 0 || len(in) == len(want) || !slices.Equal(ranged, in) {
		t.Errorf("range: %d events, want %d of %d", len(ranged), len(in), len(want))
	}

	if _, err := Open(context.Background(), Spec{Kind: KindFile, Path: filepath.Join(t.TempDir(), "missing.jsonl")}); !errors.Is(err, ErrSpec) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := Open(context.Background(), Spec{Kind: KindFile, Path: t.TempDir()}); !errors.Is(err, ErrSpec) {
		t.Errorf("directory: %v", err)
	}
}

func TestWithFileRoot(t *testing.T) {
	root := t.TempDir()
	inside := filepath.Join(root, "in.jsonl")
	os.WriteFile(inside, []byte(`{"message":"hello","timestamp":"2026-01-01T00:00:00Z"}`+"\n"), 0o644)
	outside := filepath.Join(t.TempDir(), "out.jsonl")
	os.WriteFile(outside, []byte(`{"message":"secret"}`+"\n"), 0o644)
	link := filepath.Join(root, "link.jsonl")
	if err := os.Symlink(outside, link); err != nil {
		t.Skip(err)
	}
	if _, err := Open(context.Background(), Spec{Kind: KindFile, Path: inside}, WithFileRoot(root)); err != nil {
		t.Errorf("inside: %v", err)
	}
	for _, p := range []string{outside, link, filepath.Join(root, "..", filepath.Base(filepath.Dir(outside)), "out.jsonl")} {
		if _, err := Open(context.Background(), Spec{Kind: KindFile, Path: p}, WithFileRoot(root)); !errors.Is(err, ErrSpec) || !strings.Contains(err.Error(), "outside") {
			t.Errorf("%s: %v", p, err)
		}
	}
}

// velocidexEVTX is a test file shipped by www.velocidex.com/golang/evtx
// v0.2.0 (Apache-2.0), read in place from where the go command keeps the
// module.
func velocidexEVTX(t testing.TB, name string) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "www.velocidex.com/golang/evtx").Output()
	p := filepath.Join(strings.TrimSpace(string(out)), "testdata", name)
	if err != nil || !fileExists(p) {
		t.Skipf("%s not found (%v): run `go mod download www.velocidex.com/golang/evtx`", name, err)
	}
	return p
}

// An investigation over a binary .evtx: the Security log clear (1102) and
// the failed-logon burst are found, pointing at their records.
func TestEVTXOriginInvestigation(t *testing.T) {
	path := velocidexEVTX(t, "Security.evtx")
	seq, err := Open(context.Background(), Spec{Kind: KindEVTX, Path: path})
	if err != nil {
		t.Fatal(err)
	}
	fs := analyze(t, seq)
	var rules []string
	cleared := false
	for _, f := range fs {
		rules = append(rules, f.Rule.ID)
		if f.Tactic == "Defense Evasion" && len(f.Evidence) > 0 && f.Evidence[0].RecordID == "TestComputer:Security:31878" && f.Host == "TestComputer" {
			cleared = true
		}
	}
	if !cleared || !slices.Contains(rules, "loupe-brute-force") {
		t.Errorf("findings %v: want the 1102 log clear on record 31878 and the 4625 burst", rules)
	}
}
