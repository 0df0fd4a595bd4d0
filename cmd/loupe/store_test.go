package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loupe-sec/loupe/internal/source"
	"github.com/loupe-sec/loupe/internal/store"
)

// TestMain keeps every test of the command away from the user's data
// directory: serve and analyze --store open their default store there.
func TestMain(m *testing.M) {
	if source.RunEVTXWorker() { // this binary is the EVTX worker of analyze and serve
		return
	}
	dir, err := os.MkdirTemp("", "loupe-cmd-data-")
	if err != nil {
		panic(err)
	}
	os.Setenv("LOUPE_DATA_DIR", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestJoinStoreDSN(t *testing.T) {
	for _, c := range []struct{ in, want []string }{
		{[]string{"--store", "postgres://u@h/db", "--format", "json", "a.log"}, []string{"--store=postgres://u@h/db", "--format", "json", "a.log"}},
		{[]string{"-store", "sqlite:/tmp/x.db", "a.log"}, []string{"-store=sqlite:/tmp/x.db", "a.log"}},
		{[]string{"--store", "a.log"}, []string{"--store", "a.log"}},
		{[]string{"--", "--store", "postgres://x"}, []string{"--", "--store", "postgres://x"}},
	} {
		if got := joinStoreDSN(c.in); !slices.Equal(got, c.want) {
			t.Errorf("joinStoreDSN(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestAnalyzeStore(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "runs.db")
	in := filepath.Join("..", "..", "testdata", "attack", "auth.log")
	var plain, stored, errOut syncBuffer
	if code := run([]string{"analyze", "--quiet", "--format", "json", in}, strings.NewReader(""), &plain, &errOut); code != exitOK {
		t.Fatalf("plain run: exit %d: %s", code, errOut.String())
	}
	errOut = syncBuffer{}
	if code := run([]string{"analyze", "--quiet", "--store", "sqlite:" + db, "--format", "json", in}, strings.NewReader(""), &stored, &errOut); code != exitOK {
		t.Fatalf("--store run: exit %d: %s", code, errOut.String())
	}
	m := regexp.MustCompile(`investigation ([0-9a-f]{32}) \(done\) stored in sqlite:`).FindStringSubmatch(errOut.String())
	if m == nil {
		t.Fatalf("no investigation id on stderr: %s", errOut.String())
	}
	var report struct {
		Findings []struct{ ID string }
	}
	if err := json.Unmarshal([]byte(stored.String()), &report); err != nil || len(report.Findings) == 0 {
		t.Fatalf("report with --store: %v", err)
	}
	var before struct{ Findings []struct{ ID string } }
	json.Unmarshal([]byte(plain.String()), &before)
	if len(before.Findings) != len(report.Findings) {
		t.Fatalf("--store changed the report: %d findings, %d without", len(report.Findings), len(before.Findings))
	}

	ctx := context.Background()
	s, err := store.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	inv, err := s.GetInvestigation(ctx, m[1])
	if err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(in)
	if inv.Status != store.Done || inv.Source.Kind != "file" || !strings.Contains(string(inv.Source.Params), abs) ||
		!strings.Contains(string(inv.Options), `"origin":"cli"`) || inv.Events == 0 {
		t.Fatalf("stored investigation %+v", inv)
	}
	got, _, err := s.Findings(ctx, inv.ID, store.Filter{}, store.Page{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, f := range report.Findings {
		want[f.ID] = true
	}
	if len(got) != len(want) {
		t.Fatalf("%d findings stored, the report has %d distinct", len(got), len(want))
	}
	for _, f := range got {
		if !want[f.ID] {
			t.Errorf("stored finding %s is not in the report", f.ID)
		}
	}
}

// serve opens the store in the data directory, runs uploaded
// investigations and serves their exports.
func TestServeInvestigations(t *testing.T) {
	data := t.TempDir()
	t.Setenv("LOUPE_DATA_DIR", data)
	var errOut, out syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run([]string{"serve", "--listen", "127.0.0.1:0", "--log-format", "text"}, strings.NewReader(""), &out, &errOut)
	}()
	addr := waitListening(t, &errOut, done)
	body, _ := os.Open(filepath.Join("..", "..", "testdata", "attack", "falco.jsonl"))
	defer body.Close()
	resp, err := http.Post("http://"+addr+"/api/investigations?name=falco", "application/x-ndjson", body)
	if err != nil {
		t.Fatal(err)
	}
	var inv struct{ ID, Status string }
	json.NewDecoder(resp.Body).Decode(&inv)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || inv.ID == "" {
		t.Fatalf("upload: %s %+v\n%s", resp.Status, inv, errOut.String())
	}
	for deadline := time.Now().Add(20 * time.Second); inv.Status != "done"; {
		if time.Now().After(deadline) || inv.Status == "failed" {
			t.Fatalf("investigation %s is %s", inv.ID, inv.Status)
		}
		time.Sleep(10 * time.Millisecond)
		resp, err := http.Get("http://" + addr + "/api/investigations/" + inv.ID)
		if err != nil {
			t.Fatal(err)
		}
		json.NewDecoder(resp.Body).Decode(&inv)
		resp.Body.Close()
	}
	resp, err = http.Get("http://" + addr + "/api/investigations/" + inv.ID + "/export?format=html")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "Terminal shell in container") {
		t.Fatalf("html export: %s\n%.300s", resp.Status, page)
	}
	stopServe(t, &errOut, done)
	if _, err := os.Stat(filepath.Join(data, "loupe.db")); err != nil {
		t.Errorf("no store in the data directory: %v", err)
	}
	if !strings.Contains(errOut.String(), "investigations enabled") {
		t.Errorf("serve did not log the store: %s", errOut.String())
	}
}
