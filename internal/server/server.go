// Package server is loupe's HTTP service: a drop-in Timesketch "log
// reasoning agent". Timesketch streams events to POST /analyze_logs as
// NDJSON and reads findings back, line by line, while it is still uploading.
// It also serves SIB-compatible Falco alert analysis (sib.go) and, once
// given a store (SetInvestigations), background investigations with their
// findings and exports (investigations.go, export.go).
package server

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loupe-sec/loupe/internal/alert"
	"github.com/loupe-sec/loupe/internal/config"
	"github.com/loupe-sec/loupe/internal/detect"
	"github.com/loupe-sec/loupe/internal/finding"
	"github.com/loupe-sec/loupe/internal/metrics"
	"github.com/loupe-sec/loupe/internal/pipeline"
	"github.com/loupe-sec/loupe/internal/reason"
	"github.com/loupe-sec/loupe/internal/reason/deep"
	"github.com/loupe-sec/loupe/internal/report"
	"github.com/loupe-sec/loupe/internal/sigma"
	"github.com/loupe-sec/loupe/internal/source"
	"github.com/loupe-sec/loupe/internal/version"
	"github.com/loupe-sec/loupe/internal/web"
)

// Timeouts of the http.Server. There is deliberately no ReadTimeout or
// WriteTimeout: an upload of millions of events may take as long as it takes.
const (
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 2 * time.Minute
	shutdownGrace     = 10 * time.Second
)

// Server serves the agent endpoints. It is safe for concurrent use.
type Server struct {
	cfg     config.Config
	log     *slog.Logger
	streams chan struct{} // semaphore bounding concurrent streams
	mux     *http.ServeMux
	grace   time.Duration  // for open streams at shutdown
	alerts  *alert.Service // SIB-compatible alert analysis (sib.go)
	metrics *metrics.Metrics
	invest  *investigations               // the investigation API, once SetInvestigations is called
	sigma   atomic.Pointer[sigma.Ruleset] // Sigma rules for new streams; nil = built-in rules only
	deep    atomic.Pointer[deep.Analyst]  // language-model stage for new streams; nil = offline only

	// pages are the investigation pages (internal/web), made at first use.
	pages struct {
		once sync.Once
		h    *web.Handler
	}

	// streamEnded, when set, is called after each stream's pipeline has
	// finished; tests use it to see that a disconnect stops the work.
	streamEnded func(StreamStats)
}

// SetSigma makes the streams that start from now on also run the Sigma
// rules of rs (nil: built-in rules only). Streams in flight keep the rule
// set they started with.
func (s *Server) SetSigma(rs *sigma.Ruleset) { s.sigma.Store(rs) }

// SetDeep makes the streams that start from now on reason with a language
// model over clusters of their events once the offline findings are out
// (nil: offline only). Its Stats are the metrics' to read.
func (s *Server) SetDeep(a *deep.Analyst) { s.deep.Store(a) }

// StreamStats describe one finished /analyze_logs stream.
type StreamStats struct {
	RequestID string
	Events    int64
	Findings  int64
	BadLines  int64
	Bytes     int64 // request body bytes as received (compressed if gzip)
	Duration  time.Duration
	Err       error // why the stream ended early, nil when it ran to the end
}

// New returns a server for cfg. Zero limits in cfg fall back to the defaults.
func New(cfg config.Config, logger *slog.Logger) *Server {
	def := config.Default()
	if cfg.KeepaliveInterval <= 0 {
		cfg.KeepaliveInterval = def.KeepaliveInterval
	}
	if cfg.MaxLineBytes <= 0 {
		cfg.MaxLineBytes = def.MaxLineBytes
	}
	if cfg.MaxStreams <= 0 {
		cfg.MaxStreams = def.MaxStreams
	}
	if cfg.Listen == "" {
		cfg.Listen = def.Listen
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: logger, streams: make(chan struct{}, cfg.MaxStreams), grace: shutdownGrace,
		metrics: metrics.New()}
	s.mux = http.NewServeMux()
	s.mux.Handle("GET /metrics", s.requireToken(s.metrics.Handler()))
	s.mux.HandleFunc("POST /analyze_logs", s.analyzeLogs)
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /{$}", s.index)
	s.registerSIB()
	s.registerInvestigations()
	s.mux.HandleFunc("/investigations", s.webPages) // GET pages, POST the start form; web checks the token
	s.mux.HandleFunc("/investigations/", s.webPages)
	return s
}

// webPages serves internal/web over the investigation API's store.
func (s *Server) webPages(w http.ResponseWriter, r *http.Request) {
	iv := s.invest
	if iv == nil {
		http.Error(w, "investigations need a store: run loupe serve (it opens one)", http.StatusServiceUnavailable)
		return
	}
	s.pages.once.Do(func() {
		opt := web.EnvOptions(os.Getenv)
		opt.Token, opt.GrafanaURL, opt.Version, opt.Log = s.cfg.Token, s.cfg.GrafanaURL, version.String(), s.log
		opt.Create = s.investigationsAPI(s.createInvestigation)
		s.pages.h = web.New(iv.store, opt)
	})
	s.pages.h.ServeHTTP(w, r)
}

// Handler returns the HTTP handler with all routes, wrapped so that every
// request gets a request id, an access-log line and its metrics.
func (s *Server) Handler() http.Handler { return s.observe(s.mux) }

// Metrics returns the server's metrics, served at GET /metrics.
func (s *Server) Metrics() *metrics.Metrics { return s.metrics }

// requireToken answers 401 unless the request carries the configured
// token (see authorized).
func (s *Server) requireToken(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="loupe"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// ListenAndServe listens on cfg.Listen and serves until ctx is done.
func (s *Server) ListenAndServe(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx is done, then shuts down: open streams get a
// grace period to finish before they are cancelled.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	base, cancelStreams := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelStreams()
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		BaseContext:       func(net.Listener) context.Context { return base },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.log.Info("listening", "addr", ln.Addr().String(), "version", version.String(), "config", s.cfg)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("shutting down", "grace", s.grace)
	sctx, cancel := context.WithTimeout(context.Background(), s.grace)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		cancelStreams()
		hs.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	fmt.Fprintf(w, `<!doctype html>
<html><head><title>loupe</title></head><body>
<h1>loupe %s</h1>
<p>Security log reasoning agent for Timesketch.</p>
<ul>
<li><code>POST /analyze_logs</code> &mdash; NDJSON events in, NDJSON findings out (<code>?format=lines|summaries</code>)</li>
<li><code>GET /healthz</code> &mdash; liveness and version</li>
<li><a href="/investigations"><code>GET /investigations</code></a> &mdash; browsable investigations (with a token: open once with <code>?token=</code>)</li>
<li><code>POST /api/analyze</code>, <code>GET /analyze?rule=&amp;output=</code> &mdash; SIB-compatible Falco alert analysis (JSON, HTML page, <code>dry_run=true</code>)</li>
<li><code>GET /health</code>, <code>GET /api/health/all</code> &mdash; SIB health checks</li>
<li><code>POST /api/investigations</code>, <code>GET /api/investigations[/{id}[/findings|/export]]</code>, <code>POST /api/investigations/{id}/cancel</code> &mdash; background investigations</li>
</ul>
</body></html>
`, html.EscapeString(version.String()))
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{"status": "ok", "version": version.String()})
}

// authorized reports whether r carries the configured bearer token; with no
// token configured every request is.
func (s *Server) authorized(r *http.Request) bool {
	if s.cfg.Token == "" {
		return true
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(s.cfg.Token)) == 1
}

// analyzeLogs is the Timesketch agent endpoint.
//
// Request: POST /analyze_logs, body = NDJSON events, one per line, either
// flat or in the Timesketch nested form {"_index","_id","_source":{...}}.
// The body may be chunked (no Content-Length) and of any total size; each
// line is limited to max_line_bytes. A gzip body (Content-Encoding: gzip,
// or just its magic bytes) is decompressed; other encodings get 415.
// When a token is configured, "Authorization: Bearer <token>" is required.
//
// Response: 200 with Content-Type application/x-ndjson, streamed while the
// body is still being read (full duplex). The form is chosen by the query
// parameter ?format=lines|summaries, else the header X-Loupe-Format, else
// lines:
//
//   - lines: for each finding, as soon as it is conclusive, one JSON line
//     per evidence event: {"record_id", "_index", "__ts_index_name",
//     "annotations":[{"investigative_question","conclusions","priority",
//     "attack_stage"}], ...}; and {"error":"line N: ..."} for each
//     malformed or oversized input line (the stream goes on).
//   - summaries: one JSON object {"summaries":[...]}, its array elements
//     streamed as findings come and the object closed at the end.
//
// A blank line is written whenever the stream was quiet for the keepalive
// interval; readers skip empty lines. A client that goes away stops the
// analysis. Too many concurrent streams get 503, a missing or wrong token
// 401, an unknown format 400.
func (s *Server) analyzeLogs(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := requestID(r)
	w.Header().Set("X-Request-Id", id)
	log := s.logFrom(r)

	if !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="loupe"`)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		log.Warn("rejected stream: unauthorized")
		return
	}
	select {
	case s.streams <- struct{}{}:
		defer func() { <-s.streams }()
	default:
		w.Header().Set("Retry-After", "1")
		http.Error(w, "too many concurrent streams", http.StatusServiceUnavailable)
		log.Warn("rejected stream: too many concurrent streams", "max_streams", s.cfg.MaxStreams)
		return
	}
	formName := r.URL.Query().Get("format")
	if formName == "" {
		formName = r.Header.Get("X-Loupe-Format")
	}
	if formName == "" {
		formName = "lines"
	}
	form, err := report.ParseForm(formName)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}

	// A gzip body is recognised by source.Read from its magic bytes.
	counted := &countingReader{r: r.Body}
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity", "gzip", "x-gzip":
	default:
		http.Error(w, "unsupported Content-Encoding "+enc, http.StatusUnsupportedMediaType)
		return
	}

	rc := http.NewResponseController(w)
	if err := rc.EnableFullDuplex(); err != nil {
		// HTTP/2 is full duplex anyway.
		log.Debug("full duplex not enabled", "err", err)
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	ctx, cancel := context.WithCancel(r.Context())
	out := &stream{w: w, rc: rc, cancel: cancel, last: time.Now()}
	out.agent = report.NewAgentWriter(out, form)
	// Send the headers at once, unless the client waits for "100
	// Continue": that goes out on the first body read, and a final status
	// before it would make the client wait or give up its upload.
	if !strings.EqualFold(r.Header.Get("Expect"), "100-continue") {
		w.WriteHeader(http.StatusOK)
		out.flush()
	}

	// Cancelling ctx must unblock a body read or response write in
	// progress: expire the connection deadlines. The watcher is joined
	// before the handler returns so it never touches a reused connection.
	finished := make(chan struct{})
	var watcher sync.WaitGroup
	watcher.Go(func() {
		select {
		case <-ctx.Done():
			rc.SetReadDeadline(time.Now())
			rc.SetWriteDeadline(time.Now())
		case <-finished:
		}
	})
	watcher.Go(func() { out.keepalive(finished, s.cfg.KeepaliveInterval) })

	var st pipeline.Stats
	run := s.metrics.Start(metrics.Stream, &st)
	opts := pipeline.Options{
		Detect: detect.Options{MaxTracked: s.cfg.MaxTracked},
		Reason: reason.Options{MaxEvidence: s.cfg.MaxEvidence, MaxGroups: s.cfg.MaxGroups},
		Sigma:  s.sigma.Load(), // a reload while this stream runs does not affect it
		Deep:   s.deep.Load(),
	}
	events := source.Read(ctx, counted, source.Options{Name: "http", MaxLineBytes: s.cfg.MaxLineBytes, RefuseEVTX: true})
	var streamErr error
	for f, err := range pipeline.Run(ctx, events, opts, &st) {
		if err != nil {
			var le *source.LineError
			if errors.As(err, &le) {
				if out.writeError(le.Error()) != nil {
					break
				}
				continue
			}
			streamErr = err
			if ctx.Err() == nil {
				out.writeError(err.Error())
			}
			break
		}
		run.Finding(f)
		if out.writeFinding(f) != nil {
			break
		}
	}
	close(finished)
	watcher.Wait()
	if err := out.close(); err != nil && streamErr == nil {
		streamErr = err
	}
	if streamErr == nil && ctx.Err() != nil {
		streamErr = context.Cause(ctx)
	}
	cancel()
	run.End(streamErr)

	stats := StreamStats{
		RequestID: id,
		Events:    st.Events.Load(),
		Findings:  st.Findings.Load(),
		BadLines:  st.Errors.Load(),
		Bytes:     counted.n.Load(),
		Duration:  time.Since(start),
		Err:       streamErr,
	}
	attrs := []any{"form", formName, "events", stats.Events, "findings", stats.Findings,
		"bad_lines", stats.BadLines, "bytes", stats.Bytes, "duration", stats.Duration}
	if streamErr != nil {
		log.Warn("stream ended early", append(attrs, "err", streamErr)...)
	} else {
		log.Info("stream done", attrs...)
	}
	if s.streamEnded != nil {
		s.streamEnded(stats)
	}
}

// stream serialises everything written to one response: findings, error
// lines and keepalives. Every write is flushed at once. The first failed
// write cancels the stream.
type stream struct {
	mu     sync.Mutex
	w      io.Writer
	rc     *http.ResponseController
	agent  *report.AgentWriter
	cancel context.CancelFunc
	last   time.Time // of the last write
	err    error     // first write error
}

// Write is the agent writer's sink; called with mu held.
func (s *stream) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.w.Write(p)
	if err != nil {
		s.fail(err)
	}
	s.last = time.Now()
	return n, err
}

func (s *stream) fail(err error) {
	if s.err == nil {
		s.err = fmt.Errorf("write response: %w", err)
		s.cancel()
	}
}

// flush sends what was written; called with mu held or before sharing.
func (s *stream) flush() {
	if s.err != nil {
		return
	}
	if err := s.rc.Flush(); err != nil {
		s.fail(err)
	}
}

func (s *stream) do(write func() error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	if err := write(); err != nil {
		s.fail(err)
		return s.err
	}
	s.flush()
	return s.err
}

func (s *stream) writeFinding(f *finding.Finding) error {
	return s.do(func() error { return s.agent.WriteFinding(f) })
}

func (s *stream) writeError(msg string) error {
	return s.do(func() error { return s.agent.WriteError(msg) })
}

func (s *stream) close() error {
	return s.do(s.agent.Close)
}

// keepalive writes a blank line whenever nothing was written for interval,
// until done is closed.
func (s *stream) keepalive(done <-chan struct{}, interval time.Duration) {
	tick := time.NewTicker(max(interval/4, time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
		}
		s.mu.Lock()
		if s.err == nil && time.Since(s.last) >= interval {
			if err := s.agent.Keepalive(); err != nil {
				s.fail(err)
			}
			s.flush()
		}
		failed := s.err != nil
		s.mu.Unlock()
		if failed {
			return
		}
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// requestID takes a sane X-Request-Id from the client or makes one.
func requestID(r *http.Request) string {
	if id := r.Header.Get("X-Request-Id"); id != "" && len(id) <= 64 && isToken(id) {
		return id
	}
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
