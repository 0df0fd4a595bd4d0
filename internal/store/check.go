package store

import (
	"context"
	"fmt"
	"strings"
)

// Check verifies the database: for SQLite the page-level integrity check
// and the foreign-key check, for PostgreSQL that no finding lacks its
// investigation and no evidence lacks its finding. It returns nil when all
// is well.
func (s *Store) Check(ctx context.Context) error {
	if s.dialect == sqlite {
		return s.checkSQLite(ctx)
	}
	return s.checkOrphans(ctx)
}

func (s *Store) checkSQLite(ctx context.Context) error {
	rows, err := s.db.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		return fmt.Errorf("store: integrity check: %w", err)
	}
	var problems []string
	for rows.Next() {
		var msg string
		if err := rows.Scan(&msg); err != nil {
			rows.Close()
			return fmt.Errorf("store: integrity check: %w", err)
		}
		if msg != "ok" {
			problems = append(problems, msg)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: integrity check: %w", err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("store: integrity check failed: %s", strings.Join(problems, "; "))
	}
	rows, err = s.db.QueryContext(ctx, "PRAGMA foreign_key_check")
	if err != nil {
		return fmt.Errorf("store: foreign key check: %w", err)
	}
	defer rows.Close()
	n := 0
	var first string
	for rows.Next() {
		var (
			table, parent string
			rowid, fkid   any
		)
		if err := rows.Scan(&table, &rowid, &parent, &fkid); err != nil {
			return fmt.Errorf("store: foreign key check: %w", err)
		}
		if n == 0 {
			first = fmt.Sprintf("a row of %s (rowid %v) has no %s row", table, rowid, parent)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: foreign key check: %w", err)
	}
	if n > 0 {
		return fmt.Errorf("store: foreign key check failed: %d broken references, e.g. %s", n, first)
	}
	return nil
}

func (s *Store) checkOrphans(ctx context.Context) error {
	checks := []struct{ what, q string }{
		{"findings without their investigation", `SELECT COUNT(*) FROM findings f
    WHERE NOT EXISTS (SELECT 1 FROM investigations i WHERE i.id = f.investigation_id)`},
		{"evidence without its finding", `SELECT COUNT(*) FROM evidence e
    WHERE NOT EXISTS (SELECT 1 FROM findings f WHERE f.investigation_id = e.investigation_id AND f.id = e.finding_id)`},
	}
	for _, c := range checks {
		var n int64
		if err := s.db.QueryRowContext(ctx, c.q).Scan(&n); err != nil {
			return fmt.Errorf("store: orphan check: %w", err)
		}
		if n > 0 {
			return fmt.Errorf("store: orphan check failed: %d %s", n, c.what)
		}
	}
	return nil
}
