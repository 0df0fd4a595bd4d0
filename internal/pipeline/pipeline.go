// Package pipeline joins the stages: events → detect (built-in rules and,
// when given, Sigma rules) → reason → findings.
package pipeline

import (
	"context"
	"errors"
	"iter"
	"sync/atomic"

	"github.com/loupe-sec/loupe/internal/detect"
	"github.com/loupe-sec/loupe/internal/event"
	"github.com/loupe-sec/loupe/internal/finding"
	"github.com/loupe-sec/loupe/internal/reason"
	"github.com/loupe-sec/loupe/internal/reason/deep"
	"github.com/loupe-sec/loupe/internal/sigma"
	"github.com/loupe-sec/loupe/internal/source"
)

// Options for one analysis run.
type Options struct {
	Detect detect.Options
	Reason reason.Options
	// Sigma, when set, runs these Sigma rules beside the built-in ones;
	// the run keeps its own correlation state.
	Sigma *sigma.Ruleset
	// Deep, when set, mines the events into clusters and asks a language
	// model about them once the offline findings are out; its findings
	// (and offline findings it enriched or marked with a fallback reason,
	// under their ids) follow in the same stream. See package deep.
	Deep *deep.Analyst
}

// Stats are live counters of a run, safe to read concurrently (progress
// bar, metrics).
type Stats struct {
	Events   atomic.Int64
	Errors   atomic.Int64 // bad lines
	Findings atomic.Int64
	LLM      atomic.Pointer[deep.Summary] // set when the language-model stage has ended
}

// Run pulls events and yields findings as soon as they are conclusive, then
// what correlations hold at the end. Per-line errors (*source.LineError) are
// passed through as (nil, err) and the run goes on; any other error ends the
// run after being yielded. Stopping the iteration stops the run.
func Run(ctx context.Context, events iter.Seq2[*event.Event, error], opt Options, st *Stats) iter.Seq2[*finding.Finding, error] {
	if st == nil {
		st = new(Stats)
	}
	return func(yield func(*finding.Finding, error) bool) {
		det := detect.New(opt.Detect)
		var sg *sigma.Engine
		if opt.Sigma != nil {
			sg = opt.Sigma.NewEngine()
		}
		rs := reason.New(opt.Reason)
		var dr *deep.Run
		if opt.Deep != nil {
			dr = opt.Deep.Start()
		}
		var pending []*finding.Finding
		collect := func(f *finding.Finding) {
			if dr != nil {
				dr.Finding(f)
			}
			pending = append(pending, f)
		}
		reasonOn := func(d detect.Detection) {
			if dr != nil {
				dr.Detection(d)
			}
			rs.Add(d, collect)
		}
		drain := func() bool {
			for i, f := range pending {
				pending[i] = nil
				st.Findings.Add(1)
				if !yield(f, nil) {
					return false
				}
			}
			pending = pending[:0]
			return true
		}
		for ev, err := range events {
			if err != nil {
				var le *source.LineError
				if errors.As(err, &le) {
					st.Errors.Add(1)
					if !yield(nil, err) {
						return
					}
					continue
				}
				yield(nil, err)
				return
			}
			st.Events.Add(1)
			if dr != nil {
				dr.Observe(ev)
			}
			det.Observe(ev, reasonOn)
			if sg != nil {
				sg.Observe(ev, reasonOn)
			}
			if len(pending) > 0 && !drain() {
				return
			}
		}
		if err := ctx.Err(); err != nil {
			yield(nil, err)
			return
		}
		det.Flush(reasonOn)
		if sg != nil {
			sg.Flush(reasonOn)
		}
		rs.Flush(collect)
		if !drain() || dr == nil {
			return
		}
		dr.Finish(ctx, func(f *finding.Finding) bool {
			if f.Source == "llm" {
				st.Findings.Add(1) // the others are offline findings again, updated
			}
			return yield(f, nil)
		})
		sum := dr.Summary()
		st.LLM.Store(&sum)
	}
}
