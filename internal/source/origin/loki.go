package origin

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/loupe-sec/loupe/internal/event"
	"github.com/tidwall/gjson"
)

// Loki paging. Each request asks query_range for the first PageSize
// entries of [start, end) in time order (direction=forward; Loki's start is
// inclusive and its end exclusive). The next request starts AT the last
// timestamp of the page, not after it, because more entries may share that
// nanosecond; entries at that timestamp already yielded are remembered and
// skipped. A page made of a single timestamp cannot move the start, so it
// is asked again with a larger limit (up to maxTieLimit entries at one
// nanosecond; more is an error rather than a silent loss).

// maxTieLimit is the largest limit asked to get past one timestamp; it is
// Loki's default max_entries_limit_per_query.
const maxTieLimit = 5000

// lokiEntry is one log line of a query_range response.
type lokiEntry struct {
	ts     int64
	stream int // index into lokiPage.streams
	line   string
}

type lokiStream struct {
	labels []field // in key order
	name   string  // "loki" + canonical labels: seeds derived ids
}

type lokiPage struct {
	streams []lokiStream
	entries []lokiEntry // in time order; ties by stream labels, then response order
}

// seenKey identifies an entry at the current page boundary. Loki itself
// keeps one entry per stream, timestamp and line.
type seenKey struct {
	stream string
	line   string
}

func openLoki(ctx context.Context, s Spec, o *options) (iter.Seq2[*event.Event, error], error) {
	end := s.End
	if end.IsZero() {
		end = o.now()
	}
	if !s.Start.Before(end) {
		return nil, specErr("start", "%s is not before the end of the range", s.Start)
	}
	startNs, endNs := s.Start.UnixNano(), end.UnixNano()
	return func(yield func(*event.Event, error) bool) {
		rr := recordReader{maxLine: s.maxLine()}
		limit := s.pageSize()
		var seen map[seenKey]struct{} // entries yielded at ts == startNs
		for startNs < endNs {
			if err := ctx.Err(); err != nil {
				yield(nil, err)
				return
			}
			page, err := lokiQuery(ctx, o, &s, startNs, endNs, limit)
			if err != nil {
				yield(nil, err)
				return
			}
			n := len(page.entries)
			full := n >= limit
			if full && page.entries[0].ts == page.entries[n-1].ts {
				if limit >= maxTieLimit {
					yield(nil, fmt.Errorf("loki query_range: more than %d entries at %d ns: cannot page past them", maxTieLimit, page.entries[0].ts))
					return
				}
				limit = min(limit*4, maxTieLimit)
				continue
			}
			last := int64(0)
			if n > 0 {
				last = page.entries[n-1].ts
			}
			next := make(map[seenKey]struct{})
			for i := range page.entries {
				e := &page.entries[i]
				st := &page.streams[e.stream]
				k := seenKey{st.name, e.line}
				if e.ts == startNs {
					if _, dup := seen[k]; dup {
						continue
					}
				}
				if full && e.ts == last {
					next[k] = struct{}{}
				}
				var ev *event.Event
				if jsonObject(readOnly(e.line)) {
					ev, err = rr.line(readOnly(e.line), st.name, e.ts)
				} else {
					ev, err = rr.record(st.labels, e.line, st.name, e.ts)
				}
				if !yield(ev, err) {
					return
				}
			}
			if !full {
				return
			}
			startNs, seen, limit = last, next, s.pageSize()
		}
	}, nil
}

// lokiQuery asks query_range for one page.
func lokiQuery(ctx context.Context, o *options, s *Spec, startNs, endNs int64, limit int) (*lokiPage, error) {
	v := url.Values{}
	v.Set("query", s.Query)
	v.Set("start", strconv.FormatInt(startNs, 10))
	v.Set("end", strconv.FormatInt(endNs, 10))
	v.Set("limit", strconv.Itoa(limit))
	v.Set("direction", "forward")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, joinURL(s.URL, "/loki/api/v1/query_range")+"?"+v.Encode(), nil)
	if err != nil {
		return nil, fmt.Errorf("loki query_range: %w", err)
	}
	if s.Tenant != "" {
		req.Header.Set("X-Scope-OrgID", s.Tenant)
	}
	resp, err := send(o, s, req, "query_range")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := readBody(resp.Body, MaxResponseBytes)
	if err != nil {
		return nil, fmt.Errorf("loki query_range: %w", err)
	}
	page, err := decodeLokiPage(body)
	if err != nil {
		return nil, fmt.Errorf("loki query_range: %w", err)
	}
	return page, nil
}

var errLokiResponse = errors.New("unexpected response")

// decodeLokiPage reads a query_range response of resultType "streams":
// {"status":"success","data":{"resultType":"streams","result":[{"stream":
// {labels},"values":[["<ns>","<line>"(,{metadata})],…]},…]}}.
func decodeLokiPage(body []byte) (*lokiPage, error) {
	if !gjson.ValidBytes(body) {
		return nil, fmt.Errorf("%w: not JSON: %q", errLokiResponse, excerpt(body))
	}
	root := gjson.Parse(view(body)) // entries point into body, never written again
	if st := root.Get("status").String(); st != "success" {
		return nil, fmt.Errorf("%w: status %q: %s", errLokiResponse, st, excerpt([]byte(root.Get("error").String())))
	}
	data := root.Get("data")
	if rt := data.Get("resultType").String(); rt != "streams" {
		return nil, fmt.Errorf("%w: resultType %q: the query must be a log query, not a metric query", errLokiResponse, rt)
	}
	result := data.Get("result")
	if result.Exists() && !result.IsArray() {
		return nil, fmt.Errorf("%w: data.result is not a list", errLokiResponse)
	}
	page := &lokiPage{}
	var err error
	result.ForEach(func(_, sv gjson.Result) bool {
		labels := sv.Get("stream")
		if !labels.IsObject() {
			err = fmt.Errorf("%w: stream %d has no labels object", errLokiResponse, len(page.streams))
			return false
		}
		st := lokiStream{}
		labels.ForEach(func(k, v gjson.Result) bool {
			st.labels = append(st.labels, field{k.String(), v.String()})
			return true
		})
		slices.SortFunc(st.labels, func(a, b field) int { return strings.Compare(a.key, b.key) })
		st.name = "loki" + canonical(st.labels)
		idx := len(page.streams)
		page.streams = append(page.streams, st)
		values := sv.Get("values")
		if !values.IsArray() {
			err = fmt.Errorf("%w: stream %s has no values list", errLokiResponse, st.name[4:])
			return false
		}
		values.ForEach(func(_, v gjson.Result) bool {
			ts, line := v.Get("0"), v.Get("1")
			if !v.IsArray() || ts.Type != gjson.String || line.Type != gjson.String {
				err = fmt.Errorf("%w: stream %s: value %s is not [\"<ns>\", \"<line>\"]", errLokiResponse, st.name[4:], excerpt([]byte(v.Raw)))
				return false
			}
			ns, perr := strconv.ParseInt(ts.Str, 10, 64)
			if perr != nil || ns < 0 {
				err = fmt.Errorf("%w: stream %s: timestamp %q is not Unix nanoseconds", errLokiResponse, st.name[4:], excerpt([]byte(ts.Str)))
				return false
			}
			page.entries = append(page.entries, lokiEntry{ts: ns, stream: idx, line: line.Str})
			return true
		})
		return err == nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(page.entries, func(a, b lokiEntry) int {
		if c := cmp.Compare(a.ts, b.ts); c != 0 {
			return c
		}
		return strings.Compare(page.streams[a.stream].name, page.streams[b.stream].name)
	})
	return page, nil
}

// canonical renders labels (sorted by key) as {a="x",b="y"}.
func canonical(labels []field) string {
	var b []byte
	b = append(b, '{')
	for i, l := range labels {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, l.key...)
		b = append(b, '=')
		b = strconv.AppendQuote(b, l.value)
	}
	return string(append(b, '}'))
}
