package config

import (
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
)

func TestInvestigationSettings(t *testing.T) {
	env := map[string]string{
		"LOUPE_STORE_DSN":        "postgres://loupe:s3cret@db:5432/loupe?sslmode=disable",
		"LOUPE_DATA_DIR":         "/var/lib/loupe",
		"LOUPE_MAX_UPLOAD_BYTES": "1048576",
		"LOUPE_MAX_JOBS":         "4",
		"LOUPE_FILE_ROOTS":       " /srv/logs , /data ,",
	}
	c, err := Load(nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if c.StoreDSN != env["LOUPE_STORE_DSN"] || c.DataDir != "/var/lib/loupe" || c.MaxUploadBytes != 1<<20 || c.MaxJobs != 4 {
		t.Fatalf("loaded %+v", c)
	}
	if got := c.Roots(); !slices.Equal(got, []string{"/srv/logs", "/data"}) {
		t.Fatalf("roots %q", got)
	}
	if s := c.String(); strings.Contains(s, "s3cret") || !strings.Contains(s, "store_dsn=postgres://loupe:xxxxx@db:5432") {
		t.Fatalf("String() leaks or drops the DSN: %s", s)
	}
	if _, err := Load(nil, func(k string) (string, bool) {
		if k == "LOUPE_MAX_JOBS" {
			return "0", true
		}
		return "", false
	}); err == nil {
		t.Fatal("max_jobs 0 accepted")
	}
	// The DSN may hold a password: it has no flag.
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	Bind(fs, Serve)
	if fs.Lookup("store-dsn") != nil || fs.Lookup("data-dir") == nil || fs.Lookup("max-jobs") == nil {
		t.Fatal("flags: want --data-dir and --max-jobs, no --store-dsn")
	}
}
