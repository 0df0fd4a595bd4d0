package server

// SIB-compatible alert analysis endpoints: a drop-in for the analysis
// service of SIB (SIEM in a Box), which Grafana's "Analyze with AI" data
// links call.
//
//	POST /api/analyze     JSON alert in, JSON analysis out
//	GET  /analyze         HTML analysis page (?rule=&output=&priority=&hostname=&dry_run=&format=json)
//	GET  /health          {"status":"healthy","service":"loupe",...}
//	GET  /api/health/all  health of the configured SIB services
//
// When a token is configured, every endpoint but /health needs it, as
// "Authorization: Bearer <token>" or, for Grafana links, "?token=<token>".

import (
	"context"
	"crypto/subtle"
	_ "embed"
	"encoding/json"
	"errors"
	"html/template"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/loupe-sec/loupe/internal/alert"
	"github.com/loupe-sec/loupe/internal/config"
	"github.com/loupe-sec/loupe/internal/llm"
	"github.com/loupe-sec/loupe/internal/logstore"
	"github.com/loupe-sec/loupe/internal/obfuscate"
	"github.com/loupe-sec/loupe/internal/version"
)

// maxAlertBytes bounds a POST /api/analyze body.
const maxAlertBytes = 1 << 20

// Health check timeouts: the default per check and the bounds of ?timeout=.
const (
	healthTimeout    = 3 * time.Second
	minHealthTimeout = 50 * time.Millisecond
	maxHealthTimeout = 10 * time.Second
)

//go:embed sib.html
var sibHTML string

var sibPage = template.Must(template.New("sib").Funcs(template.FuncMap{
	"sevclass": func(s string) string {
		for _, v := range alert.Severities {
			if s == v {
				return s
			}
		}
		return "info"
	},
	"levelclass": func(s string) string {
		switch s {
		case "high", "medium", "low":
			return s
		}
		return "unknown"
	},
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
}).Parse(sibHTML))

// newAlertService builds the analysis service from cfg: with an LLM provider
// configured (ollama, openai, anthropic) it asks that model, falling back to
// the offline analysis when the model fails; otherwise it analyses offline.
func newAlertService(cfg config.Config, s *Server) *alert.Service {
	svc := &alert.Service{
		Provider:    cfg.LLMProvider,
		Model:       cfg.LLMModel,
		Obfuscate:   cfg.Obfuscation,
		Obfuscation: obfuscate.Options{PreserveStructure: cfg.PreserveStructure},
		Log:         s.log,
	}
	switch cfg.LLMProvider {
	case llm.OpenAI, llm.Anthropic, llm.Ollama:
		p, err := llm.New(cfg.LLMProvider, cfg.LLMModel, cfg.LLMBaseURL, cfg.LLMAPIKey, &http.Client{})
		if err != nil {
			s.log.Warn("LLM provider unusable, analysing alerts offline", "provider", cfg.LLMProvider, "err", err)
			break
		}
		svc.Analyzer = alert.LLM{Provider: s.metrics.Provider(p)}
		svc.Provider, svc.Model = p.Name(), p.Model()
	}
	if cfg.CacheEnabled {
		svc.Cache = alert.NewCache(cfg.CacheTTL, alert.DefaultCacheSize)
		if err := s.metrics.WatchCache("alerts", svc.Cache); err != nil {
			s.log.Warn("alert cache not in /metrics", "err", err)
		}
	}
	storeURL := cfg.LokiURL
	if cfg.Stack == "vm" {
		storeURL = cfg.VictoriaLogsURL
	}
	if storeURL != "" {
		svc.Related = relatedFrom(logstore.New(cfg.Stack, cfg.LokiURL, cfg.VictoriaLogsURL, &http.Client{Timeout: relatedTimeout}))
	}
	return svc
}

// The window and size of the log-store lookup around an alert.
const (
	relatedWindow  = 5 * time.Minute
	relatedLimit   = 50
	relatedTimeout = 5 * time.Second
)

// relatedFrom looks up the events from the alert's host and container in
// a window around it (around now when the alert carries no time).
func relatedFrom(st logstore.Store) alert.RelatedFunc {
	return func(ctx context.Context, a alert.Alert) ([]alert.RelatedEvent, error) {
		q := logstore.Query{
			Host:        a.Hostname,
			ContainerID: a.Field("container.id", "container_id"),
			Around:      a.Time,
			Before:      relatedWindow,
			After:       relatedWindow,
			Limit:       relatedLimit,
		}
		if q.Around.IsZero() {
			q.Around = time.Now()
		}
		if q.ContainerID == "host" {
			q.ContainerID = "" // Falco's name for "not in a container"
		}
		if q.Host == "" && q.ContainerID == "" {
			return nil, nil // nothing to anchor a query on
		}
		evs, err := st.Related(ctx, q)
		if err != nil {
			return nil, err
		}
		out := make([]alert.RelatedEvent, 0, len(evs))
		for _, e := range evs {
			out = append(out, alert.RelatedEvent{Time: e.Time, Rule: e.Rule, Priority: e.Priority, Hostname: e.Host, Output: e.Message})
		}
		return out, nil
	}
}

// Alerts returns the alert analysis service behind the SIB endpoints, so the
// caller can set its Analyzer (a language-model provider) and Related (the
// log-store lookup) before serving.
func (s *Server) Alerts() *alert.Service { return s.alerts }

func (s *Server) registerSIB() {
	s.alerts = newAlertService(s.cfg, s)
	s.mux.HandleFunc("POST /api/analyze", s.sibAuth(s.apiAnalyze))
	s.mux.HandleFunc("GET /analyze", s.sibAuth(s.analyzePage))
	s.mux.HandleFunc("GET /health", s.sibHealth)
	s.mux.HandleFunc("GET /api/health/all", s.sibAuth(s.sibHealthAll))
}

// sibAuth requires the token, from the Authorization header or ?token=.
func (s *Server) sibAuth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.Token == "" || s.authorized(r) {
			h(w, r)
			return
		}
		if q := r.URL.Query().Get("token"); q != "" && subtle.ConstantTimeCompare([]byte(q), []byte(s.cfg.Token)) == 1 {
			h(w, r)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="loupe"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthorized"})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// apiAnalyze: POST /api/analyze. Body: {"rule","output","priority",...},
// SIB's {"alert":"<output>","rule",...} or {"alert":{<Falco event>}}, at
// most 1 MiB. 200 with the analysis; 400 for bad JSON or an alert without
// rule and output; 413 for a larger body; 500 if the analysis failed.
func (s *Server) apiAnalyze(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAlertBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": "request body larger than " + strconv.Itoa(maxAlertBytes) + " bytes"})
			return
		}
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "read body: " + err.Error()})
		return
	}
	a, err := alert.Parse(body)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	an, err := s.alerts.Analyze(r.Context(), a)
	if err != nil {
		s.log.Warn("alert analysis failed", "rule", a.Rule, "err", err)
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "analysis failed"})
		return
	}
	writeJSON(w, http.StatusOK, an)
}

// pageData feeds sib.html.
type pageData struct {
	Alert    alert.Alert
	Analysis *alert.Analysis
	DryRun   *dryRunView
	Error    string
	Version  string
	Now      time.Time
}

type dryRunView struct {
	Prompt        string
	PromptVersion string
	Tokens        []tokenRow
	Counts        map[string]int
	Obfuscated    bool
}

type tokenRow struct {
	Token string `json:"token"`
	Kind  string `json:"kind"`
	Value string `json:"value"`
}

// analyzePage: GET /analyze, the page Grafana links to.
func (s *Server) analyzePage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	a := alert.Alert{
		Rule:     strings.TrimSpace(q.Get("rule")),
		Output:   strings.TrimSpace(q.Get("output")),
		Priority: strings.TrimSpace(q.Get("priority")),
		Hostname: strings.TrimSpace(q.Get("hostname")),
		Source:   strings.TrimSpace(q.Get("source")),
	}
	if tags := q.Get("tags"); tags != "" {
		for t := range strings.SplitSeq(tags, ",") {
			if t = strings.TrimSpace(t); t != "" {
				a.Tags = append(a.Tags, t)
			}
		}
	}
	if a.Hostname == "unknown" || a.Hostname == "Unknown" {
		a.Hostname = ""
	}
	asJSON := strings.EqualFold(q.Get("format"), "json")
	dry, _ := strconv.ParseBool(q.Get("dry_run"))
	d := pageData{Alert: a, Version: version.String(), Now: time.Now()}

	if err := a.Validate(); err != nil {
		if asJSON {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "no alert given: use ?rule=...&output=..."})
			return
		}
		d.Error = "No alert given. Open this page from Grafana's “Analyze” link, or add ?rule=…&output=… to the address."
		s.renderPage(w, http.StatusBadRequest, d)
		return
	}
	if dry {
		dr, err := s.alerts.DryRun(r.Context(), a)
		if err != nil {
			s.pageError(w, asJSON, d, err)
			return
		}
		v := &dryRunView{Prompt: dr.Prompt, PromptVersion: dr.PromptVersion, Counts: dr.Counts, Obfuscated: s.alerts.Obfuscate}
		for _, e := range dr.Table {
			v.Tokens = append(v.Tokens, tokenRow{Token: e.Token, Kind: string(e.Kind), Value: e.Value})
		}
		if asJSON {
			writeJSON(w, http.StatusOK, map[string]any{"dry_run": true, "obfuscated": v.Obfuscated, "prompt": v.Prompt,
				"prompt_version": v.PromptVersion, "obfuscation": v.Counts, "tokens": orEmpty(v.Tokens)})
			return
		}
		d.DryRun = v
		s.renderPage(w, http.StatusOK, d)
		return
	}
	an, err := s.alerts.Analyze(r.Context(), a)
	if err != nil {
		s.log.Warn("alert analysis failed", "rule", a.Rule, "err", err)
		s.pageError(w, asJSON, d, err)
		return
	}
	if asJSON {
		writeJSON(w, http.StatusOK, an)
		return
	}
	d.Analysis = &an
	s.renderPage(w, http.StatusOK, d)
}

func orEmpty(rows []tokenRow) []tokenRow {
	if rows == nil {
		return []tokenRow{}
	}
	return rows
}

func (s *Server) pageError(w http.ResponseWriter, asJSON bool, d pageData, err error) {
	if asJSON {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "analysis failed"})
		return
	}
	d.Error = "The analysis failed. The server log has the details."
	s.renderPage(w, http.StatusInternalServerError, d)
}

// renderPage writes the page. The policy forbids scripts, remote assets and
// framing; the referrer is withheld because the address may carry the token.
func (s *Server) renderPage(w http.ResponseWriter, status int, d pageData) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	var b strings.Builder
	if err := sibPage.Execute(&b, d); err != nil {
		s.log.Error("render analysis page", "err", err)
		http.Error(w, "render failed", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(status)
	io.WriteString(w, b.String())
}

// sibHealth: GET /health, SIB's liveness answer.
func (s *Server) sibHealth(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "healthy", "service": "loupe", "version": version.String()})
}

// ServiceHealth is one service's entry in /api/health/all.
type ServiceHealth struct {
	Name      string `json:"name"`
	URL       string `json:"url,omitempty"`
	Status    string `json:"status"` // up, down or not_configured
	Code      int    `json:"code,omitempty"`
	LatencyMS int64  `json:"latency_ms"`
	Error     string `json:"error,omitempty"`
}

type healthCheck struct {
	name, base, path string
	anyAnswer        bool // reachable is enough (cloud APIs answer 401 without a key)
}

func (s *Server) healthChecks() []healthCheck {
	c := s.cfg
	checks := []healthCheck{
		{name: "falco", base: c.FalcoURL, path: "/healthz"},
		{name: "falcosidekick", base: c.FalcosidekickURL, path: "/ping"},
	}
	if c.Stack == "vm" {
		checks = append(checks, healthCheck{name: "victorialogs", base: c.VictoriaLogsURL, path: "/health"})
	} else {
		checks = append(checks, healthCheck{name: "loki", base: c.LokiURL, path: "/ready"})
	}
	checks = append(checks, healthCheck{name: "grafana", base: c.GrafanaURL, path: "/api/health"})
	switch c.LLMProvider {
	case "ollama":
		checks = append(checks, healthCheck{name: "llm", base: c.LLMBaseURL, path: "/api/tags"})
	case "openai", "anthropic":
		checks = append(checks, healthCheck{name: "llm", base: c.LLMBaseURL, path: "/models", anyAnswer: true})
	default:
		checks = append(checks, healthCheck{name: "llm"})
	}
	return checks
}

// sibHealthAll: GET /api/health/all. Checks every configured service at
// once, each bounded by ?timeout= seconds (default 3, at most 10).
func (s *Server) sibHealthAll(w http.ResponseWriter, r *http.Request) {
	timeout := healthTimeout
	if v := r.URL.Query().Get("timeout"); v != "" {
		if f, err := strconv.ParseFloat(v, 64); err == nil && f > 0 {
			timeout = min(max(time.Duration(f*float64(time.Second)), minHealthTimeout), maxHealthTimeout)
		}
	}
	checks := s.healthChecks()
	results := make([]ServiceHealth, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() { results[i] = s.check(r.Context(), c, timeout) })
	}
	wg.Wait()

	services := map[string]ServiceHealth{"loupe": {Name: "loupe", Status: "up"}}
	configured, up := 0, 0
	for _, res := range results {
		services[res.Name] = res
		if res.Status != "not_configured" {
			configured++
			if res.Status == "up" {
				up++
			}
		}
	}
	status := "healthy"
	switch {
	case configured > 0 && up == 0:
		status = "unhealthy"
	case up < configured:
		status = "degraded"
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"status":     status,
		"stack":      s.cfg.Stack,
		"services":   services,
		"checked_at": time.Now().UTC().Format(time.RFC3339),
	})
}

var healthClient = &http.Client{
	// Never follow a redirect to somewhere else.
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func (s *Server) check(ctx context.Context, c healthCheck, timeout time.Duration) ServiceHealth {
	res := ServiceHealth{Name: c.name, Status: "not_configured"}
	if c.base == "" {
		return res
	}
	res.URL = c.base + c.path
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, res.URL, nil)
	if err != nil {
		res.Status, res.Error = "down", err.Error()
		return res
	}
	resp, err := healthClient.Do(req)
	res.LatencyMS = time.Since(start).Milliseconds()
	if err != nil {
		res.Status = "down"
		res.Error = err.Error()
		if ctx.Err() != nil {
			res.Error = "timed out after " + timeout.String()
		}
		return res
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	res.Code = resp.StatusCode
	if resp.StatusCode >= 200 && resp.StatusCode < 300 || c.anyAnswer && resp.StatusCode < 500 {
		res.Status = "up"
	} else {
		res.Status = "down"
		res.Error = resp.Status
	}
	return res
}
