// Package deep is loupe's language-model reasoning stage. During a run it
// mines the events into clusters (package cluster) and attaches the
// engine's detections and offline findings to them; when the offline stream
// has ended it picks the clusters most worth a model's time (detections by
// priority first, then the rarest templates), within a budget of calls and
// tokens per run (by default one call per 10,000 events, at most 100) and
// the per-minute limits of the provider's llm.Guard, and asks the model
// about a few clusters per call.
//
// Each call carries an obfuscated, size-bounded summary (templates, counts,
// time span, representative events, detections) inside a data frame: every
// log value is a JSON string between BEGIN/END LOG DATA lines, and the
// system prompt says that content is untrusted data. The answer must follow
// a JSON Schema whose references (clusters C1…, events E1…) are those sent;
// it is validated, repaired once, and otherwise abandoned. Valid answers are
// cached by their normalised obfuscated prompt (never failures).
//
// Conclusions are de-obfuscated for the analyst with the call's Mapper,
// which stays in memory, and merged with the offline findings: a conclusion
// on the same tactic and events as an offline finding enriches it (the
// finding is emitted again under its id with the model's note in
// Finding.LLM) instead of becoming a duplicate; the others become findings
// with Source "llm". When a call fails (provider down, slow, invalid answer,
// open circuit), the offline findings of its clusters are emitted again
// under their ids with Finding.LLM.Fallback saying why. Consumers keep the
// last version of an id, as the findings store does. Offline findings are
// never held back or dropped.
package deep

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loupe-sec/loupe/internal/cluster"
	"github.com/loupe-sec/loupe/internal/detect"
	"github.com/loupe-sec/loupe/internal/event"
	"github.com/loupe-sec/loupe/internal/finding"
	"github.com/loupe-sec/loupe/internal/llm"
	"github.com/loupe-sec/loupe/internal/obfuscate"
	"github.com/loupe-sec/loupe/internal/reason"
)

// Defaults of Config.
const (
	DefaultEventsPerCall      = 10000
	DefaultMaxCalls           = 100
	DefaultRunTokens          = 400000
	DefaultClustersPerCall    = 6
	DefaultMaxPromptBytes     = 12 << 10
	DefaultAnswerTokens       = 1500
	DefaultMaxFindingsPerCall = 8
	DefaultStageTimeout       = 3 * time.Minute
)

// Config sets up an Analyst.
type Config struct {
	Provider llm.Provider // required
	Limits   llm.Limits   // concurrency, per-minute buckets, per-call timeout, breaker
	Cache    *llm.Cache   // nil: no caching

	EventsPerCall      int           // at most one call per this many events of a run (at least one call); 0: 10000
	MaxCalls           int           // calls per run; 0: 100
	RunTokens          int           // estimated tokens (prompt + answer bound) per run; 0: 400000
	ClustersPerCall    int           // 0: 6
	MaxPromptBytes     int           // summary size bound that closes a call's batch; 0: 12 KiB
	AnswerTokens       int           // answer bound sent to the model; 0: 1500
	MaxFindingsPerCall int           // conclusions read from one answer; 0: 8
	StageTimeout       time.Duration // the whole stage of one run; 0: 3 min
	Obfuscation        obfuscate.Options
	Cluster            cluster.Options
	Log                *slog.Logger
}

// Stats count an Analyst's work over all runs, for metrics. The fields are
// safe to read at any time.
type Stats struct {
	Runs            atomic.Int64
	Calls           atomic.Int64 // model calls made (repairs included)
	Repairs         atomic.Int64
	CacheHits       atomic.Int64
	SkippedByBudget atomic.Int64 // clusters not sent for lack of budget
	Fallbacks       atomic.Int64 // batches whose clusters fell back to the offline findings
	InputTokens     atomic.Int64
	OutputTokens    atomic.Int64
	Findings        atomic.Int64 // findings with Source "llm"
	Enriched        atomic.Int64 // offline findings enriched with a model's note
}

// Analyst asks a model about the clusters of runs. It is safe for
// concurrent use by several runs.
type Analyst struct {
	cfg   Config
	guard *llm.Guarded
	Stats Stats
}

// New returns an Analyst; the provider is wrapped in an llm.Guard with
// cfg.Limits.
func New(cfg Config) (*Analyst, error) {
	if cfg.Provider == nil {
		return nil, errors.New("deep: no provider")
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&cfg.EventsPerCall, DefaultEventsPerCall)
	def(&cfg.MaxCalls, DefaultMaxCalls)
	def(&cfg.RunTokens, DefaultRunTokens)
	def(&cfg.ClustersPerCall, DefaultClustersPerCall)
	def(&cfg.MaxPromptBytes, DefaultMaxPromptBytes)
	def(&cfg.AnswerTokens, DefaultAnswerTokens)
	def(&cfg.MaxFindingsPerCall, DefaultMaxFindingsPerCall)
	if cfg.StageTimeout <= 0 {
		cfg.StageTimeout = DefaultStageTimeout
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Analyst{cfg: cfg, guard: llm.Guard(cfg.Provider, cfg.Limits)}, nil
}

// Guard returns the guarded provider (its Stats count every model call).
func (a *Analyst) Guard() *llm.Guarded { return a.guard }

// Summary describes the stage of one run.
type Summary struct {
	Provider        string        `json:"provider"`
	Model           string        `json:"model"`
	PromptVersion   string        `json:"prompt_version"`
	Events          int64         `json:"events"`
	Clusters        int           `json:"clusters"`   // clusters held at the end
	Candidates      int           `json:"candidates"` // clusters worth a call
	Sent            int           `json:"sent"`       // clusters in the calls asked (cache hits and failed calls included)
	Budget          int           `json:"budget"`     // calls allowed this run
	Calls           int           `json:"calls"`      // model calls made, repairs included
	Repairs         int           `json:"repairs"`
	CacheHits       int           `json:"cache_hits"`
	SkippedByBudget int           `json:"skipped_by_budget"` // candidate clusters not sent
	Fallbacks       int           `json:"fallbacks"`         // batches that fell back
	InputTokens     int64         `json:"input_tokens"`
	OutputTokens    int64         `json:"output_tokens"`
	LatencyP50      time.Duration `json:"latency_p50"`
	LatencyP95      time.Duration `json:"latency_p95"`
	Findings        int           `json:"findings"` // new findings with Source "llm"
	Enriched        int           `json:"enriched"` // offline findings given a model's note
	Marked          int           `json:"marked"`   // offline findings re-emitted with a fallback reason
	Reasons         []string      `json:"reasons,omitempty"`
	Duration        time.Duration `json:"duration"`
}

// String is a one-line account for the CLI.
func (s Summary) String() string {
	str := fmt.Sprintf("llm %s/%s (%s): %d clusters, %d candidates, %d sent in %d calls (budget %d, plus %d repairs; %d cache hits), %d skipped by budget, %d fallbacks; tokens in %d out %d; latency p50 %s p95 %s; %d new findings, %d enriched, %d marked; %s",
		s.Provider, s.Model, s.PromptVersion, s.Clusters, s.Candidates, s.Sent, s.Calls, s.Budget, s.Repairs, s.CacheHits,
		s.SkippedByBudget, s.Fallbacks, s.InputTokens, s.OutputTokens, s.LatencyP50.Round(time.Millisecond),
		s.LatencyP95.Round(time.Millisecond), s.Findings, s.Enriched, s.Marked, s.Duration.Round(time.Millisecond))
	if len(s.Reasons) > 0 {
		str += "; fallback: " + strings.Join(s.Reasons, "; ")
	}
	return str
}

// Run is the stage's state for one run. Observe, Detection and Finding are
// called from the run's goroutine; Finish once at the end.
type Run struct {
	a       *Analyst
	miner   *cluster.Miner
	lastEv  *event.Event
	lastC   *cluster.Cluster
	detC    *cluster.Cluster // cluster of the detection being reasoned on
	summary Summary
}

// Start begins a run.
func (a *Analyst) Start() *Run {
	a.Stats.Runs.Add(1)
	return &Run{a: a, miner: cluster.NewMiner(a.cfg.Cluster), summary: Summary{
		Provider: a.cfg.Provider.Name(), Model: a.cfg.Provider.Model(), PromptVersion: PromptVersion}}
}

// Observe mines one event.
func (r *Run) Observe(ev *event.Event) {
	r.lastEv, r.lastC = ev, r.miner.Add(ev)
}

// Detection attaches a detection to its event's cluster. Call it before
// the detection is reasoned on, so that the findings it yields are placed.
func (r *Run) Detection(d detect.Detection) {
	c := r.lastC
	if d.Event != r.lastEv {
		c = nil
		if d.Event != nil {
			c = r.miner.Match(d.Event)
		}
	}
	r.detC = c
	r.miner.Detect(c, d)
}

// Finding attaches an offline finding to the cluster of its evidence (or of
// the detection being reasoned on).
func (r *Run) Finding(f *finding.Finding) {
	var c *cluster.Cluster
	for _, e := range f.Evidence {
		if c = r.miner.Place(e.RecordID); c != nil {
			break
		}
	}
	if c == nil {
		c = r.detC
	}
	r.miner.AddFinding(c, f)
}

// Summary returns the stage's summary; complete after Finish.
func (r *Run) Summary() Summary { return r.summary }

// Clusters returns the run's clusters, most events first.
func (r *Run) Clusters() []*cluster.Cluster { return r.miner.Clusters() }

// candidates orders the clusters worth a call: detected ones by priority
// and detection count, then undetected rare templates, rarest first.
func (r *Run) candidates() []*cluster.Cluster {
	ms := r.miner.Stats()
	rare := max(1, ms.Events/int64(r.a.cfg.EventsPerCall))
	var out []*cluster.Cluster
	for _, c := range r.miner.Clusters() {
		if c.Detected() || c.Count <= rare {
			out = append(out, c)
		}
	}
	dets := func(c *cluster.Cluster) int64 {
		n := c.MoreDetections
		for _, d := range c.Detections {
			n += d.Count
		}
		return n
	}
	slices.SortStableFunc(out, func(a, b *cluster.Cluster) int {
		if a.Detected() != b.Detected() {
			if a.Detected() {
				return -1
			}
			return 1
		}
		if a.Detected() {
			return cmp.Or(cmp.Compare(b.Priority, a.Priority), cmp.Compare(dets(b), dets(a)), cmp.Compare(a.ID, b.ID))
		}
		return cmp.Or(cmp.Compare(a.Count, b.Count), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// batches packs clusters into calls of at most ClustersPerCall clusters and
// about MaxPromptBytes of raw text.
func (r *Run) batches(cs []*cluster.Cluster) [][]*cluster.Cluster {
	var out [][]*cluster.Cluster
	var cur []*cluster.Cluster
	size := 0
	for _, c := range cs {
		n := 200 + min(len(c.Template()), maxTemplateBytes)
		for i := range c.Events {
			n += 100 + len(c.Events[i].Text)
		}
		if len(cur) > 0 && (len(cur) >= r.a.cfg.ClustersPerCall || size+n > r.a.cfg.MaxPromptBytes) {
			out = append(out, cur)
			cur, size = nil, 0
		}
		cur = append(cur, c)
		size += n
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// outcome is what one batch produced.
type outcome struct {
	b         *batch
	concl     []conclusion
	fallback  string // why the model's part is missing; "" on success
	calls     int
	repairs   int
	cached    bool
	in, out   int64
	latencies []time.Duration
}

// Finish runs the model calls and yields the model's findings, enriched
// offline findings and fallback-marked offline findings, as batches
// complete. It returns when all calls have ended, within StageTimeout.
// Stopping the iteration (yield returning false) cancels the calls.
func (r *Run) Finish(ctx context.Context, yield func(*finding.Finding) bool) {
	start := time.Now()
	cfg := r.a.cfg
	s := &r.summary
	defer func() { s.Duration = time.Since(start) }()
	ms := r.miner.Stats()
	s.Events, s.Clusters = ms.Events, ms.Live
	cands := r.candidates()
	s.Candidates = len(cands)
	if len(cands) == 0 {
		return
	}
	s.Budget = int(min(int64(cfg.MaxCalls), max(1, ms.Events/int64(cfg.EventsPerCall))))
	groups := r.batches(cands)
	ctx, cancel := context.WithTimeout(ctx, cfg.StageTimeout)
	defer cancel()

	// Build the prompts (cheap) in order; budget calls and tokens.
	var jobs []*batch
	tokensLeft, paid := cfg.RunTokens, 0
	for _, g := range groups {
		b := build(g, ms.Events, cfg.MaxFindingsPerCall, cfg.Obfuscation)
		b.key = llm.Key(cfg.Provider.Name(), cfg.Provider.Model(), PromptVersion, keyText(b.prompt))
		if cfg.Cache != nil {
			if text, ok := cfg.Cache.Get(b.key); ok {
				b.cached = text
				jobs = append(jobs, b) // answered from the cache, costs nothing
				continue
			}
		}
		cost := llm.EstimateTokens(systemPrompt) + llm.EstimateTokens(b.prompt) + cfg.AnswerTokens
		if paid >= s.Budget || cost > tokensLeft {
			s.SkippedByBudget += len(g)
			continue
		}
		tokensLeft -= cost
		paid++
		jobs = append(jobs, b)
	}
	r.a.Stats.SkippedByBudget.Add(int64(s.SkippedByBudget))
	if s.SkippedByBudget > 0 {
		s.Reasons = append(s.Reasons, fmt.Sprintf("%d clusters not sent: over the run's budget of %d calls and %d tokens",
			s.SkippedByBudget, s.Budget, cfg.RunTokens))
	}

	results := make(chan outcome)
	work := make(chan *batch)
	var wg sync.WaitGroup
	for range min(len(jobs), r.a.guard.Limits().Concurrency) {
		wg.Go(func() {
			for b := range work {
				results <- r.ask(ctx, b)
			}
		})
	}
	go func() {
		defer close(work)
		for _, b := range jobs {
			select {
			case work <- b:
			case <-ctx.Done():
				// Not started: report each as a fallback without a call.
				results <- outcome{b: b, fallback: "llm stage ended before the call: " + context.Cause(ctx).Error()}
			}
		}
	}()

	var lat []time.Duration
	stopped := false
	for range jobs {
		o := <-results
		s.Calls += o.calls
		s.Repairs += o.repairs
		s.InputTokens += o.in
		s.OutputTokens += o.out
		s.Sent += len(o.b.clusters)
		lat = append(lat, o.latencies...)
		if o.cached {
			s.CacheHits++
			r.a.Stats.CacheHits.Add(1)
		}
		r.a.Stats.Calls.Add(int64(o.calls)) // live, for metrics
		r.a.Stats.Repairs.Add(int64(o.repairs))
		r.a.Stats.InputTokens.Add(o.in)
		r.a.Stats.OutputTokens.Add(o.out)
		if stopped {
			continue
		}
		for _, f := range r.merge(o) {
			if !yield(f) {
				stopped = true
				cancel()
				break
			}
		}
	}
	wg.Wait()
	s.LatencyP50, s.LatencyP95 = percentile(lat, 50), percentile(lat, 95)
	r.a.Stats.Fallbacks.Add(int64(s.Fallbacks))
	r.a.Stats.Findings.Add(int64(s.Findings))
	r.a.Stats.Enriched.Add(int64(s.Enriched))
}

func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	ds = slices.Clone(ds)
	slices.Sort(ds)
	i := (len(ds)*p+99)/100 - 1
	return ds[max(0, min(i, len(ds)-1))]
}

// ask gets a validated answer about b: from the cache, or from the model
// with one repair request.
func (r *Run) ask(ctx context.Context, b *batch) outcome {
	cfg := r.a.cfg
	o := outcome{b: b}
	if b.cached != "" {
		if c, err := b.decode(b.cached, cfg.MaxFindingsPerCall); err == nil {
			o.concl, o.cached = c, true
			return o
		}
	}
	if err := ctx.Err(); err != nil {
		o.fallback = "llm stage ended before the call: " + context.Cause(ctx).Error()
		return o
	}
	req := llm.Request{System: systemPrompt, User: b.prompt, Schema: b.schema(), SchemaName: "cluster_findings", MaxTokens: cfg.AnswerTokens}
	for attempt := 0; attempt < 2; attempt++ {
		t0 := time.Now()
		resp, err := r.a.guard.Generate(ctx, req)
		if !errors.Is(err, llm.ErrCircuitOpen) {
			o.calls++
			o.latencies = append(o.latencies, time.Since(t0))
		}
		o.in += int64(resp.InputTokens)
		o.out += int64(resp.OutputTokens)
		var concl []conclusion
		switch {
		case errors.Is(err, llm.ErrEmptyAnswer) && ctx.Err() == nil:
			// The model answered without the schema's object (say, text
			// instead of the tool call): an invalid answer, worth a repair.
		case err != nil:
			o.fallback = failure(ctx, err)
			return o
		default:
			concl, err = b.decode(resp.Text, cfg.MaxFindingsPerCall)
		}
		if err == nil {
			o.concl, o.fallback = concl, ""
			if cfg.Cache != nil {
				cfg.Cache.Put(b.key, resp.Text) // only validated answers are cached
			}
			return o
		}
		o.fallback = "llm answer invalid after one repair: " + clipBytes(err.Error(), 200)
		if attempt == 0 {
			o.repairs++
			req.User = repairPrompt(b.prompt, resp.Text, err)
		}
	}
	return o
}

// failure words why a call failed, for the fallback mark.
func failure(ctx context.Context, err error) string {
	switch {
	case errors.Is(err, llm.ErrCircuitOpen):
		return "llm unavailable: circuit open after repeated failures"
	case errors.Is(err, llm.ErrTimeout):
		return "llm call timed out: " + clipBytes(err.Error(), 200)
	case ctx.Err() != nil:
		return "llm stage timed out: " + context.Cause(ctx).Error()
	}
	return "llm call failed: " + clipBytes(err.Error(), 200)
}

// merge turns an outcome into findings: new model findings, enriched offline
// findings, or offline findings marked with the fallback reason.
func (r *Run) merge(o outcome) []*finding.Finding {
	cfg := r.a.cfg
	s := &r.summary
	prov := finding.LLM{Provider: cfg.Provider.Name(), Model: cfg.Provider.Model(), PromptVersion: PromptVersion}
	var offline []*finding.Finding
	seen := map[string]bool{}
	for _, c := range o.b.clusters {
		for _, f := range c.Findings {
			if !seen[f.ID] {
				seen[f.ID] = true
				offline = append(offline, f)
			}
		}
	}
	if o.fallback != "" {
		s.Fallbacks++
		if len(s.Reasons) < 5 && !slices.Contains(s.Reasons, o.fallback) {
			s.Reasons = append(s.Reasons, o.fallback)
		}
		cfg.Log.Warn("llm reasoning fell back to the offline findings", "clusters", len(o.b.clusters), "reason", o.fallback)
		out := make([]*finding.Finding, 0, len(offline))
		for _, f := range offline {
			cp := *f
			mark := prov
			mark.Fallback = o.fallback
			cp.LLM = &mark
			out = append(out, &cp)
		}
		s.Marked += len(out)
		return out
	}
	m := o.b.mapper
	var out []*finding.Finding
	enriched := map[string]*finding.Finding{}
	byKey := map[string]*finding.Finding{}
	for _, c := range o.concl {
		var ev []finding.Evidence
		recIDs := map[string]bool{}
		for _, ref := range c.records {
			e := o.b.events[ref]
			recIDs[e.RecordID] = true
			ev = append(ev, finding.Evidence{RecordID: e.RecordID, Index: e.Index, Line: e.Line, Time: e.Time,
				Host: e.Host, User: e.User, Summary: clipRunes(e.Text, 300)})
		}
		note := m.Restore(c.conclusion)
		// Same tactic and events as an offline finding: enrich it.
		var match *finding.Finding
		for _, f := range offline {
			if f.TacticID != c.tacticID {
				continue
			}
			for _, e := range f.Evidence {
				if recIDs[e.RecordID] {
					match = f
					break
				}
			}
			if match != nil {
				break
			}
		}
		if match != nil {
			if g, ok := enriched[match.ID]; ok {
				if !strings.Contains(g.LLM.Note, note) {
					g.LLM.Note = clipRunes(g.LLM.Note+" "+note, 2*maxConclusionRunes)
				}
				continue
			}
			cp := *match
			info := prov
			info.Note = note
			cp.LLM = &info
			enriched[match.ID] = &cp
			out = append(out, &cp)
			s.Enriched++
			continue
		}
		ids := make([]string, 0, len(recIDs))
		for id := range recIDs {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		key := c.tacticID + "\x00" + strings.Join(ids, "\x00")
		if g, ok := byKey[key]; ok { // the model said it twice
			if !strings.Contains(g.Conclusion, note) {
				g.Conclusion = clipRunes(g.Conclusion+" "+note, 2*maxConclusionRunes)
			}
			continue
		}
		cl := o.b.byRef[c.cluster]
		f := &finding.Finding{
			ID:         findingID(prov.Provider, prov.Model, key),
			Tactic:     c.tactic,
			TacticID:   c.tacticID,
			Question:   m.Restore(c.question),
			Conclusion: note,
			Priority:   c.priority,
			Rule: finding.Rule{ID: "llm/" + PromptVersion, Title: "Language model analysis (" + prov.Provider + " " + prov.Model + ")",
				Level: c.priority.String()},
			Source:   "llm",
			Count:    cl.Count,
			Evidence: ev,
			LLM:      &prov,
		}
		if f.Question == "" {
			f.Question = reason.Question(c.tactic)
		}
		if c.technique.ID != "" {
			f.Techniques = []finding.Technique{c.technique}
		}
		hosts, users := map[string]bool{}, map[string]bool{}
		for _, e := range ev {
			hosts[e.Host], users[e.User] = true, true
			if !e.Time.IsZero() && (f.First.IsZero() || e.Time.Before(f.First)) {
				f.First = e.Time
			}
			if e.Time.After(f.Last) {
				f.Last = e.Time
			}
		}
		if len(hosts) == 1 {
			f.Host = ev[0].Host
		}
		if len(users) == 1 {
			f.User = ev[0].User
		}
		byKey[key] = f
		out = append(out, f)
		s.Findings++
	}
	return out
}

func findingID(parts ...string) string {
	h := fnv.New64a()
	h.Write([]byte("llm"))
	for _, p := range parts {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	return fmt.Sprintf("%016x", h.Sum64())
}
