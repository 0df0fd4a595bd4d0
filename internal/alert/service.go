package alert

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/loupe-sec/loupe/internal/obfuscate"
)

// RelatedFunc fetches log events around an alert from the log store.
type RelatedFunc func(ctx context.Context, a Alert) ([]RelatedEvent, error)

// Service analyses alerts: it looks in the cache, gathers related events,
// obfuscates the alert into a prompt, asks the analyzer (falling back to
// Offline when it fails) and caches good answers. Set its fields before
// first use; it is then safe for concurrent use.
type Service struct {
	Analyzer    Analyzer // nil: Offline
	Provider    string   // name of Analyzer for Meta.Provider, e.g. "ollama"
	Model       string
	Cache       *Cache            // nil: no caching
	Obfuscate   bool              // replace sensitive values before they reach a model
	Obfuscation obfuscate.Options // options of the per-request Mapper
	Related     RelatedFunc       // nil: no related events
	Log         *slog.Logger
	Now         func() time.Time
}

// DryRun is what would be sent to a model for an alert, without sending it.
type DryRun struct {
	Prompt        string
	PromptVersion string
	Table         []obfuscate.Entry // token, kind and real value (secrets not kept)
	Counts        map[string]int
	Related       []RelatedEvent
}

// Analyze returns the analysis of a.
func (s *Service) Analyze(ctx context.Context, a Alert) (Analysis, error) {
	if err := a.Validate(); err != nil {
		return Analysis{}, err
	}
	key := Key(a)
	if s.Cache != nil {
		if an, ok := s.Cache.Get(key); ok {
			return an, nil
		}
	}
	related := s.related(ctx, a)
	m := s.mapper()
	prompt := Prompt(a, related, m)
	c := Context{Mapper: m, Prompt: prompt, Related: related}

	an, fallback, err := s.run(ctx, a, c)
	if err != nil {
		return Analysis{}, err
	}
	an.Restore(m)
	an.Meta.Fallback = fallback
	an.Meta.Obfuscation = map[string]int{}
	if m != nil {
		an.Meta.Obfuscation = m.Summary()
	}
	an.Meta.RelatedEvents = related
	if an.Meta.RelatedEvents == nil {
		an.Meta.RelatedEvents = []RelatedEvent{}
	}
	an.Meta.AnalyzedAt = s.now().UTC()
	an.Meta.DedupCount = 1
	if s.Cache != nil && fallback == "" {
		stored, err := s.Cache.Put(key, an)
		if err != nil {
			return Analysis{}, fmt.Errorf("analysis is invalid: %w", err)
		}
		an = stored
	}
	return an, nil
}

// run asks the configured analyzer and falls back to Offline when it fails
// or answers something invalid; fallback says why.
func (s *Service) run(ctx context.Context, a Alert, c Context) (Analysis, string, error) {
	if s.Analyzer == nil {
		an, err := Offline{}.Analyze(ctx, a, c)
		if err != nil {
			return Analysis{}, "", err
		}
		return an, "", an.Validate()
	}
	an, err := s.Analyzer.Analyze(ctx, a, c)
	if err == nil {
		an.Normalize()
		err = an.Validate()
	}
	if err == nil {
		if an.Meta.Provider == "" {
			an.Meta.Provider = s.Provider
		}
		if an.Meta.Model == "" {
			an.Meta.Model = s.Model
		}
		an.Meta.PromptVersion = PromptVersion
		return an, "", nil
	}
	if ctx.Err() != nil {
		return Analysis{}, "", fmt.Errorf("analyze: %w", context.Cause(ctx))
	}
	s.log().Warn("analyzer failed, using the offline analysis", "provider", s.Provider, "err", err)
	off, oerr := Offline{}.Analyze(ctx, a, c)
	if oerr != nil {
		return Analysis{}, "", errors.Join(err, oerr)
	}
	return off, fmt.Sprintf("%s analysis failed: %v", orDefault(s.Provider, "model"), err), nil
}

// DryRun builds the prompt for a and its token table, calling no analyzer.
func (s *Service) DryRun(ctx context.Context, a Alert) (DryRun, error) {
	if err := a.Validate(); err != nil {
		return DryRun{}, err
	}
	related := s.related(ctx, a)
	m := s.mapper()
	d := DryRun{Prompt: Prompt(a, related, m), PromptVersion: PromptVersion, Related: related, Counts: map[string]int{}}
	if m != nil {
		d.Table = m.Table()
		d.Counts = m.Summary()
	}
	return d, nil
}

func (s *Service) related(ctx context.Context, a Alert) []RelatedEvent {
	if s.Related == nil {
		return nil
	}
	evs, err := s.Related(ctx, a)
	if err != nil {
		s.log().Warn("related events unavailable", "err", err)
		return nil
	}
	return evs
}

func (s *Service) mapper() *obfuscate.Mapper {
	if !s.Obfuscate {
		return nil
	}
	return obfuscate.New(s.Obfuscation)
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.New(slog.DiscardHandler)
}
