package web

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/loupe-sec/loupe/internal/store"
)

// openPostgres gives a migrated store in a fresh schema of the PostgreSQL
// named by LOUPE_PG_DSN (scripts/postgres.sh start prints one), dropped at
// the end; the test is skipped without it.
func openPostgres(t *testing.T) *store.Store {
	t.Helper()
	dsn := os.Getenv("LOUPE_PG_DSN")
	if dsn == "" {
		t.Skip("LOUPE_PG_DSN is not set: skipping the pages over PostgreSQL (export LOUPE_PG_DSN=$(scripts/postgres.sh start))")
	}
	ctx := context.Background()
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	var b [6]byte
	rand.Read(b[:])
	schema := "loupe_web_" + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() { admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE") })
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	st, err := store.Open(ctx, dsn+sep+"search_path="+schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return st
}

// The pages over PostgreSQL: the same list, strip, timeline, filters and
// pages as over SQLite.
func TestPagesOnPostgres(t *testing.T) {
	st := openPostgres(t)
	inv, _ := fixture(t, st)
	h := New(st, Options{})
	if res, body := get(t, h, "/investigations"); res.StatusCode != 200 || !strings.Contains(body, ">FS01 intrusion<") {
		t.Fatalf("list: status %d", res.StatusCode)
	}
	res, body := get(t, h, "/investigations/"+inv.ID)
	if res.StatusCode != 200 {
		t.Fatalf("page: status %d: %s", res.StatusCode, body)
	}
	if got := ids(body); !slices.Equal(got, []string{"f01", "f02", "f03", "f04", "f05", "f06", "f07", "f08"}) {
		t.Fatalf("findings %v", got)
	}
	for _, s := range []string{`title="TA0003 Persistence">Persistence<small>TA0003</small><b>3</b>`, `class="s-critical"`, `class="vol"`,
		`?from=2024-03-19T23%3A30%3A00&amp;to=2024-03-19T23%3A30%3A59`} {
		if !strings.Contains(body, s) {
			t.Errorf("page lacks %q", s)
		}
	}
	_, body = get(t, h, "/investigations/"+inv.ID+"?tactic=TA0003&limit=2")
	if got := ids(body); !slices.Equal(got, []string{"f03", "f04"}) || !strings.Contains(body, "Next page") {
		t.Fatalf("filtered first page %v", got)
	}
	if err := st.Analyze(context.Background()); err != nil {
		t.Fatal(err)
	}
}
