package origin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/loupe-sec/loupe/internal/event"
	"github.com/loupe-sec/loupe/internal/source"
	"github.com/opensearch-project/opensearch-go/v4"
	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"
	"github.com/tidwall/gjson"
)

// OpenSearch and Elasticsearch are read with a sliced scroll through the
// official opensearch-go client. Each of the Slices slices is read by its
// own goroutine, which also parses its hits, one page ahead of the reader;
// every slice is sorted by TimeField on the server and the slices are
// merged by event time, so the sequence is in time order like a sorted
// file (detections correlate in time order). Every hit
// {"_index","_id","_source":{…}} is parsed as the Timesketch nested export
// form it is, so _index and _id are kept. A slice's scroll is cleared when
// it is exhausted, when the reader stops, or when ctx is cancelled; the
// sequence returns only after every slice has finished.

// DefaultTimeField is the opensearch date field used when Spec.TimeField
// is empty.
const DefaultTimeField = "@timestamp"

// scrollKeepAlive is how long the server keeps a scroll between pages.
const scrollKeepAlive = 2 * time.Minute

// clearTimeout bounds clearing a scroll after the reader has gone.
const clearTimeout = 10 * time.Second

func (s Spec) timeField() string {
	if s.TimeField != "" {
		return s.TimeField
	}
	return DefaultTimeField
}

// searchBody builds the body of the first request of slice id of max.
func searchBody(s *Spec, id, max int) ([]byte, error) {
	var query json.RawMessage
	switch q := strings.TrimSpace(s.Query); {
	case q == "":
		query = json.RawMessage(`{"match_all":{}}`)
	case strings.HasPrefix(q, "{"):
		query = json.RawMessage(q)
	default:
		b, _ := json.Marshal(map[string]any{"query_string": map[string]any{"query": q}})
		query = b
	}
	tf := s.timeField()
	if !s.Start.IsZero() || !s.End.IsZero() {
		rng := map[string]string{}
		if !s.Start.IsZero() {
			rng["gte"] = s.Start.UTC().Format(time.RFC3339Nano)
		}
		if !s.End.IsZero() {
			rng["lt"] = s.End.UTC().Format(time.RFC3339Nano)
		}
		b, err := json.Marshal(map[string]any{"bool": map[string]any{
			"must":   []json.RawMessage{query},
			"filter": []any{map[string]any{"range": map[string]any{tf: rng}}},
		}})
		if err != nil {
			return nil, err
		}
		query = b
	}
	body := map[string]any{
		"size":  s.pageSize(),
		"query": query,
		"sort": []any{
			map[string]any{tf: map[string]string{"order": "asc", "unmapped_type": "date"}},
			"_doc",
		},
	}
	if max > 1 {
		body["slice"] = map[string]int{"id": id, "max": max}
	}
	return json.Marshal(body)
}

// hitPage is one decoded search or scroll response.
type hitPage struct {
	scrollID string
	hits     []gjson.Result // raw hit objects, pointing into the body
}

var errSearchResponse = errors.New("unexpected search response")

// decodeHits reads {"_scroll_id":…,"hits":{"hits":[{…},…]}}.
func decodeHits(body []byte) (hitPage, error) {
	var p hitPage
	if !gjson.ValidBytes(body) {
		return p, fmt.Errorf("%w: not JSON: %q", errSearchResponse, excerpt(body))
	}
	// The hits point into body (viewed as a string without a copy); body
	// is never written to again.
	root := gjson.Parse(view(body))
	if !root.IsObject() {
		return p, fmt.Errorf("%w: not a JSON object", errSearchResponse)
	}
	if sid := root.Get("_scroll_id"); sid.Exists() {
		if sid.Type != gjson.String {
			return p, fmt.Errorf("%w: _scroll_id is not a string", errSearchResponse)
		}
		p.scrollID = sid.Str
	}
	if f := root.Get("_shards.failed"); f.Int() > 0 {
		return p, fmt.Errorf("%w: %d shards failed: %s", errSearchResponse, f.Int(), excerpt([]byte(root.Get("_shards.failures").Raw)))
	}
	hits := root.Get("hits.hits")
	if !hits.IsArray() {
		return p, fmt.Errorf("%w: no hits.hits list", errSearchResponse)
	}
	p.hits = hits.Array()
	for i, h := range p.hits {
		if !h.IsObject() {
			return p, fmt.Errorf("%w: hit %d is not an object", errSearchResponse, i)
		}
	}
	return p, nil
}

// hitItem is one parsed hit (or its error) on its way to the merger.
type hitItem struct {
	ev  *event.Event
	err error
}

func openOpenSearch(ctx context.Context, s Spec, o *options) (iter.Seq2[*event.Event, error], error) {
	transport := o.client.Transport
	if transport == nil {
		transport = http.DefaultTransport
	}
	cfg := opensearch.Config{
		Addresses:    []string{strings.TrimRight(s.URL, "/")},
		Username:     s.Username,
		Password:     s.Password,
		Transport:    &limitedTransport{base: transport, max: MaxResponseBytes},
		DisableRetry: true,
	}
	client, err := opensearch.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: client: %w", s.Kind, err)
	}
	nSlices := max(s.Slices, 1)
	return func(yield func(*event.Event, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		chans := make([]chan []hitItem, nSlices)
		var wg sync.WaitGroup
		for i := range nSlices {
			chans[i] = make(chan []hitItem, 1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer close(chans[i])
				readSlice(ctx, client, &s, i, nSlices, chans[i])
			}()
		}
		defer wg.Wait() // scrolls are cleared before the sequence returns
		defer cancel()
		mergeByTime(ctx, chans, yield)
	}, nil
}

// readSlice scrolls through slice id of max and sends its hits, parsed, a
// page at a time. An error is sent as the last item.
func readSlice(ctx context.Context, client *opensearch.Client, s *Spec, id, max int, out chan<- []hitItem) {
	rr := recordReader{maxLine: s.maxLine()}
	send := func(items []hitItem) bool {
		select {
		case out <- items:
			return true
		case <-ctx.Done():
			return false
		}
	}
	fail := func(err error) {
		if ctx.Err() == nil {
			send([]hitItem{{err: err}})
		}
	}
	body, err := searchBody(s, id, max)
	if err != nil {
		fail(fmt.Errorf("%s search: %w", s.Kind, err))
		return
	}
	size := s.pageSize()
	page, err := doSearch(ctx, client, s, "search", opensearchapi.SearchReq{
		Indices: []string{s.Index},
		Body:    bytes.NewReader(body),
		Params:  opensearchapi.SearchParams{Scroll: scrollKeepAlive, Size: &size},
	})
	scrollID := page.scrollID
	defer func() {
		if scrollID != "" {
			clearScroll(ctx, client, scrollID)
		}
	}()
	for {
		if err != nil {
			fail(err)
			return
		}
		if len(page.hits) == 0 {
			return
		}
		items := make([]hitItem, len(page.hits))
		for i, h := range page.hits {
			items[i].ev, items[i].err = rr.line([]byte(h.Raw), s.Index, 0)
		}
		if !send(items) {
			return
		}
		if scrollID == "" {
			fail(fmt.Errorf("%s search: %w: no _scroll_id", s.Kind, errSearchResponse))
			return
		}
		page, err = doSearch(ctx, client, s, "scroll", opensearchapi.ScrollGetReq{
			ScrollID: scrollID,
			Params:   opensearchapi.ScrollGetParams{Scroll: scrollKeepAlive},
		})
		if page.scrollID != "" {
			scrollID = page.scrollID
		}
	}
}

// doSearch sends a search or scroll request and decodes its hits.
func doSearch(ctx context.Context, client *opensearch.Client, s *Spec, op string, req opensearch.Request) (hitPage, error) {
	resp, err := client.Do(ctx, http.MethodPost, req, nil)
	if err != nil {
		if ctx.Err() != nil {
			return hitPage{}, ctx.Err()
		}
		return hitPage{}, fmt.Errorf("%s %s: %w", s.Kind, op, err)
	}
	defer resp.Body.Close()
	body, err := readBody(resp.Body, MaxResponseBytes)
	if err != nil {
		return hitPage{}, fmt.Errorf("%s %s: %w", s.Kind, op, err)
	}
	if resp.StatusCode != http.StatusOK {
		return hitPage{}, &StatusError{Kind: s.Kind, Op: op, Status: resp.StatusCode, Body: excerpt(body)}
	}
	page, err := decodeHits(body)
	if err != nil {
		return page, fmt.Errorf("%s %s: %w", s.Kind, op, err)
	}
	return page, nil
}

// clearScroll frees a scroll context on the server, even after ctx ended.
func clearScroll(ctx context.Context, client *opensearch.Client, scrollID string) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), clearTimeout)
	defer cancel()
	resp, err := client.Do(cctx, http.MethodDelete, opensearchapi.ScrollDeleteReq{ScrollIDs: []string{scrollID}}, nil)
	if err == nil {
		resp.Body.Close()
	}
}

// mergeByTime yields the items of the slices in event-time order: it keeps
// the head of every slice that has not ended and yields the earliest
// (errors first; ties go to the lower slice). Event.Line is renumbered in
// the merged order.
func mergeByTime(ctx context.Context, chans []chan []hitItem, yield func(*event.Event, error) bool) {
	type head struct {
		batch []hitItem
		done  bool
	}
	heads := make([]head, len(chans))
	var n int64
	for {
		best := -1
		for i := range heads {
			h := &heads[i]
			for !h.done && len(h.batch) == 0 {
				b, ok := <-chans[i]
				if !ok {
					h.done = true
					break
				}
				h.batch = b
			}
			if h.done {
				continue
			}
			if best < 0 || earlier(h.batch[0], heads[best].batch[0]) {
				best = i
			}
		}
		if best < 0 {
			if err := ctx.Err(); err != nil {
				yield(nil, err) // cancelled: the slices stopped early
			}
			return
		}
		it := heads[best].batch[0]
		heads[best].batch = heads[best].batch[1:]
		n++
		var le *source.LineError
		switch {
		case it.err == nil:
			it.ev.Line = n
		case errors.As(it.err, &le):
			it.err = &source.LineError{Line: n, Err: le.Err}
		default:
			yield(nil, it.err) // a slice failed: the whole read fails
			return
		}
		if !yield(it.ev, it.err) {
			return
		}
	}
}

func earlier(a, b hitItem) bool {
	if a.err != nil || b.err != nil {
		return a.err != nil && b.err == nil
	}
	return a.ev.Time.Before(b.ev.Time)
}

// limitedTransport fails a response body that grows past max bytes (the
// client buffers whole responses).
type limitedTransport struct {
	base http.RoundTripper
	max  int64
}

func (t *limitedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &limitedBody{ReadCloser: resp.Body, left: t.max}
	return resp, nil
}

type limitedBody struct {
	io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, fmt.Errorf("response larger than %d bytes", MaxResponseBytes)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}
