package web

import (
	"context"
	"github.com/loupe-sec/loupe/internal/store/pgtest"
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
	ctx := context.Background()
	st, err := store.Open(ctx, pgtest.DSN(t, "loupe_web"))
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
