package web

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/loupe-sec/loupe/internal/finding"
	"github.com/loupe-sec/loupe/internal/store"
)

// facets are the parts of an investigation page that do not depend on the
// filter: counts by tactic and priority, the timeline, the rules and hosts
// offered by the filter form. On a large investigation they cost more than
// the page of findings itself (each reads every finding's index entry).
type facets struct {
	byTactic   map[string]int64
	byPriority map[finding.Priority]int64
	timeline   store.Timeline
	rules      []store.RuleCount
	hosts      []store.HostCount
}

// timelineBuckets is the most bars the timeline has.
const timelineBuckets = 72

// loadFacets runs the facet queries side by side (SQLite in WAL mode and
// PostgreSQL both serve concurrent readers).
func loadFacets(ctx context.Context, st *store.Store, id string) (*facets, error) {
	var (
		f   facets
		wg  sync.WaitGroup
		mu  sync.Mutex
		bad error
	)
	run := func(q func() error) {
		wg.Go(func() {
			if err := q(); err != nil {
				mu.Lock()
				if bad == nil {
					bad = err
				}
				mu.Unlock()
			}
		})
	}
	run(func() (err error) { f.byTactic, err = st.CountByTactic(ctx, id); return })
	run(func() (err error) { f.byPriority, err = st.CountByPriority(ctx, id); return })
	run(func() (err error) { f.timeline, err = st.TimelineOf(ctx, id, timelineBuckets); return })
	run(func() (err error) { f.rules, err = st.RuleCounts(ctx, id, facetLimit); return })
	run(func() (err error) { f.hosts, err = st.HostCounts(ctx, id, facetLimit); return })
	wg.Wait()
	if bad != nil {
		return nil, bad
	}
	return &f, nil
}

// versionCache keeps what the pages computed about finished
// investigations, which no longer change: a finished investigation's page
// then costs one page query. An entry is keyed by the investigation's last
// update and findings count, so anything that records progress invalidates
// it, and it expires after cacheTTL in case findings were written without
// recording progress. Running investigations are never cached.
type versionCache[T any] struct {
	mu sync.Mutex
	m  map[string]cacheEntry[T]
}

type cacheEntry[T any] struct {
	version string
	at      time.Time
	v       T
}

const (
	cacheTTL  = 10 * time.Minute
	cacheSize = 64 // investigations
)

func cacheVersion(inv store.Investigation) string {
	return strconv.FormatInt(inv.Updated.UnixNano(), 10) + "/" + strconv.FormatInt(inv.Findings, 10) + "/" + string(inv.Status)
}

func (c *versionCache[T]) get(inv store.Investigation) (T, bool) {
	var zero T
	if !inv.Status.Final() {
		return zero, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[inv.ID]
	if !ok || e.version != cacheVersion(inv) || time.Since(e.at) > cacheTTL {
		return zero, false
	}
	return e.v, true
}

func (c *versionCache[T]) put(inv store.Investigation, v T) {
	if !inv.Status.Final() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]cacheEntry[T])
	}
	if _, ok := c.m[inv.ID]; !ok && len(c.m) >= cacheSize {
		oldest := ""
		for id, e := range c.m {
			if oldest == "" || e.at.Before(c.m[oldest].at) {
				oldest = id
			}
		}
		delete(c.m, oldest)
	}
	c.m[inv.ID] = cacheEntry[T]{version: cacheVersion(inv), at: time.Now(), v: v}
}

func (c *versionCache[T]) clear() {
	c.mu.Lock()
	c.m = nil
	c.mu.Unlock()
}

// analyzeAbove is the findings count from which a page asks the store to
// refresh its planner statistics (see store.Analyze).
const analyzeAbove = 10_000

// maybeAnalyze refreshes the store's planner statistics in the background
// the first time an investigation of at least analyzeAbove findings is
// shown, and again whenever one twice as large as the last is: the
// statistics then describe the sizes the pages query.
func (h *Handler) maybeAnalyze(total int64) {
	if total < analyzeAbove || total < 2*h.analyzedAt.Load() || !h.analyzing.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer h.analyzing.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		start := time.Now()
		if err := h.st.Analyze(ctx); err != nil {
			h.log.Warn("refreshing the store's planner statistics failed", "err", err)
			return
		}
		h.analyzedAt.Store(total)
		h.log.Debug("store planner statistics refreshed", "findings", total, "duration", time.Since(start))
	}()
}
