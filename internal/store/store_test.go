package store

import (
	"context"
	"errors"
	"fmt"
	"github.com/loupe-sec/loupe/internal/store/pgtest"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The whole suite runs against every backend: SQLite in a temp dir, and a
// real PostgreSQL when LOUPE_PG_DSN names one (scripts/postgres.sh start
// prints a DSN). Each PostgreSQL test gets its own schema, dropped at the
// end, so runs are independent.

type backend struct {
	name string
	open func(t testing.TB) *Store // an empty, unmigrated store
}

var backends = []backend{
	{"sqlite", openSQLiteTest},
	{"postgres", openPostgresTest},
}

func openSQLiteTest(t testing.TB) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "loupe.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openPostgresTest(t testing.TB) *Store {
	t.Helper()
	ctx := context.Background()
	s, err := Open(ctx, pgtest.DSN(t, "loupe_test"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// eachBackend runs test once per backend as a subtest.
func eachBackend(t *testing.T, test func(t *testing.T, s *Store)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			test(t, b.open(t))
		})
	}
}

// migrated opens a store at the current schema.
func migrated(t *testing.T, s *Store) *Store {
	t.Helper()
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

func indexes(t *testing.T, s *Store) map[string]bool {
	t.Helper()
	q := "SELECT name FROM sqlite_master WHERE type = 'index'"
	if s.dialect == postgres {
		q = "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
	}
	rows, err := s.db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		out[n] = true
	}
	return out
}

func columns(t *testing.T, s *Store, table string) map[string]bool {
	t.Helper()
	q := "SELECT name FROM pragma_table_info(?)"
	if s.dialect == postgres {
		q = "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ?"
	}
	rows, err := s.db.Query(s.rebind(q), table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			t.Fatal(err)
		}
		out[c] = true
	}
	if len(out) == 0 {
		t.Fatalf("table %s has no columns", table)
	}
	return out
}

func TestMigrateFromEmpty(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if v, err := s.Version(ctx); err != nil || v != 0 {
			t.Fatalf("empty database: version %d, %v; want 0", v, err)
		}
		for range 2 { // the second run finds nothing to do
			if err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			if v, err := s.Version(ctx); err != nil || v != SchemaVersion() {
				t.Fatalf("after Migrate: version %d, %v; want %d", v, err, SchemaVersion())
			}
		}
		var applied int
		if err := s.db.QueryRow("SELECT COUNT(*) FROM schema_migrations").Scan(&applied); err != nil || applied != SchemaVersion() {
			t.Fatalf("schema_migrations has %d rows (%v), want %d", applied, err, SchemaVersion())
		}
		idx := indexes(t, s)
		for _, want := range []string{"findings_by_order", "findings_by_tactic", "findings_by_rule", "findings_by_host"} {
			if !idx[want] {
				t.Errorf("index %s missing; have %v", want, idx)
			}
		}
	})
}

func TestMigrateFromPreviousVersion(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if err := s.migrateTo(ctx, 1); err != nil {
			t.Fatal(err)
		}
		if cols := columns(t, s, "findings"); cols["provider"] {
			t.Fatal("version 1 already has the provenance columns; the test proves nothing")
		}
		if idx := indexes(t, s); idx["findings_by_tactic"] {
			t.Fatal("version 1 already has findings_by_tactic")
		}
		// An investigation and a finding written the way version 1 of the
		// code wrote them.
		inv := Investigation{ID: "before-the-upgrade"}
		if _, err := s.db.Exec(s.rebind(`INSERT INTO investigations
    (id, name, source, time_from, time_to, options, status, error, events, findings, created, updated)
    VALUES (?, 'before the upgrade', '{}', 0, 0, '{}', 'running', '', 0, 0, 1, 1)`), inv.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.db.Exec(s.rebind(`INSERT INTO findings (investigation_id, id, tactic, tactic_id, question,
    conclusion, priority, rule_id, rule_title, source, host, first_time, last_time, event_count)
    VALUES (?, 'f1', 'Persistence', 'TA0003', 'q?', 'c.', 3, 'r1', 'Rule one', 'rule', 'h1', 5, 9, 2)`), inv.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.db.Exec(s.rebind(`INSERT INTO evidence (investigation_id, finding_id, seq, record_id, event_time)
    VALUES (?, 'f1', 0, 'rec-1', 5)`), inv.ID); err != nil {
			t.Fatal(err)
		}

		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		if v, _ := s.Version(ctx); v != SchemaVersion() {
			t.Fatalf("version %d after Migrate, want %d", v, SchemaVersion())
		}
		cols := columns(t, s, "findings")
		for _, c := range []string{"provider", "model", "prompt_version"} {
			if !cols[c] {
				t.Errorf("column %s missing after migration", c)
			}
		}
		if !indexes(t, s)["findings_by_tactic"] {
			t.Error("index findings_by_tactic missing after migration")
		}
		got, _, err := s.Findings(ctx, inv.ID, Filter{Tactic: "TA0003"}, Page{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].ID != "f1" || got[0].Count != 2 || got[0].Rule.Title != "Rule one" ||
			len(got[0].Evidence) != 1 || got[0].Evidence[0].RecordID != "rec-1" || got[0].Provenance != (Provenance{}) {
			t.Fatalf("data after migration: %+v", got)
		}
		if err := s.Check(ctx); err != nil {
			t.Fatal(err)
		}
		// The unfinished job has no owner yet: any process may claim it.
		if ok, err := s.Claim(ctx, inv.ID, "server-a", time.Unix(0, 0)); err != nil || !ok {
			t.Errorf("claim of a job from before the upgrade: %v %v", ok, err)
		}
	})
}

func TestRefuseNewerSchema(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		migrated(t, s)
		future := SchemaVersion() + 1
		if _, err := s.db.Exec(s.rebind("INSERT INTO schema_migrations (version, name, applied) VALUES (?, 'from_the_future', 0)"), future); err != nil {
			t.Fatal(err)
		}
		err := s.Migrate(ctx)
		if !errors.Is(err, ErrSchemaTooNew) {
			t.Fatalf("Migrate on a version %d database: %v, want ErrSchemaTooNew", future, err)
		}
		if !strings.Contains(err.Error(), fmt.Sprint(future)) {
			t.Errorf("error does not name the database version: %v", err)
		}
	})
}

func TestStatements(t *testing.T) {
	got := statements("-- c;\nCREATE TABLE a (\n  x INT\n);\n\n-- between\nCREATE INDEX i ON a (x);\nSELECT 1")
	want := []string{"CREATE TABLE a (\n  x INT\n);", "CREATE INDEX i ON a (x);", "SELECT 1"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("statements = %q, want %q", got, want)
	}
}

func TestMain(m *testing.M) {
	// Migrations log at info; keep test output to what fails.
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	os.Exit(m.Run())
}
