package store

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func TestInvestigations(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		migrated(t, s)
		loc := time.FixedZone("UTC+5:30", 5*3600+1800)
		in := Investigation{
			Name:    "Brute force on bastion — ünïcödé 🔍",
			Source:  Source{Kind: "file", Params: json.RawMessage(`{"path":"auth.log"}`)},
			From:    time.Date(2024, 3, 1, 10, 0, 0, 123456789, loc),
			To:      time.Date(2024, 3, 2, 10, 0, 0, 0, loc),
			Options: json.RawMessage(`{"max_evidence":5}`),
		}
		created, err := s.CreateInvestigation(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if created.ID == "" || created.Status != Queued || created.Created.IsZero() {
			t.Fatalf("created = %+v, want an id, status queued and a creation time", created)
		}
		got, err := s.GetInvestigation(ctx, created.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != in.Name || got.Source.Kind != "file" || string(got.Source.Params) != `{"path":"auth.log"}` ||
			!got.From.Equal(in.From) || !got.To.Equal(in.To) || got.From.Location() != time.UTC ||
			string(got.Options) != `{"max_evidence":5}` || got.Status != Queued || !got.Created.Equal(created.Created) {
			t.Fatalf("read back %+v\nwant like %+v", got, created)
		}

		if _, err := s.GetInvestigation(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing investigation: %v, want ErrNotFound", err)
		}
		if _, err := s.CreateInvestigation(ctx, Investigation{ID: created.ID}); err == nil {
			t.Fatal("a second investigation with the same id was accepted")
		}
		if _, err := s.CreateInvestigation(ctx, Investigation{Status: "sleeping"}); err == nil {
			t.Fatal("unknown status accepted")
		}

		if err := s.UpdateProgress(ctx, created.ID, 1000, 7); err != nil {
			t.Fatal(err)
		}
		got, _ = s.GetInvestigation(ctx, created.ID)
		if got.Status != Running || got.Events != 1000 || got.Findings != 7 || got.Updated.Before(got.Created) {
			t.Fatalf("after progress: %+v", got)
		}
		if err := s.UpdateProgress(ctx, "nope", 1, 1); !errors.Is(err, ErrNotFound) {
			t.Fatalf("progress of a missing investigation: %v", err)
		}
		if err := s.Finish(ctx, created.ID, Running, nil); err == nil {
			t.Fatal("Finish accepted a non-final status")
		}
		if err := s.Finish(ctx, created.ID, Failed, errors.New("source: connection refused")); err != nil {
			t.Fatal(err)
		}
		got, _ = s.GetInvestigation(ctx, created.ID)
		if got.Status != Failed || got.Error != "source: connection refused" || got.Events != 1000 {
			t.Fatalf("after Finish: %+v", got)
		}
		if err := s.Finish(ctx, "nope", Done, nil); !errors.Is(err, ErrNotFound) {
			t.Fatalf("finish a missing investigation: %v", err)
		}
	})
}

func TestListInvestigations(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		migrated(t, s)
		ids := map[string]bool{}
		for i := range 7 {
			inv, err := s.CreateInvestigation(ctx, Investigation{Name: string(rune('a' + i))})
			if err != nil {
				t.Fatal(err)
			}
			ids[inv.ID] = true
		}
		// Force ties on the creation time: keyset order must fall back on id.
		if _, err := s.db.Exec("UPDATE investigations SET created = 1000 WHERE name IN ('b', 'c', 'd')"); err != nil {
			t.Fatal(err)
		}
		var all []Investigation
		cursor := ""
		for pages := 0; ; pages++ {
			if pages > 10 {
				t.Fatal("pagination does not end")
			}
			page, next, err := s.ListInvestigations(ctx, Page{Limit: 2, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			if len(page) > 2 {
				t.Fatalf("page of %d, limit 2", len(page))
			}
			all = append(all, page...)
			if next == "" {
				break
			}
			cursor = next
		}
		if len(all) != len(ids) {
			t.Fatalf("listed %d investigations, want %d", len(all), len(ids))
		}
		seen := map[string]bool{}
		for i, inv := range all {
			if seen[inv.ID] || !ids[inv.ID] {
				t.Fatalf("investigation %s listed twice or unknown", inv.ID)
			}
			seen[inv.ID] = true
			if i > 0 {
				prev := all[i-1]
				if prev.Created.Before(inv.Created) || (prev.Created.Equal(inv.Created) && prev.ID < inv.ID) {
					t.Fatalf("not newest first: %s (%v) before %s (%v)", prev.ID, prev.Created, inv.ID, inv.Created)
				}
			}
		}
		if _, _, err := s.ListInvestigations(ctx, Page{Cursor: "!!"}); !errors.Is(err, ErrBadCursor) {
			t.Fatalf("bad cursor: %v", err)
		}
	})
}
