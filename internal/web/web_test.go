package web

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loupe-sec/loupe/internal/attack"
	"github.com/loupe-sec/loupe/internal/finding"
	"github.com/loupe-sec/loupe/internal/store"
)

var t0 = time.Date(2024, 3, 19, 23, 25, 0, 0, time.UTC)

func openStore(t testing.TB) *store.Store {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "web.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return st
}

func newInv(t testing.TB, st *store.Store, name string, src store.Source) store.Investigation {
	t.Helper()
	inv, err := st.CreateInvestigation(context.Background(), store.Investigation{Name: name, Source: src})
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

func fileSource(path string) store.Source {
	p, _ := json.Marshal(map[string]string{"path": path})
	return store.Source{Kind: "file", Params: p}
}

// mkFinding is a finding of tactic tac (a name) at minute min after t0.
func mkFinding(id, tac string, p finding.Priority, rule, host string, min int) *finding.Finding {
	ta, _ := attack.TacticByName(tac)
	first := t0.Add(time.Duration(min) * time.Minute)
	return &finding.Finding{
		ID: id, Tactic: ta.Name, TacticID: ta.ID,
		Techniques: []finding.Technique{{ID: "T1003.001", Name: "LSASS Memory"}},
		Question:   "Question of " + id + "?",
		Conclusion: "Conclusion of " + id + ".",
		Priority:   p,
		Rule:       finding.Rule{ID: rule, Title: "Title of " + rule, Author: "Author of " + rule, Link: "https://rules.example/" + rule, Level: "high"},
		Source:     "rule", Host: host, User: "alice",
		First: first, Last: first.Add(30 * time.Second), Count: 3,
		Evidence: []finding.Evidence{
			{RecordID: "rec-" + id, Index: "", Line: 7, Time: first, Host: host, User: "alice", Summary: "Sysmon 1 of " + id},
		},
	}
}

// fixture is one investigation with findings over several tactics,
// priorities, rules and hosts.
func fixture(t testing.TB, st *store.Store) (store.Investigation, []*finding.Finding) {
	t.Helper()
	inv := newInv(t, st, "FS01 intrusion", fileSource("/logs/fs01.jsonl"))
	fs := []*finding.Finding{
		mkFinding("f01", "Initial Access", finding.Critical, "brute", "fs01", 5),
		mkFinding("f02", "Credential Access", finding.Critical, "lsass", "fs01", 10),
		mkFinding("f03", "Persistence", finding.High, "schtask", "fs01", 12),
		mkFinding("f04", "Persistence", finding.High, "service", "dc01", 14),
		mkFinding("f05", "Execution", finding.Medium, "encoded", "fs01", 20),
		mkFinding("f06", "Persistence", finding.Medium, "schtask", "dc01", 40),
		mkFinding("f07", "Defense Evasion", finding.Low, "logclear", "fs01", 60),
		mkFinding("f08", "Discovery", finding.Info, "recon", "wks1", 65),
	}
	ctx := context.Background()
	if err := st.AddFindings(ctx, inv.ID, fs); err != nil {
		t.Fatal(err)
	}
	var v store.Volume
	for i := range 70 {
		v.Add(t0.Add(time.Duration(i)*time.Minute), int64(10+i))
	}
	if err := st.AddEventVolume(ctx, inv.ID, &v); err != nil {
		t.Fatal(err)
	}
	if err := st.UpdateProgress(ctx, inv.ID, 3115, int64(len(fs))); err != nil {
		t.Fatal(err)
	}
	if err := st.Finish(ctx, inv.ID, store.Done, nil); err != nil {
		t.Fatal(err)
	}
	return inv, fs
}

func get(t testing.TB, h http.Handler, target string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req := httptest.NewRequest("GET", target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := rec.Result()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// ids lists the finding ids a page shows, in order.
var questionRE = regexp.MustCompile(`<h3>Question of (f\d+)\?</h3>`)

func ids(body string) []string {
	var out []string
	for _, m := range questionRE.FindAllStringSubmatch(body, -1) {
		out = append(out, m[1])
	}
	return out
}

func TestListPage(t *testing.T) {
	st := openStore(t)
	inv, _ := fixture(t, st)
	failed := newInv(t, st, "Broken export", fileSource("/logs/missing.jsonl"))
	if err := st.Finish(context.Background(), failed.ID, store.Failed, fmt.Errorf("open /logs/missing.jsonl: no such file")); err != nil {
		t.Fatal(err)
	}
	h := New(st, Options{Version: "test"})
	res, body := get(t, h, "/investigations")
	if res.StatusCode != 200 {
		t.Fatalf("status %d: %s", res.StatusCode, body)
	}
	if ct := res.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") {
		t.Errorf("CSP %q", csp)
	}
	for _, want := range []string{
		`href="/investigations/` + inv.ID + `"`, ">FS01 intrusion<", "/logs/fs01.jsonl", "st-done", "3\u202f115",
		">Broken export<", "st-failed", "open /logs/missing.jsonl: no such file",
		// by priority: 2 critical, linked to the filter
		`href="/investigations/` + inv.ID + `?priority=critical"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("list lacks %q", want)
		}
	}
	// Newest first.
	if strings.Index(body, "Broken export") > strings.Index(body, "FS01 intrusion") {
		t.Error("list is not newest first")
	}
	if strings.Contains(body, "for the progress of running jobs") {
		t.Error("list offers a reload although nothing runs")
	}
	if strings.Contains(body, "<form") {
		t.Error("start form shown without a create handler")
	}
	// A running investigation: the list offers a reload (no automatic
	// refresh, which would wipe the upload form).
	running := newInv(t, st, "still going", fileSource("/x"))
	if err := st.UpdateProgress(context.Background(), running.ID, 10, 0); err != nil {
		t.Fatal(err)
	}
	if _, body := get(t, h, "/investigations"); !strings.Contains(body, "for the progress of running jobs") || strings.Contains(body, "http-equiv") {
		t.Error("list does not offer a reload while an investigation runs, or refreshes by itself")
	}
	if res, _ := get(t, h, "/investigations?cursor=%25%25"); res.StatusCode != 400 {
		t.Errorf("bad list cursor: status %d, want 400", res.StatusCode)
	}
}

func TestListPagination(t *testing.T) {
	st := openStore(t)
	for i := range listSize + 3 {
		newInv(t, st, fmt.Sprintf("inv-%03d", i), fileSource("/x"))
	}
	h := New(st, Options{})
	_, body := get(t, h, "/investigations")
	m := regexp.MustCompile(`href="(/investigations\?cursor=[^"]+)">Next page`).FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no next page link on a full page")
	}
	first := strings.Count(body, `class="name"`)
	_, body2 := get(t, h, html.UnescapeString(m[1]))
	second := strings.Count(body2, `class="name"`)
	if first != listSize || second != 3 || strings.Contains(body2, "Next page") {
		t.Fatalf("pages of %d and %d, want %d and 3 and no third", first, second, listSize)
	}
}

func TestInvestigationPage(t *testing.T) {
	st := openStore(t)
	inv, fs := fixture(t, st)
	h := New(st, Options{Version: "test"})
	res, body := get(t, h, "/investigations/"+inv.ID)
	if res.StatusCode != 200 {
		t.Fatalf("status %d: %s", res.StatusCode, body)
	}
	// The tactic strip: every tactic, in ATT&CK order, with its count.
	last := -1
	for _, ta := range attack.Tactics() {
		i := strings.Index(body, `title="`+ta.ID+` `+ta.Name+`"`)
		if i < 0 {
			t.Fatalf("tactic strip lacks %s %s", ta.ID, ta.Name)
		}
		if i < last {
			t.Errorf("tactic %s out of ATT&CK order", ta.Name)
		}
		last = i
	}
	if !regexp.MustCompile(`tactic=TA0003" title="TA0003 Persistence">Persistence<small>TA0003</small><b>3</b>`).MatchString(body) {
		t.Error("Persistence cell does not count 3 findings or link to its filter")
	}
	// Every finding, most urgent first, with its question, conclusion,
	// rule attribution and evidence fields.
	want := []string{"f01", "f02", "f03", "f04", "f05", "f06", "f07", "f08"}
	if got := ids(body); !slices.Equal(got, want) {
		t.Fatalf("findings %v, want %v", got, want)
	}
	f := fs[1]
	for _, s := range []string{
		"Conclusion of f02.", `href="https://rules.example/lsass"`, "<b>Title of lsass</b>", ">lsass</a>", "by <b>Author of lsass</b>",
		`href="https://attack.mitre.org/techniques/T1003/001/"`, "rec-f02", "Sysmon 1 of f02", ts(f.First), "line 7",
		"<svg class=\"timeline\"", `class="s-critical"`, `class="vol"`,
	} {
		if !strings.Contains(body, s) {
			t.Errorf("page lacks %q", s)
		}
	}
	if strings.Contains(body, "Next page") {
		t.Error("next page link on the only page")
	}
	// The timeline's bars (1 minute each here) link to their own time
	// range, which holds f01 alone.
	bar := `/investigations/` + inv.ID + `?from=2024-03-19T23%3A30%3A00&amp;to=2024-03-19T23%3A30%3A59`
	if !strings.Contains(body, `<a href="`+bar+`">`) {
		t.Fatal("no timeline bar links to 23:30:00–23:30:59")
	}
	if _, body := get(t, h, html.UnescapeString(bar)); !slices.Equal(ids(body), []string{"f01"}) {
		t.Errorf("the 23:30 bar shows %v, want [f01]", ids(body))
	}
}

func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	os.Exit(m.Run())
}

func ts(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") }

func TestFilters(t *testing.T) {
	st := openStore(t)
	inv, _ := fixture(t, st)
	h := New(st, Options{})
	base := "/investigations/" + inv.ID + "?"
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"tactic=TA0003", []string{"f03", "f04", "f06"}},
		{"tactic=persistence", []string{"f03", "f04", "f06"}},
		{"priority=high", []string{"f01", "f02", "f03", "f04"}},
		{"rule=schtask", []string{"f03", "f06"}},
		{"host=dc01", []string{"f04", "f06"}},
		{"q=OF+F05", []string{"f05"}},            // text, any case
		{"q=title+of+logclear", []string{"f07"}}, // rule title
		{"from=2024-03-19T23:45&to=2024-03-19T23:59", []string{"f05"}},
		{"from=2024-03-19T23:30:00Z", []string{"f01", "f02", "f03", "f04", "f05", "f06", "f07", "f08"}},
		{"to=2024-03-19", []string{"f01", "f02", "f03", "f04", "f05"}}, // the whole day, not f06 at 00:05
		{"tactic=TA0003&priority=high&host=dc01", []string{"f04"}},
		{"tactic=TA0010", nil},
	} {
		res, body := get(t, h, base+tc.query)
		if res.StatusCode != 200 {
			t.Errorf("%s: status %d", tc.query, res.StatusCode)
			continue
		}
		if got := ids(body); !slices.Equal(got, tc.want) {
			t.Errorf("%s: findings %v, want %v", tc.query, got, tc.want)
		}
		if tc.want == nil && !strings.Contains(body, "No finding matches these filters") {
			t.Errorf("%s: no empty-result message", tc.query)
		}
	}
	// The active tactic cell links back to no tactic filter; others keep
	// the other filters.
	_, body := get(t, h, base+"tactic=TA0003&host=dc01")
	if !strings.Contains(body, `class="tac active hit" href="/investigations/`+inv.ID+`?host=dc01"`) {
		t.Error("active tactic cell does not clear the tactic filter while keeping host")
	}
	if !strings.Contains(body, `?host=dc01&amp;tactic=TA0006"`) {
		t.Error("other tactic cells do not keep the host filter")
	}
	if !strings.Contains(body, `<option value="TA0003" selected>`) || !strings.Contains(body, `name="host" value="dc01"`) {
		t.Error("form does not show the filters back")
	}
}

func TestPagination(t *testing.T) {
	st := openStore(t)
	inv, fs := fixture(t, st)
	h := New(st, Options{})
	var got []string
	next := "/investigations/" + inv.ID + "?limit=3&host=fs01"
	linkRE := regexp.MustCompile(`href="([^"]+)">Next page`)
	for pages := 0; next != ""; pages++ {
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
		res, body := get(t, h, next)
		if res.StatusCode != 200 {
			t.Fatalf("%s: status %d", next, res.StatusCode)
		}
		page := ids(body)
		if len(page) > 3 {
			t.Fatalf("page of %d with limit 3", len(page))
		}
		got = append(got, page...)
		next = ""
		if m := linkRE.FindStringSubmatch(body); m != nil {
			next = html.UnescapeString(m[1])
			if !strings.Contains(next, "host=fs01") || !strings.Contains(next, "limit=3") {
				t.Fatalf("next link %q drops the filter or limit", next)
			}
			if !strings.Contains(body, "First page") && pages > 0 {
				t.Error("no first-page link on a later page")
			}
		}
	}
	var want []string
	for _, f := range fs {
		if f.Host == "fs01" {
			want = append(want, f.ID)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("pages gave %v, want %v", got, want)
	}
}

func TestNotFound(t *testing.T) {
	st := openStore(t)
	fixture(t, st)
	h := New(st, Options{})
	for _, p := range []string{"/investigations/nope", "/investigations/" + strings.Repeat("a", 200), "/investigations/a/b"} {
		if res, body := get(t, h, p); res.StatusCode != 404 {
			t.Errorf("%s: status %d, want 404", p, res.StatusCode)
		} else if strings.Contains(p, "nope") && !strings.Contains(body, "No investigation nope") {
			t.Errorf("%s: page does not say what is missing", p)
		}
	}
}

func TestBadParams(t *testing.T) {
	st := openStore(t)
	inv, _ := fixture(t, st)
	h := New(st, Options{})
	for _, q := range []string{
		"priority=urgent", "tactic=Sleeping", "from=yesterday", "to=2024-13-01", "limit=0", "limit=501", "limit=x",
		"cursor=garbage!", "cursor=" + url.QueryEscape("bm90IGEgY3Vyc29y"), "from=2024-03-20&to=2024-03-19",
		"host=a&host=b", "q=" + strings.Repeat("x", 300), "q=%ff",
	} {
		res, body := get(t, h, "/investigations/"+inv.ID+"?"+q)
		if res.StatusCode != 400 {
			t.Errorf("%s: status %d, want 400", q, res.StatusCode)
			continue
		}
		if !strings.Contains(body, "Bad filter") && !strings.Contains(body, "cursor") {
			t.Errorf("%s: page does not explain: %s", q, body)
		}
	}
}

func TestEscaping(t *testing.T) {
	st := openStore(t)
	const script = `<script>alert(1)</script>`
	const attr = `"onmouseover="alert(2)`
	evil := script + attr
	p, _ := json.Marshal(map[string]string{"path": evil})
	inv := newInv(t, st, evil, store.Source{Kind: "file" + evil, Params: p})
	f := mkFinding("x1", "Persistence", finding.High, "r"+evil, "h"+evil, 1)
	f.Question, f.Conclusion = "Q"+evil, "C"+evil
	f.Rule.Title, f.Rule.Author, f.Rule.Level = "T"+evil, "A"+evil, "L"+evil
	f.Rule.Link = "javascript:alert(3)"
	f.User = "u" + evil
	f.Techniques = []finding.Technique{{ID: "T1" + evil, Name: "N" + evil}}
	f.Evidence[0] = finding.Evidence{RecordID: "id" + evil, Index: "ix" + evil, Summary: "S" + evil, Host: "eh" + evil, User: "eu" + evil, Time: t0}
	f.LLM = &finding.LLM{Provider: "ollama", Model: "m" + evil, Note: "N" + evil} // a model's note, kept by the store
	ctx := context.Background()
	if err := st.AddFindings(ctx, inv.ID, []*finding.Finding{f}); err != nil {
		t.Fatal(err)
	}
	if err := st.Finish(ctx, inv.ID, store.Failed, fmt.Errorf("E%s", evil)); err != nil {
		t.Fatal(err)
	}
	h := New(st, Options{TimesketchURL: "https://ts.example", TimesketchSketch: "3" + evil})
	for _, page := range []string{"/investigations", "/investigations/" + inv.ID, "/investigations/" + inv.ID + "?q=" + url.QueryEscape(evil)} {
		res, body := get(t, h, page)
		if res.StatusCode != 200 {
			t.Fatalf("%s: status %d", page, res.StatusCode)
		}
		if strings.Contains(body, "<script>") || strings.Contains(body, "alert(1)</script>") {
			t.Errorf("%s: a <script> came through unescaped", page)
		}
		if strings.Contains(body, `"onmouseover=`) || strings.Contains(body, ` onmouseover=`) {
			t.Errorf("%s: an attribute was injected", page)
		}
		if strings.Contains(body, `href="javascript:`) {
			t.Errorf("%s: a javascript: URL came through", page)
		}
		if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("%s: the escaped text is missing (the test would prove nothing)", page)
		}
	}
	_, body := get(t, h, "/investigations/"+inv.ID)
	for _, s := range []string{"Q&lt;script&gt;", "C&lt;script&gt;", `<p class="llm">Model (ollama m&lt;script&gt;`, "): N&lt;script&gt;", "T&lt;script&gt;", "A&lt;script&gt;", "S&lt;script&gt;", "#ZgotmplZ", "&#34;onmouseover=&#34;alert(2)"} {
		if !strings.Contains(body, s) {
			t.Errorf("investigation page lacks %q", s)
		}
	}
	// The evidence's Timesketch link carries the id as query text.
	if !strings.Contains(body, "https://ts.example/sketch/3%3Cscript%3E") {
		t.Error("Timesketch link is missing or its sketch id is not path-escaped")
	}
}

func TestTokenSession(t *testing.T) {
	st := openStore(t)
	inv, _ := fixture(t, st)
	const token = "s3cret-token"
	h := New(st, Options{Token: token})
	page := "/investigations/" + inv.ID + "?tactic=TA0003"

	if res, body := get(t, h, page); res.StatusCode != 401 || !strings.Contains(body, "?token=") {
		t.Fatalf("no token: status %d", res.StatusCode)
	}
	if res, _ := get(t, h, page+"&token=wrong"); res.StatusCode != 401 || len(res.Cookies()) != 0 {
		t.Fatalf("wrong token: status %d, cookies %v", res.StatusCode, res.Cookies())
	}
	if res, _ := get(t, h, page, "Authorization", "Bearer "+token); res.StatusCode != 200 {
		t.Fatalf("bearer token: status %d", res.StatusCode)
	}
	res, _ := get(t, h, page+"&token="+token)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("?token=: status %d, want 303", res.StatusCode)
	}
	loc := res.Header.Get("Location")
	if strings.Contains(loc, "token") || !strings.Contains(loc, "tactic=TA0003") {
		t.Fatalf("redirect to %q: want the page without the token", loc)
	}
	cs := res.Cookies()
	if len(cs) != 1 {
		t.Fatalf("cookies %v", cs)
	}
	c := cs[0]
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.MaxAge <= 0 {
		t.Errorf("cookie %+v: want HttpOnly, SameSite=Strict, Path=/ and an expiry", c)
	}
	if strings.Contains(c.Value, token) {
		t.Error("the cookie holds the token itself")
	}
	if res, _ := get(t, h, loc, "Cookie", c.Name+"="+c.Value); res.StatusCode != 200 {
		t.Fatalf("with the session cookie: status %d", res.StatusCode)
	}
	if res, _ := get(t, h, loc, "Cookie", c.Name+"="+c.Value[:len(c.Value)-1]+"0"); res.StatusCode != 401 {
		t.Fatalf("with a forged cookie: status %d", res.StatusCode)
	}
	// Another token makes another cookie: a session does not survive a token change.
	if other := New(st, Options{Token: token + "2"}); string(other.sess) == string(h.sess) {
		t.Error("session value does not depend on the token")
	}
}

// The facets of a finished investigation are cached until its progress
// changes; a running investigation's are computed for every page.
func TestFacetCache(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	inv, fs := fixture(t, st)
	h := New(st, Options{})
	page := "/investigations/" + inv.ID
	total := regexp.MustCompile(`Findings <b>(\d+)</b>`)
	count := func() string {
		_, body := get(t, h, page)
		m := total.FindStringSubmatch(body)
		if m == nil {
			t.Fatal("no findings total on the page")
		}
		return m[1]
	}
	highChip := `href="/investigations/` + inv.ID + `?priority=high" title="high"><i class="p-high"></i><b>`
	listHigh := func() string {
		_, body := get(t, h, "/investigations")
		i := strings.Index(body, highChip)
		if i < 0 {
			t.Fatal("no high chip in the list")
		}
		return body[i+len(highChip) : i+len(highChip)+1]
	}
	if got := count(); got != "8" {
		t.Fatalf("total %s, want 8", got)
	}
	if got := listHigh(); got != "2" {
		t.Fatalf("list: %s high, want 2", got)
	}
	if err := st.AddFindings(ctx, inv.ID, []*finding.Finding{mkFinding("f09", "Impact", finding.High, "wipe", "fs01", 2)}); err != nil {
		t.Fatal(err)
	}
	if got := count(); got != "8" {
		t.Fatalf("total %s right after a silent write: the facets were not cached", got)
	}
	if got := listHigh(); got != "2" {
		t.Fatalf("list: %s high right after a silent write: the counts were not cached", got)
	}
	time.Sleep(time.Millisecond) // a later Updated
	if err := st.UpdateProgress(ctx, inv.ID, 3200, int64(len(fs)+1)); err != nil {
		t.Fatal(err)
	}
	if got := count(); got != "9" {
		t.Fatalf("total %s after the progress changed, want 9", got)
	}
	if got := listHigh(); got != "3" {
		t.Fatalf("list: %s high after the progress changed, want 3", got)
	}

	running := newInv(t, st, "running", fileSource("/x"))
	if err := st.UpdateProgress(ctx, running.ID, 1, 0); err != nil {
		t.Fatal(err)
	}
	page = "/investigations/" + running.ID
	if got := count(); got != "0" {
		t.Fatalf("running: total %s, want 0", got)
	}
	if err := st.AddFindings(ctx, running.ID, fs[:2]); err != nil {
		t.Fatal(err)
	}
	if got := count(); got != "2" {
		t.Fatalf("running: total %s after a write, want 2 (cached?)", got)
	}
}

// The list's form posts to /investigations, which relays the upload to the
// API's create handler with the token and redirects to the new page.
func TestStartForm(t *testing.T) {
	st := openStore(t)
	const token = "tok"
	var got *http.Request
	var gotBody string
	create := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		b, _ := io.ReadAll(r.Body)
		gotBody = string(b)
		if !strings.Contains(gotBody, "evil.jsonl") {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":"multipart body without a file part <b>"}`)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"id":"abc123","status":"queued"}`)
	})
	h := New(st, Options{Token: token, Create: create})
	_, body := get(t, h, "/investigations", "Authorization", "Bearer "+token)
	if !strings.Contains(body, `<form class="start" method="post" action="/investigations" enctype="multipart/form-data">`) {
		t.Fatal("no start form")
	}
	post := func(file string, hdr ...string) *http.Response {
		payload := "--XX\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nmine\r\n--XX\r\n" +
			"Content-Disposition: form-data; name=\"file\"; filename=\"" + file + "\"\r\n\r\n{}\n\r\n--XX--\r\n"
		req := httptest.NewRequest("POST", "/investigations", strings.NewReader(payload))
		req.Header.Set("Content-Type", "multipart/form-data; boundary=XX")
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		got := rec.Result()
		b, _ := io.ReadAll(got.Body)
		got.Body = io.NopCloser(strings.NewReader(string(b)))
		return got
	}
	// No session: refused before reaching the API.
	if res := post("evil.jsonl"); res.StatusCode != 401 || got != nil {
		t.Fatalf("without the session: status %d, relayed %v", res.StatusCode, got != nil)
	}
	// ?token= does not authorise a POST.
	req := httptest.NewRequest("POST", "/investigations?token="+token, nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 401 {
		t.Fatalf("POST with ?token=: status %d, want 401", rec.Code)
	}
	cookie := sessionCookie + "=" + string(h.sess)
	if res := post("evil.jsonl", "Cookie", cookie, "Origin", "https://elsewhere.example"); res.StatusCode != 403 || got != nil {
		t.Fatalf("cross-site post: status %d", res.StatusCode)
	}
	res := post("evil.jsonl", "Cookie", cookie, "Origin", "http://example.com")
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/investigations/abc123" {
		t.Fatalf("start: status %d, Location %q", res.StatusCode, res.Header.Get("Location"))
	}
	if got.URL.Path != "/api/investigations" || got.Header.Get("Authorization") != "Bearer "+token ||
		!strings.HasPrefix(got.Header.Get("Content-Type"), "multipart/form-data") || !strings.Contains(gotBody, "name=\"name\"") {
		t.Fatalf("relayed %s %v with body %q", got.URL.Path, got.Header, gotBody)
	}
	// The API's refusal is shown, escaped, with its status.
	res = post("other.jsonl", "Cookie", cookie)
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 400 || !strings.Contains(string(b), "multipart body without a file part &lt;b&gt;") {
		t.Fatalf("refused start: status %d: %s", res.StatusCode, b)
	}
}
