// Package store keeps investigations and their findings in SQL: an embedded
// SQLite file by default, or PostgreSQL. Both run the same schema, built by
// the numbered migrations in migrations/, and the same queries; the dialect
// differences (placeholders, integrity checks, migration locking) are kept in
// one small type.
//
// Times are stored as BIGINT nanoseconds since the Unix epoch in UTC, with 0
// for "no time": integers compare and sort the same in both databases, keyset
// pagination on them is exact, and nothing depends on either database's
// time-zone handling. Times outside what int64 nanoseconds can hold (before
// 1678 or after 2262) are clamped. JSON values are stored as TEXT.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	_ "modernc.org/sqlite"             // database/sql driver "sqlite"
)

// ErrNotFound is returned when an investigation does not exist.
var ErrNotFound = errors.New("not found")

// Store is a findings database. It is safe for concurrent use.
type Store struct {
	db      *sql.DB
	dialect dialect
}

type dialect uint8

const (
	sqlite dialect = iota
	postgres
)

func (d dialect) String() string {
	if d == postgres {
		return "postgres"
	}
	return "sqlite"
}

// busyTimeout is how long an SQLite writer waits for another one.
const busyTimeout = 10 * time.Second

// Open connects to the database named by dsn:
//
//   - "" opens loupe.db in the data directory (see DefaultPath);
//   - "sqlite:PATH" or a bare PATH opens that SQLite file;
//   - "postgres://…" or "postgresql://…" connects to PostgreSQL.
//
// SQLite files are opened in WAL mode with foreign keys on, a busy timeout,
// and write transactions that take the write lock when they begin, so
// concurrent writers wait for each other instead of failing. Open does not
// change the schema: call Migrate.
func Open(ctx context.Context, dsn string) (*Store, error) {
	var (
		s   *Store
		err error
	)
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		s, err = openPostgres(dsn)
	default:
		path := strings.TrimPrefix(dsn, "sqlite:")
		if path == "" {
			if path, err = DefaultPath(); err != nil {
				return nil, err
			}
		}
		s, err = openSQLite(path)
	}
	if err != nil {
		return nil, err
	}
	if err := s.db.PingContext(ctx); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("store: connect to %s: %w", Redact(dsn), err)
	}
	slog.Debug("store opened", "dialect", s.dialect.String(), "dsn", Redact(dsn))
	return s, nil
}

func openSQLite(path string) (*Store, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(busyTimeout.Milliseconds(), 10)+")")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	return &Store{db: db, dialect: sqlite}, nil
}

func openPostgres(dsn string) (*Store, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", Redact(dsn), err)
	}
	return &Store{db: db, dialect: postgres}, nil
}

// DefaultPath is where Open("") keeps the SQLite file: loupe.db in
// $LOUPE_DATA_DIR, else $XDG_DATA_HOME/loupe, else ~/.local/share/loupe.
func DefaultPath() (string, error) {
	dir := os.Getenv("LOUPE_DATA_DIR")
	if dir == "" {
		if x := os.Getenv("XDG_DATA_HOME"); x != "" {
			dir = filepath.Join(x, "loupe")
		} else {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", fmt.Errorf("store: no data directory (set LOUPE_DATA_DIR): %w", err)
			}
			dir = filepath.Join(home, ".local", "share", "loupe")
		}
	}
	return filepath.Join(dir, "loupe.db"), nil
}

// Redact returns dsn with any password replaced, for logs and errors.
func Redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		if strings.Contains(dsn, "password") {
			return "(dsn redacted)"
		}
		return dsn
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// Dialect names the database behind the store: "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.dialect.String() }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// DB is the underlying connection pool, for tests and tools.
func (s *Store) DB() *sql.DB { return s.db }

// rebind rewrites the ? placeholders of q for the store's dialect. Queries
// in this package contain no ? inside string literals.
func (s *Store) rebind(q string) string {
	if s.dialect != postgres || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// Time encoding: nanoseconds since the epoch, 0 = zero time.

var (
	minTime = time.Unix(0, -1<<63+1)
	maxTime = time.Unix(0, 1<<63-1)
)

func toNanos(t time.Time) int64 {
	switch {
	case t.IsZero():
		return 0
	case t.Before(minTime):
		return minTime.UnixNano()
	case t.After(maxTime):
		return maxTime.UnixNano()
	}
	n := t.UnixNano()
	if n == 0 {
		return 1 // the epoch itself would read back as "no time"
	}
	return n
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// nullString maps "" to SQL NULL.
func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }
