// Package metrics keeps loupe's Prometheus metrics and serves them in the
// text exposition format: events read and the current events/s, findings
// by priority and source, durations of streams and jobs, LLM calls, tokens,
// errors and latency, cache hits and misses, and HTTP requests by route.
//
// Work in progress is counted live: a Run registers the counters of one
// stream or job (pipeline.Stats), and every scrape reads them, so a stream
// of ten million events shows up while it is still running, not only when
// it ends. Each Metrics has its own registry (tests run several servers in
// one process).
package metrics

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/loupe-sec/loupe/internal/finding"
	"github.com/loupe-sec/loupe/internal/llm"
	"github.com/loupe-sec/loupe/internal/pipeline"
)

// Run kinds, the "kind" label of the run metrics.
const (
	Stream = "stream" // POST /analyze_logs
	Job    = "job"    // an investigation job
)

// Metrics holds the collectors of one process or server. Safe for
// concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	findings   *prometheus.CounterVec
	runs       *prometheus.HistogramVec
	llmCalls   *prometheus.CounterVec
	llmTokens  *prometheus.CounterVec
	llmLatency *prometheus.HistogramVec
	requests   *prometheus.CounterVec
	reqSeconds *prometheus.HistogramVec

	eventsDesc, errorsDesc, rateDesc, activeDesc *prometheus.Desc

	mu       sync.Mutex
	live     map[*Run]struct{}
	finished map[string]counts // by kind: events and bad lines of ended runs
}

type counts struct{ events, errors int64 }

// New returns metrics with a fresh registry holding loupe's collectors and
// the Go runtime and process collectors.
func New() *Metrics {
	m := &Metrics{
		reg:      prometheus.NewRegistry(),
		live:     make(map[*Run]struct{}),
		finished: make(map[string]counts),
		findings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loupe_findings_total", Help: "Findings emitted, by priority and source (rule, correlation, falco, sigma, llm).",
		}, []string{"priority", "source"}),
		runs: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "loupe_run_duration_seconds", Help: "Duration of finished streams and jobs, by kind and outcome (ok, error, cancelled).",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 10), // 10 ms .. ~43 min
		}, []string{"kind", "outcome"}),
		llmCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loupe_llm_calls_total", Help: "Calls to a language model, by provider, model and outcome (ok, error, timeout).",
		}, []string{"provider", "model", "outcome"}),
		llmTokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loupe_llm_tokens_total", Help: "Tokens sent to (input) and received from (output) language models.",
		}, []string{"provider", "model", "direction"}),
		llmLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "loupe_llm_call_duration_seconds", Help: "Latency of language model calls, failed ones included.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 12), // 50 ms .. ~100 s
		}, []string{"provider", "model"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loupe_http_requests_total", Help: "HTTP requests by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		reqSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "loupe_http_request_duration_seconds", Help: "Time to serve HTTP requests, streams included, by route pattern.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}, []string{"route"}),
		eventsDesc: prometheus.NewDesc("loupe_events_read_total", "Events read, by kind of run (stream, job); live while runs are in progress.", []string{"kind"}, nil),
		errorsDesc: prometheus.NewDesc("loupe_bad_lines_total", "Input lines rejected as malformed or oversized, by kind of run.", []string{"kind"}, nil),
		rateDesc:   prometheus.NewDesc("loupe_events_per_second", "Current throughput: the sum over runs in progress of events read divided by their age.", []string{"kind"}, nil),
		activeDesc: prometheus.NewDesc("loupe_runs_active", "Streams and jobs in progress.", []string{"kind"}, nil),
	}
	m.reg.MustRegister(m.findings, m.runs, m.llmCalls, m.llmTokens, m.llmLatency, m.requests, m.reqSeconds,
		liveCollector{m},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Registry is the underlying registry, for collectors of other packages.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Run is one stream or job being counted.
type Run struct {
	m     *Metrics
	kind  string
	stats *pipeline.Stats
	start time.Time
	once  sync.Once
}

// Start counts a run of the given kind whose live counters are st until
// End is called.
func (m *Metrics) Start(kind string, st *pipeline.Stats) *Run {
	r := &Run{m: m, kind: kind, stats: st, start: time.Now()}
	m.mu.Lock()
	m.live[r] = struct{}{}
	m.mu.Unlock()
	return r
}

// Finding counts one emitted finding.
func (r *Run) Finding(f *finding.Finding) {
	src := f.Source
	if src == "" {
		src = "rule"
	}
	r.m.findings.WithLabelValues(f.Priority.String(), src).Inc()
}

// End stops counting the run live, adds its totals and records its
// duration with the outcome of err: nil is ok, a context cancellation is
// cancelled, anything else error. Calls after the first do nothing.
func (r *Run) End(err error) {
	r.once.Do(func() {
		outcome := "ok"
		switch {
		case errors.Is(err, context.Canceled):
			outcome = "cancelled"
		case err != nil:
			outcome = "error"
		}
		r.m.mu.Lock()
		delete(r.m.live, r)
		c := r.m.finished[r.kind]
		c.events += r.stats.Events.Load()
		c.errors += r.stats.Errors.Load()
		r.m.finished[r.kind] = c
		r.m.mu.Unlock()
		r.m.runs.WithLabelValues(r.kind, outcome).Observe(time.Since(r.start).Seconds())
	})
}

// liveCollector reports the run counters: ended runs plus runs in progress.
type liveCollector struct{ m *Metrics }

func (c liveCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.m.eventsDesc
	ch <- c.m.errorsDesc
	ch <- c.m.rateDesc
	ch <- c.m.activeDesc
}

func (c liveCollector) Collect(ch chan<- prometheus.Metric) {
	type sums struct {
		counts
		rate   float64
		active int
	}
	by := map[string]*sums{Stream: {}, Job: {}}
	now := time.Now()
	c.m.mu.Lock()
	for kind, f := range c.m.finished {
		if by[kind] == nil {
			by[kind] = &sums{}
		}
		by[kind].counts = f
	}
	for r := range c.m.live {
		s := by[r.kind]
		if s == nil {
			s = &sums{}
			by[r.kind] = s
		}
		ev := r.stats.Events.Load()
		s.events += ev
		s.errors += r.stats.Errors.Load()
		s.active++
		if age := now.Sub(r.start).Seconds(); age > 0 {
			s.rate += float64(ev) / age
		}
	}
	c.m.mu.Unlock()
	for kind, s := range by {
		ch <- prometheus.MustNewConstMetric(c.m.eventsDesc, prometheus.CounterValue, float64(s.events), kind)
		ch <- prometheus.MustNewConstMetric(c.m.errorsDesc, prometheus.CounterValue, float64(s.errors), kind)
		ch <- prometheus.MustNewConstMetric(c.m.rateDesc, prometheus.GaugeValue, s.rate, kind)
		ch <- prometheus.MustNewConstMetric(c.m.activeDesc, prometheus.GaugeValue, float64(s.active), kind)
	}
}

// Request counts one served HTTP request. route is the ServeMux pattern
// that matched ("" for none), so label values stay bounded.
func (m *Metrics) Request(route, method string, code int, d time.Duration) {
	if route == "" {
		route = "unmatched"
	}
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
	default:
		method = "other" // clients choose the method: keep the label bounded
	}
	m.requests.WithLabelValues(route, method, statusText(code)).Inc()
	m.reqSeconds.WithLabelValues(route).Observe(d.Seconds())
}

func statusText(code int) string {
	if code < 100 || code > 599 {
		return "other"
	}
	return string([]byte{byte('0' + code/100), byte('0' + code/10%10), byte('0' + code%10)})
}

// CacheStats is a cache that counts its lookups.
type CacheStats interface {
	Stats() (hits, misses int64)
}

// WatchCache exports the hits and misses of c under the label cache=name.
// Registering the same name twice is an error.
func (m *Metrics) WatchCache(name string, c CacheStats) error {
	hits := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "loupe_cache_hits_total", Help: "Lookups answered from a cache.", ConstLabels: prometheus.Labels{"cache": name},
	}, func() float64 { h, _ := c.Stats(); return float64(h) })
	misses := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "loupe_cache_misses_total", Help: "Lookups a cache could not answer (absent or expired).", ConstLabels: prometheus.Labels{"cache": name},
	}, func() float64 { _, m := c.Stats(); return float64(m) })
	if err := m.reg.Register(hits); err != nil {
		return err
	}
	return m.reg.Register(misses)
}

// Provider wraps p so that every call is counted: calls by outcome, input
// and output tokens, latency.
func (m *Metrics) Provider(p llm.Provider) llm.Provider {
	if p == nil {
		return nil
	}
	return observed{Provider: p, m: m}
}

type observed struct {
	llm.Provider
	m *Metrics
}

func (o observed) Generate(ctx context.Context, r llm.Request) (llm.Response, error) {
	start := time.Now()
	resp, err := o.Provider.Generate(ctx, r)
	name, model := o.Provider.Name(), o.Provider.Model()
	outcome := "ok"
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		outcome = "timeout"
	case err != nil:
		outcome = "error"
	}
	o.m.llmCalls.WithLabelValues(name, model, outcome).Inc()
	o.m.llmLatency.WithLabelValues(name, model).Observe(time.Since(start).Seconds())
	if resp.InputTokens > 0 {
		o.m.llmTokens.WithLabelValues(name, model, "input").Add(float64(resp.InputTokens))
	}
	if resp.OutputTokens > 0 {
		o.m.llmTokens.WithLabelValues(name, model, "output").Add(float64(resp.OutputTokens))
	}
	return resp, err
}
