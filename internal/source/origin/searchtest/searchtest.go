// Package searchtest is an in-memory OpenSearch/Elasticsearch search API
// for tests, complete enough for the official opensearch-go client to run a
// sliced scroll against it.
//
// Implemented: GET / (cluster info); POST or GET /{index}/_search with
// ?scroll= and ?size=, a body with query (match_all, range with
// gte/gt/lte/lt, term, bool with must/filter/must_not), slice {id, max},
// sort (a field ascending or descending, with unmapped_type, and "_doc") and
// size; POST or GET /_search/scroll with {"scroll_id","scroll"}; DELETE
// /_search/scroll with the ids in the path or as {"scroll_id": …} in the
// body, and _all. Index names may be comma lists with * wildcards. A slice
// holds the documents whose id hashes (FNV-1a) to it modulo max, so the
// slices of one search partition its documents. Field values compare as
// numbers when both are numbers, otherwise as strings (RFC 3339 times in
// one layout sort correctly); a document without the sort field sorts
// last. Anything else is answered 400 like the real servers do.
package searchtest

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"net/http/httptest"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidwall/gjson"
)

// Doc is one stored document.
type Doc struct {
	Index  string
	ID     string
	Source json.RawMessage
}

// Server is an in-memory search server.
type Server struct {
	*httptest.Server

	mu      sync.Mutex
	docs    []Doc // in insertion order (_doc order)
	scrolls map[string]*scroll

	// Searches, ScrollPages and Cleared count requests: initial searches,
	// scroll continuations, and scroll contexts freed by DELETE.
	Searches, ScrollPages, Cleared atomic.Int64
	// Slices records the slice ids asked for, as "id/max".
	sliceLog []string
}

type scroll struct {
	hits    []hitOut
	pos     int
	size    int
	expires time.Time
}

// hitOut is one hit with its sort values; its JSON is written by hand
// (encoding/json would re-validate every _source).
type hitOut struct {
	doc  *Doc
	sort []sortValue
}

// sortValue is one sort value: a number, a string, or missing.
type sortValue struct {
	missing bool
	num     bool
	f       float64
	s       string
	raw     string // JSON text
}

func (h *hitOut) appendJSON(b []byte) []byte {
	b = append(b, `{"_index":`...)
	b = strconv.AppendQuote(b, h.doc.Index)
	b = append(b, `,"_id":`...)
	b = strconv.AppendQuote(b, h.doc.ID)
	if len(h.sort) == 0 {
		b = append(b, `,"_score":1.0`...)
	} else {
		b = append(b, `,"_score":null`...)
	}
	b = append(b, `,"_source":`...)
	b = append(b, h.doc.Source...)
	if len(h.sort) > 0 {
		b = append(b, `,"sort":[`...)
		for i, v := range h.sort {
			if i > 0 {
				b = append(b, ',')
			}
			if v.missing {
				b = append(b, "null"...)
			} else {
				b = append(b, v.raw...)
			}
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// writePage writes a search or scroll response.
func writePage(w http.ResponseWriter, scrollID string, total int, page []hitOut) {
	n := 256
	for i := range page {
		n += len(page[i].doc.Source) + len(page[i].doc.ID) + len(page[i].doc.Index) + 96
	}
	b := make([]byte, 0, n)
	b = append(b, '{')
	if scrollID != "" {
		b = append(b, `"_scroll_id":`...)
		b = strconv.AppendQuote(b, scrollID)
		b = append(b, ',')
	}
	b = append(b, `"took":1,"timed_out":false,"_shards":{"total":1,"successful":1,"skipped":0,"failed":0},"hits":{"total":{"value":`...)
	b = strconv.AppendInt(b, int64(total), 10)
	b = append(b, `,"relation":"eq"},"max_score":null,"hits":[`...)
	for i := range page {
		if i > 0 {
			b = append(b, ',')
		}
		b = page[i].appendJSON(b)
	}
	b = append(b, "]}}\n"...)
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

// New starts a server; Close it when done.
func New() *Server {
	s := &Server{scrolls: map[string]*scroll{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Add stores a document.
func (s *Server) Add(index, id string, source json.RawMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.docs = append(s.docs, Doc{Index: index, ID: id, Source: bytes.Clone(source)})
}

// OpenScrolls is the number of scroll contexts not cleared.
func (s *Server) OpenScrolls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.scrolls)
}

// SliceLog returns the "id/max" of every sliced search, in arrival order.
func (s *Server) SliceLog() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sliceLog)
}

type apiError struct {
	status int
	typ    string
	reason string
}

func fail(w http.ResponseWriter, e apiError) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	json.NewEncoder(w).Encode(map[string]any{
		"error":  map[string]any{"type": e.typ, "reason": e.reason, "root_cause": []any{map[string]any{"type": e.typ, "reason": e.reason}}},
		"status": e.status,
	})
}

func badRequest(format string, args ...any) apiError {
	return apiError{http.StatusBadRequest, "parsing_exception", fmt.Sprintf(format, args...)}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	p := strings.Trim(r.URL.Path, "/")
	parts := strings.Split(p, "/")
	switch {
	case p == "" && r.Method == http.MethodGet:
		writeJSON(w, map[string]any{
			"name": "searchtest", "cluster_name": "searchtest",
			"version": map[string]any{"distribution": "opensearch", "number": "2.19.0"},
		})
	case len(parts) >= 2 && parts[0] == "_search" && parts[1] == "scroll":
		switch r.Method {
		case http.MethodGet, http.MethodPost:
			s.scrollNext(w, r)
		case http.MethodDelete:
			s.clear(w, r, parts[2:])
		default:
			fail(w, apiError{http.StatusMethodNotAllowed, "method_not_allowed", r.Method})
		}
	case len(parts) == 2 && parts[1] == "_search" && (r.Method == http.MethodGet || r.Method == http.MethodPost):
		s.search(w, r, parts[0])
	default:
		fail(w, apiError{http.StatusNotFound, "no_handler_found", r.Method + " " + r.URL.Path})
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(b)) > 0 && !json.Valid(b) {
		return nil, fmt.Errorf("request body is not JSON")
	}
	return b, nil
}

func (s *Server) search(w http.ResponseWriter, r *http.Request, indexPattern string) {
	s.Searches.Add(1)
	body, err := readBody(r)
	if err != nil {
		fail(w, badRequest("%v", err))
		return
	}
	req := gjson.ParseBytes(body)
	size := 10
	if v := req.Get("size"); v.Exists() {
		size = int(v.Int())
	}
	if v := r.URL.Query().Get("size"); v != "" {
		if size, err = strconv.Atoi(v); err != nil {
			fail(w, badRequest("size %q", v))
			return
		}
	}
	if size < 0 || size > 10000 {
		fail(w, apiError{http.StatusBadRequest, "illegal_argument_exception", "Result window is too large"})
		return
	}
	keep := r.URL.Query().Get("scroll")
	var keepFor time.Duration
	if keep != "" {
		if keepFor, err = parseKeepAlive(keep); err != nil {
			fail(w, badRequest("scroll %q: %v", keep, err))
			return
		}
	}
	sliceID, sliceMax := 0, 1
	if sl := req.Get("slice"); sl.Exists() {
		if keep == "" {
			fail(w, apiError{http.StatusBadRequest, "action_request_validation_exception", "[slice] can only be used with [scroll] or [point-in-time] requests"})
			return
		}
		sliceID, sliceMax = int(sl.Get("id").Int()), int(sl.Get("max").Int())
		if sliceMax <= 1 || sliceID < 0 || sliceID >= sliceMax {
			fail(w, apiError{http.StatusBadRequest, "illegal_argument_exception", fmt.Sprintf("slice id %d / max %d: max must be greater than 1 and id in [0, max)", sliceID, sliceMax)})
			return
		}
		s.mu.Lock()
		s.sliceLog = append(s.sliceLog, fmt.Sprintf("%d/%d", sliceID, sliceMax))
		s.mu.Unlock()
	}
	q := req.Get("query")
	if !q.Exists() {
		q = gjson.Parse(`{"match_all":{}}`)
	}
	sorts, aerr := parseSort(req.Get("sort"))
	if aerr != nil {
		fail(w, *aerr)
		return
	}

	s.mu.Lock()
	var hits []hitOut
	for i := range s.docs {
		d := &s.docs[i]
		if !indexMatches(indexPattern, d.Index) {
			continue
		}
		if sliceMax > 1 && int(fnvHash(d.ID)%uint32(sliceMax)) != sliceID {
			continue
		}
		src := gjson.ParseBytes(d.Source)
		ok, aerr := matches(q, src)
		if aerr != nil {
			s.mu.Unlock()
			fail(w, *aerr)
			return
		}
		if !ok {
			continue
		}
		h := hitOut{doc: d}
		for _, so := range sorts {
			if so.field == "_doc" {
				h.sort = append(h.sort, sortValue{num: true, f: float64(i), raw: strconv.Itoa(i)})
				continue
			}
			v := src.Get(escapePath(so.field))
			switch {
			case !v.Exists() || v.Type == gjson.Null:
				h.sort = append(h.sort, sortValue{missing: true})
			case v.Type == gjson.Number:
				h.sort = append(h.sort, sortValue{num: true, f: v.Num, raw: v.Raw})
			default:
				h.sort = append(h.sort, sortValue{s: v.String(), raw: strconv.Quote(v.String())})
			}
		}
		hits = append(hits, h)
	}
	s.mu.Unlock()
	slices.SortStableFunc(hits, func(a, b hitOut) int {
		for i, so := range sorts {
			if c := compareSort(a.sort[i], b.sort[i], so.desc); c != 0 {
				return c
			}
		}
		return 0
	})
	total := len(hits)
	page := hits[:min(size, len(hits))]
	scrollID := ""
	if keep != "" {
		scrollID = newScrollID()
		s.mu.Lock()
		s.scrolls[scrollID] = &scroll{hits: hits, pos: len(page), size: size, expires: time.Now().Add(keepFor)}
		s.mu.Unlock()
	}
	writePage(w, scrollID, total, page)
}

func (s *Server) scrollNext(w http.ResponseWriter, r *http.Request) {
	s.ScrollPages.Add(1)
	body, err := readBody(r)
	if err != nil {
		fail(w, badRequest("%v", err))
		return
	}
	req := gjson.ParseBytes(body)
	id := req.Get("scroll_id").String()
	if id == "" {
		id = r.URL.Query().Get("scroll_id")
	}
	keep := req.Get("scroll").String()
	if keep == "" {
		keep = r.URL.Query().Get("scroll")
	}
	if id == "" {
		fail(w, apiError{http.StatusBadRequest, "action_request_validation_exception", "scrollId is missing"})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sc := s.scrolls[id]
	if sc == nil || time.Now().After(sc.expires) {
		delete(s.scrolls, id)
		fail(w, apiError{http.StatusNotFound, "search_context_missing_exception", "No search context found for id [" + id + "]"})
		return
	}
	if keep != "" {
		d, err := parseKeepAlive(keep)
		if err != nil {
			fail(w, badRequest("scroll %q: %v", keep, err))
			return
		}
		sc.expires = time.Now().Add(d)
	}
	end := min(sc.pos+sc.size, len(sc.hits))
	page := sc.hits[sc.pos:end]
	sc.pos = end
	writePage(w, id, len(sc.hits), page)
}

func (s *Server) clear(w http.ResponseWriter, r *http.Request, pathIDs []string) {
	var ids []string
	if len(pathIDs) > 0 {
		ids = strings.Split(strings.Join(pathIDs, "/"), ",")
	} else {
		body, err := readBody(r)
		if err != nil {
			fail(w, badRequest("%v", err))
			return
		}
		v := gjson.GetBytes(body, "scroll_id")
		if v.IsArray() {
			for _, x := range v.Array() {
				ids = append(ids, x.String())
			}
		} else if v.String() != "" {
			ids = []string{v.String()}
		}
	}
	if len(ids) == 0 {
		fail(w, apiError{http.StatusBadRequest, "action_request_validation_exception", "no scroll ids specified"})
		return
	}
	s.mu.Lock()
	freed := 0
	for _, id := range ids {
		if id == "_all" {
			freed += len(s.scrolls)
			clear(s.scrolls)
			continue
		}
		if _, ok := s.scrolls[id]; ok {
			delete(s.scrolls, id)
			freed++
		}
	}
	s.mu.Unlock()
	s.Cleared.Add(int64(freed))
	if freed == 0 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"succeeded":true,"num_freed":0}`)
		return
	}
	writeJSON(w, map[string]any{"succeeded": true, "num_freed": freed})
}

func newScrollID() string {
	var b [24]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func fnvHash(s string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(s))
	return h.Sum32()
}

func parseKeepAlive(s string) (time.Duration, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return d, nil
	}
	// OpenSearch units: d, h, m, s, ms, micros, nanos.
	if strings.HasSuffix(s, "d") {
		n, err := strconv.Atoi(strings.TrimSuffix(s, "d"))
		return time.Duration(n) * 24 * time.Hour, err
	}
	return 0, fmt.Errorf("unknown time unit")
}

func indexMatches(pattern, index string) bool {
	for _, p := range strings.Split(pattern, ",") {
		if p == "_all" || p == "*" {
			return true
		}
		if ok, _ := path.Match(p, index); ok {
			return true
		}
	}
	return false
}

type sortKey struct {
	field string
	desc  bool
}

func parseSort(v gjson.Result) ([]sortKey, *apiError) {
	if !v.Exists() {
		return nil, nil
	}
	if !v.IsArray() {
		v = gjson.Parse("[" + v.Raw + "]")
	}
	var out []sortKey
	var bad *apiError
	v.ForEach(func(_, x gjson.Result) bool {
		switch {
		case x.Type == gjson.String:
			out = append(out, sortKey{field: x.Str})
		case x.IsObject():
			x.ForEach(func(k, o gjson.Result) bool {
				sk := sortKey{field: k.Str}
				switch {
				case o.Type == gjson.String:
					sk.desc = o.Str == "desc"
				case o.IsObject():
					sk.desc = o.Get("order").String() == "desc"
				}
				out = append(out, sk)
				return true
			})
		default:
			e := badRequest("bad sort %s", x.Raw)
			bad = &e
			return false
		}
		return true
	})
	return out, bad
}

// compareSort orders sort values; a missing value sorts last either way.
func compareSort(a, b sortValue, desc bool) int {
	switch {
	case a.missing && b.missing:
		return 0
	case a.missing:
		return 1
	case b.missing:
		return -1
	}
	var c int
	if a.num && b.num {
		c = cmp.Compare(a.f, b.f)
	} else {
		c = strings.Compare(a.s, b.s)
	}
	if desc {
		return -c
	}
	return c
}

// compareValues orders two JSON values (range bounds); nil sorts last.
func compareValues(a, b any, desc bool) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return 1
	case b == nil:
		return -1
	}
	var c int
	fa, aNum := toFloat(a)
	fb, bNum := toFloat(b)
	if aNum && bNum {
		c = cmp.Compare(fa, fb)
	} else {
		c = strings.Compare(fmt.Sprint(a), fmt.Sprint(b))
	}
	if desc {
		return -c
	}
	return c
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int:
		return float64(x), true
	}
	return 0, false
}

// escapePath turns a field name into a gjson path: dots are object steps,
// as in OpenSearch's object fields.
func escapePath(f string) string {
	var b strings.Builder
	for _, c := range f {
		switch c {
		case '*', '?', '|', '#', '@', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// matches evaluates the supported query clauses on a document.
func matches(q, src gjson.Result) (bool, *apiError) {
	if !q.IsObject() {
		e := badRequest("query must be an object")
		return false, &e
	}
	ok := true
	var bad *apiError
	n := 0
	q.ForEach(func(k, v gjson.Result) bool {
		n++
		var m bool
		switch k.Str {
		case "match_all":
			m = true
		case "range":
			m, bad = matchRange(v, src)
		case "term":
			m, bad = matchTerm(v, src)
		case "bool":
			m, bad = matchBool(v, src)
		default:
			e := badRequest("unknown query [%s]", k.Str)
			bad = &e
		}
		if bad != nil {
			return false
		}
		ok = ok && m
		return true
	})
	if bad == nil && n != 1 {
		e := badRequest("a query object holds exactly one clause, got %d", n)
		bad = &e
	}
	return ok && bad == nil, bad
}

func matchBool(v, src gjson.Result) (bool, *apiError) {
	ok := true
	var bad *apiError
	v.ForEach(func(k, list gjson.Result) bool {
		if !list.IsArray() {
			list = gjson.Parse("[" + list.Raw + "]")
		}
		switch k.Str {
		case "must", "filter":
			list.ForEach(func(_, c gjson.Result) bool {
				m, e := matches(c, src)
				bad = e
				ok = ok && m
				return e == nil
			})
		case "must_not":
			list.ForEach(func(_, c gjson.Result) bool {
				m, e := matches(c, src)
				bad = e
				ok = ok && !m
				return e == nil
			})
		default:
			e := badRequest("bool clause [%s] is not supported here", k.Str)
			bad = &e
		}
		return bad == nil
	})
	return ok, bad
}

func matchRange(v, src gjson.Result) (bool, *apiError) {
	ok := true
	v.ForEach(func(field, bounds gjson.Result) bool {
		val := src.Get(escapePath(field.Str))
		if !val.Exists() {
			ok = false
			return false
		}
		bounds.ForEach(func(op, b gjson.Result) bool {
			c := compareValues(val.Value(), b.Value(), false)
			if val.Type == gjson.String && b.Type == gjson.String {
				c = compareTimes(val.Str, b.Str)
			}
			switch op.Str {
			case "gte":
				ok = ok && c >= 0
			case "gt":
				ok = ok && c > 0
			case "lte":
				ok = ok && c <= 0
			case "lt":
				ok = ok && c < 0
			}
			return true
		})
		return ok
	})
	return ok, nil
}

// compareTimes compares two RFC 3339 times, or the strings when either is
// not one.
func compareTimes(a, b string) int {
	ta, ea := time.Parse(time.RFC3339Nano, a)
	tb, eb := time.Parse(time.RFC3339Nano, b)
	if ea != nil || eb != nil {
		return strings.Compare(a, b)
	}
	return ta.Compare(tb)
}

func matchTerm(v, src gjson.Result) (bool, *apiError) {
	ok := true
	v.ForEach(func(field, want gjson.Result) bool {
		if want.IsObject() {
			want = want.Get("value")
		}
		ok = src.Get(escapePath(field.Str)).String() == want.String()
		return ok
	})
	return ok, nil
}
