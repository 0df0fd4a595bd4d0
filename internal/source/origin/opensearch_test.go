package origin

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/loupe-sec/loupe/internal/event"
	"github.com/loupe-sec/loupe/internal/source"
	"github.com/loupe-sec/loupe/internal/source/origin/searchtest"
	"github.com/tidwall/gjson"
)

// loadTimesketch fills a test search server with the Timesketch export's
// search hits, plus documents of another index that must not be read.
func loadTimesketch(t testing.TB, srv *searchtest.Server, path string) (index string, n int) {
	t.Helper()
	for _, l := range readLines(t, path) {
		r := gjson.ParseBytes(l)
		index = r.Get("_index").String()
		srv.Add(index, r.Get("_id").String(), []byte(r.Get("_source").Raw))
		n++
		srv.Add("other-index", "other-"+r.Get("_id").String(), []byte(r.Get("_source").Raw))
	}
	return index, n
}

// Four slices read in parallel: every document exactly once, with its
// _index and _id; the same findings as the file source on the export, ids
// included; every scroll cleared.
func TestOpenSearchSlicedScroll(t *testing.T) {
	path := repoFile("testdata", "attack", "timesketch-nested.jsonl")
	srv := searchtest.New()
	defer srv.Close()
	index, n := loadTimesketch(t, srv, path)
	spec := Spec{Kind: KindOpenSearch, URL: srv.URL, Index: index, TimeField: "datetime", Slices: 4, PageSize: 3}

	seq, err := Open(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	evs := collect(t, seq)
	want := collect(t, source.ReadFiles(context.Background(), []string{path}, source.Options{}))
	if len(evs) != n || len(want) != n {
		t.Fatalf("read %d events, the index holds %d, the file %d", len(evs), n, len(want))
	}
	seen := map[string]int{}
	for i, ev := range evs {
		seen[ev.ID]++
		if ev.Index != index || ev.Format != event.FormatTimesketch || ev.Line != int64(i+1) {
			t.Errorf("event %d: index %q format %v line %d", i+1, ev.Index, ev.Format, ev.Line)
		}
		if i > 0 && ev.Time.Before(evs[i-1].Time) {
			t.Errorf("event %d (%v) before event %d (%v): slices not merged in time order", i+1, ev.Time, i, evs[i-1].Time)
		}
	}
	for _, w := range want {
		if seen[w.ID] != 1 {
			t.Errorf("document %s read %d times", w.ID, seen[w.ID])
		}
	}
	if log := srv.SliceLog(); !slices.Equal(sorted(log), []string{"0/4", "1/4", "2/4", "3/4"}) {
		t.Errorf("slices asked: %v", log)
	}
	if open := srv.OpenScrolls(); open != 0 || srv.Cleared.Load() != 4 {
		t.Errorf("%d scrolls left open, %d cleared", open, srv.Cleared.Load())
	}
	if srv.ScrollPages.Load() < int64(n/3) {
		t.Errorf("%d scroll pages for %d documents in pages of 3", srv.ScrollPages.Load(), n)
	}

	seq, _ = Open(context.Background(), spec)
	sameFindings(t, "opensearch", analyze(t, seq), fileFindings(t, path), true)
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

// Stopping early, or cancelling, clears every scroll before the sequence
// returns.
func TestOpenSearchStopClearsScrolls(t *testing.T) {
	srv := searchtest.New()
	defer srv.Close()
	index, _ := loadTimesketch(t, srv, repoFile("testdata", "attack", "timesketch-nested.jsonl"))
	spec := Spec{Kind: KindElasticsearch, URL: srv.URL, Index: index, TimeField: "datetime", Slices: 4, PageSize: 2}
	seq, err := Open(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, err := range seq {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 3 {
			break
		}
	}
	if open := srv.OpenScrolls(); open != 0 {
		t.Errorf("stopped after 3 events: %d scrolls still open", open)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seq, _ = Open(ctx, spec)
	var last error
	n = 0
	for _, err := range seq {
		if err != nil {
			last = err
			continue
		}
		if n++; n == 5 {
			cancel()
		}
	}
	if !errors.Is(last, context.Canceled) {
		t.Errorf("cancelled read ended with %v", last)
	}
	if open := srv.OpenScrolls(); open != 0 {
		t.Errorf("cancelled: %d scrolls still open", open)
	}
}

// A time range reads exactly the documents inside it (start inclusive, end
// exclusive); a query DSL object is passed through.
func TestOpenSearchRangeAndQuery(t *testing.T) {
	path := repoFile("testdata", "attack", "timesketch-nested.jsonl")
	srv := searchtest.New()
	defer srv.Close()
	index, _ := loadTimesketch(t, srv, path)
	all := collect(t, source.ReadFiles(context.Background(), []string{path}, source.Options{}))
	start, end := all[5].Time, all[20].Time
	seq, err := Open(context.Background(), Spec{Kind: KindOpenSearch, URL: srv.URL, Index: index, TimeField: "datetime",
		Start: start, End: end, Slices: 2, Query: `{"term":{"data_type":"syslog:line"}}`})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, ev := range all {
		if !ev.Time.Before(start) && ev.Time.Before(end) && strings.Contains(string(ev.Raw), `"data_type":"syslog:line"`) {
			want = append(want, ev.ID)
		}
	}
	var got []string
	for _, ev := range collect(t, seq) {
		got = append(got, ev.ID)
	}
	if len(want) == 0 || !slices.Equal(sorted(got), sorted(want)) {
		t.Errorf("range/query: got %d %v, want %d %v", len(got), got, len(want), want)
	}

	// The server's refusal (query_string is not implemented by the test
	// server, as an unknown clause is refused by a real one) comes back
	// with its status and reason.
	seq, _ = Open(context.Background(), Spec{Kind: KindOpenSearch, URL: srv.URL, Index: index, Query: "failed AND root", Slices: 2})
	var last error
	for _, err := range seq {
		last = err
	}
	var se *StatusError
	if !errors.As(last, &se) || se.Status != http.StatusBadRequest || !strings.Contains(se.Body, "query_string") {
		t.Errorf("refused query: %v", last)
	}
	if open := srv.OpenScrolls(); open != 0 {
		t.Errorf("%d scrolls open after the failed search", open)
	}
}
