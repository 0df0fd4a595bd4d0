package store

import (
	"context"

	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenSQLiteDefaults(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("LOUPE_DATA_DIR", filepath.Join(dir, "data"))
	ctx := context.Background()
	s, err := Open(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Dialect() != "sqlite" {
		t.Fatalf("dialect %s", s.Dialect())
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "loupe.db")); err != nil {
		t.Fatalf("Open(\"\") did not create loupe.db in LOUPE_DATA_DIR: %v", err)
	}
	var mode string
	var fk, busy int
	if err := s.db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode %q, %v; want wal", mode, err)
	}
	if err := s.db.QueryRow("PRAGMA foreign_keys").Scan(&fk); err != nil || fk != 1 {
		t.Errorf("foreign_keys %d, %v; want 1", fk, err)
	}
	if err := s.db.QueryRow("PRAGMA busy_timeout").Scan(&busy); err != nil || busy != int(busyTimeout.Milliseconds()) {
		t.Errorf("busy_timeout %d, %v; want %d", busy, err, busyTimeout.Milliseconds())
	}

	// sqlite:PATH and a bare path name the same kind of file.
	for _, dsn := range []string{"sqlite:" + filepath.Join(dir, "a.db"), filepath.Join(dir, "sub", "b.db")} {
		s, err := Open(ctx, dsn)
		if err != nil {
			t.Fatalf("Open(%q): %v", dsn, err)
		}
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		s.Close()
		if _, err := os.Stat(strings.TrimPrefix(dsn, "sqlite:")); err != nil {
			t.Errorf("Open(%q) made no file: %v", dsn, err)
		}
	}
}

func TestDefaultPath(t *testing.T) {
	t.Setenv("LOUPE_DATA_DIR", "")
	t.Setenv("XDG_DATA_HOME", "/x/data")
	if p, err := DefaultPath(); err != nil || p != filepath.Join("/x/data", "loupe", "loupe.db") {
		t.Errorf("with XDG_DATA_HOME: %q, %v", p, err)
	}
	t.Setenv("XDG_DATA_HOME", "")
	t.Setenv("HOME", "/home/ana")
	if p, err := DefaultPath(); err != nil || p != filepath.Join("/home/ana", ".local", "share", "loupe", "loupe.db") {
		t.Errorf("with HOME only: %q, %v", p, err)
	}
	t.Setenv("LOUPE_DATA_DIR", "/srv/loupe")
	if p, _ := DefaultPath(); p != filepath.Join("/srv/loupe", "loupe.db") {
		t.Errorf("with LOUPE_DATA_DIR: %q", p)
	}
}

func TestRedact(t *testing.T) {
	for _, dsn := range []string{
		"postgres://loupe:s3cretpw@db.example:5432/loupe?sslmode=require",
		"postgresql://db.example/loupe?user=loupe&password=s3cretpw",
		"host=db user=loupe password=s3cretpw",
	} {
		if r := Redact(dsn); strings.Contains(r, "s3cretpw") {
			t.Errorf("Redact(%q) = %q keeps the password", dsn, r)
		}
	}
	if r := Redact("postgres://loupe@db/x"); r != "postgres://loupe@db/x" {
		t.Errorf("Redact changed a DSN without password: %q", r)
	}
}

func TestOpenPostgresErrorHidesPassword(t *testing.T) {
	// Nothing listens on port 1: the error must not carry the password.
	_, err := Open(context.Background(), "postgres://loupe:s3cretpw@127.0.0.1:1/loupe?sslmode=disable&connect_timeout=2")
	if err == nil {
		t.Fatal("connected to port 1")
	}
	if strings.Contains(err.Error(), "s3cretpw") {
		t.Fatalf("error shows the password: %v", err)
	}
}
