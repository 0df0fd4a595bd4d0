// Package logstore fetches the log events that surround a Falco alert from
// the log store a SIB (SIEM in a Box) deployment writes to: Grafana Loki, or
// VictoriaLogs when STACK=vm.
//
// In SIB, falcosidekick's Loki output ships every Falco alert with the labels
// rule, source, priority, hostname and tags, and the Falco output text as the
// log line; with STACK=vm the same Loki push lands in VictoriaLogs, where the
// labels become stream fields and the line becomes _msg. A Query names a host
// and/or container and a time window around the alert; Related returns the
// events of that host and container in the window, oldest first.
//
// Every value taken from an alert is quoted as a string literal of the
// store's query language (LogQL or LogsQL), so an alert field can never add
// a matcher, a pipe or a second selector to the query.
package logstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Query selects the events related to one alert.
type Query struct {
	Host        string    // Falco hostname (falcosidekick's hostname label); "" = any
	ContainerID string    // Falco container.id; "" = any container
	Rule        string    // restrict to one Falco rule; "" = any rule
	Around      time.Time // the alert's time
	Before      time.Duration
	After       time.Duration // window is [Around-Before, Around+After], inclusive
	Limit       int           // most events to return; 0 = DefaultLimit
}

// Event is one log record from the store.
type Event struct {
	Time        time.Time
	Host        string
	ContainerID string
	Rule        string
	Priority    string
	Message     string            // Falco output text (or the raw line when it is not Falco's)
	Labels      map[string]string // Loki stream labels or VictoriaLogs fields
	Raw         json.RawMessage   // the record as JSON: the Falco JSON line, or the VictoriaLogs row; nil for a plain-text Loki line
}

// Store is a log store that can answer Related queries.
type Store interface {
	// Related returns the events matching q, oldest first, at most q.Limit.
	Related(ctx context.Context, q Query) ([]Event, error)
	// Ready reports whether the store answers its health endpoint.
	Ready(ctx context.Context) error
}

const (
	// DefaultLimit is the number of events Related returns when Query.Limit is 0.
	DefaultLimit = 500
	// MaxLimit caps Query.Limit.
	MaxLimit = 10000
	// DefaultWindow is used for Query.Before and Query.After when both are 0.
	DefaultWindow = 5 * time.Minute
	// DefaultMaxResponseBytes bounds one response body from a store.
	DefaultMaxResponseBytes = 64 << 20
)

// New returns the Store for a SIB STACK value: "vm" selects VictoriaLogs at
// vlogsURL, anything else Loki at lokiURL. hc may be nil (http.DefaultClient).
func New(stack, lokiURL, vlogsURL string, hc *http.Client) Store {
	if strings.EqualFold(strings.TrimSpace(stack), "vm") {
		return &VictoriaLogs{URL: vlogsURL, Client: hc}
	}
	return &Loki{URL: lokiURL, Client: hc}
}

// ErrQuery reports a Query that cannot be run.
var ErrQuery = errors.New("logstore: invalid query")

// HTTPError is returned when a store answers with an unexpected HTTP status.
type HTTPError struct {
	Backend string // "loki" or "victorialogs"
	Op      string // what was asked, e.g. "query_range"
	Status  int
	Body    string // the start of the response body
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("logstore: %s %s: HTTP %d: %s", e.Backend, e.Op, e.Status, e.Body)
}

// window validates q and returns its bounds and effective limit.
func (q Query) window() (start, end time.Time, limit int, err error) {
	if q.Around.IsZero() {
		return start, end, 0, fmt.Errorf("%w: no alert time", ErrQuery)
	}
	if q.Host == "" && q.ContainerID == "" && q.Rule == "" {
		return start, end, 0, fmt.Errorf("%w: need a host, container or rule", ErrQuery)
	}
	if q.Before < 0 || q.After < 0 {
		return start, end, 0, fmt.Errorf("%w: negative window", ErrQuery)
	}
	before, after := q.Before, q.After
	if before == 0 && after == 0 {
		before, after = DefaultWindow, DefaultWindow
	}
	limit = q.Limit
	switch {
	case limit < 0:
		return start, end, 0, fmt.Errorf("%w: negative limit", ErrQuery)
	case limit == 0:
		limit = DefaultLimit
	case limit > MaxLimit:
		limit = MaxLimit
	}
	return q.Around.Add(-before), q.Around.Add(after), limit, nil
}

// keep reports whether a fetched event belongs to q: the store matched the
// container id as text, so the parsed container id must equal it exactly.
func (q Query) keep(ev *Event) bool {
	if q.ContainerID != "" && ev.ContainerID != q.ContainerID {
		return false
	}
	return true
}

// sortEvents orders events oldest first; equal times keep a stable order by
// message so results are deterministic.
func sortEvents(evs []Event) {
	slices.SortStableFunc(evs, func(a, b Event) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return strings.Compare(a.Message, b.Message)
	})
}

// do sends req and returns the body, at most max bytes, when the status is
// one of ok; otherwise an *HTTPError with the start of the body.
func do(hc *http.Client, req *http.Request, backend, op string, max int64, ok ...int) ([]byte, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("logstore: %s %s: %w", backend, op, err)
	}
	defer resp.Body.Close()
	if !slices.Contains(ok, resp.StatusCode) {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, &HTTPError{Backend: backend, Op: op, Status: resp.StatusCode, Body: excerpt(b)}
	}
	if max <= 0 {
		max = DefaultMaxResponseBytes
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, fmt.Errorf("logstore: %s %s: reading response: %w", backend, op, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("logstore: %s %s: response larger than %d bytes", backend, op, max)
	}
	return b, nil
}

// excerpt returns the first 200 bytes of b on one line.
func excerpt(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// joinURL appends path to a base URL, tolerating a trailing slash.
func joinURL(base, path string) string {
	return strings.TrimRight(base, "/") + path
}
