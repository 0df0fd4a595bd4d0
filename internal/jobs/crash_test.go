package jobs

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/loupe-sec/loupe/internal/store/pgtest"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loupe-sec/loupe/internal/pipeline"
	"github.com/loupe-sec/loupe/internal/store"
)

// The crash test re-runs this test binary as the process that owns the
// job (helperEnv names its role), so it can be killed with SIGKILL.
const helperEnv = "LOUPE_JOBS_CRASH_HELPER"

func TestMain(m *testing.M) {
	if role := os.Getenv(helperEnv); role != "" {
		os.Exit(crashHelper(role))
	}
	slog.SetDefault(slog.New(slog.DiscardHandler)) // the store logs its migrations
	os.Exit(m.Run())
}

// crashHelper is the child process: "start" creates a job over the file
// $LOUPE_JOBS_CRASH_FILE and prints its id, then runs until the job ends
// (or the process is killed); "recover" resumes what a dead process left
// and waits for it, printing the recovery as JSON.
func crashHelper(role string) int {
	ctx := context.Background()
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	s, err := store.Open(ctx, os.Getenv("LOUPE_JOBS_CRASH_DSN"))
	if err != nil {
		log.Error("open", "err", err)
		return 1
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		log.Error("migrate", "err", err)
		return 1
	}
	m, err := New(ctx, Config{Store: s, CommitEvery: 20 * time.Millisecond, MaxBatch: 50, Logger: log})
	if err != nil {
		log.Error("manager", "err", err)
		return 1
	}
	defer m.Close()
	var ids []string
	switch role {
	case "start":
		inv, err := m.Start(ctx, store.Investigation{Name: "crash test", Source: fileSource(os.Getenv("LOUPE_JOBS_CRASH_FILE"))})
		if err != nil {
			log.Error("start", "err", err)
			return 1
		}
		fmt.Println(inv.ID)
		ids = []string{inv.ID}
	case "recover":
		rec, err := m.Recover(ctx)
		if err != nil {
			log.Error("recover", "err", err)
			return 1
		}
		json.NewEncoder(os.Stdout).Encode(rec)
		ids = rec.Resumed
	default:
		return 2
	}
	for _, id := range ids {
		m.Wait(ctx, id)
	}
	return 0
}

func TestCrashMidJobAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: -short")
	}
	t.Run("sqlite", func(t *testing.T) {
		dir := t.TempDir()
		crashTest(t, dir, filepath.Join(dir, "loupe.db"))
	})
	t.Run("postgres", func(t *testing.T) {
		crashTest(t, t.TempDir(), postgresDSN(t))
	})
}

// postgresDSN gives a fresh schema on the server named by LOUPE_PG_DSN, or
// skips.
func postgresDSN(t *testing.T) string {
	t.Helper()
	return pgtest.DSN(t, "loupe_jobs")
}

func crashTest(t *testing.T, dir, dsn string) {
	ctx := context.Background()
	n := 1_000_000
	if raceEnabled {
		n = 100_000 // the race detector makes the children ~10x slower; -race checks the locking, the plain run the scale
	}
	path := filepath.Join(dir, "events.log")
	t0 := time.Now()
	episodes := writeEvents(t, path, n, 2000)
	t.Logf("generated %d events (%d intrusion episodes) in %v", n, episodes, time.Since(t0).Round(time.Millisecond))

	s, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}

	// The first process: start the job, kill it mid-way.
	child, stdout, stderr := startHelper(t, "start", dsn, path)
	id, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		child.Process.Kill()
		child.Wait()
		t.Fatalf("no investigation id from the child: %v\n%s", err, stderr)
	}
	id = strings.TrimSpace(id)
	var (
		snapshot   map[string]*store.Stored
		checkpoint int64
	)
	deadline := time.Now().Add(60 * time.Second)
	for {
		inv, err := s.GetInvestigation(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := s.JobState(ctx, id)
		if inv.Status.Final() {
			t.Fatalf("the job ended (%s) before it could be killed at %d events: make the input larger", inv.Status, st.Checkpoint)
		}
		if inv.Findings >= 40 && st.Checkpoint >= int64(n)/5 {
			// Everything listed now was committed before the kill.
			snapshot = stored(t, s, id)
			checkpoint = st.Checkpoint
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 60 s: %s, checkpoint %d, %d findings", inv.Status, st.Checkpoint, inv.Findings)
		}
		time.Sleep(2 * time.Millisecond)
	}
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err = child.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die of SIGKILL: %v", err)
	}

	// After the crash: consistent, nothing committed is lost.
	if err := s.Check(ctx); err != nil {
		t.Fatalf("integrity check after SIGKILL: %v", err)
	}
	inv, _ := s.GetInvestigation(ctx, id)
	st, _ := s.JobState(ctx, id)
	if inv.Status != store.Running || st.Checkpoint < checkpoint || st.Checkpoint >= int64(n) {
		t.Fatalf("after the kill: %s, checkpoint %d (was %d at the snapshot, input %d); want running, part way",
			inv.Status, st.Checkpoint, checkpoint, n)
	}
	after := stored(t, s, id)
	for fid := range snapshot {
		if after[fid] == nil {
			t.Errorf("finding %s, committed before the kill, is missing", fid)
		}
	}
	t.Logf("killed at checkpoint %d of %d events with %d findings committed (%d seen before the kill)",
		st.Checkpoint, n, len(after), len(snapshot))

	// The second process resumes the job to the end.
	child, stdout, stderr = startHelper(t, "recover", dsn, "")
	out, _ := io.ReadAll(stdout)
	if err := child.Wait(); err != nil {
		t.Fatalf("recovering child: %v\n%s", err, stderr)
	}
	var rec Recovery
	if err := json.Unmarshal(out, &rec); err != nil || len(rec.Resumed) != 1 || rec.Resumed[0] != id {
		t.Fatalf("recovery %s (%v); want %s resumed\n%s", out, err, id, stderr)
	}
	if !strings.Contains(stderr.String(), fmt.Sprintf(`"checkpoint":%d`, st.Checkpoint)) {
		t.Errorf("the resumed job did not start from checkpoint %d:\n%s", st.Checkpoint, stderr)
	}
	done, _ := s.GetInvestigation(ctx, id)
	if done.Status != store.Done || done.Events != int64(n) {
		t.Fatalf("resumed job ended %s %q with %d events; want done with %d", done.Status, done.Error, done.Events, n)
	}
	if err := s.Check(ctx); err != nil {
		t.Fatalf("integrity check after the resumed run: %v", err)
	}
	final := stored(t, s, id)
	for fid := range snapshot {
		if final[fid] == nil {
			t.Errorf("finding %s, committed before the kill, is missing after the resume", fid)
		}
	}
	// Same findings as one uninterrupted run.
	want := reference(t, path, pipeline.Options{})
	sameFindings(t, final, want)
	if done.Findings != int64(len(want)) {
		t.Errorf("investigation counts %d findings, want %d", done.Findings, len(want))
	}
	if v := volumeTotal(t, s, id); v != int64(n) {
		t.Errorf("event volume totals %d, want %d: each event counted once across the crash", v, n)
	}
}

func startHelper(t *testing.T, role, dsn, file string) (*exec.Cmd, io.Reader, *strings.Builder) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+role, "LOUPE_JOBS_CRASH_DSN="+dsn, "LOUPE_JOBS_CRASH_FILE="+file)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	// Read stderr only after Wait: exec copies into it until then.
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, stdout, &stderr
}
