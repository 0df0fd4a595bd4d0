package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// ErrSchemaTooNew is returned by Migrate when the database was migrated by
// a newer loupe than this one.
var ErrSchemaTooNew = errors.New("database schema is newer than this loupe")

type migration struct {
	version int
	name    string
	sql     string
}

// migrations are the embedded files NNNN_name.sql, in version order.
var migrations = mustLoadMigrations()

func mustLoadMigrations() []migration {
	ms, err := loadMigrations(migrationFiles, "migrations")
	if err != nil {
		panic(err)
	}
	return ms
}

func loadMigrations(fsys fs.FS, dir string) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 || !strings.HasSuffix(name, ".sql") {
			return nil, fmt.Errorf("store: migration %q is not named NNNN_name.sql", name)
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, name))
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: strings.TrimSuffix(name, ".sql"), sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("store: migration %s: want version %d", m.name, i+1)
		}
	}
	return ms, nil
}

// SchemaVersion is the schema version this code writes and reads.
func SchemaVersion() int { return len(migrations) }

// Version reports the schema version of the database: 0 when empty.
func (s *Store) Version(ctx context.Context) (int, error) {
	if err := s.ensureMigrationTable(ctx); err != nil {
		return 0, err
	}
	return s.version(ctx, s.db)
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *Store) version(ctx context.Context, q querier) (int, error) {
	var v sql.NullInt64
	if err := q.QueryRowContext(ctx, "SELECT MAX(version) FROM schema_migrations").Scan(&v); err != nil {
		return 0, fmt.Errorf("store: schema version: %w", err)
	}
	return int(v.Int64), nil
}

func (s *Store) ensureMigrationTable(ctx context.Context) error {
	_, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name    TEXT NOT NULL,
    applied BIGINT NOT NULL
)`)
	if err != nil {
		return fmt.Errorf("store: create schema_migrations: %w", err)
	}
	return nil
}

// Migrate brings the schema up to SchemaVersion, applying each pending
// migration in its own transaction. It refuses, with ErrSchemaTooNew, a
// database whose schema is newer than this code. Concurrent Migrate calls
// on one database are safe.
func (s *Store) Migrate(ctx context.Context) error {
	return s.migrateTo(ctx, len(migrations))
}

// migrateTo applies migrations up to version target.
func (s *Store) migrateTo(ctx context.Context, target int) error {
	if err := s.ensureMigrationTable(ctx); err != nil {
		return err
	}
	for _, m := range migrations[:target] {
		if err := s.apply(ctx, m); err != nil {
			return err
		}
	}
	// A database already past every migration is refused.
	v, err := s.version(ctx, s.db)
	if err != nil {
		return err
	}
	if v > len(migrations) {
		return fmt.Errorf("%w: the database is at version %d, this loupe knows up to %d; upgrade loupe", ErrSchemaTooNew, v, len(migrations))
	}
	return nil
}

// apply runs one migration unless it has been applied already.
func (s *Store) apply(ctx context.Context, m migration) error {
	tx, err := s.db.BeginTx(ctx, nil) // SQLite: BEGIN IMMEDIATE, the write lock
	if err != nil {
		return fmt.Errorf("store: migration %s: %w", m.name, err)
	}
	defer tx.Rollback()
	if s.dialect == postgres {
		// Serialise migrators; released at commit.
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(7369767265)"); err != nil {
			return fmt.Errorf("store: migration %s: lock: %w", m.name, err)
		}
	}
	v, err := s.version(ctx, tx)
	if err != nil {
		return err
	}
	if v > len(migrations) {
		return fmt.Errorf("%w: the database is at version %d, this loupe knows up to %d; upgrade loupe", ErrSchemaTooNew, v, len(migrations))
	}
	if v >= m.version {
		return nil
	}
	if v != m.version-1 {
		return fmt.Errorf("store: migration %s: database is at version %d", m.name, v)
	}
	for _, stmt := range statements(m.sql) {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("store: migration %s: %w", m.name, err)
		}
	}
	if _, err := tx.ExecContext(ctx, s.rebind("INSERT INTO schema_migrations (version, name, applied) VALUES (?, ?, ?)"),
		m.version, m.name, time.Now().UnixNano()); err != nil {
		return fmt.Errorf("store: migration %s: %w", m.name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: migration %s: commit: %w", m.name, err)
	}
	slog.Info("store: schema migrated", "dialect", s.dialect.String(), "version", m.version, "migration", m.name)
	return nil
}

// statements splits a migration file into statements: each ends with a ;
// at the end of a line. Lines starting with -- are comments.
func statements(src string) []string {
	var (
		out []string
		cur strings.Builder
	)
	for line := range strings.SplitSeq(src, "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(t, ";") {
			out = append(out, strings.TrimSpace(cur.String()))
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}
