package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/loupe-sec/loupe/internal/finding"
)

// BenchmarkFindingsPage lists pages of 50 from 100k findings (2 evidence
// links each) in SQLite: a filtered first page, and a page 90k findings
// deep reached by its cursor.
func BenchmarkFindingsPage(b *testing.B) {
	const total, batch, limit = 100_000, 2_000, 50
	ctx := context.Background()
	s, err := Open(ctx, b.TempDir()+"/bench.db")
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	inv, err := s.CreateInvestigation(ctx, Investigation{Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	for i := 0; i < total; i += batch {
		fs := sample(batch, uint64(i))
		for j, f := range fs {
			f.ID = fmt.Sprintf("f%07d", i+j)
		}
		if err := s.AddFindings(ctx, inv.ID, fs); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("stored %d findings in %v (%.0f findings/s)", total, time.Since(start), total/time.Since(start).Seconds())

	// The cursor 90k findings deep.
	deep := ""
	for n := 0; n < 90_000; {
		page, next, err := s.Findings(ctx, inv.ID, Filter{}, Page{Limit: 1000, Cursor: deep})
		if err != nil {
			b.Fatal(err)
		}
		n += len(page)
		deep = next
	}

	run := func(b *testing.B, flt Filter, cursor string) {
		b.ReportAllocs()
		n := 0
		for b.Loop() {
			page, _, err := s.Findings(ctx, inv.ID, flt, Page{Limit: limit, Cursor: cursor})
			if err != nil {
				b.Fatal(err)
			}
			if len(page) == 0 {
				b.Fatal("empty page")
			}
			n += len(page)
		}
		b.ReportMetric(b.Elapsed().Seconds()*1000/float64(b.N), "ms/page")
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "findings/s")
	}
	b.Run("first-page", func(b *testing.B) { run(b, Filter{}, "") })
	b.Run("filtered-first-page", func(b *testing.B) {
		run(b, Filter{Tactic: "Persistence", Priority: finding.High, Host: "host-1"}, "")
	})
	b.Run("rule-filter", func(b *testing.B) { run(b, Filter{RuleID: "rule-3"}, "") })
	b.Run("text-filter", func(b *testing.B) { run(b, Filter{Text: "powershell"}, "") })
	b.Run("deep-page", func(b *testing.B) { run(b, Filter{}, deep) })
}
