package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loupe-sec/loupe/internal/event"
	"github.com/loupe-sec/loupe/internal/finding"
	"github.com/loupe-sec/loupe/internal/pipeline"
	"github.com/loupe-sec/loupe/internal/source"
	"github.com/loupe-sec/loupe/internal/source/origin/lokitest"
	"github.com/loupe-sec/loupe/internal/store"
)

func openStore(t testing.TB, dir string) *store.Store {
	t.Helper()
	ctx := context.Background()
	s, err := store.Open(ctx, filepath.Join(dir, "loupe.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

func fileSource(paths ...string) store.Source {
	b, _ := json.Marshal(FileParams{Paths: paths})
	return store.Source{Kind: KindFile, Params: b}
}

// reference runs the pipeline over path directly and returns the final
// version of every finding (a later finding with the same id replaces the
// earlier, as the store does).
func reference(t testing.TB, path string, opt pipeline.Options) map[string]*finding.Finding {
	t.Helper()
	out := map[string]*finding.Finding{}
	for f, err := range pipeline.Run(context.Background(), source.ReadFiles(context.Background(), []string{path}, source.Options{}), opt, nil) {
		if err != nil {
			var le *source.LineError
			if errors.As(err, &le) {
				continue
			}
			t.Fatal(err)
		}
		out[f.ID] = f
	}
	return out
}

// stored reads every finding of an investigation.
func stored(t testing.TB, s *store.Store, id string) map[string]*store.Stored {
	t.Helper()
	out := map[string]*store.Stored{}
	cursor := ""
	for {
		page, next, err := s.Findings(context.Background(), id, store.Filter{}, store.Page{Limit: 1000, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range page {
			if _, dup := out[f.ID]; dup {
				t.Fatalf("finding %s listed twice", f.ID)
			}
			out[f.ID] = f
		}
		if next == "" {
			return out
		}
		cursor = next
	}
}

// sameFindings compares the store with the reference: same ids, counts,
// times and evidence.
func sameFindings(t testing.TB, got map[string]*store.Stored, want map[string]*finding.Finding) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%d findings stored, want %d", len(got), len(want))
	}
	for id, w := range want {
		g, ok := got[id]
		if !ok {
			t.Errorf("finding %s (%s on %s) missing", id, w.Rule.ID, w.Host)
			continue
		}
		if g.Count != w.Count || !g.First.Equal(w.First) || !g.Last.Equal(w.Last) || g.Conclusion != w.Conclusion {
			t.Errorf("finding %s: stored count %d %v..%v %q, want %d %v..%v %q", id, g.Count, g.First, g.Last, g.Conclusion,
				w.Count, w.First, w.Last, w.Conclusion)
		}
		var ge, we []string
		for _, e := range g.Evidence {
			ge = append(ge, e.RecordID)
		}
		for _, e := range w.Evidence {
			we = append(we, e.RecordID)
		}
		if !slices.Equal(ge, we) {
			t.Errorf("finding %s: evidence %v, want %v", id, ge, we)
		}
	}
}

// volumeTotal sums the stored event volume of an investigation.
func volumeTotal(t testing.TB, s *store.Store, id string) int64 {
	t.Helper()
	q := "SELECT COALESCE(SUM(events), 0) FROM event_volume WHERE investigation_id = ?"
	if s.Dialect() == "postgres" {
		q = strings.Replace(q, "?", "$1", 1)
	}
	var n int64
	if err := s.DB().QueryRow(q, id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func waitFinal(t testing.TB, s *store.Store, id string) store.Investigation {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		inv, err := s.GetInvestigation(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if inv.Status.Final() {
			return inv
		}
		if time.Now().After(deadline) {
			t.Fatalf("investigation %s still %s after 60 s", id, inv.Status)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func newManager(t testing.TB, cfg Config) *Manager {
	t.Helper()
	m, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

func TestJobRunsToDone(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events.log")
	episodes := writeEvents(t, path, 30000, 1500)
	s := openStore(t, dir)
	var (
		observed atomic.Int64
		ended    = make(chan error, 1)
	)
	m := newManager(t, Config{Store: s, CommitEvery: 5 * time.Millisecond, MaxBatch: 7,
		Observe: func(st *pipeline.Stats) (func(*finding.Finding), func(error)) {
			return func(*finding.Finding) { observed.Add(1) }, func(err error) { ended <- err }
		}})
	ctx := context.Background()
	inv, err := m.Start(ctx, store.Investigation{Name: "file job", Source: fileSource(path)})
	if err != nil {
		t.Fatal(err)
	}
	if inv.ID == "" || inv.Status != store.Queued {
		t.Fatalf("started %+v", inv)
	}
	done := waitFinal(t, s, inv.ID)
	if done.Status != store.Done || done.Error != "" || done.Events != 30000 {
		t.Fatalf("ended %s %q with %d events, want done with 30000", done.Status, done.Error, done.Events)
	}
	want := reference(t, path, pipeline.Options{})
	if len(want) < 4*episodes {
		t.Fatalf("reference has %d findings for %d episodes; the generator makes too few", len(want), episodes)
	}
	got := stored(t, s, inv.ID)
	sameFindings(t, got, want)
	if done.Findings != int64(len(want)) {
		t.Errorf("investigation counts %d findings, %d stored", done.Findings, len(want))
	}
	st, err := s.JobState(ctx, inv.ID)
	if err != nil || st.Checkpoint != 30000 || !strings.Contains(st.SourceState, `"size"`) {
		t.Fatalf("job state %+v, %v; want checkpoint 30000 and a fingerprint", st, err)
	}
	if v := volumeTotal(t, s, inv.ID); v != 30000 {
		t.Errorf("event volume totals %d, want 30000", v)
	}
	select {
	case err := <-ended:
		if err != nil || observed.Load() < int64(len(want)) {
			t.Errorf("observer: end(%v) after %d findings; want nil after at least %d", err, observed.Load(), len(want))
		}
	case <-time.After(5 * time.Second):
		t.Error("observer end not called")
	}
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestTimeRangeAndOptions(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events.log")
	writeEvents(t, path, 20000, 2000)
	s := openStore(t, dir)
	m := newManager(t, Config{Store: s})
	ctx := context.Background()
	// Episodes start at event 1000 + k*2000, 250 ms apart: keep the first
	// two hours and twenty minutes of event time (events 0..33600).
	base := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	to := base.Add(10*time.Minute + 20*time.Second)
	inv, err := m.Start(ctx, store.Investigation{Source: fileSource(path), To: to,
		Options: json.RawMessage(`{"max_evidence": 2}`)})
	if err != nil {
		t.Fatal(err)
	}
	done := waitFinal(t, s, inv.ID)
	if done.Status != store.Done {
		t.Fatalf("status %s %q", done.Status, done.Error)
	}
	got := stored(t, s, inv.ID)
	if len(got) == 0 {
		t.Fatal("no findings in range")
	}
	for _, f := range got {
		if f.Last.After(to) {
			t.Errorf("finding %s at %v is after the range end %v", f.ID, f.Last, to)
		}
		if len(f.Evidence) > 2 {
			t.Errorf("finding %s has %d evidence events, options said 2", f.ID, len(f.Evidence))
		}
	}
	all := reference(t, path, pipeline.Options{})
	if len(got) >= len(all) {
		t.Errorf("range kept %d of %d findings; want fewer", len(got), len(all))
	}
}

func TestStartRejectsBadInput(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	m := newManager(t, Config{Store: s})
	ctx := context.Background()
	path := filepath.Join(dir, "x.log")
	os.WriteFile(path, []byte("Mar  2 00:00:00 h sshd[1]: hello\n"), 0o600)
	now := time.Now()
	for name, inv := range map[string]store.Investigation{
		"unknown kind":     {Source: store.Source{Kind: "ftp"}},
		"loki no query":    {Source: store.Source{Kind: "loki", Params: json.RawMessage(`{"url":"http://127.0.0.1:1","start":"2024-01-01T00:00:00Z"}`)}},
		"loki bad param":   {Source: store.Source{Kind: "loki", Params: json.RawMessage(`{"url":"http://127.0.0.1:1","query":"{a=\"b\"}","start":"2024-01-01T00:00:00Z","colour":1}`)}},
		"no path":          {Source: store.Source{Kind: KindFile, Params: json.RawMessage(`{}`)}},
		"unknown param":    {Source: store.Source{Kind: KindFile, Params: json.RawMessage(`{"path":"x","glob":"*"}`)}},
		"missing file":     {Source: fileSource(filepath.Join(dir, "nope.log"))},
		"directory":        {Source: fileSource(dir)},
		"unknown option":   {Source: fileSource(path), Options: json.RawMessage(`{"max_evidenc":3}`)},
		"option too large": {Source: fileSource(path), Options: json.RawMessage(`{"max_tracked":1e12}`)},
		"bad window":       {Source: fileSource(path), Options: json.RawMessage(`{"fail_window":"soon"}`)},
		"reversed range":   {Source: fileSource(path), From: now, To: now.Add(-time.Hour)},
	} {
		if _, err := m.Start(ctx, inv); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
	if list, _, _ := s.ListInvestigations(ctx, store.Page{}); len(list) != 0 {
		t.Errorf("rejected requests left %d investigations", len(list))
	}
}

// slowSource yields n events, one at a time, until ctx ends; every 50th
// one is a failed logon, so brute forces are found along the way.
func slowSource(n int, pause time.Duration) Opener {
	return func(ctx context.Context, src store.Source) (iter.Seq2[*event.Event, error], error) {
		return func(yield func(*event.Event, error) bool) {
			base := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
			for i := range n {
				if ctx.Err() != nil {
					yield(nil, ctx.Err())
					return
				}
				line := base.Add(time.Duration(i)*time.Second).Format(time.Stamp) + " h1 sshd[7]: Failed password for root from 198.51.100.9 port 22 ssh2"
				if i%7 == 0 {
					line = base.Add(time.Duration(i)*time.Second).Format(time.Stamp) + " h1 CRON[1]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)"
				}
				ev, err := source.ParseLine([]byte(line), int64(i+1), source.Options{Name: "slow"})
				if !yield(ev, err) {
					return
				}
				time.Sleep(pause)
			}
		}, nil
	}
}

func TestCancel(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	m := newManager(t, Config{Store: s, Open: slowSource(1_000_000, time.Millisecond),
		Check: func(store.Source) error { return nil }, CommitEvery: 10 * time.Millisecond})
	ctx := context.Background()
	inv, err := m.Start(ctx, store.Investigation{Source: store.Source{Kind: "slow"}})
	if err != nil {
		t.Fatal(err)
	}
	// Let it find something first.
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, _ := s.GetInvestigation(ctx, inv.ID)
		if got.Findings > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no finding committed after 30 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	p, ok := m.Progress(inv.ID)
	if !ok || !p.Running || p.Read == 0 || p.EventsPerSecond <= 0 {
		t.Fatalf("progress of a running job: %+v, %v", p, ok)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := m.Cancel(cctx, inv.ID); err != nil {
		t.Fatal(err)
	}
	got, _ := s.GetInvestigation(ctx, inv.ID)
	if got.Status != store.Cancelled || got.Error != ErrCancelled.Error() || got.Findings == 0 {
		t.Fatalf("after cancel: %s %q, %d findings", got.Status, got.Error, got.Findings)
	}
	if err := m.Cancel(cctx, inv.ID); !errors.Is(err, ErrFinished) {
		t.Fatalf("second cancel: %v, want ErrFinished", err)
	}
	if err := m.Cancel(cctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("cancel of an unknown id: %v", err)
	}
	if _, ok := m.Progress(inv.ID); ok {
		t.Fatal("a cancelled job still has live progress")
	}
}

func TestQueuedBeyondMaxJobs(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	m := newManager(t, Config{Store: s, MaxJobs: 1, Open: slowSource(1_000_000, time.Millisecond),
		Check: func(store.Source) error { return nil }})
	ctx := context.Background()
	first, err := m.Start(ctx, store.Investigation{Source: store.Source{Kind: "slow"}})
	if err != nil {
		t.Fatal(err)
	}
	second, err := m.Start(ctx, store.Investigation{Source: store.Source{Kind: "slow"}})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	p1, _ := m.Progress(first.ID)
	p2, ok := m.Progress(second.ID)
	if !ok || p1.Running == p2.Running {
		t.Fatalf("one slot: first %+v, second %+v; want one running, one waiting", p1, p2)
	}
	if p2.Running {
		first, second = second, first // second: the one waiting
		p2 = p1
	}
	if p2.Read != 0 {
		t.Fatalf("the waiting job read %d events", p2.Read)
	}
	if got, _ := s.GetInvestigation(ctx, second.ID); got.Status != store.Queued {
		t.Fatalf("waiting job is %s, want queued", got.Status)
	}
	if got, _ := s.GetInvestigation(ctx, first.ID); got.Status != store.Running {
		t.Fatalf("job with the slot is %s, want running", got.Status)
	}
	// Cancelling the queued one ends it without it ever running.
	if err := m.Cancel(ctx, second.ID); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetInvestigation(ctx, second.ID); got.Status != store.Cancelled || got.Events != 0 {
		t.Fatalf("cancelled queued job: %+v", got)
	}
}

// TestResumeAfterInterruption stops a run part way, as a crash would
// leave it (running, some batches committed), then lets a new manager
// recover it: the result equals an uninterrupted run.
func TestResumeAfterInterruption(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events.log")
	writeEvents(t, path, 40000, 1000)
	s := openStore(t, dir)
	ctx := context.Background()
	src := fileSource(path)
	inv, err := s.CreateInvestigation(ctx, store.Investigation{Name: "interrupted", Source: src})
	if err != nil {
		t.Fatal(err)
	}
	fp, _ := fileFingerprint(src)
	if err := s.SetSourceState(ctx, inv.ID, fp); err != nil {
		t.Fatal(err)
	}
	// The first process: it gets half way, then stops for good.
	events, _ := OpenFiles(ctx, src)
	n := 0
	for f, err := range Record(ctx, s, inv.ID, events, RecordOptions{CommitEvery: time.Nanosecond}, nil) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 40 {
			_ = f
			break
		}
	}
	st, _ := s.JobState(ctx, inv.ID)
	before := stored(t, s, inv.ID)
	if st.Checkpoint == 0 || st.Checkpoint >= 40000 || len(before) < 30 {
		t.Fatalf("interrupted run: checkpoint %d, %d findings; want part way", st.Checkpoint, len(before))
	}
	if got, _ := s.GetInvestigation(ctx, inv.ID); got.Status != store.Running {
		t.Fatalf("interrupted run is %s, want running", got.Status)
	}

	m := newManager(t, Config{Store: s})
	rec, err := m.Recover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rec.Resumed, []string{inv.ID}) || len(rec.Failed) != 0 {
		t.Fatalf("recovery %+v", rec)
	}
	done := waitFinal(t, s, inv.ID)
	if done.Status != store.Done || done.Events != 40000 {
		t.Fatalf("resumed job ended %s %q with %d events", done.Status, done.Error, done.Events)
	}
	got := stored(t, s, inv.ID)
	for id := range before {
		if got[id] == nil {
			t.Errorf("finding %s committed before the interruption is gone", id)
		}
	}
	sameFindings(t, got, reference(t, path, pipeline.Options{}))
	if v := volumeTotal(t, s, inv.ID); v != 40000 {
		t.Errorf("event volume totals %d after the resume, want 40000 (each event once)", v)
	}
}

func TestRecoverFailsWhatCannotBeResumed(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	ctx := context.Background()
	path := filepath.Join(dir, "a.log")
	writeEvents(t, path, 100, 0)
	mk := func(inv store.Investigation, state string) string {
		created, err := s.CreateInvestigation(ctx, inv)
		if err != nil {
			t.Fatal(err)
		}
		if state != "" {
			s.SetSourceState(ctx, created.ID, state)
		}
		if err := s.Commit(ctx, created.ID, nil, nil, 10, 10); err != nil {
			t.Fatal(err)
		}
		return created.ID
	}
	fp, _ := fileFingerprint(fileSource(path))
	changed := mk(store.Investigation{Source: fileSource(path)}, strings.Replace(fp, `"size":`, `"size":1`, 1))
	missing := mk(store.Investigation{Source: fileSource(filepath.Join(dir, "gone.log"))}, fp)
	openRange := mk(store.Investigation{Source: store.Source{Kind: "loki", Params: json.RawMessage(`{"url":"http://127.0.0.1:1","query":"{job=\"x\"}"}`)},
		From: time.Now().Add(-time.Hour)}, "")
	cli := mk(store.Investigation{Source: fileSource(path), Options: json.RawMessage(`{"origin":"cli"}`)}, fp)
	m := newManager(t, Config{Store: s, StaleAfter: time.Hour})
	rec, err := m.Recover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(rec.Failed)
	want := []string{changed, missing, openRange}
	slices.Sort(want)
	if !slices.Equal(rec.Failed, want) || len(rec.Resumed) != 0 || !slices.Equal(rec.Skipped, []string{cli}) {
		t.Fatalf("recovery %+v; want failed %v, skipped [%s]", rec, want, cli)
	}
	for _, id := range want {
		inv, _ := s.GetInvestigation(ctx, id)
		if inv.Status != store.Failed || !strings.HasPrefix(inv.Error, "interrupted: ") {
			t.Errorf("%s: %s %q, want failed with an interrupted reason", id, inv.Status, inv.Error)
		}
	}
	// A cli run that stopped committing long ago is dead: failed.
	m2 := newManager(t, Config{Store: s, StaleAfter: time.Nanosecond})
	rec, _ = m2.Recover(ctx)
	if !slices.Equal(rec.Failed, []string{cli}) {
		t.Fatalf("stale cli run: %+v", rec)
	}
}

func TestCloseLeavesJobsResumable(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	ctx := context.Background()
	m, err := New(ctx, Config{Store: s, Open: slowSource(1_000_000, time.Millisecond),
		Check: func(store.Source) error { return nil }, CommitEvery: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	inv, err := m.Start(ctx, store.Investigation{Source: store.Source{Kind: "slow"}})
	if err != nil {
		t.Fatal(err)
	}
	for p, _ := m.Progress(inv.ID); p.Read < 10; p, _ = m.Progress(inv.ID) {
		time.Sleep(time.Millisecond)
	}
	m.Close()
	got, _ := s.GetInvestigation(ctx, inv.ID)
	st, _ := s.JobState(ctx, inv.ID)
	if got.Status != store.Running || st.Checkpoint == 0 {
		t.Fatalf("after Close: %s %q, checkpoint %d, events %d; want running with progress committed", got.Status, got.Error, st.Checkpoint, got.Events)
	}
	if _, err := m.Start(ctx, store.Investigation{Source: store.Source{Kind: "slow"}}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Start after Close: %v", err)
	}
}

func TestSpool(t *testing.T) {
	dir := t.TempDir()
	path, err := Spool(dir, strings.NewReader("hello\n"), 6)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "hello\n" || filepath.Dir(path) != filepath.Join(dir, "uploads") {
		t.Fatalf("spooled %q at %s", b, path)
	}
	if _, err := Spool(dir, strings.NewReader("hello!\n"), 6); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized upload: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "uploads")); len(ents) != 1 {
		t.Fatalf("%d files in uploads, want only the first (the oversized one removed)", len(ents))
	}
}

// TestRemoteSourceJob runs jobs over a Loki query (the in-repo Loki test
// server, driven by package origin): the time range is pushed down, and a
// closed-range job interrupted part way is resumed from the start, each
// finding and each event counted once.
func TestRemoteSourceJob(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "testdata", "attack", "falco.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	loki := lokitest.New()
	defer loki.Close()
	var first, last time.Time
	lines := 0
	for _, l := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var rec struct{ Time time.Time }
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatal(err)
		}
		loki.Push(map[string]string{"job": "falco"}, lokitest.Entry{Time: rec.Time.UnixNano(), Line: l})
		if first.IsZero() || rec.Time.Before(first) {
			first = rec.Time
		}
		if rec.Time.After(last) {
			last = rec.Time
		}
		lines++
	}
	dir := t.TempDir()
	s := openStore(t, dir)
	ctx := context.Background()
	src := store.Source{Kind: "loki", Params: json.RawMessage(fmt.Sprintf(`{"url":%q,"query":"{job=\"falco\"}","page_size":7}`, loki.URL))}
	m := newManager(t, Config{Store: s})
	whole, err := m.Start(ctx, store.Investigation{Source: src, From: first, To: last})
	if err != nil {
		t.Fatal(err)
	}
	done := waitFinal(t, s, whole.ID)
	want := stored(t, s, whole.ID)
	if done.Status != store.Done || done.Events != int64(lines) || len(want) == 0 {
		t.Fatalf("loki job: %s %q, %d events of %d, %d findings", done.Status, done.Error, done.Events, lines, len(want))
	}
	if v := volumeTotal(t, s, whole.ID); v != int64(lines) {
		t.Errorf("event volume %d, want %d", v, lines)
	}

	// A narrower range reads fewer events from Loki itself.
	queries := loki.Queries.Load()
	part, _ := m.Start(ctx, store.Investigation{Source: src, From: first, To: first.Add(time.Minute)})
	if got := waitFinal(t, s, part.ID); got.Status != store.Done || got.Events == 0 || got.Events >= int64(lines) {
		t.Errorf("one-minute range read %d of %d events (%s %q)", got.Events, lines, got.Status, got.Error)
	}
	if loki.Queries.Load() == queries {
		t.Error("the ranged job made no query")
	}

	// Interrupted after a few findings, then recovered by a new manager.
	inv, err := s.CreateInvestigation(ctx, store.Investigation{Source: src, From: first, To: last})
	if err != nil {
		t.Fatal(err)
	}
	events, err := DefaultOpener(ctx, withRange(inv.Source, inv.From, inv.To))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, err := range Record(ctx, s, inv.ID, events, RecordOptions{CommitEvery: time.Nanosecond}, nil) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 3 {
			break
		}
	}
	if v := volumeTotal(t, s, inv.ID); v == 0 || v >= int64(lines) {
		t.Fatalf("interrupted run counted %d events, want part of %d", v, lines)
	}
	m2 := newManager(t, Config{Store: s})
	rec, err := m2.Recover(ctx)
	if err != nil || !slices.Equal(rec.Resumed, []string{inv.ID}) {
		t.Fatalf("recovery %+v, %v", rec, err)
	}
	if got := waitFinal(t, s, inv.ID); got.Status != store.Done || got.Events != int64(lines) {
		t.Fatalf("resumed loki job: %s %q, %d events", got.Status, got.Error, got.Events)
	}
	got := stored(t, s, inv.ID)
	if len(got) != len(want) {
		t.Errorf("resumed job has %d findings, the whole run %d", len(got), len(want))
	}
	for id, w := range want {
		if g := got[id]; g == nil || g.Count != w.Count {
			t.Errorf("finding %s: resumed %v, whole run count %d", id, g, w.Count)
		}
	}
	if v := volumeTotal(t, s, inv.ID); v != int64(lines) {
		t.Errorf("event volume after the resume %d, want %d (counted afresh)", v, lines)
	}
}

// A job still queued when its process died never started: Recover starts
// it from the beginning.
func TestRecoverStartsQueued(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events.log")
	writeEvents(t, path, 5000, 1000)
	s := openStore(t, dir)
	ctx := context.Background()
	src := fileSource(path)
	inv, err := s.CreateInvestigation(ctx, store.Investigation{Source: src})
	if err != nil {
		t.Fatal(err)
	}
	fp, _ := fileFingerprint(src)
	s.SetSourceState(ctx, inv.ID, fp)
	m := newManager(t, Config{Store: s})
	rec, err := m.Recover(ctx)
	if err != nil || !slices.Equal(rec.Resumed, []string{inv.ID}) {
		t.Fatalf("recovery %+v, %v", rec, err)
	}
	if p, ok := m.Progress(inv.ID); ok && p.Resumed {
		t.Error("a queued job is reported as resumed")
	}
	done := waitFinal(t, s, inv.ID)
	if done.Status != store.Done || done.Events != 5000 {
		t.Fatalf("queued job after recovery: %s %q, %d events", done.Status, done.Error, done.Events)
	}
	sameFindings(t, stored(t, s, inv.ID), reference(t, path, pipeline.Options{}))
}

// Two servers share one store: each leaves the other's live jobs alone,
// and when one stops, the other takes its unfinished job over and
// finishes it.
func TestServersShareAStore(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	path := filepath.Join(dir, "events.log")
	writeEvents(t, path, 3000, 100)
	slowFile := func(ctx context.Context, src store.Source) (iter.Seq2[*event.Event, error], error) {
		evs, err := DefaultOpener(ctx, src)
		return func(yield func(*event.Event, error) bool) {
			for ev, err := range evs {
				time.Sleep(time.Millisecond)
				if !yield(ev, err) {
					return
				}
			}
		}, err
	}
	mk := func(owner string) *Manager {
		return newManager(t, Config{Store: openStore(t, dir), Owner: owner, StaleAfter: 400 * time.Millisecond,
			Open: slowFile, CommitEvery: 5 * time.Millisecond})
	}
	a, b := mk("server-a"), mk("server-b")
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	var reports atomic.Int64
	go a.Supervise(sctx, nil)
	go b.Supervise(sctx, func(rec Recovery, err error) { reports.Add(1) })

	inv, err := a.Start(ctx, store.Investigation{Source: fileSource(path)})
	if err != nil {
		t.Fatal(err)
	}
	// While a runs it, b's recoveries (every 200 ms) leave it alone.
	if rec, err := b.Recover(ctx); err != nil || !slices.Equal(rec.Skipped, []string{inv.ID}) || len(rec.Resumed) != 0 {
		t.Fatalf("b's recovery of a live job of a: %+v %v", rec, err)
	}
	time.Sleep(900 * time.Millisecond)
	if slices.Contains(b.Running(), inv.ID) {
		t.Fatal("b took over a job a keeps fresh")
	}
	if got, _ := b.cfg.Store.GetInvestigation(ctx, inv.ID); got.Owner != "server-a" || got.Status.Final() {
		t.Fatalf("job while a runs it: owner %q, %s", got.Owner, got.Status)
	}

	// A cancel sent to b stops the job a runs.
	other, err := a.Start(ctx, store.Investigation{Source: fileSource(path)})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Cancel(ctx, other.ID); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); slices.Contains(a.Running(), other.ID); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a still runs a job cancelled through b")
		}
	}
	if got := waitFinal(t, a.cfg.Store, other.ID); got.Status != store.Cancelled {
		t.Errorf("job cancelled through b ended %s", got.Status)
	}

	// a stops (its job stays running in the store, unfinished); once the
	// job is stale, b takes it over and finishes it.
	a.Close()
	done := waitFinal(t, b.cfg.Store, inv.ID)
	if done.Status != store.Done || done.Owner != "server-b" || done.Events != 3000 {
		t.Fatalf("after a stopped: %s %q, owner %q, %d events", done.Status, done.Error, done.Owner, done.Events)
	}
	if reports.Load() == 0 {
		t.Error("b's supervision reported no takeover")
	}
}

// Supervise's recoveries never touch a job of this owner that is in the
// store but not running here yet (Start is between creating it and
// launching it); the recovery at startup takes such a job for one a
// previous run of the same owner left (here it fails it: no fingerprint
// of its source was recorded).
func TestLaterRecoveryLeavesStartingJobsAlone(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events.log")
	writeEvents(t, path, 50, 10)
	s := openStore(t, dir)
	ctx := context.Background()
	inv, err := s.CreateInvestigation(ctx, store.Investigation{Source: fileSource(path), Owner: "me"})
	if err != nil {
		t.Fatal(err)
	}
	m := newManager(t, Config{Store: s, Owner: "me", StaleAfter: time.Hour})
	if rec, err := m.recover(ctx, true); err != nil || !slices.Equal(rec.Skipped, []string{inv.ID}) || len(rec.Resumed)+len(rec.Failed) != 0 {
		t.Fatalf("later recovery of a starting job: %+v %v", rec, err)
	}
	if got, _ := s.GetInvestigation(ctx, inv.ID); got.Status.Final() {
		t.Fatalf("the starting job was ended: %s %q", got.Status, got.Error)
	}
	if rec, err := m.Recover(ctx); err != nil || len(rec.Failed) != 1 { // at startup: it is ours, from before; no fingerprint, so failed
		t.Fatalf("startup recovery: %+v %v", rec, err)
	}
}
