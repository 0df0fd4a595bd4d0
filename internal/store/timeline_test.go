package store

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"
	"testing"
	"time"

	"github.com/loupe-sec/loupe/internal/event"
	"github.com/loupe-sec/loupe/internal/finding"
)

func TestEventVolumeAndTimeline(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *Store) {
		migrated(t, s)
		ctx := context.Background()
		inv := newInvestigation(t, s)
		t0 := time.Date(2024, 3, 19, 23, 25, 10, 0, time.UTC)

		// Events through Count, flushed twice: counts add up per minute.
		evs := []*event.Event{
			{Time: t0}, {Time: t0.Add(20 * time.Second)}, {Time: t0.Add(2 * time.Minute)},
			{}, {Time: t0.Add(69 * time.Minute)},
		}
		var v Volume
		var seq iter.Seq2[*event.Event, error] = func(yield func(*event.Event, error) bool) {
			for _, e := range evs {
				if !yield(e, nil) {
					return
				}
			}
			yield(nil, errors.New("line 9: bad"))
		}
		n := 0
		for range v.Count(seq) {
			n++
		}
		if n != len(evs)+1 {
			t.Fatalf("Count passed %d items, want %d", n, len(evs)+1)
		}
		if err := s.AddEventVolume(ctx, inv, &v); err != nil {
			t.Fatal(err)
		}
		v.Add(t0.Add(30*time.Second), 3) // same minute as t0: added to it
		if err := s.AddEventVolume(ctx, inv, &v); err != nil {
			t.Fatal(err)
		}
		if err := s.AddEventVolume(ctx, inv, &v); err != nil { // empty: nothing to do
			t.Fatal(err)
		}

		fs := []*finding.Finding{
			{ID: "a", Priority: finding.High, First: t0.Add(time.Minute)},
			{ID: "b", Priority: finding.High, First: t0.Add(90 * time.Second)},
			{ID: "c", Priority: finding.Critical, First: t0.Add(40 * time.Minute)},
			{ID: "d", Priority: finding.Low},
		}
		if err := s.AddFindings(ctx, inv, fs); err != nil {
			t.Fatal(err)
		}

		tl, err := s.TimelineOf(ctx, inv, 60)
		if err != nil {
			t.Fatal(err)
		}
		// 23:25 … 00:34 is 70 minutes: the first width giving ≤ 60 buckets is 2 minutes.
		if tl.Width != 2*time.Minute || !tl.Start.Equal(time.Date(2024, 3, 19, 23, 24, 0, 0, time.UTC)) || len(tl.Buckets) != 36 {
			t.Fatalf("width %v start %v buckets %d", tl.Width, tl.Start, len(tl.Buckets))
		}
		if !tl.HasVolume || tl.UndatedEvents != 1 || tl.UndatedFindings != 1 {
			t.Fatalf("volume %v, undated events %d, undated findings %d", tl.HasVolume, tl.UndatedEvents, tl.UndatedFindings)
		}
		var events, findings int64
		for _, b := range tl.Buckets {
			events += b.Events
			for _, c := range b.Findings {
				findings += c
			}
		}
		if events != 7 || findings != 3 {
			t.Fatalf("bucketed %d events, %d findings; want 7, 3", events, findings)
		}
		// 23:24–23:26 holds t0, t0+20s and the 3 added later; 23:26–23:28
		// holds t0+2m and both high findings.
		if b := tl.Buckets[0]; b.Events != 5 || b.Findings != [5]int64{} {
			t.Errorf("bucket 0: %+v", b)
		}
		if b := tl.Buckets[1]; b.Events != 1 || b.Findings[finding.High] != 2 {
			t.Errorf("bucket 1: %+v", b)
		}
		if b := tl.Buckets[len(tl.Buckets)-1]; b.Events != 1 || !b.Start.Equal(time.Date(2024, 3, 20, 0, 34, 0, 0, time.UTC)) {
			t.Errorf("last bucket: %+v", b)
		}

		// A narrower limit widens the buckets; the totals stay.
		tl, err = s.TimelineOf(ctx, inv, 5)
		if err != nil {
			t.Fatal(err)
		}
		if len(tl.Buckets) > 5 || tl.Width != 30*time.Minute {
			t.Fatalf("max 5 buckets: width %v, %d buckets", tl.Width, len(tl.Buckets))
		}

		// Another investigation is not mixed in, and an empty one has no buckets.
		other := newInvestigation(t, s)
		tl, err = s.TimelineOf(ctx, other, 60)
		if err != nil || len(tl.Buckets) != 0 || tl.HasVolume {
			t.Fatalf("empty investigation: %+v, %v", tl, err)
		}
	})
}

func TestRuleAndHostCounts(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *Store) {
		migrated(t, s)
		ctx := context.Background()
		inv := newInvestigation(t, s)
		fs := sample(300, 7)
		if err := s.AddFindings(ctx, inv, fs); err != nil {
			t.Fatal(err)
		}
		wantRules, wantHosts := map[string]int64{}, map[string]int64{}
		titles := map[string]string{}
		for _, f := range fs {
			wantRules[f.Rule.ID]++
			wantHosts[f.Host]++
			titles[f.Rule.ID] = f.Rule.Title // sample gives one rule different titles; any of them will do
		}
		rules, err := s.RuleCounts(ctx, inv, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(rules) != len(wantRules) {
			t.Fatalf("%d rules, want %d", len(rules), len(wantRules))
		}
		for i, r := range rules {
			if r.Count != wantRules[r.Rule.ID] || r.Rule.Title == "" {
				t.Errorf("rule %s: %d findings titled %q, want %d", r.Rule.ID, r.Count, r.Rule.Title, wantRules[r.Rule.ID])
			}
			if i > 0 && rules[i-1].Count < r.Count {
				t.Errorf("rules not by count: %v", rules)
			}
		}
		hosts, err := s.HostCounts(ctx, inv, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(hosts) != 2 {
			t.Fatalf("limit 2 gave %d hosts", len(hosts))
		}
		for _, h := range hosts {
			if h.Count != wantHosts[h.Host] {
				t.Errorf("host %s: %d, want %d", h.Host, h.Count, wantHosts[h.Host])
			}
		}
	})
}

// After Analyze, SQLite serves a time-range filter by walking the listing
// order (and stops at the page's end) instead of sorting every finding
// that ends after the range start; the timeline's range is two index seeks.
func TestAnalyzeAndTimelineIndex(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *Store) {
		migrated(t, s)
		ctx := context.Background()
		if !indexes(t, s)["findings_by_first_time"] {
			t.Fatal("index findings_by_first_time missing")
		}
		inv := newInvestigation(t, s)
		for i := 0; i < 5; i++ {
			fs := sample(1000, uint64(i))
			for j, f := range fs {
				f.ID = fmt.Sprintf("f%d-%04d", i, j)
			}
			if err := s.AddFindings(ctx, inv, fs); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Analyze(ctx); err != nil {
			t.Fatal(err)
		}
		if s.dialect != sqlite {
			return
		}
		plan := func(q string) string {
			rows, err := s.db.Query("EXPLAIN QUERY PLAN "+q, inv, 5, 10)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var out []string
			for rows.Next() {
				var id, parent, unused int
				var detail string
				if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
					t.Fatal(err)
				}
				out = append(out, detail)
			}
			return strings.Join(out, "; ")
		}
		p := plan("SELECT id FROM findings WHERE investigation_id = ? AND last_time >= ? AND first_time <= ? AND first_time <> 0 ORDER BY priority DESC, first_time, id LIMIT 51")
		if !strings.Contains(p, "findings_by_order") || strings.Contains(p, "TEMP B-TREE") {
			t.Errorf("time-range page plan after Analyze: %s", p)
		}
		p = plan("SELECT MIN(first_time) FROM findings WHERE investigation_id = ? AND first_time > ? AND ? > 0")
		if !strings.Contains(p, "findings_by_first_time") {
			t.Errorf("timeline range plan: %s", p)
		}
	})
}
