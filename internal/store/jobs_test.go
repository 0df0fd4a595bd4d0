package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestJobCommitAndState(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		migrated(t, s)
		inv, err := s.CreateInvestigation(ctx, Investigation{Name: "job", Source: Source{Kind: "file"}})
		if err != nil {
			t.Fatal(err)
		}
		if st, err := s.JobState(ctx, inv.ID); err != nil || st != (JobState{}) {
			t.Fatalf("new job state = %+v, %v; want zero", st, err)
		}
		if err := s.SetSourceState(ctx, inv.ID, `{"size":42}`); err != nil {
			t.Fatal(err)
		}
		fs := sample(30, 7)
		if err := s.Commit(ctx, inv.ID, fs[:20], nil, 1000, 990); err != nil {
			t.Fatal(err)
		}
		got, _ := s.GetInvestigation(ctx, inv.ID)
		if got.Status != Running || got.Events != 1000 || got.Findings != 20 {
			t.Fatalf("after first commit: status %s, events %d, findings %d; want running, 1000, 20", got.Status, got.Events, got.Findings)
		}
		// A replay commits overlapping findings at a lower position: the
		// count is of distinct findings, events and checkpoint do not go back.
		if err := s.Commit(ctx, inv.ID, fs[10:], nil, 500, 500); err != nil {
			t.Fatal(err)
		}
		got, _ = s.GetInvestigation(ctx, inv.ID)
		st, err := s.JobState(ctx, inv.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Events != 1000 || got.Findings != 30 || st.Checkpoint != 990 || st.SourceState != `{"size":42}` {
			t.Fatalf("after replay commit: events %d findings %d state %+v; want 1000, 30, checkpoint 990", got.Events, got.Findings, st)
		}
		stored, _, err := s.Findings(ctx, inv.ID, Filter{}, Page{Limit: 1000})
		if err != nil || len(stored) != 30 {
			t.Fatalf("findings: %d, %v; want 30", len(stored), err)
		}
		// An empty batch still moves the checkpoint.
		if err := s.Commit(ctx, inv.ID, nil, nil, 2000, 2000); err != nil {
			t.Fatal(err)
		}
		if st, _ := s.JobState(ctx, inv.ID); st.Checkpoint != 2000 {
			t.Fatalf("checkpoint after empty commit = %d, want 2000", st.Checkpoint)
		}

		// The event volume goes in with the checkpoint; a failed commit
		// gives its counts back.
		var vol Volume
		vol.Add(base, 3)
		vol.Add(base.Add(time.Minute), 2)
		vol.Add(time.Time{}, 1)
		if err := s.Commit(ctx, inv.ID, nil, &vol, 2100, 2100); err != nil {
			t.Fatal(err)
		}
		var events int64
		if err := s.db.QueryRow(s.rebind("SELECT SUM(events) FROM event_volume WHERE investigation_id = ?"), inv.ID).Scan(&events); err != nil || events != 6 {
			t.Fatalf("event volume after commit: %d, %v; want 6", events, err)
		}
		vol.Add(base, 4)
		if err := s.Commit(ctx, "nope", nil, &vol, 1, 1); !errors.Is(err, ErrNotFound) {
			t.Fatalf("commit to a missing investigation: %v", err)
		}
		if m := vol.take(); len(m) != 1 || m[toNanos(base)] != 4 {
			t.Fatalf("volume after a failed commit: %v; want the 4 events back", m)
		}

		unfinished, err := s.Unfinished(ctx)
		if err != nil || len(unfinished) != 1 || unfinished[0].ID != inv.ID {
			t.Fatalf("unfinished = %v, %v; want the running job", unfinished, err)
		}
		if err := s.Finish(ctx, inv.ID, Done, nil); err != nil {
			t.Fatal(err)
		}
		if unfinished, _ := s.Unfinished(ctx); len(unfinished) != 0 {
			t.Fatalf("unfinished after finish = %v", unfinished)
		}

		if err := s.Commit(ctx, "nope", fs[:1], nil, 1, 1); !errors.Is(err, ErrNotFound) {
			t.Fatalf("commit to a missing investigation: %v, want ErrNotFound", err)
		}
		if got, _, _ := s.Findings(ctx, "nope", Filter{}, Page{}); len(got) != 0 {
			t.Fatal("a failed commit left findings behind")
		}
		if _, err := s.JobState(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("job state of a missing investigation: %v", err)
		}
	})
}

// An unfinished job belongs to its owner while the owner keeps it fresh;
// once it is stale, one other process may take it over.
func TestClaim(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		migrated(t, s)
		inv, err := s.CreateInvestigation(ctx, Investigation{Name: "shared", Owner: "a"})
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := s.GetInvestigation(ctx, inv.ID); got.Owner != "a" {
			t.Fatalf("owner %q", got.Owner)
		}
		hourAgo := time.Now().Add(-time.Hour)
		if ok, err := s.Claim(ctx, inv.ID, "b", hourAgo); err != nil || ok {
			t.Fatalf("b took a fresh job of a: %v %v", ok, err)
		}
		if ok, err := s.Claim(ctx, inv.ID, "a", hourAgo); err != nil || !ok {
			t.Fatalf("a could not claim its own job: %v %v", ok, err)
		}
		before, _ := s.GetInvestigation(ctx, inv.ID)
		time.Sleep(2 * time.Millisecond)
		if err := s.Heartbeat(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		after, _ := s.GetInvestigation(ctx, inv.ID)
		if !after.Updated.After(before.Updated) {
			t.Errorf("heartbeat left updated at %v", after.Updated)
		}
		// Stale (its owner stopped): b and c race for it; one wins.
		later := time.Now().Add(time.Hour)
		okB, errB := s.Claim(ctx, inv.ID, "b", later)
		okC, errC := s.Claim(ctx, inv.ID, "c", time.Now().Add(-time.Minute))
		if errB != nil || errC != nil || !okB || okC {
			t.Fatalf("stale claim: b %v %v, c %v %v", okB, errB, okC, errC)
		}
		if got, _ := s.GetInvestigation(ctx, inv.ID); got.Owner != "b" {
			t.Errorf("owner after the takeover %q", got.Owner)
		}
		if err := s.Finish(ctx, inv.ID, Done, nil); err != nil {
			t.Fatal(err)
		}
		if ok, _ := s.Claim(ctx, inv.ID, "b", later); ok {
			t.Error("a finished job was claimed")
		}
	})
}
