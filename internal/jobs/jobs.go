// Package jobs runs investigations in the background: a Manager reads an
// investigation's source, runs the pipeline over it and writes the findings
// to the store as it goes, a bounded number of jobs at a time.
//
// Findings are committed in batches, each in one transaction with the
// job's progress and its checkpoint (the number of source events whose
// findings are all committed; see Record). Cancelling a job commits what
// its events so far produced and marks it cancelled; a source or store
// error marks it failed with the error as its reason.
//
// Crashes. After a crash (kill -9, power loss of the process) the store
// holds every committed batch and the job is still "running". On startup,
// Recover looks at every queued or running investigation:
//
//   - a "file" source whose files still have the size and modification
//     time they had when the job started is resumed: the source is read
//     again from its first event — the detections correlate across the
//     whole stream, so their state must be rebuilt to find what an
//     uninterrupted run finds — and findings produced before the
//     checkpoint, already committed, are not written again. Findings are
//     stored by id (upsert), so nothing is ever duplicated either way.
//   - another kind of source is resumed only when its time range is
//     closed (from and to, or the source's own start and end, all set):
//     re-reading an open range would see different events. Its events may come back in another order, so
//     every finding is written again (by id) and the event volume is
//     counted afresh.
//   - anything else (changed or missing files, open ranges, stdin) is
//     marked failed with a reason starting "interrupted".
//
// A graceful shutdown (Close) leaves running jobs running in the store,
// with their batches committed, so the next start resumes them. One
// manager should own a store at a time.
package jobs

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loupe-sec/loupe/internal/event"
	"github.com/loupe-sec/loupe/internal/finding"
	"github.com/loupe-sec/loupe/internal/pipeline"
	"github.com/loupe-sec/loupe/internal/source"
	"github.com/loupe-sec/loupe/internal/store"
)

// Errors of the Manager.
var (
	// ErrInvalid wraps errors in what a caller asked for (bad options,
	// source parameters or kind): a client error.
	ErrInvalid = errors.New("invalid investigation")
	// ErrFinished is returned when cancelling an investigation that has
	// already ended.
	ErrFinished = errors.New("investigation already finished")
	// ErrClosed is returned by Start after Close.
	ErrClosed = errors.New("job manager closed")
	// ErrCancelled is the cause given to a cancelled job's context, and
	// the reason stored with it.
	ErrCancelled = errors.New("cancelled by request")
	// errShutdown is the cause of jobs stopped by Close.
	errShutdown = errors.New("server shutting down")
)

// Defaults of Config.
const (
	DefaultMaxJobs    = 2
	DefaultStaleAfter = 2 * time.Minute
)

// Config sets up a Manager.
type Config struct {
	Store *store.Store
	// Open opens sources; nil = DefaultOpener.
	Open Opener
	// Check validates a source before a job is created; nil = CheckSource.
	Check func(store.Source) error
	// MaxJobs is how many jobs run at once; more wait, queued. 0 = 2.
	MaxJobs int
	// Pipeline holds the default analysis options; an investigation's
	// Options override them.
	Pipeline pipeline.Options
	// Options, when set, is called as each job starts for the default
	// analysis options instead of Pipeline (for settings that change
	// while serving, such as reloaded Sigma rules). A job resumed after
	// a change of rules finds what the new rules find from then on.
	Options func() pipeline.Options
	// CommitEvery and MaxBatch: see RecordOptions.
	CommitEvery time.Duration
	MaxBatch    int
	// Observe, when set, is called as each job starts running with its
	// live counters; it returns what to call for each finding and at the
	// end (with nil, context.Canceled for a cancelled job, or the error).
	// Metrics use it.
	Observe func(st *pipeline.Stats) (onFinding func(*finding.Finding), end func(error))
	// StaleAfter: an investigation its owner (or a "cli" run) has not
	// updated for this long is taken for dead by Recover. Owners keep
	// theirs fresh with Supervise. 0 = DefaultStaleAfter.
	StaleAfter time.Duration
	// Owner names this process among those sharing the store: the jobs
	// it starts or resumes are recorded as its own, and Recover leaves
	// another owner's jobs alone while that owner keeps them fresh. A
	// server restarted with the same Owner resumes its jobs at once.
	// "" = DefaultOwner (one server per store).
	Owner  string
	Logger *slog.Logger
}

// DefaultOwner is the Owner of a manager configured without one.
const DefaultOwner = "loupe"

// Manager runs investigation jobs. It is safe for concurrent use.
type Manager struct {
	cfg    Config
	log    *slog.Logger
	ctx    context.Context
	stop   context.CancelCauseFunc
	slots  chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	jobs   map[string]*job
	closed bool
}

// job is one investigation being run by this process.
type job struct {
	id       string
	cancel   context.CancelCauseFunc
	done     chan struct{}
	resumed  bool
	running  atomic.Bool
	started  atomic.Int64 // unix nanos when it got a slot
	read     atomic.Int64 // source events read in this run
	stats    pipeline.Stats
	finished atomic.Int64 // unix nanos, 0 while running
}

// New returns a manager; it runs jobs until ctx is done or Close is called.
func New(ctx context.Context, cfg Config) (*Manager, error) {
	if cfg.Store == nil {
		return nil, errors.New("jobs: no store")
	}
	if cfg.Open == nil {
		cfg.Open = DefaultOpener
	}
	if cfg.Check == nil {
		cfg.Check = CheckSource
	}
	if cfg.MaxJobs <= 0 {
		cfg.MaxJobs = DefaultMaxJobs
	}
	if cfg.StaleAfter <= 0 {
		cfg.StaleAfter = DefaultStaleAfter
	}
	if cfg.Owner == "" {
		cfg.Owner = DefaultOwner
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mctx, stop := context.WithCancelCause(ctx)
	return &Manager{cfg: cfg, log: log, ctx: mctx, stop: stop,
		slots: make(chan struct{}, cfg.MaxJobs), jobs: map[string]*job{}}, nil
}

// DefaultOpener opens "file" sources with OpenFiles and every other kind
// (evtx, loki, victorialogs, opensearch, elasticsearch) with package
// origin.
func DefaultOpener(ctx context.Context, src store.Source) (iter.Seq2[*event.Event, error], error) {
	if src.Kind == KindFile {
		return OpenFiles(ctx, src)
	}
	return openOrigin(ctx, src)
}

// CheckSource validates a source: for "file", its parameters and that the
// files exist; for the other kinds, origin's validation of the spec.
func CheckSource(src store.Source) error {
	if src.Kind == KindFile {
		_, err := fileFingerprint(src)
		return err
	}
	_, err := Spec(src)
	return err
}

// Start creates the investigation (its ID, status and times are set by
// the store) and runs it in the background. Bad options or source give an
// error wrapping ErrInvalid.
func (m *Manager) Start(ctx context.Context, inv store.Investigation) (store.Investigation, error) {
	if _, err := ParseOptions(inv.Options); err != nil {
		return inv, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if err := m.cfg.Check(withRange(inv.Source, inv.From, inv.To)); err != nil {
		return inv, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if !inv.From.IsZero() && !inv.To.IsZero() && inv.To.Before(inv.From) {
		return inv, fmt.Errorf("%w: time range ends (%s) before it starts (%s)", ErrInvalid,
			inv.To.Format(time.RFC3339), inv.From.Format(time.RFC3339))
	}
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	if closed {
		return inv, ErrClosed
	}
	inv.ID, inv.Status, inv.Error, inv.Events, inv.Findings = "", store.Queued, "", 0, 0
	inv.Owner = m.cfg.Owner
	created, err := m.cfg.Store.CreateInvestigation(ctx, inv)
	if err != nil {
		return inv, err
	}
	if created.Source.Kind == KindFile {
		fp, err := fileFingerprint(created.Source)
		if err == nil {
			err = m.cfg.Store.SetSourceState(ctx, created.ID, fp)
		}
		if err != nil {
			m.finish(created, nil, fmt.Errorf("source: %w", err))
			return created, err
		}
	}
	if err := m.launch(created, 0, false); err != nil {
		return created, err
	}
	return created, nil
}

// launch runs inv in the background; skip is the checkpoint to resume from.
func (m *Manager) launch(inv store.Investigation, skip int64, resumed bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if _, ok := m.jobs[inv.ID]; ok {
		return fmt.Errorf("jobs: investigation %s is already running", inv.ID)
	}
	ctx, cancel := context.WithCancelCause(m.ctx)
	j := &job{id: inv.ID, cancel: cancel, done: make(chan struct{}), resumed: resumed}
	m.jobs[inv.ID] = j
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer cancel(nil)
		m.run(ctx, j, inv, skip)
	}()
	return nil
}

func (m *Manager) run(ctx context.Context, j *job, inv store.Investigation, skip int64) {
	log := m.log.With("investigation", inv.ID)
	defer func() {
		j.finished.Store(time.Now().UnixNano())
		m.mu.Lock()
		delete(m.jobs, j.id)
		m.mu.Unlock()
		close(j.done)
	}()
	select {
	case m.slots <- struct{}{}:
		defer func() { <-m.slots }()
	case <-ctx.Done():
		m.finish(inv, j, m.why(ctx, ctx.Err()))
		return
	}
	j.started.Store(time.Now().UnixNano())
	j.running.Store(true)
	// Running from now on (an empty commit: progress never goes back).
	if err := m.cfg.Store.Commit(ctx, inv.ID, nil, nil, 0, 0); err != nil {
		m.finish(inv, j, m.why(ctx, err))
		return
	}
	opts, _ := ParseOptions(inv.Options) // checked by Start
	log.Info("job started", "source", inv.Source.Kind, "resumed", j.resumed, "skip", skip)

	events, err := m.cfg.Open(ctx, withRange(inv.Source, inv.From, inv.To))
	if err != nil {
		m.finish(inv, j, m.why(ctx, fmt.Errorf("open source: %w", err)))
		return
	}
	var (
		runErr    error
		badShown  int
		onFinding = func(*finding.Finding) {}
	)
	if m.cfg.Observe != nil {
		var end func(error)
		onFinding, end = m.cfg.Observe(&j.stats)
		defer func() {
			switch {
			case errors.Is(runErr, ErrCancelled), errors.Is(runErr, errShutdown):
				end(context.Canceled)
			default:
				end(runErr)
			}
		}()
	}
	base := m.cfg.Pipeline
	if m.cfg.Options != nil {
		base = m.cfg.Options()
	}
	ro := RecordOptions{
		Pipeline:    opts.apply(base),
		From:        inv.From,
		To:          inv.To,
		Skip:        skip,
		CommitEvery: m.cfg.CommitEvery,
		MaxBatch:    m.cfg.MaxBatch,
		Read:        &j.read,
	}
	for f, err := range Record(ctx, m.cfg.Store, inv.ID, events, ro, &j.stats) {
		if err != nil {
			var le *source.LineError
			if errors.As(err, &le) {
				if badShown < 10 {
					badShown++
					log.Warn("bad input line", "err", err)
				}
				continue
			}
			runErr = err
			break
		}
		onFinding(f)
	}
	if runErr != nil {
		runErr = m.why(ctx, runErr)
	}
	m.finish(inv, j, runErr)
}

// why explains err, an error of a job whose context is ctx: once ctx is
// done, the reason is the cancel request or the manager's shutdown.
func (m *Manager) why(ctx context.Context, err error) error {
	if ctx.Err() == nil {
		return err
	}
	cause := context.Cause(ctx)
	if errors.Is(cause, ErrCancelled) {
		return ErrCancelled
	}
	if m.ctx.Err() != nil {
		return errShutdown // the manager's context ended, not just this job's
	}
	return cause
}

// finish records how a job ended: done (cause nil), cancelled, failed, or
// — stopped by Close — still running for the next start to resume.
func (m *Manager) finish(inv store.Investigation, j *job, cause error) {
	log := m.log.With("investigation", inv.ID)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(m.ctx), finalCommitTimeout)
	defer cancel()
	status := store.Done
	switch {
	case cause == nil:
	case errors.Is(cause, errShutdown):
		log.Info("job stopped by shutdown; it resumes on the next start")
		return
	case errors.Is(cause, ErrCancelled):
		status = store.Cancelled
	default:
		status = store.Failed
	}
	if err := m.cfg.Store.Finish(ctx, inv.ID, status, cause); err != nil {
		log.Error("job: cannot record its end", "status", status, "err", err)
		return
	}
	removeUploads(inv.Source)
	attrs := []any{"status", status}
	if j != nil {
		attrs = append(attrs, "events", j.read.Load(), "findings", j.stats.Findings.Load(),
			"bad_lines", j.stats.Errors.Load())
		if s := j.started.Load(); s != 0 {
			attrs = append(attrs, "duration", time.Since(time.Unix(0, s)))
		}
	}
	if cause != nil && status == store.Failed {
		log.Warn("job failed", append(attrs, "err", cause)...)
	} else {
		log.Info("job ended", attrs...)
	}
}

// Cancel stops a queued or running investigation: what its events so far
// produced is committed and it ends as cancelled. It waits, at most until
// ctx is done, for the job to end. An investigation that has ended gives
// ErrFinished; one unknown to the store, store.ErrNotFound.
func (m *Manager) Cancel(ctx context.Context, id string) error {
	m.mu.Lock()
	j := m.jobs[id]
	m.mu.Unlock()
	if j == nil {
		inv, err := m.cfg.Store.GetInvestigation(ctx, id)
		if err != nil {
			return err
		}
		if inv.Status.Final() {
			return fmt.Errorf("%w (%s)", ErrFinished, inv.Status)
		}
		// Queued or running in the store but run by no one here (left by
		// a process that died and was not resumed).
		return m.cfg.Store.Finish(ctx, id, store.Cancelled, ErrCancelled)
	}
	j.cancel(ErrCancelled)
	select {
	case <-j.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Wait blocks until the job of id, if this manager runs one, has ended.
func (m *Manager) Wait(ctx context.Context, id string) error {
	m.mu.Lock()
	j := m.jobs[id]
	m.mu.Unlock()
	if j == nil {
		return nil
	}
	select {
	case <-j.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Progress is the live state of a job run by this manager.
type Progress struct {
	Running         bool      // it has a slot (false while queued)
	Resumed         bool      // it resumes a run interrupted by a crash or shutdown
	Started         time.Time // when it got its slot
	Read            int64     // source events read in this run
	EventsPerSecond float64   // Read over the time since Started
	Findings        int64     // findings the pipeline produced in this run
	BadLines        int64
}

// Progress returns the live progress of id, and false when this manager
// does not run it.
func (m *Manager) Progress(id string) (Progress, bool) {
	m.mu.Lock()
	j := m.jobs[id]
	m.mu.Unlock()
	if j == nil {
		return Progress{}, false
	}
	p := Progress{
		Running:  j.running.Load(),
		Resumed:  j.resumed,
		Read:     j.read.Load(),
		Findings: j.stats.Findings.Load(),
		BadLines: j.stats.Errors.Load(),
	}
	if s := j.started.Load(); s != 0 {
		p.Started = time.Unix(0, s).UTC()
		end := time.Now()
		if f := j.finished.Load(); f != 0 {
			end = time.Unix(0, f)
		}
		if d := end.Sub(p.Started).Seconds(); d > 0 {
			p.EventsPerSecond = float64(p.Read) / d
		}
	}
	return p, true
}

// Recovery is what Recover did.
type Recovery struct {
	Resumed []string // investigations resumed or, when queued, started
	Failed  []string // investigations marked failed as interrupted
	Skipped []string // "cli" runs and other owners' jobs that may still be alive
}

// Recover deals with the investigations a stopped process left queued or
// running (see the package comment): those this manager's Owner holds,
// those no one holds, and those whose owner has not kept them fresh for
// StaleAfter. It claims each (of two managers, one wins), resumes those
// whose source can be read again the same way and marks the others failed,
// with a reason starting "interrupted". Call it at startup, before new
// jobs; Supervise calls it again from time to time.
func (m *Manager) Recover(ctx context.Context) (Recovery, error) { return m.recover(ctx, false) }

// recover is Recover; later (from Supervise) it also leaves alone the fresh
// jobs of this owner it does not run: Start is still setting them up.
func (m *Manager) recover(ctx context.Context, later bool) (Recovery, error) {
	var rec Recovery
	invs, err := m.cfg.Store.Unfinished(ctx)
	if err != nil {
		return rec, err
	}
	for _, inv := range invs {
		m.mu.Lock()
		_, mine := m.jobs[inv.ID]
		m.mu.Unlock()
		if mine {
			continue
		}
		log := m.log.With("investigation", inv.ID)
		opts, _ := ParseOptions(inv.Options)
		fresh := time.Since(inv.Updated) < m.cfg.StaleAfter
		if fresh && (opts.Origin == "cli" || inv.Owner != "" && inv.Owner != m.cfg.Owner || later && inv.Owner == m.cfg.Owner) {
			rec.Skipped = append(rec.Skipped, inv.ID)
			continue
		}
		if ok, err := m.cfg.Store.Claim(ctx, inv.ID, m.cfg.Owner, time.Now().Add(-m.cfg.StaleAfter)); err != nil {
			return rec, err
		} else if !ok { // another process claimed it first
			rec.Skipped = append(rec.Skipped, inv.ID)
			continue
		}
		skip, why, err := m.resumePoint(ctx, inv)
		if err != nil {
			return rec, err
		}
		if why != "" {
			cause := fmt.Errorf("%w: %s", ErrInterrupted, why)
			if err := m.cfg.Store.Finish(ctx, inv.ID, store.Failed, cause); err != nil {
				return rec, err
			}
			removeUploads(inv.Source)
			log.Warn("interrupted job cannot be resumed", "reason", why)
			rec.Failed = append(rec.Failed, inv.ID)
			continue
		}
		if err := m.launch(inv, skip, inv.Status == store.Running); err != nil {
			return rec, err
		}
		log.Info("resuming interrupted job", "status", inv.Status, "checkpoint", skip)
		rec.Resumed = append(rec.Resumed, inv.ID)
	}
	return rec, nil
}

// Supervise keeps this manager's jobs fresh for the other processes
// sharing the store, stops those another process cancelled and, every
// StaleAfter/2, takes over the jobs of processes that stopped (Recover),
// until ctx ends or the manager closes.
// report is called with what each of those recoveries did, when it did
// something.
func (m *Manager) Supervise(ctx context.Context, report func(Recovery, error)) {
	beat := time.NewTicker(max(m.cfg.StaleAfter/4, time.Millisecond))
	defer beat.Stop()
	recoverEvery := max(m.cfg.StaleAfter/2, time.Millisecond)
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.ctx.Done():
			return
		case <-beat.C:
		}
		if err := m.cfg.Store.Heartbeat(ctx, m.cfg.Owner); err != nil {
			m.log.Warn("job heartbeat failed", "err", err)
		}
		m.cancelledElsewhere(ctx)
		if time.Since(last) >= recoverEvery {
			last = time.Now()
			rec, err := m.recover(ctx, true)
			if report != nil && (err != nil || len(rec.Resumed)+len(rec.Failed) > 0) {
				report(rec, err)
			}
		}
	}
}

// cancelledElsewhere stops the jobs of this manager that another process
// sharing the store marked cancelled.
func (m *Manager) cancelledElsewhere(ctx context.Context) {
	for _, id := range m.Running() {
		inv, err := m.cfg.Store.GetInvestigation(ctx, id)
		if err != nil || inv.Status != store.Cancelled {
			continue
		}
		m.mu.Lock()
		j := m.jobs[id]
		m.mu.Unlock()
		if j != nil {
			m.log.Info("job cancelled by another instance", "investigation", id)
			j.cancel(ErrCancelled)
		}
	}
}

// resumePoint decides whether inv can be resumed: the findings to skip,
// or why not.
func (m *Manager) resumePoint(ctx context.Context, inv store.Investigation) (skip int64, why string, err error) {
	opts, err := ParseOptions(inv.Options)
	if err != nil {
		return 0, "its options no longer parse: " + err.Error(), nil
	}
	if opts.Origin == "cli" {
		return 0, "loupe analyze stopped before the end of its run", nil
	}
	if inv.Source.Kind != KindFile {
		if !closedRange(inv) {
			return 0, fmt.Sprintf("a %q source with an open time range cannot be read again the same way", inv.Source.Kind), nil
		}
		// Re-read the closed range from the start: the events may come in
		// another order, so positions mean nothing; every finding is
		// written again (by id) and the event volume counted afresh.
		if err := m.cfg.Store.ResetEventVolume(ctx, inv.ID); err != nil {
			return 0, "", err
		}
		return 0, "", nil
	}
	st, err := m.cfg.Store.JobState(ctx, inv.ID)
	if err != nil {
		return 0, "", err
	}
	fp, ferr := fileFingerprint(inv.Source)
	switch {
	case ferr != nil:
		return 0, "source file unavailable: " + ferr.Error(), nil
	case st.SourceState == "":
		return 0, "no fingerprint of the source was recorded", nil
	case fp != st.SourceState:
		return 0, "the source files changed since the job started", nil
	}
	return st.Checkpoint, "", nil
}

// Running lists the investigations this manager is running or has queued.
func (m *Manager) Running() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.jobs))
	for id := range m.jobs {
		out = append(out, id)
	}
	return out
}

// Close stops every job — their batches are committed and they stay
// running in the store, for the next start to resume — and waits for them.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.stop(errShutdown)
	m.wg.Wait()
}
