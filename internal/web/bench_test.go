package web

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/loupe-sec/loupe/internal/attack"
	"github.com/loupe-sec/loupe/internal/finding"
	"github.com/loupe-sec/loupe/internal/store"
)

// BenchmarkInvestigationPage measures the server time of
// GET /investigations/{id} on an SQLite store holding one investigation
// with 100k findings (2 evidence events each, 40 rules, 300 hosts, a week
// of event volume): the first page, a page filtered on tactic, priority
// and host, a text search, and the list page. The whole handler runs: store
// queries, timeline, template, into a recorder.
func BenchmarkInvestigationPage(b *testing.B) {
	const total, batch = 100_000, 2_000
	ctx := context.Background()
	st := openStore(b)

	inv := newInv(b, st, "bench", fileSource("/logs/big.jsonl"))
	r := rand.New(rand.NewPCG(1, 2))
	tactics := attack.Tactics()
	start := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	week := int64(7 * 24 * time.Hour)
	began := time.Now()
	for i := 0; i < total; i += batch {
		fs := make([]*finding.Finding, batch)
		for j := range fs {
			ta := tactics[r.IntN(len(tactics))]
			first := start.Add(time.Duration(r.Int64N(week)))
			rule := r.IntN(40)
			host := fmt.Sprintf("host-%03d", r.IntN(300))
			fs[j] = &finding.Finding{
				ID: fmt.Sprintf("f%07d", i+j), Tactic: ta.Name, TacticID: ta.ID,
				Techniques: []finding.Technique{{ID: "T1059.001", Name: "PowerShell"}},
				Question:   "What was executed on " + host + "?",
				Conclusion: fmt.Sprintf("On %s a process ran an encoded command (rule %d); %d events.", host, rule, 1+r.IntN(40)),
				Priority:   finding.Priority(r.IntN(5)),
				Rule:       finding.Rule{ID: fmt.Sprintf("rule-%02d", rule), Title: fmt.Sprintf("Rule number %d", rule), Author: "loupe", Link: "https://attack.mitre.org/techniques/T1059/001/"},
				Source:     "rule", Host: host, User: "svc",
				First: first, Last: first.Add(time.Duration(r.IntN(600)) * time.Second), Count: int64(2 + r.IntN(30)),
				Evidence: []finding.Evidence{
					{RecordID: fmt.Sprintf("r%d-a", i+j), Time: first, Host: host, User: "svc", Line: int64(i + j), Summary: "Sysmon 1 powershell.exe -enc ..."},
					{RecordID: fmt.Sprintf("r%d-b", i+j), Time: first.Add(time.Second), Host: host, User: "svc", Summary: "Sysmon 3 connection"},
				},
			}
		}
		if err := st.AddFindings(ctx, inv.ID, fs); err != nil {
			b.Fatal(err)
		}
	}
	var v store.Volume
	for m := range 7 * 24 * 60 {
		v.Add(start.Add(time.Duration(m)*time.Minute), int64(500+r.IntN(1000)))
	}
	if err := st.AddEventVolume(ctx, inv.ID, &v); err != nil {
		b.Fatal(err)
	}
	if err := st.Finish(ctx, inv.ID, store.Done, nil); err != nil {
		b.Fatal(err)
	}
	b.Logf("stored %d findings in %v", total, time.Since(began).Round(time.Millisecond))

	h := New(st, Options{})
	page := "/investigations/" + inv.ID
	// The first view of a large investigation refreshes the planner
	// statistics in the background; measure the server after it.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", page, nil))
	for h.analyzing.Load() {
		time.Sleep(10 * time.Millisecond)
	}
	if h.analyzedAt.Load() != total {
		b.Fatalf("statistics were not refreshed (analyzed at %d findings)", h.analyzedAt.Load())
	}

	// cold: the facets (counts, timeline, rules, hosts) are computed for
	// every request, as for a running investigation or the first view of
	// a finished one; warm: a finished investigation seen before.
	// ms/page is wall time; cpu-ms/page is the process's CPU time per page
	// (all goroutines: the page's queries run side by side), which a
	// machine shared with other work inflates less.
	run := func(b *testing.B, target string, cold bool) {
		b.ReportAllocs()
		cpu0 := cpuTime()
		for b.Loop() {
			if cold {
				h.facets.clear()
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", target, nil))
			if rec.Code != 200 {
				b.Fatalf("%s: status %d", target, rec.Code)
			}
		}
		b.ReportMetric(b.Elapsed().Seconds()*1000/float64(b.N), "ms/page")
		b.ReportMetric((cpuTime()-cpu0).Seconds()*1000/float64(b.N), "cpu-ms/page")
	}
	for _, c := range []struct{ name, query string }{
		{"first-page", ""},
		{"filtered", "?tactic=TA0003&priority=high&host=host-007"},
		{"text-search", "?q=rule+17"},
		{"time-range", "?from=2024-03-03T10:00&to=2024-03-03T11:00"},
	} {
		b.Run(c.name+"/cold", func(b *testing.B) { run(b, page+c.query, true) })
		b.Run(c.name+"/warm", func(b *testing.B) { run(b, page+c.query, false) })
	}
	b.Run("list", func(b *testing.B) { run(b, "/investigations", false) })
}

// cpuTime is the user and system CPU time of the process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
