package server

import (
	"context"
	"log/slog"
	"net/http"
	"time"
)

// observe wraps every request: it settles the request id (the client's sane
// X-Request-Id or a new one) and echoes it, puts a logger carrying it in the
// context (see logFrom), then counts the request in /metrics and writes one
// access-log line. Health and metrics scrapes log at debug level only.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := requestID(r)
		r.Header.Set("X-Request-Id", id)
		w.Header().Set("X-Request-Id", id)
		log := s.log.With("request_id", id)
		r = r.WithContext(context.WithValue(r.Context(), loggerKey{}, log))
		rw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(rw, r)
		d := time.Since(start)
		// The mux records the matched pattern on the request it routed.
		s.metrics.Request(r.Pattern, r.Method, rw.status(), d)
		level := slog.LevelInfo
		switch r.Pattern {
		case "GET /healthz", "GET /health", "GET /metrics":
			level = slog.LevelDebug
		}
		if rw.status() >= 500 {
			level = slog.LevelWarn
		}
		log.Log(r.Context(), level, "request", "method", r.Method, "path", r.URL.Path, "route", r.Pattern,
			"status", rw.status(), "bytes", rw.n, "duration", d, "remote", r.RemoteAddr)
	})
}

type loggerKey struct{}

// logFrom returns the request's logger (with its request id), or the
// server's when r did not pass through observe.
func (s *Server) logFrom(r *http.Request) *slog.Logger {
	if l, ok := r.Context().Value(loggerKey{}).(*slog.Logger); ok {
		return l
	}
	return s.log
}

// statusWriter remembers the status and counts the body bytes. Unwrap lets
// http.ResponseController reach the connection (flush, deadlines, full
// duplex) as the streaming endpoints need.
type statusWriter struct {
	http.ResponseWriter
	code int
	n    int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	return n, err
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}
