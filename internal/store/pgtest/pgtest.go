// Package pgtest gives tests a fresh schema on the real PostgreSQL server
// named by LOUPE_PG_DSN (scripts/postgres.sh start prints one), or skips
// the test when that variable is unset.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// DSN creates a schema named prefix_<random> on the server, drops it when
// the test ends, and returns a DSN whose search_path is that schema.
func DSN(t testing.TB, prefix string) string {
	t.Helper()
	dsn := os.Getenv("LOUPE_PG_DSN")
	if dsn == "" {
		t.Skip("LOUPE_PG_DSN is not set: skipping the PostgreSQL half (export LOUPE_PG_DSN=$(scripts/postgres.sh start))")
	}
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	var b [6]byte
	rand.Read(b[:])
	schema := prefix + "_" + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(context.Background(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema %s: %v", schema, err)
	}
	t.Cleanup(func() { admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE") })
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return dsn + sep + "search_path=" + schema
}
