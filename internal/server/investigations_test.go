package server

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"github.com/loupe-sec/loupe/internal/store/pgtest"
	"io"
	"iter"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loupe-sec/loupe/internal/config"
	"github.com/loupe-sec/loupe/internal/event"
	"github.com/loupe-sec/loupe/internal/finding"
	"github.com/loupe-sec/loupe/internal/jobs"
	"github.com/loupe-sec/loupe/internal/source"
	"github.com/loupe-sec/loupe/internal/store"
)

// The investigation API runs against the real store: SQLite in a temp
// dir, and PostgreSQL when LOUPE_PG_DSN names a server (each test its own
// schema).

type invBackend struct {
	name string
	dsn  func(t *testing.T, dir string) string
}

var invBackends = []invBackend{
	{"sqlite", func(t *testing.T, dir string) string { return filepath.Join(dir, "loupe.db") }},
	{"postgres", pgSchemaDSN},
}

func pgSchemaDSN(t *testing.T, _ string) string { return pgtest.DSN(t, "loupe_api") }

func eachInvBackend(t *testing.T, test func(t *testing.T, dsn string)) {
	for _, b := range invBackends {
		t.Run(b.name, func(t *testing.T) { test(t, b.dsn(t, t.TempDir())) })
	}
}

type invServer struct {
	*httptest.Server
	store *store.Store
	jobs  *jobs.Manager
	root  string // file_roots
	data  string // data dir
	token string
}

// hostile is a Falco alert whose text, host and container carry markup.
const hostile = `{"hostname":"<img src=x onerror=alert(1)>","output":"12:00:00.000000000Z: Notice A shell was spawned in a container with an attached terminal (user=root process=bash container_name=<script>alert(\"pwned\")</script>)","output_fields":{"container.id":"abc123","container.name":"<script>alert(\"pwned\")</script>","proc.name":"bash","user.name":"root"},"priority":"Notice","rule":"Terminal shell in container","source":"syscall","tags":["container","mitre_execution","T1059"],"time":"2024-03-19T23:59:00Z"}`

func newInvServer(t *testing.T, dsn string, tweak func(*config.Config, *jobs.Config)) *invServer {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	root, data := t.TempDir(), t.TempDir()
	// The attack corpora plus one hostile alert, under the file root.
	var corpus bytes.Buffer
	for _, name := range []string{"auth.log", "falco.jsonl", "evtx.jsonl"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "attack", name))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(root, name), b, 0o600)
		corpus.Write(b)
	}
	os.WriteFile(filepath.Join(root, "hostile.jsonl"), []byte(hostile+"\n"), 0o600)
	cfg := config.Default()
	jc := jobs.Config{Store: st, CommitEvery: 5 * time.Millisecond}
	if tweak != nil {
		tweak(&cfg, &jc)
	}
	m, err := jobs.New(ctx, jc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	s := New(cfg, slog.New(slog.DiscardHandler))
	if err := s.SetInvestigations(st, m, data, []string{root}); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	return &invServer{Server: hs, store: st, jobs: m, root: root, data: data, token: cfg.Token}
}

func (s *invServer) do(t *testing.T, method, path, ctype string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

type invJSON struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Status string `json:"status"`
	Error  string `json:"error"`
	Source struct {
		Kind   string          `json:"kind"`
		Params json.RawMessage `json:"params"`
	} `json:"source"`
	Progress struct {
		Events          int64   `json:"events"`
		Findings        int64   `json:"findings"`
		EventsPerSecond float64 `json:"events_per_second"`
		Live            bool    `json:"live"`
	} `json:"progress"`
	Links struct {
		Self, Findings, Export, Cancel string
	} `json:"links"`
}

func (s *invServer) create(t *testing.T, body any) invJSON {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, out := s.do(t, "POST", "/api/investigations", "application/json", bytes.NewReader(b))
	return s.accepted(t, resp, out)
}

func (s *invServer) accepted(t *testing.T, resp *http.Response, out []byte) invJSON {
	t.Helper()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("create: %d %s", resp.StatusCode, out)
	}
	var inv invJSON
	if err := json.Unmarshal(out, &inv); err != nil {
		t.Fatal(err)
	}
	if loc := resp.Header.Get("Location"); loc != "/api/investigations/"+inv.ID || inv.Links.Self != loc {
		t.Fatalf("Location %q, self %q, id %s", loc, inv.Links.Self, inv.ID)
	}
	return inv
}

// poll gets the investigation until it has ended.
func (s *invServer) poll(t *testing.T, id string) invJSON {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, out := s.do(t, "GET", "/api/investigations/"+id, "", nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("get: %d %s", resp.StatusCode, out)
		}
		var inv invJSON
		if err := json.Unmarshal(out, &inv); err != nil {
			t.Fatal(err)
		}
		switch inv.Status {
		case "done", "failed", "cancelled":
			return inv
		}
		if time.Now().After(deadline) {
			t.Fatalf("investigation %s still %s after 30 s", id, inv.Status)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type findingJSON struct {
	ID         string              `json:"id"`
	Tactic     string              `json:"tactic"`
	TacticID   string              `json:"tactic_id"`
	Priority   string              `json:"priority"`
	Host       string              `json:"host"`
	Conclusion string              `json:"conclusion"`
	First      string              `json:"first"`
	Last       string              `json:"last"`
	Rule       struct{ ID string } `json:"rule"`
	Source     string              `json:"source"`
	Provenance *struct {
		Provider, Model string
	} `json:"provenance"`
	Evidence []struct {
		RecordID string `json:"record_id"`
	} `json:"evidence"`
}

type findingsPage struct {
	Findings   []findingJSON `json:"findings"`
	NextCursor string        `json:"next_cursor"`
	Next       string        `json:"next"`
}

func (s *invServer) findings(t *testing.T, id, query string) findingsPage {
	t.Helper()
	resp, out := s.do(t, "GET", "/api/investigations/"+id+"/findings?"+query, "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("findings?%s: %d %s", query, resp.StatusCode, out)
	}
	var p findingsPage
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// all walks every page of a listing with limit per page.
func (s *invServer) all(t *testing.T, id, query string, limit int) []findingJSON {
	t.Helper()
	var out []findingJSON
	seen := map[string]bool{}
	q, _ := url.ParseQuery(query)
	q.Set("limit", fmt.Sprint(limit))
	for {
		p := s.findings(t, id, q.Encode())
		if len(p.Findings) > limit {
			t.Fatalf("page of %d findings, limit %d", len(p.Findings), limit)
		}
		for _, f := range p.Findings {
			if seen[f.ID] {
				t.Fatalf("finding %s on two pages", f.ID)
			}
			seen[f.ID] = true
			out = append(out, f)
		}
		if p.NextCursor == "" {
			return out
		}
		q.Set("cursor", p.NextCursor)
	}
}

func TestInvestigationLifecycle(t *testing.T) {
	eachInvBackend(t, func(t *testing.T, dsn string) {
		s := newInvServer(t, dsn, nil)
		paths := []string{filepath.Join(s.root, "auth.log"), filepath.Join(s.root, "falco.jsonl"),
			filepath.Join(s.root, "evtx.jsonl"), filepath.Join(s.root, "hostile.jsonl")}
		inv := s.create(t, map[string]any{
			"name":    "attack corpus",
			"source":  map[string]any{"kind": "file", "paths": paths},
			"options": map[string]any{"max_evidence": 3},
		})
		if inv.Status != "queued" || inv.Name != "attack corpus" || inv.Links.Cancel == "" {
			t.Fatalf("created %+v", inv)
		}
		done := s.poll(t, inv.ID)
		if done.Status != "done" || done.Progress.Findings == 0 || done.Progress.Events < 200 || done.Links.Cancel != "" {
			t.Fatalf("ended %+v", done)
		}

		// Listing.
		resp, out := s.do(t, "GET", "/api/investigations", "", nil)
		var list struct{ Investigations []invJSON }
		if resp.StatusCode != 200 || json.Unmarshal(out, &list) != nil || len(list.Investigations) != 1 || list.Investigations[0].ID != inv.ID {
			t.Fatalf("list: %d %s", resp.StatusCode, out)
		}

		// Pagination: small pages give every finding once, in order.
		all := s.all(t, inv.ID, "", 4)
		if int64(len(all)) != done.Progress.Findings {
			t.Fatalf("pages hold %d findings, investigation says %d", len(all), done.Progress.Findings)
		}
		big := s.findings(t, inv.ID, "limit=1000")
		for i := range all {
			if all[i].ID != big.Findings[i].ID {
				t.Fatalf("paged order differs at %d: %s vs %s", i, all[i].ID, big.Findings[i].ID)
			}
		}
		for _, f := range all {
			if len(f.Evidence) > 3 {
				t.Fatalf("finding %s has %d evidence events; options said 3", f.ID, len(f.Evidence))
			}
		}

		// Filters: each one against the full list.
		pick := all[len(all)/2]
		check := func(query string, keep func(findingJSON) bool) {
			t.Helper()
			got := s.all(t, inv.ID, query, 1000)
			var want []string
			for _, f := range all {
				if keep(f) {
					want = append(want, f.ID)
				}
			}
			var ids []string
			for _, f := range got {
				ids = append(ids, f.ID)
			}
			if len(want) == 0 || strings.Join(ids, ",") != strings.Join(want, ",") {
				t.Errorf("?%s: got %d findings %v, want %d %v", query, len(ids), ids, len(want), want)
			}
		}
		check("tactic="+url.QueryEscape(pick.Tactic), func(f findingJSON) bool { return f.Tactic == pick.Tactic })
		check("tactic="+pick.TacticID, func(f findingJSON) bool { return f.TacticID == pick.TacticID })
		check("priority=high", func(f findingJSON) bool { return f.Priority == "high" || f.Priority == "critical" })
		check("rule="+url.QueryEscape(pick.Rule.ID), func(f findingJSON) bool { return f.Rule.ID == pick.Rule.ID })
		check("host="+url.QueryEscape(pick.Host), func(f findingJSON) bool { return f.Host == pick.Host })
		check("q=BRUTE", func(f findingJSON) bool {
			return strings.Contains(strings.ToLower(f.Conclusion), "brute") || strings.Contains(f.Rule.ID, "brute")
		})
		at := func(s string) time.Time { t, _ := time.Parse(time.RFC3339Nano, s); return t }
		cut := at(pick.First)
		if cut.IsZero() {
			t.Fatalf("finding %s has no first time", pick.ID)
		}
		check("to="+cut.Format(time.RFC3339Nano), func(f findingJSON) bool { return f.First != "" && !at(f.First).After(cut) })
		check("from="+cut.Format(time.RFC3339Nano)+"&priority=medium", func(f findingJSON) bool {
			return f.Last != "" && !at(f.Last).Before(cut) && (f.Priority == "medium" || f.Priority == "high" || f.Priority == "critical")
		})
		if p := s.findings(t, inv.ID, "host=no-such-host"); len(p.Findings) != 0 || p.NextCursor != "" {
			t.Errorf("unknown host: %+v", p)
		}
	})
}

func TestInvestigationExports(t *testing.T) {
	eachInvBackend(t, func(t *testing.T, dsn string) {
		s := newInvServer(t, dsn, nil)
		inv := s.create(t, map[string]any{"source": map[string]any{"kind": "file", "params": map[string]any{
			"paths": []string{filepath.Join(s.root, "falco.jsonl"), filepath.Join(s.root, "hostile.jsonl")}}}})
		done := s.poll(t, inv.ID)
		if done.Status != "done" || done.Progress.Findings < 2 {
			t.Fatalf("ended %+v", done)
		}
		if done.Name != "falco.jsonl, hostile.jsonl" {
			t.Errorf("default name %q", done.Name)
		}
		n := int(done.Progress.Findings)
		get := func(format string) (*http.Response, string) {
			resp, out := s.do(t, "GET", "/api/investigations/"+inv.ID+"/export?format="+format, "", nil)
			if resp.StatusCode != 200 {
				t.Fatalf("export %s: %d %s", format, resp.StatusCode, out)
			}
			return resp, string(out)
		}

		resp, nd := get("ndjson")
		lines := strings.Split(strings.TrimSpace(nd), "\n")
		if resp.Header.Get("Content-Type") != "application/x-ndjson" || len(lines) != n {
			t.Fatalf("ndjson: %s, %d lines for %d findings", resp.Header.Get("Content-Type"), len(lines), n)
		}
		for _, l := range lines {
			var f findingJSON
			if err := json.Unmarshal([]byte(l), &f); err != nil || f.ID == "" {
				t.Fatalf("ndjson line %q: %v", l, err)
			}
		}

		_, js := get("json")
		var doc struct {
			Investigation invJSON
			Findings      []findingJSON
		}
		if err := json.Unmarshal([]byte(js), &doc); err != nil || doc.Investigation.ID != inv.ID || len(doc.Findings) != n {
			t.Fatalf("json export: %v, %d findings\n%.300s", err, len(doc.Findings), js)
		}

		_, md := get("markdown")
		if !strings.HasPrefix(md, "# loupe report") || !strings.Contains(md, "Execution") || strings.Contains(md, "<script>") {
			t.Fatalf("markdown export:\n%.500s", md)
		}

		resp, page := get("html")
		if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Fatalf("html content type %q", ct)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
			t.Fatalf("html CSP %q", csp)
		}
		// The hostile values are in the report, escaped; no raw markup,
		// no script of any kind, no external asset.
		for _, raw := range []string{"<script", "<img", "<iframe", "javascript:"} {
			if strings.Contains(strings.ToLower(page), raw) {
				t.Errorf("html export contains raw %q", raw)
			}
		}
		for _, esc := range []string{"&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;", "&lt;img src=x onerror=alert(1)&gt;"} {
			if !strings.Contains(page, esc) {
				t.Errorf("html export lacks the escaped hostile value %s", esc)
			}
		}
		for _, external := range []string{`<link`, `src="http`, `@import`, `url(`} {
			if strings.Contains(page, external) {
				t.Errorf("html export refers to an external asset (%s)", external)
			}
		}
		if strings.Count(page, `<tr class="p-`) != n || !strings.Contains(page, "<style>") || !strings.HasSuffix(strings.TrimSpace(page), "</html>") {
			t.Errorf("html export: %d finding rows for %d findings, or no inline style / not closed", strings.Count(page, `<tr class="p-`), n)
		}

		// A model's note on a finding is in the report, escaped.
		noted := &finding.Finding{ID: "noted", Question: "q", Conclusion: "c", Source: "rule", Priority: finding.Low,
			LLM: &finding.LLM{Provider: "ollama", Model: "tiny", Note: "see also <b>whoami</b>"}}
		if err := s.store.AddFindings(context.Background(), inv.ID, []*finding.Finding{noted}); err != nil {
			t.Fatal(err)
		}
		if _, page := get("html"); !strings.Contains(page, `<p class="llm">Model (ollama tiny): see also &lt;b&gt;whoami&lt;/b&gt;</p>`) {
			t.Error("html export lacks the model's note")
		}

		// Exports take the listing's filters.
		_, only := get("ndjson&priority=critical")
		for _, l := range strings.Split(strings.TrimSpace(only), "\n") {
			if l != "" && !strings.Contains(l, `"priority":"critical"`) {
				t.Errorf("filtered export has %s", l)
			}
		}
		if resp, out := s.do(t, "GET", "/api/investigations/"+inv.ID+"/export?format=pdf", "", nil); resp.StatusCode != 400 ||
			!strings.Contains(string(out), "not ndjson, json, markdown or html") {
			t.Errorf("export format pdf: %d %s", resp.StatusCode, out)
		}
	})
}

func TestInvestigationUploads(t *testing.T) {
	s := newInvServer(t, filepath.Join(t.TempDir(), "loupe.db"), func(c *config.Config, _ *jobs.Config) { c.MaxUploadBytes = 64 << 10 })
	auth, _ := os.ReadFile(filepath.Join(s.root, "auth.log"))
	falco, _ := os.ReadFile(filepath.Join(s.root, "falco.jsonl"))

	// Raw body, gzip, with the fields in the query.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(auth)
	zw.Close()
	resp, out := s.do(t, "POST", "/api/investigations?name=gz+upload&filename=auth.log.gz", "application/gzip", &gz)
	inv := s.accepted(t, resp, out)
	done := s.poll(t, inv.ID)
	if done.Status != "done" || done.Progress.Findings == 0 || done.Name != "gz upload" {
		t.Fatalf("gzip upload ended %+v", done)
	}
	var shown map[string]any
	json.Unmarshal(done.Source.Params, &shown)
	if fmt.Sprint(shown) != "map[names:[auth.log.gz] upload:true]" {
		t.Errorf("upload source shown as %s (spool paths must not show)", done.Source.Params)
	}
	if ents, _ := os.ReadDir(filepath.Join(s.data, "uploads")); len(ents) != 0 {
		t.Errorf("%d spooled files left after the investigation ended", len(ents))
	}

	// Multipart, two files read as one stream.
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("name", "two files")
	mw.WriteField("options", `{"max_evidence": 2}`)
	fw, _ := mw.CreateFormFile("file", "auth.log")
	fw.Write(auth)
	fw, _ = mw.CreateFormFile("file", "falco.jsonl")
	fw.Write(falco)
	mw.Close()
	resp, out = s.do(t, "POST", "/api/investigations", mw.FormDataContentType(), &body)
	inv = s.accepted(t, resp, out)
	done = s.poll(t, inv.ID)
	if done.Status != "done" || done.Name != "two files" {
		t.Fatalf("multipart upload ended %+v", done)
	}
	fs := s.all(t, inv.ID, "", 1000)
	var linux, falcoSeen bool
	for _, f := range fs {
		linux = linux || strings.HasPrefix(f.Rule.ID, "loupe-")
		falcoSeen = falcoSeen || strings.HasPrefix(f.Rule.ID, "falco:")
	}
	if !linux || !falcoSeen {
		t.Errorf("multipart findings miss a file: linux %v, falco %v", linux, falcoSeen)
	}

	// Too large: 413, nothing left behind (the finished jobs' uploads may
	// still be on their way out).
	before := map[string]bool{}
	ents, _ := os.ReadDir(filepath.Join(s.data, "uploads"))
	for _, e := range ents {
		before[e.Name()] = true
	}
	resp, out = s.do(t, "POST", "/api/investigations", "application/x-ndjson", bytes.NewReader(bytes.Repeat(falco, 20)))
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(out), "max_upload_bytes") {
		t.Fatalf("oversized upload: %d %s", resp.StatusCode, out)
	}
	ents, _ = os.ReadDir(filepath.Join(s.data, "uploads"))
	for _, e := range ents {
		if !before[e.Name()] {
			t.Errorf("oversized upload left %s", e.Name())
		}
	}
}

// slowOpener yields failed logons one every millisecond until cancelled.
func slowOpener(ctx context.Context, src store.Source) (iter.Seq2[*event.Event, error], error) {
	return func(yield func(*event.Event, error) bool) {
		base := time.Date(2024, 3, 19, 0, 0, 0, 0, time.UTC)
		for i := 0; ; i++ {
			if ctx.Err() != nil {
				yield(nil, ctx.Err())
				return
			}
			line := base.Add(time.Duration(i)*time.Second).Format(time.Stamp) + " h1 sshd[7]: Failed password for root from 198.51.100.9 port 22 ssh2"
			ev, err := source.ParseLine([]byte(line), int64(i+1), source.Options{Name: "slow"})
			if !yield(ev, err) {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}, nil
}

func TestInvestigationCancel(t *testing.T) {
	eachInvBackend(t, func(t *testing.T, dsn string) {
		s := newInvServer(t, dsn, func(_ *config.Config, jc *jobs.Config) {
			jc.Open = slowOpener
			jc.Check = func(src store.Source) error {
				if src.Kind != "slow" {
					return fmt.Errorf("%w %q", jobs.ErrUnknownKind, src.Kind)
				}
				return nil
			}
		})
		inv := s.create(t, map[string]any{"source": map[string]any{"kind": "slow"}})
		deadline := time.Now().Add(20 * time.Second)
		for {
			_, out := s.do(t, "GET", "/api/investigations/"+inv.ID, "", nil)
			var cur invJSON
			json.Unmarshal(out, &cur)
			if cur.Status == "running" && cur.Progress.Live && cur.Progress.Events > 0 && cur.Progress.EventsPerSecond > 0 && cur.Progress.Findings > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("job never showed live progress: %s", out)
			}
			time.Sleep(5 * time.Millisecond)
		}
		resp, out := s.do(t, "POST", "/api/investigations/"+inv.ID+"/cancel", "", nil)
		var got invJSON
		if resp.StatusCode != 200 || json.Unmarshal(out, &got) != nil || got.Status != "cancelled" || got.Error != "cancelled by request" || got.Progress.Findings == 0 {
			t.Fatalf("cancel: %d %s", resp.StatusCode, out)
		}
		if resp, out := s.do(t, "POST", "/api/investigations/"+inv.ID+"/cancel", "", nil); resp.StatusCode != http.StatusConflict {
			t.Fatalf("second cancel: %d %s", resp.StatusCode, out)
		}
	})
}

func TestInvestigationBadInput(t *testing.T) {
	s := newInvServer(t, filepath.Join(t.TempDir(), "loupe.db"), nil)
	outside := filepath.Join(t.TempDir(), "outside.log")
	os.WriteFile(outside, []byte("x\n"), 0o600)
	os.Symlink(outside, filepath.Join(s.root, "link.log"))
	inside := filepath.Join(s.root, "auth.log")
	for _, c := range []struct {
		name, ctype, body string
		status            int
		msg               string
	}{
		{"not JSON", "application/json", `{"source":`, 400, "request body"},
		{"unknown field", "application/json", `{"source":{"kind":"file","path":"` + inside + `"},"colour":"red"}`, 400, "unknown field"},
		{"no source", "application/json", `{"name":"x"}`, 400, "source is required"},
		{"no kind", "application/json", `{"source":{"path":"` + inside + `"}}`, 400, "source.kind"},
		{"unknown kind", "application/json", `{"source":{"kind":"ftp","url":"ftp://x"}}`, 400, "unknown \"ftp\""},
		{"loki without query", "application/json", `{"source":{"kind":"loki","url":"http://127.0.0.1:3100"},"from":"2024-03-19T00:00:00Z"}`, 400, "query"},
		{"loki with credentials in url", "application/json", `{"source":{"kind":"loki","url":"http://u:p@127.0.0.1:3100","query":"{job=\"x\"}","start":"2024-03-19T00:00:00Z"}}`, 400, "credentials"},
		{"evtx outside roots", "application/json", `{"source":{"kind":"evtx","path":"` + outside + `"}}`, 400, "outside the allowed file_roots"},
		{"relative path", "application/json", `{"source":{"kind":"file","path":"auth.log"}}`, 400, "not an absolute path"},
		{"outside roots", "application/json", `{"source":{"kind":"file","path":"` + outside + `"}}`, 400, "outside the allowed file_roots"},
		{"symlink out", "application/json", `{"source":{"kind":"file","path":"` + filepath.Join(s.root, "link.log") + `"}}`, 400, "outside the allowed file_roots"},
		{"traversal", "application/json", `{"source":{"kind":"file","path":"` + s.root + `/../` + filepath.Base(filepath.Dir(outside)) + `/outside.log"}}`, 400, "outside"},
		{"missing file", "application/json", `{"source":{"kind":"file","path":"` + s.root + `/nope.log"}}`, 400, "does not exist"},
		{"claims upload", "application/json", `{"source":{"kind":"file","path":"` + inside + `","upload":true}}`, 400, "set by the server"},
		{"bad time", "application/json", `{"source":{"kind":"file","path":"` + inside + `"},"from":"yesterday"}`, 400, "RFC 3339"},
		{"reversed range", "application/json", `{"source":{"kind":"file","path":"` + inside + `"},"from":"2024-03-02T00:00:00Z","to":"2024-03-01T00:00:00Z"}`, 400, "before it starts"},
		{"bad option", "application/json", `{"source":{"kind":"file","path":"` + inside + `"},"options":{"max_evidence":-1}}`, 400, "max_evidence"},
		{"options not object", "application/json", `{"source":{"kind":"file","path":"` + inside + `"},"options":[1]}`, 400, "options"},
		{"empty multipart", "multipart/form-data; boundary=xyz", "--xyz--\r\n", 400, "without a file part"},
		{"bad content type", "text/plain; charset", "x", 415, "Content-Type"},
	} {
		resp, out := s.do(t, "POST", "/api/investigations", c.ctype, strings.NewReader(c.body))
		var e struct {
			Error     string `json:"error"`
			RequestID string `json:"request_id"`
		}
		json.Unmarshal(out, &e)
		if resp.StatusCode != c.status || !strings.Contains(e.Error, c.msg) || e.RequestID == "" {
			t.Errorf("%s: %d %s; want %d with %q and a request id", c.name, resp.StatusCode, out, c.status, c.msg)
		}
	}
	if resp, out := s.do(t, "POST", "/api/investigations?options="+url.QueryEscape(`{"max_evidence":1000}`), "application/x-ndjson",
		strings.NewReader(`{"msg":"x"}`)); resp.StatusCode != 400 || !strings.Contains(string(out), "max_evidence") {
		t.Errorf("upload with a bad option: %d %s", resp.StatusCode, out)
	}
	req, _ := http.NewRequest("POST", s.URL+"/api/investigations", strings.NewReader("x\n"))
	req.Header.Set("Content-Encoding", "br")
	if resp, err := s.Client().Do(req); err != nil || resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("brotli upload: %v %v", resp.StatusCode, err)
	}
	resp, out := s.do(t, "POST", "/api/investigations", "application/json", strings.NewReader(`{"source":{"kind":"file","path":"`+inside+`"},"name":"`+strings.Repeat("x", 2<<20)+`"}`))
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("2 MiB JSON: %d %.200s", resp.StatusCode, out)
	}
	if list, _, _ := s.store.ListInvestigations(context.Background(), store.Page{}); len(list) != 0 {
		t.Errorf("rejected requests created %d investigations", len(list))
	}
	if ents, _ := os.ReadDir(filepath.Join(s.data, "uploads")); len(ents) != 0 {
		t.Errorf("rejected requests left %d uploads", len(ents))
	}

	inv := s.create(t, map[string]any{"source": map[string]any{"kind": "file", "path": inside}})
	s.poll(t, inv.ID)
	for _, c := range []struct {
		path   string
		status int
	}{
		{"/api/investigations/nope", 404},
		{"/api/investigations/nope/findings", 404},
		{"/api/investigations/nope/export", 404},
		{"/api/investigations/" + inv.ID + "/findings?limit=0", 400},
		{"/api/investigations/" + inv.ID + "/findings?limit=1001", 400},
		{"/api/investigations/" + inv.ID + "/findings?priority=urgent", 400},
		{"/api/investigations/" + inv.ID + "/findings?from=monday", 400},
		{"/api/investigations/" + inv.ID + "/findings?cursor=!!!", 400},
		{"/api/investigations/" + inv.ID + "/findings?cursor=" + "YWJj", 400},
		{"/api/investigations/" + inv.ID + "/export?format=html&to=soon", 400},
		{"/api/investigations?limit=x", 400},
		{"/api/investigations?cursor=bad", 400},
	} {
		if resp, out := s.do(t, "GET", c.path, "", nil); resp.StatusCode != c.status {
			t.Errorf("GET %s: %d %s, want %d", c.path, resp.StatusCode, out, c.status)
		}
	}
	if resp, out := s.do(t, "POST", "/api/investigations/nope/cancel", "", nil); resp.StatusCode != 404 {
		t.Errorf("cancel unknown: %d %s", resp.StatusCode, out)
	}
}

func TestInvestigationAuthAndDisabled(t *testing.T) {
	s := newInvServer(t, filepath.Join(t.TempDir(), "loupe.db"), func(c *config.Config, _ *jobs.Config) { c.Token = "t0ken" })
	for _, path := range []string{"/api/investigations", "/api/investigations/x", "/api/investigations/x/findings", "/api/investigations/x/export"} {
		resp, err := http.Get(s.URL + path)
		if err != nil || resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("GET %s without token: %v %v", path, resp.StatusCode, err)
		}
	}
	resp, err := http.Post(s.URL+"/api/investigations", "application/x-ndjson", strings.NewReader(hostile))
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("upload without token: %v %v", resp.StatusCode, err)
	}
	if ents, _ := os.ReadDir(filepath.Join(s.data, "uploads")); len(ents) != 0 {
		t.Error("an unauthorised upload was spooled")
	}
	if resp, _ := s.do(t, "GET", "/api/investigations", "", nil); resp.StatusCode != 200 {
		t.Errorf("with the token: %d", resp.StatusCode)
	}

	// A server without a store answers 503.
	plain := httptest.NewServer(New(config.Default(), nil).Handler())
	defer plain.Close()
	resp, err = http.Get(plain.URL + "/api/investigations")
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("no store: %v %v", resp.StatusCode, err)
	}
}

// Uploads and file sources keep the server's line limit.
func TestInvestigationLineLimit(t *testing.T) {
	s := newInvServer(t, filepath.Join(t.TempDir(), "loupe.db"), func(c *config.Config, _ *jobs.Config) { c.MaxLineBytes = 300 })
	auth, _ := os.ReadFile(filepath.Join(s.root, "auth.log"))
	falco, _ := os.ReadFile(filepath.Join(s.root, "falco.jsonl")) // every line is longer than 300 bytes
	resp, out := s.do(t, "POST", "/api/investigations", "application/x-ndjson", bytes.NewReader(append(append([]byte{}, auth...), falco...)))
	up := s.accepted(t, resp, out)
	file := s.create(t, map[string]any{"source": map[string]any{"kind": "file", "paths": []string{
		filepath.Join(s.root, "auth.log"), filepath.Join(s.root, "falco.jsonl")}, "max_line_bytes": 1 << 20}})
	for _, id := range []string{up.ID, file.ID} {
		if done := s.poll(t, id); done.Status != "done" {
			t.Fatalf("%s: %+v", id, done)
		}
		var linux, falcoSeen bool
		for _, f := range s.all(t, id, "", 1000) {
			linux = linux || strings.HasPrefix(f.Rule.ID, "loupe-")
			falcoSeen = falcoSeen || strings.HasPrefix(f.Rule.ID, "falco:")
		}
		if !linux || falcoSeen {
			t.Errorf("%s: linux findings %v, falco findings %v; want only the short lines analysed", id, linux, falcoSeen)
		}
	}
}

// Log store sources sent over the API may only name the configured stores:
// source_urls and the stack's loki.url / victorialogs.url, by scheme, host
// and path prefix.
func TestInvestigationSourceURLs(t *testing.T) {
	s := newInvServer(t, filepath.Join(t.TempDir(), "loupe.db"), func(c *config.Config, _ *jobs.Config) {
		c.SourceURLs = "http://127.0.0.1:9/prefix, http://search.internal:9200"
		c.VictoriaLogsURL = "http://127.0.0.1:9428"
	})
	loki := func(u string) string {
		return `{"source":{"kind":"loki","url":"` + u + `","query":"{job=\"x\"}","start":"2024-03-19T00:00:00Z","end":"2024-03-20T00:00:00Z"}}`
	}
	for _, c := range []struct {
		body   string
		status int
	}{
		{loki("http://127.0.0.1:9/prefix"), 202},
		{loki("http://127.0.0.1:9/prefix/loki/"), 202},
		{loki("http://127.0.0.1:9/prefixed"), 400},
		{loki("http://127.0.0.1:9/prefix/../admin"), 400},
		{loki("http://127.0.0.1:9"), 400},
		{loki("https://127.0.0.1:9/prefix"), 400},
		{loki("http://169.254.169.254/latest"), 400},
		{`{"source":{"kind":"victorialogs","url":"http://127.0.0.1:9428","query":"*","start":"2024-03-19T00:00:00Z","end":"2024-03-20T00:00:00Z"}}`, 202},
		{`{"source":{"kind":"victorialogs","url":"http://127.0.0.1:9429","query":"*","start":"2024-03-19T00:00:00Z","end":"2024-03-20T00:00:00Z"}}`, 400},
		{`{"source":{"kind":"opensearch","url":"http://SEARCH.internal:9200","index":"logs"}}`, 202},
		{`{"source":{"kind":"opensearch","url":"http://search.internal:9201","index":"logs"}}`, 400},
	} {
		resp, out := s.do(t, "POST", "/api/investigations", "application/json", strings.NewReader(c.body))
		if resp.StatusCode != c.status || (c.status == 400 && !strings.Contains(string(out), "not an allowed log store")) {
			t.Errorf("%s: %d %s, want %d", c.body, resp.StatusCode, out, c.status)
		}
	}
}
