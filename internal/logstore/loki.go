package logstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Loki queries a Grafana Loki server through its HTTP API.
type Loki struct {
	URL              string       // base URL, e.g. http://sib-loki:3100
	Client           *http.Client // nil = http.DefaultClient
	Tenant           string       // X-Scope-OrgID, when Loki runs multi-tenant
	PageSize         int          // entries per query_range request; 0 = 1000 (Loki's default max_entries_limit_per_query is 5000)
	MaxResponseBytes int64        // 0 = DefaultMaxResponseBytes
}

const lokiBackend = "loki"

// Loki label names set by falcosidekick's Loki output.
const (
	lokiHostLabel = "hostname"
	lokiRuleLabel = "rule"
)

// maxPages bounds the query_range requests of one Related call.
const maxPages = 1000

func (l *Loki) pageSize() int {
	if l.PageSize > 0 {
		return l.PageSize
	}
	return 1000
}

// Ready asks Loki's /ready endpoint.
func (l *Loki) Ready(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, joinURL(l.URL, "/ready"), nil)
	if err != nil {
		return fmt.Errorf("logstore: loki ready: %w", err)
	}
	l.header(req)
	_, err = do(l.Client, req, lokiBackend, "ready", 4096, http.StatusOK)
	return err
}

func (l *Loki) header(req *http.Request) {
	if l.Tenant != "" {
		req.Header.Set("X-Scope-OrgID", l.Tenant)
	}
}

// LogQL builds the LogQL query for q: a stream selector with = matchers on
// falcosidekick's hostname and rule labels, and a |= line filter on the
// container id (falcosidekick does not make it a label). Every value is a
// quoted LogQL string literal.
func (q Query) LogQL() string {
	var b strings.Builder
	b.WriteByte('{')
	n := 0
	matcher := func(label, value string) {
		if n > 0 {
			b.WriteString(", ")
		}
		b.WriteString(label)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(value))
		n++
	}
	if q.Host != "" {
		matcher(lokiHostLabel, q.Host)
	}
	if q.Rule != "" {
		matcher(lokiRuleLabel, q.Rule)
	}
	if n == 0 {
		// Loki needs one matcher that does not match the empty string;
		// falcosidekick sets rule on every stream.
		b.WriteString(lokiRuleLabel + `=~".+"`)
	}
	b.WriteByte('}')
	if q.ContainerID != "" {
		b.WriteString(" |= ")
		b.WriteString(strconv.Quote(q.ContainerID))
	}
	return b.String()
}

// Related fetches the events of q from Loki with query_range, newest first
// (direction=backward), paging back in time from the oldest entry seen until
// the limit or the window start is reached. It returns them oldest first.
func (l *Loki) Related(ctx context.Context, q Query) ([]Event, error) {
	start, end, limit, err := q.window()
	if err != nil {
		return nil, err
	}
	logql := q.LogQL()
	startNs := start.UnixNano()
	endNs := end.UnixNano() + 1 // Loki's end is exclusive; the window is inclusive

	type key struct {
		ns     int64
		line   string
		stream string
	}
	seen := make(map[key]struct{})
	var out []Event
	atBoundary := 0 // entries already seen at the current end-1 timestamp
	for page := 0; page < maxPages && len(out) < limit && endNs > startNs; page++ {
		want := min(limit-len(out)+atBoundary, l.pageSize())
		entries, err := l.queryRange(ctx, logql, startNs, endNs, want)
		if err != nil {
			return nil, err
		}
		oldest := endNs
		added := 0
		for i := range entries {
			e := &entries[i]
			if e.ns < oldest {
				oldest = e.ns
			}
			k := key{e.ns, e.line, e.stream}
			if _, dup := seen[k]; dup {
				continue
			}
			seen[k] = struct{}{}
			added++
			ev := e.event()
			if q.keep(&ev) && len(out) < limit {
				out = append(out, ev)
			}
		}
		if len(entries) < want {
			break // the window holds no more entries
		}
		if added == 0 {
			// A whole page of one timestamp already seen: step past it.
			endNs = oldest
			atBoundary = 0
			continue
		}
		endNs = oldest + 1
		atBoundary = 0
		for k := range seen {
			if k.ns == oldest {
				atBoundary++
			}
		}
	}
	sortEvents(out)
	return out, nil
}

// lokiEntry is one log line of a query_range result.
type lokiEntry struct {
	ns     int64
	line   string
	stream string // canonical form of the labels, for de-duplication
	labels map[string]string
}

func (e *lokiEntry) event() Event {
	ev := Event{Time: time.Unix(0, e.ns).UTC(), Labels: e.labels}
	ev.Host = e.labels[lokiHostLabel]
	ev.Rule = e.labels[lokiRuleLabel]
	ev.Priority = e.labels["priority"]
	ev.ContainerID = firstLabel(e.labels, "container_id", "containerid")
	fillFromLine(&ev, e.line)
	return ev
}

func firstLabel(m map[string]string, names ...string) string {
	for _, n := range names {
		if v := m[n]; v != "" {
			return v
		}
	}
	return ""
}

func (l *Loki) queryRange(ctx context.Context, logql string, startNs, endNs int64, limit int) ([]lokiEntry, error) {
	v := url.Values{}
	v.Set("query", logql)
	v.Set("start", strconv.FormatInt(startNs, 10))
	v.Set("end", strconv.FormatInt(endNs, 10))
	v.Set("direction", "backward")
	v.Set("limit", strconv.Itoa(limit))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, joinURL(l.URL, "/loki/api/v1/query_range")+"?"+v.Encode(), nil)
	if err != nil {
		return nil, fmt.Errorf("logstore: loki query_range: %w", err)
	}
	l.header(req)
	body, err := do(l.Client, req, lokiBackend, "query_range", l.MaxResponseBytes, http.StatusOK)
	if err != nil {
		return nil, err
	}
	entries, err := parseLokiResponse(body)
	if err != nil {
		return nil, fmt.Errorf("logstore: loki query_range: %w", err)
	}
	return entries, nil
}

type lokiResponse struct {
	Status string `json:"status"`
	Data   struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Stream map[string]string   `json:"stream"`
			Values [][]json.RawMessage `json:"values"`
		} `json:"result"`
	} `json:"data"`
}

// parseLokiResponse decodes a query_range response of resultType "streams".
// Values are [ns-string, line] (a third element, structured metadata, is
// ignored).
func parseLokiResponse(body []byte) ([]lokiEntry, error) {
	var r lokiResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("decoding response: %w", err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("status %q", r.Status)
	}
	if r.Data.ResultType != "streams" {
		return nil, fmt.Errorf("resultType %q, want streams", r.Data.ResultType)
	}
	var out []lokiEntry
	for _, s := range r.Data.Result {
		stream := canonicalLabels(s.Stream)
		for _, v := range s.Values {
			if len(v) < 2 {
				return nil, fmt.Errorf("stream %s: value with %d elements", stream, len(v))
			}
			var tsText, line string
			if err := json.Unmarshal(v[0], &tsText); err != nil {
				return nil, fmt.Errorf("stream %s: timestamp: %w", stream, err)
			}
			ns, err := strconv.ParseInt(tsText, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("stream %s: timestamp: %w", stream, err)
			}
			if err := json.Unmarshal(v[1], &line); err != nil {
				return nil, fmt.Errorf("stream %s: line: %w", stream, err)
			}
			out = append(out, lokiEntry{ns: ns, line: line, stream: stream, labels: s.Stream})
		}
	}
	return out, nil
}

// canonicalLabels renders labels as {a="x", b="y"} in key order.
func canonicalLabels(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(m[k]))
	}
	b.WriteByte('}')
	return b.String()
}

// lokiLabels returns the stream labels falcosidekick would set for ev
// (rule, priority, hostname, plus ev.Labels such as source and tags).
func lokiLabels(ev *Event) map[string]string {
	m := make(map[string]string, len(ev.Labels)+3)
	for k, v := range ev.Labels {
		m[k] = v
	}
	if ev.Rule != "" {
		m[lokiRuleLabel] = ev.Rule
	}
	if ev.Priority != "" {
		m["priority"] = ev.Priority
	}
	if ev.Host != "" {
		m[lokiHostLabel] = ev.Host
	}
	return m
}

// Push writes events to Loki's push API (JSON), one stream per label set.
// The line is ev.Raw when set (a Falco JSON alert), else ev.Message, the
// Falco output text falcosidekick ships. The path /loki/api/v1/push is
// appended to URL, so a VictoriaLogs URL ending in /insert also works.
func (l *Loki) Push(ctx context.Context, events []Event) error {
	type stream struct {
		Stream map[string]string `json:"stream"`
		Values [][2]string       `json:"values"`
	}
	byLabels := map[string]*stream{}
	var order []string
	for i := range events {
		ev := &events[i]
		if ev.Time.IsZero() {
			return fmt.Errorf("logstore: loki push: event %d has no time", i)
		}
		labels := lokiLabels(ev)
		if len(labels) == 0 {
			return fmt.Errorf("logstore: loki push: event %d has no labels", i)
		}
		k := canonicalLabels(labels)
		s := byLabels[k]
		if s == nil {
			s = &stream{Stream: labels}
			byLabels[k] = s
			order = append(order, k)
		}
		line := ev.Message
		if len(ev.Raw) > 0 {
			line = string(ev.Raw)
		}
		s.Values = append(s.Values, [2]string{strconv.FormatInt(ev.Time.UnixNano(), 10), line})
	}
	payload := struct {
		Streams []*stream `json:"streams"`
	}{}
	for _, k := range order {
		payload.Streams = append(payload.Streams, byLabels[k])
	}
	body, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("logstore: loki push: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, joinURL(l.URL, "/loki/api/v1/push"), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("logstore: loki push: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	l.header(req)
	_, err = do(l.Client, req, lokiBackend, "push", 4096, http.StatusNoContent, http.StatusOK)
	return err
}
