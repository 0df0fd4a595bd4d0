// Package lokitest is an in-memory Grafana Loki HTTP API for tests: the
// push endpoint to load streams and query_range to read them, with Loki's
// semantics for what the origin package relies on. (A real Loki cannot be
// used in loupe's tests: it is AGPL-licensed.)
//
// Implemented: POST /loki/api/v1/push (JSON), GET /loki/api/v1/query_range
// with a stream selector of =, !=, =~ and !~ matchers and optional |= and
// != line filters; start inclusive and end exclusive, both Unix nanoseconds
// (or RFC 3339); limit (default 100, above MaxEntries is a 400 like Loki's
// max_entries_limit_per_query); direction forward or backward (default).
// The result holds the first limit entries over all matching streams in
// time order, grouped by stream, each stream's values in the direction's
// order. Loki keeps one entry per stream, timestamp and line: pushing the
// same one again is a no-op.
package lokitest

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// MaxEntries is the largest limit a query may ask for.
const MaxEntries = 5000

// Entry is one log line.
type Entry struct {
	Time int64 // Unix ns
	Line string
}

// Server is an in-memory Loki.
type Server struct {
	*httptest.Server

	mu      sync.Mutex
	streams map[string]*stream // by canonical labels
	order   []string

	// Queries counts query_range requests.
	Queries atomic.Int64

	// ShuffleTies, when set before queries run, orders entries that share
	// a timestamp at random in every response instead of by stream, so a
	// client cannot depend on one tie order across pages.
	ShuffleTies *rand.Rand
}

type stream struct {
	labels  map[string]string
	key     string
	entries []Entry // sorted by Time, then insertion
	seen    map[Entry]struct{}
}

// New starts a server; Close it when done.
func New() *Server {
	s := &Server{streams: map[string]*stream{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /loki/api/v1/push", s.push)
	mux.HandleFunc("GET /loki/api/v1/query_range", s.queryRange)
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ready\n") })
	s.Server = httptest.NewServer(mux)
	return s
}

// Push adds entries to the stream with labels.
func (s *Server) Push(labels map[string]string, entries ...Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := canonical(labels)
	st := s.streams[key]
	if st == nil {
		l := make(map[string]string, len(labels))
		for k, v := range labels {
			l[k] = v
		}
		st = &stream{labels: l, key: key, seen: map[Entry]struct{}{}}
		s.streams[key] = st
		s.order = append(s.order, key)
	}
	for _, e := range entries {
		if _, dup := st.seen[e]; dup {
			continue
		}
		st.seen[e] = struct{}{}
		st.entries = append(st.entries, e)
	}
	slices.SortStableFunc(st.entries, func(a, b Entry) int { return cmp.Compare(a.Time, b.Time) })
}

func (s *Server) push(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Streams []struct {
			Stream map[string]string `json:"stream"`
			Values [][]string        `json:"values"`
		} `json:"streams"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<20)).Decode(&req); err != nil {
		http.Error(w, "bad push body: "+err.Error(), http.StatusBadRequest)
		return
	}
	for _, st := range req.Streams {
		if len(st.Stream) == 0 {
			http.Error(w, "stream without labels", http.StatusBadRequest)
			return
		}
		var es []Entry
		for _, v := range st.Values {
			if len(v) < 2 {
				http.Error(w, "value needs [ts, line]", http.StatusBadRequest)
				return
			}
			ns, err := strconv.ParseInt(v[0], 10, 64)
			if err != nil {
				http.Error(w, "bad timestamp "+strconv.Quote(v[0]), http.StatusBadRequest)
				return
			}
			es = append(es, Entry{Time: ns, Line: v[1]})
		}
		s.Push(st.Stream, es...)
	}
	w.WriteHeader(http.StatusNoContent)
}

type hit struct {
	st *stream
	e  Entry
}

func (s *Server) queryRange(w http.ResponseWriter, r *http.Request) {
	s.Queries.Add(1)
	q := r.URL.Query()
	sel, err := parseQuery(q.Get("query"))
	if err != nil {
		http.Error(w, "parse error: "+err.Error(), http.StatusBadRequest)
		return
	}
	now := time.Now()
	end, err := parseTime(q.Get("end"), now.UnixNano())
	if err != nil {
		http.Error(w, "invalid end: "+err.Error(), http.StatusBadRequest)
		return
	}
	start, err := parseTime(q.Get("start"), now.Add(-time.Hour).UnixNano())
	if err != nil {
		http.Error(w, "invalid start: "+err.Error(), http.StatusBadRequest)
		return
	}
	if end < start {
		http.Error(w, "end timestamp must not be before or equal to start time", http.StatusBadRequest)
		return
	}
	limit := 100
	if l := q.Get("limit"); l != "" {
		if limit, err = strconv.Atoi(l); err != nil || limit <= 0 {
			http.Error(w, "invalid limit", http.StatusBadRequest)
			return
		}
	}
	if limit > MaxEntries {
		http.Error(w, fmt.Sprintf("max entries limit per query exceeded, limit > max_entries_limit_per_query (%d > %d)", limit, MaxEntries), http.StatusBadRequest)
		return
	}
	backward := true
	switch q.Get("direction") {
	case "", "backward", "BACKWARD":
	case "forward", "FORWARD":
		backward = false
	default:
		http.Error(w, "invalid direction", http.StatusBadRequest)
		return
	}

	s.mu.Lock()
	hits := s.collect(sel, start, end, limit, backward)
	s.mu.Unlock()
	if s.ShuffleTies != nil {
		s.mu.Lock()
		for i := 0; i < len(hits); {
			j := i + 1
			for j < len(hits) && hits[j].e.Time == hits[i].e.Time {
				j++
			}
			group := hits[i:j]
			s.ShuffleTies.Shuffle(len(group), func(a, b int) { group[a], group[b] = group[b], group[a] })
			i = j
		}
		s.mu.Unlock()
	}
	if len(hits) > limit {
		hits = hits[:limit]
	}
	type result struct {
		Stream map[string]string `json:"stream"`
		Values [][2]string       `json:"values"`
	}
	var results []*result
	byStream := map[*stream]*result{}
	for _, h := range hits {
		res := byStream[h.st]
		if res == nil {
			res = &result{Stream: h.st.labels, Values: [][2]string{}}
			byStream[h.st] = res
			results = append(results, res)
		}
		res.Values = append(res.Values, [2]string{strconv.FormatInt(h.e.Time, 10), h.e.Line})
	}
	if results == nil {
		results = []*result{}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"status": "success",
		"data": map[string]any{
			"resultType": "streams",
			"result":     results,
			"stats":      map[string]any{},
		},
	})
}

// collect returns the first limit matching entries of [start, end) in the
// direction's time order, plus every further entry sharing the last one's
// timestamp (so ties can be shuffled before the page is cut). Streams are
// merged entry by entry; ties go to the stream whose labels sort first, and
// within a stream to the order entries were pushed in.
func (s *Server) collect(sel *selector, start, end int64, limit int, backward bool) []hit {
	type cursor struct {
		st     *stream
		lo, hi int // entries not taken yet: [lo, hi)
	}
	var cs []*cursor
	for _, key := range s.order {
		st := s.streams[key]
		if !sel.matchLabels(st.labels) {
			continue
		}
		lo, _ := slices.BinarySearchFunc(st.entries, start, func(e Entry, t int64) int { return cmp.Compare(e.Time, t) })
		hi, _ := slices.BinarySearchFunc(st.entries, end, func(e Entry, t int64) int { return cmp.Compare(e.Time, t) })
		if lo < hi {
			cs = append(cs, &cursor{st, lo, hi})
		}
	}
	slices.SortFunc(cs, func(a, b *cursor) int { return strings.Compare(a.st.key, b.st.key) })
	next := func(c *cursor) (Entry, bool) {
		for c.lo < c.hi {
			i := c.lo
			if backward {
				i = c.hi - 1
			}
			if e := c.st.entries[i]; sel.matchLine(e.Line) {
				return e, true
			}
			if backward {
				c.hi--
			} else {
				c.lo++
			}
		}
		return Entry{}, false
	}
	var hits []hit
	for {
		best := -1
		var bestE Entry
		for i, c := range cs {
			e, ok := next(c)
			if !ok {
				continue
			}
			if best < 0 || (!backward && e.Time < bestE.Time) || (backward && e.Time > bestE.Time) {
				best, bestE = i, e
			}
		}
		if best < 0 || (len(hits) >= limit && bestE.Time != hits[len(hits)-1].e.Time) {
			return hits
		}
		c := cs[best]
		hits = append(hits, hit{c.st, bestE})
		if backward {
			c.hi--
		} else {
			c.lo++
		}
	}
}

func parseTime(s string, def int64) (int64, error) {
	if s == "" {
		return def, nil
	}
	if ns, err := strconv.ParseInt(s, 10, 64); err == nil {
		return ns, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, err
	}
	return t.UnixNano(), nil
}

// selector is a parsed LogQL log query: matchers and line filters.
type selector struct {
	matchers []matcher
	filters  []lineFilter
}

type matcher struct {
	label, op, value string
	re               *regexp.Regexp
}

type lineFilter struct {
	contains bool // |= ; false is !=
	text     string
}

var (
	matcherRe = regexp.MustCompile(`^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*"|` + "`[^`]*`" + `)\s*(,|$)`)
	filterRe  = regexp.MustCompile(`^\s*(\|=|!=)\s*("(?:[^"\\]|\\.)*"|` + "`[^`]*`" + `)`)
)

func unquote(s string) (string, error) {
	if strings.HasPrefix(s, "`") {
		return s[1 : len(s)-1], nil
	}
	return strconv.Unquote(s)
}

func parseQuery(q string) (*selector, error) {
	q = strings.TrimSpace(q)
	if !strings.HasPrefix(q, "{") {
		return nil, fmt.Errorf("queries must start with a stream selector")
	}
	end := strings.IndexByte(q, '}')
	if end < 0 {
		return nil, fmt.Errorf("unterminated stream selector")
	}
	sel := &selector{}
	body := q[1:end]
	for strings.TrimSpace(body) != "" {
		m := matcherRe.FindStringSubmatch(body)
		if m == nil {
			return nil, fmt.Errorf("bad matcher in %q", body)
		}
		v, err := unquote(m[3])
		if err != nil {
			return nil, err
		}
		mt := matcher{label: m[1], op: m[2], value: v}
		if mt.op == "=~" || mt.op == "!~" {
			if mt.re, err = regexp.Compile("^(?:" + v + ")$"); err != nil {
				return nil, err
			}
		}
		sel.matchers = append(sel.matchers, mt)
		body = body[len(m[0]):]
	}
	nonEmpty := false
	for _, m := range sel.matchers {
		if (m.op == "=" && m.value != "") || (m.op == "=~" && !m.re.MatchString("")) {
			nonEmpty = true
		}
	}
	if !nonEmpty {
		return nil, fmt.Errorf("queries require at least one regexp or equality matcher that does not have an empty-compatible value")
	}
	rest := q[end+1:]
	for strings.TrimSpace(rest) != "" {
		m := filterRe.FindStringSubmatch(rest)
		if m == nil {
			return nil, fmt.Errorf("unsupported pipeline %q (only |= and != line filters)", strings.TrimSpace(rest))
		}
		v, err := unquote(m[2])
		if err != nil {
			return nil, err
		}
		sel.filters = append(sel.filters, lineFilter{contains: m[1] == "|=", text: v})
		rest = rest[len(m[0]):]
	}
	return sel, nil
}

func (s *selector) matchLabels(l map[string]string) bool {
	for _, m := range s.matchers {
		v := l[m.label]
		switch m.op {
		case "=":
			if v != m.value {
				return false
			}
		case "!=":
			if v == m.value {
				return false
			}
		case "=~":
			if !m.re.MatchString(v) {
				return false
			}
		case "!~":
			if m.re.MatchString(v) {
				return false
			}
		}
	}
	return true
}

func (s *selector) matchLine(line string) bool {
	for _, f := range s.filters {
		if strings.Contains(line, f.text) != f.contains {
			return false
		}
	}
	return true
}

// canonical identifies a label set (encoding/json writes map keys sorted).
func canonical(labels map[string]string) string {
	b, _ := json.Marshal(labels)
	return string(b)
}
