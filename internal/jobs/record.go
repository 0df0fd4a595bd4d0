package jobs

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync/atomic"
	"time"

	"github.com/loupe-sec/loupe/internal/event"
	"github.com/loupe-sec/loupe/internal/finding"
	"github.com/loupe-sec/loupe/internal/pipeline"
	"github.com/loupe-sec/loupe/internal/source"
	"github.com/loupe-sec/loupe/internal/store"
)

// Defaults of RecordOptions.
const (
	DefaultCommitEvery = 500 * time.Millisecond
	DefaultMaxBatch    = 500
	// finalCommitTimeout bounds the last commit of a run that was cancelled.
	finalCommitTimeout = 30 * time.Second
)

// RecordOptions tune Record.
type RecordOptions struct {
	Pipeline pipeline.Options
	// From and To drop events whose time is outside [From, To]; a zero
	// bound is open. Events without a time are kept. Dropped events still
	// count as read: positions are positions in the source.
	From, To time.Time
	// Skip is the checkpoint of an earlier, interrupted run over the same
	// source: the findings produced while its first Skip events are
	// processed, and their event volume, were committed then and are not
	// written again.
	Skip int64
	// CommitEvery is the longest time between two commits (findings,
	// progress and checkpoint). 0 = DefaultCommitEvery.
	CommitEvery time.Duration
	// MaxBatch is the most findings held before a commit. 0 = DefaultMaxBatch.
	MaxBatch int
	// Read, when set, is kept equal to the source events read so far.
	Read *atomic.Int64
}

// Record runs the pipeline over events and writes its findings to the
// investigation id of s as it goes, yielding every finding and error of
// the run to the caller as pipeline.Run does.
//
// Findings are committed in batches, each in one transaction with the
// event volume (events per minute of event time, for the timeline), the
// progress and the checkpoint: the number of source events whose findings
// and volume are all committed. A batch is cut only between two events, once the
// pipeline has yielded everything the earlier one produced, so the
// checkpoint is exact. On the way out, also when ctx is cancelled, what is
// pending is committed. A failed commit ends the run with its error.
//
// Record does not change the investigation's status beyond queued →
// running: the caller finishes it.
func Record(ctx context.Context, s *store.Store, id string, events iter.Seq2[*event.Event, error],
	o RecordOptions, st *pipeline.Stats) iter.Seq2[*finding.Finding, error] {
	if st == nil {
		st = new(pipeline.Stats)
	}
	every := o.CommitEvery
	if every <= 0 {
		every = DefaultCommitEvery
	}
	maxBatch := o.MaxBatch
	if maxBatch <= 0 {
		maxBatch = DefaultMaxBatch
	}
	return func(yield func(*finding.Finding, error) bool) {
		var (
			batch       []*finding.Finding
			pos         int64 // source events read
			sourceDone  bool  // the source ended: what follows is the pipeline's flush
			last        = time.Now()
			commitErr   error
			vol         store.Volume // events per minute since the last commit
			lastCounted int64        // position of the last event counted in vol
			lastTime    time.Time
		)
		commit := func(cctx context.Context, checkpoint int64) error {
			err := s.Commit(cctx, id, batch, &vol, pos, checkpoint)
			clear(batch)
			batch = batch[:0]
			last = time.Now()
			return err
		}
		// The source, counted; the commit point is after each event has
		// gone through the pipeline (yield returned), before the next.
		counted := func(y func(*event.Event, error) bool) {
			for ev, err := range events {
				if err == nil {
					pos++
					if o.Read != nil {
						o.Read.Store(pos)
					}
					if !inRange(ev, o.From, o.To) {
						continue
					}
					if pos > o.Skip { // else counted by the interrupted run
						vol.Add(ev.Time, 1)
						lastCounted, lastTime = pos, ev.Time
					}
				}
				if !y(ev, err) {
					return
				}
				if err == nil && (len(batch) >= maxBatch || time.Since(last) >= every) {
					if commitErr = commit(ctx, pos); commitErr != nil {
						y(nil, commitErr)
						return
					}
				}
			}
			sourceDone = true
		}
		var runErr error
		for f, err := range pipeline.Run(ctx, counted, o.Pipeline, st) {
			if err != nil {
				var le *source.LineError
				if errors.As(err, &le) {
					if !yield(nil, err) {
						runErr = errStopped
						break
					}
					continue
				}
				runErr = err
				break
			}
			if sourceDone || pos > o.Skip {
				batch = append(batch, f)
			}
			if !yield(f, nil) {
				runErr = errStopped
				break
			}
		}
		if commitErr != nil {
			yield(nil, commitErr)
			return
		}
		// Commit what is pending: the whole run when it ended, or what the
		// events read so far produced when it was cancelled or failed.
		// A consumer that stopped while findings of the last event were
		// being yielded may have left some of them out: that event is not
		// covered by the checkpoint.
		checkpoint := pos
		if runErr == errStopped && !sourceDone && pos > 0 {
			checkpoint = pos - 1
			if lastCounted == pos {
				vol.Add(lastTime, -1) // counted again when the run resumes
			}
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalCommitTimeout)
		err := commit(cctx, checkpoint)
		cancel()
		switch {
		case runErr == errStopped:
		case runErr != nil:
			yield(nil, runErr)
		case err != nil:
			yield(nil, err)
		}
	}
}

// errStopped marks a run its consumer stopped.
var errStopped = errors.New("stopped by the consumer")

func inRange(ev *event.Event, from, to time.Time) bool {
	if ev == nil || ev.Time.IsZero() {
		return true
	}
	return (from.IsZero() || !ev.Time.Before(from)) && (to.IsZero() || !ev.Time.After(to))
}

// ErrInterrupted is the reason of a job that could not be resumed after
// the process running it died.
var ErrInterrupted = fmt.Errorf("interrupted")
