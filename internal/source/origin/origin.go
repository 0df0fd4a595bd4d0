// Package origin opens the events of an investigation from where they live:
// files on disk (NDJSON/JSONL, syslog, gzip, binary .evtx), a Grafana Loki
// query, a VictoriaLogs LogsQL query, or an OpenSearch/Elasticsearch index.
// A Spec names the origin; Open returns the same pull iterator as
// source.Read, with the same event.Event values: every record goes through
// the parsers of internal/source, so detection cannot tell where an event
// came from.
//
//   - file, evtx: source.ReadFiles over the paths (format detected per file
//     from its content; "evtx" is an alias kept for clarity).
//   - loki: GET /loki/api/v1/query_range, direction=forward, paged by time
//     (see loki.go for how equal timestamps at a page boundary are handled).
//   - victorialogs: POST /select/logsql/query, the response read line by
//     line as it arrives.
//   - opensearch, elasticsearch: sliced scroll with the official
//     opensearch-go client, the slices read in parallel and merged in
//     event-time order; every scroll is cleared at the end or on cancel.
//
// An HTTP upload is not an origin: the request body is passed to
// source.Read directly (gzip and .evtx are recognised by their magic bytes
// there), which is what the server's /analyze_logs and jobs use.
//
// Records from log stores are rarely stored as the original JSON line. A
// Loki line or a VictoriaLogs _msg that is a JSON object is parsed as it is;
// otherwise the record is rebuilt as one JSON object from the stream labels
// or fields, the timestamp and the message (record.go), so a Falco alert
// shipped by falcosidekick as text with rule/priority labels is still a
// Falco event.
//
// Event ids are stable: Timesketch/OpenSearch _id when present, the EVTX
// computer/channel/record id, and otherwise a hash of the input name, the
// record's timestamp and its content (for Loki and VictoriaLogs), so the
// same query over the same data gives the same ids however it is paged.
// Event.Line is the line (or EVTX record) number within its file for files,
// and the record's position in the whole sequence, from 1, for log stores.
package origin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/loupe-sec/loupe/internal/event"
	"github.com/loupe-sec/loupe/internal/source"
)

// Kinds of origin.
const (
	KindFile          = "file"
	KindEVTX          = "evtx"
	KindLoki          = "loki"
	KindVictoriaLogs  = "victorialogs"
	KindOpenSearch    = "opensearch"
	KindElasticsearch = "elasticsearch"
)

// Spec names an origin of events. It is what POST /api/investigations
// carries as "source".
type Spec struct {
	// Kind is file, evtx, loki, victorialogs, opensearch or elasticsearch.
	Kind string `json:"kind"`
	// Path and Paths are the files of a file or evtx origin, read in order
	// as one stream.
	Path  string   `json:"path,omitempty"`
	Paths []string `json:"paths,omitempty"`
	// URL is the base URL of a log store (http or https), e.g.
	// http://loki:3100, http://victorialogs:9428, https://opensearch:9200.
	URL string `json:"url,omitempty"`
	// Query is a LogQL log query (loki, required), a LogsQL query
	// (victorialogs, default "*"), or for opensearch either a query DSL
	// object ({"match":{…}}) or query_string text (default: all documents).
	Query string `json:"query,omitempty"`
	// Index is the index pattern of an opensearch origin (required).
	Index string `json:"index,omitempty"`
	// Start (inclusive) and End (exclusive) bound the events by time; a
	// zero bound is open. Loki needs Start (a zero End means now); for
	// opensearch they filter on TimeField; for files, events outside are
	// skipped (events without a time are kept).
	Start time.Time `json:"start,omitzero"`
	End   time.Time `json:"end,omitzero"`
	// TimeField is the opensearch date field to filter and sort on
	// (default "@timestamp"; Timesketch indices use "datetime").
	TimeField string `json:"time_field,omitempty"`
	// Slices is the number of opensearch scroll slices read in parallel
	// (default 1, at most MaxSlices).
	Slices int `json:"slices,omitempty"`
	// PageSize is the records per request: the Loki limit, the opensearch
	// scroll size (default 1000, at most MaxPageSize).
	PageSize int `json:"page_size,omitempty"`
	// Username and Password are sent as HTTP basic authentication. The
	// password is never logged (see LogValue).
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	// Tenant is Loki's X-Scope-OrgID.
	Tenant string `json:"tenant,omitempty"`
	// MaxLineBytes bounds one record (file line, Loki line, VictoriaLogs
	// row, opensearch hit); 0 = source.DefaultMaxLineBytes.
	MaxLineBytes int `json:"max_line_bytes,omitempty"`
}

// Limits of a Spec.
const (
	DefaultPageSize = 1000
	MaxPageSize     = 10000
	MaxSlices       = 64
	MaxPaths        = 10000
)

// ErrSpec is wrapped by every validation error of a Spec; callers answer
// it with HTTP 400.
var ErrSpec = errors.New("invalid source")

func specErr(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrSpec, field, fmt.Sprintf(format, args...))
}

// ParseSpec decodes a Spec from JSON, refusing unknown fields, and
// validates it.
func ParseSpec(data []byte) (Spec, error) {
	var s Spec
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return s, fmt.Errorf("%w: %w", ErrSpec, err)
	}
	if dec.More() {
		return s, fmt.Errorf("%w: trailing data after the object", ErrSpec)
	}
	return s, s.Validate()
}

// Files returns Path and Paths as one list.
func (s Spec) Files() []string {
	var out []string
	if s.Path != "" {
		out = append(out, s.Path)
	}
	return append(out, s.Paths...)
}

// Validate checks that s can be opened, with an error naming the field.
func (s Spec) Validate() error {
	if s.PageSize < 0 || s.PageSize > MaxPageSize {
		return specErr("page_size", "%d is outside 0..%d", s.PageSize, MaxPageSize)
	}
	if s.Slices < 0 || s.Slices > MaxSlices {
		return specErr("slices", "%d is outside 0..%d", s.Slices, MaxSlices)
	}
	if s.MaxLineBytes < 0 {
		return specErr("max_line_bytes", "negative")
	}
	if !s.Start.IsZero() && !s.End.IsZero() && !s.Start.Before(s.End) {
		return specErr("end", "%s is not after start %s", s.End.Format(time.RFC3339Nano), s.Start.Format(time.RFC3339Nano))
	}
	remote := true
	switch s.Kind {
	case KindFile, KindEVTX:
		remote = false
		files := s.Files()
		if len(files) == 0 {
			return specErr("path", "a %s source needs path or paths", s.Kind)
		}
		if len(files) > MaxPaths {
			return specErr("paths", "%d files, at most %d", len(files), MaxPaths)
		}
		for i, p := range files {
			if strings.TrimSpace(p) == "" {
				return specErr("paths", "file %d has an empty path", i+1)
			}
		}
		if s.URL != "" || s.Query != "" || s.Index != "" {
			return specErr("kind", "a %s source takes no url, query or index", s.Kind)
		}
	case KindLoki:
		if strings.TrimSpace(s.Query) == "" {
			return specErr("query", "a loki source needs a LogQL log query such as {job=\"falco\"}")
		}
		if s.Start.IsZero() {
			return specErr("start", "a loki source needs a start time (query_range reads a bounded range)")
		}
	case KindVictoriaLogs:
	case KindOpenSearch, KindElasticsearch:
		if strings.TrimSpace(s.Index) == "" {
			return specErr("index", "an %s source needs an index or index pattern", s.Kind)
		}
		if strings.ContainsAny(s.Index, "/?#") {
			return specErr("index", "%q is not an index pattern", s.Index)
		}
		if q := strings.TrimSpace(s.Query); strings.HasPrefix(q, "{") && !json.Valid([]byte(q)) {
			return specErr("query", "starts with { but is not a JSON query object")
		}
	case "":
		return specErr("kind", "missing (file, evtx, loki, victorialogs, opensearch or elasticsearch)")
	default:
		return specErr("kind", "unknown %q (file, evtx, loki, victorialogs, opensearch or elasticsearch)", s.Kind)
	}
	if remote {
		if len(s.Files()) > 0 {
			return specErr("path", "a %s source reads no files", s.Kind)
		}
		u, err := url.Parse(s.URL)
		switch {
		case s.URL == "":
			return specErr("url", "a %s source needs the server's base URL", s.Kind)
		case err != nil:
			return specErr("url", "%v", err)
		case u.Scheme != "http" && u.Scheme != "https":
			return specErr("url", "scheme %q, want http or https", u.Scheme)
		case u.Host == "":
			return specErr("url", "no host")
		case u.User != nil:
			return specErr("url", "credentials belong in username and password, not in the URL")
		case u.RawQuery != "" || u.Fragment != "":
			return specErr("url", "a base URL takes no query or fragment")
		}
		if s.Password != "" && s.Username == "" {
			return specErr("username", "a password needs a username")
		}
	}
	search := s.Kind == KindOpenSearch || s.Kind == KindElasticsearch
	switch {
	case !remote && (s.Username != "" || s.Password != "" || s.Tenant != ""):
		return specErr("kind", "a %s source takes no credentials", s.Kind)
	case !search && s.Index != "":
		return specErr("index", "only opensearch and elasticsearch sources have an index")
	case !search && (s.TimeField != "" || s.Slices != 0):
		return specErr("slices", "time_field and slices belong to opensearch and elasticsearch sources")
	case s.Kind != KindLoki && s.Tenant != "":
		return specErr("tenant", "only a loki source has a tenant")
	}
	return nil
}

// LogValue renders s for log/slog without its password.
func (s Spec) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("kind", s.Kind)}
	if f := s.Files(); len(f) > 0 {
		attrs = append(attrs, slog.Int("files", len(f)), slog.String("path", f[0]))
	}
	for _, kv := range [][2]string{{"url", s.URL}, {"query", s.Query}, {"index", s.Index}, {"username", s.Username}, {"tenant", s.Tenant}} {
		if kv[1] != "" {
			attrs = append(attrs, slog.String(kv[0], kv[1]))
		}
	}
	if s.Password != "" {
		attrs = append(attrs, slog.String("password", "[REDACTED]"))
	}
	if !s.Start.IsZero() {
		attrs = append(attrs, slog.Time("start", s.Start))
	}
	if !s.End.IsZero() {
		attrs = append(attrs, slog.Time("end", s.End))
	}
	return slog.GroupValue(attrs...)
}

// String is LogValue as text, so a Spec printed with %v never shows the
// password either.
func (s Spec) String() string { return s.LogValue().String() }

func (s Spec) pageSize() int {
	if s.PageSize > 0 {
		return s.PageSize
	}
	return DefaultPageSize
}

func (s Spec) maxLine() int {
	if s.MaxLineBytes > 0 {
		return s.MaxLineBytes
	}
	return source.DefaultMaxLineBytes
}

// Option tunes Open.
type Option func(*options)

type options struct {
	client   *http.Client
	fileRoot string
	now      func() time.Time
}

// WithHTTPClient sets the HTTP client for log stores (default: a client
// that waits at most 5 minutes for response headers; a sorted VictoriaLogs
// query answers only once the server has sorted).
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.client = c } }

// WithFileRoot confines file and evtx origins to the directory dir: a path
// that resolves (symbolic links included) outside it is refused. Servers
// that accept Specs from clients should set it.
func WithFileRoot(dir string) Option { return func(o *options) { o.fileRoot = dir } }

// withNow replaces the clock (tests).
func withNow(now func() time.Time) Option { return func(o *options) { o.now = now } }

var defaultClient = &http.Client{Transport: &http.Transport{
	Proxy:                 http.ProxyFromEnvironment,
	ResponseHeaderTimeout: 5 * time.Minute,
	MaxIdleConnsPerHost:   MaxSlices,
	ForceAttemptHTTP2:     true,
}}

// Open validates s and returns its events. Errors about s itself wrap
// ErrSpec and come back before anything is read; errors while reading come
// through the sequence: (nil, *source.LineError) for one bad record, after
// which reading goes on, and any other error last. Stopping the iteration
// or cancelling ctx stops the reading and releases what it holds (HTTP
// bodies, opensearch scrolls).
func Open(ctx context.Context, s Spec, opts ...Option) (iter.Seq2[*event.Event, error], error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	o := options{client: defaultClient, now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	if o.client == nil {
		o.client = defaultClient
	}
	switch s.Kind {
	case KindFile, KindEVTX:
		return openFiles(ctx, s, &o)
	case KindLoki:
		return openLoki(ctx, s, &o)
	case KindVictoriaLogs:
		return openVictoriaLogs(ctx, s, &o)
	case KindOpenSearch, KindElasticsearch:
		return openOpenSearch(ctx, s, &o)
	}
	return nil, specErr("kind", "unknown %q", s.Kind) // unreachable after Validate
}

func openFiles(ctx context.Context, s Spec, o *options) (iter.Seq2[*event.Event, error], error) {
	files := s.Files()
	for _, p := range files {
		if p == "-" {
			return nil, specErr("path", "standard input is not a file origin")
		}
		if o.fileRoot != "" {
			if err := within(o.fileRoot, p); err != nil {
				return nil, err
			}
		}
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("%w: path: %w", ErrSpec, err)
		}
		if fi.IsDir() {
			return nil, specErr("path", "%s is a directory", p)
		}
	}
	seq := source.ReadFiles(ctx, files, source.Options{MaxLineBytes: s.MaxLineBytes})
	if s.Start.IsZero() && s.End.IsZero() {
		return seq, nil
	}
	return inRange(seq, s.Start, s.End), nil
}

// inRange drops the events whose time is outside [start, end) (a zero bound
// is open). Events without a time are kept: nothing says they are outside.
func inRange(seq iter.Seq2[*event.Event, error], start, end time.Time) iter.Seq2[*event.Event, error] {
	return func(yield func(*event.Event, error) bool) {
		for ev, err := range seq {
			if ev != nil && !ev.Time.IsZero() &&
				(!start.IsZero() && ev.Time.Before(start) || !end.IsZero() && !ev.Time.Before(end)) {
				continue
			}
			if !yield(ev, err) {
				return
			}
		}
	}
}

// within checks that path resolves to a file under root.
func within(root, path string) error {
	r, err := filepath.EvalSymlinks(root)
	if err != nil {
		return fmt.Errorf("origin: file root: %w", err)
	}
	r, _ = filepath.Abs(r)
	p, err := filepath.EvalSymlinks(path)
	if err != nil {
		return fmt.Errorf("%w: path: %w", ErrSpec, err)
	}
	p, _ = filepath.Abs(p)
	rel, err := filepath.Rel(r, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return specErr("path", "%s is outside the allowed directory", path)
	}
	return nil
}
