package origin

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loupe-sec/loupe/internal/event"
	"github.com/loupe-sec/loupe/internal/source"
	"github.com/loupe-sec/loupe/internal/source/origin/lokitest"
	"github.com/tidwall/gjson"
)

// Real Loki cannot run in these tests (AGPL); lokitest implements the
// query_range semantics the pager relies on.

// falcoAlert is one corpus line with what falcosidekick's Loki output
// makes of it.
type falcoAlert struct {
	line   []byte
	ns     int64
	labels map[string]string
}

func loadFalco(t testing.TB, path string) []falcoAlert {
	t.Helper()
	var out []falcoAlert
	for _, l := range readLines(t, path) {
		r := gjson.ParseBytes(l)
		ts, err := time.Parse(time.RFC3339Nano, r.Get("time").String())
		if err != nil {
			t.Fatalf("corpus line without time: %s", l)
		}
		labels := map[string]string{
			"rule": r.Get("rule").String(), "priority": r.Get("priority").String(),
			"hostname": r.Get("hostname").String(), "source": r.Get("source").String(),
		}
		var tags []string
		for _, x := range r.Get("tags").Array() {
			tags = append(tags, x.String())
		}
		labels["tags"] = strings.Join(tags, ",")
		for k, v := range labels {
			if v == "" {
				delete(labels, k)
			}
		}
		out = append(out, falcoAlert{line: l, ns: ts.UnixNano(), labels: labels})
	}
	if len(out) == 0 {
		t.Fatal("empty corpus")
	}
	return out
}

// storeOrder sorts alerts as a log store returns them (time order) and
// writes that order to a file for the file source.
func storeOrder(t testing.TB, alerts []falcoAlert, tieKey func(falcoAlert) string) string {
	t.Helper()
	slices.SortStableFunc(alerts, func(a, b falcoAlert) int {
		if c := cmp.Compare(a.ns, b.ns); c != 0 {
			return c
		}
		return strings.Compare(tieKey(a), tieKey(b))
	})
	var b []byte
	for _, a := range alerts {
		b = append(append(b, a.line...), '\n')
	}
	p := filepath.Join(t.TempDir(), "falco-time-ordered.jsonl")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func lokiLabelKey(a falcoAlert) string { return canonical(sortedFields(a.labels)) }

func sortedFields(m map[string]string) []field {
	var fs []field
	for k, v := range m {
		fs = append(fs, field{k, v})
	}
	slices.SortFunc(fs, func(a, b field) int { return strings.Compare(a.key, b.key) })
	return fs
}

func timeSpan(alerts []falcoAlert) (time.Time, time.Time) {
	lo, hi := alerts[0].ns, alerts[0].ns
	for _, a := range alerts {
		lo, hi = min(lo, a.ns), max(hi, a.ns)
	}
	return time.Unix(0, lo).UTC(), time.Unix(0, hi+1).UTC()
}

// The investigation over Loki (Falco JSON lines, falcosidekick's json
// format) finds what the file source finds on the same alerts.
func TestLokiSameFindingsAsFile(t *testing.T) {
	alerts := loadFalco(t, falcoCorpus(t))
	srv := lokitest.New()
	defer srv.Close()
	for _, a := range alerts {
		srv.Push(a.labels, lokitest.Entry{Time: a.ns, Line: string(a.line)})
	}
	file := storeOrder(t, alerts, lokiLabelKey)
	start, end := timeSpan(alerts)
	spec := Spec{Kind: KindLoki, URL: srv.URL, Query: `{rule=~".+"}`, Start: start, End: end, PageSize: 7}

	seq, err := Open(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	evs := collect(t, seq)
	if len(evs) != len(alerts) {
		t.Fatalf("read %d events, pushed %d", len(evs), len(alerts))
	}
	for i, ev := range evs {
		if ev.Format != event.FormatFalco || ev.Line != int64(i+1) {
			t.Fatalf("event %d: format %v line %d", i+1, ev.Format, ev.Line)
		}
	}
	if q := srv.Queries.Load(); q < int64(len(alerts)/7) {
		t.Errorf("%d query_range requests for %d entries in pages of 7", q, len(alerts))
	}

	seq, _ = Open(context.Background(), spec)
	got := analyze(t, seq)
	sameFindings(t, "loki", got, fileFindings(t, file), false)

	// Ids do not depend on paging.
	spec.PageSize = 1000
	seq, _ = Open(context.Background(), spec)
	again := collect(t, seq)
	for i := range evs {
		if again[i].ID != evs[i].ID {
			t.Fatalf("event %d: id %s with pages of 7, %s with pages of 1000", i+1, evs[i].ID, again[i].ID)
		}
	}
}

// falcosidekick's default text format: the line is Falco's output text and
// rule, priority, hostname, source and tags are labels. The events are
// Falco alerts with the same fields as the JSON alerts have.
func TestLokiFalcoTextLines(t *testing.T) {
	alerts := loadFalco(t, repoFile("testdata", "attack", "falco.jsonl"))
	srv := lokitest.New()
	defer srv.Close()
	for _, a := range alerts {
		srv.Push(a.labels, lokitest.Entry{Time: a.ns, Line: gjson.GetBytes(a.line, "output").String()})
	}
	want := collect(t, source.ReadFiles(context.Background(), []string{storeOrder(t, alerts, lokiLabelKey)}, source.Options{}))
	start, end := timeSpan(alerts)
	seq, err := Open(context.Background(), Spec{Kind: KindLoki, URL: srv.URL, Query: `{hostname=~".+"}`, Start: start, End: end, PageSize: 5})
	if err != nil {
		t.Fatal(err)
	}
	got := collect(t, seq)
	if len(got) != len(want) {
		t.Fatalf("%d events, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Format != event.FormatFalco || g.Rule != w.Rule || g.Priority != w.Priority || g.Host != w.Host ||
			!g.Time.Equal(w.Time) || g.Message != w.Message || !slices.Equal(g.Tags, w.Tags) {
			t.Errorf("event %d:\n got  %v %q %q %q %v %q %v\n want %v %q %q %q %v %q %v", i+1,
				g.Format, g.Rule, g.Priority, g.Host, g.Time, g.Message, g.Tags,
				w.Format, w.Rule, w.Priority, w.Host, w.Time, w.Message, w.Tags)
		}
	}
}

type lokiKey struct {
	stream string
	ns     int64
	line   string
}

// Paging by time loses and repeats nothing when many entries share a
// nanosecond across a page boundary, in any tie order the server picks.
func TestLokiPagingTies(t *testing.T) {
	srv := lokitest.New()
	defer srv.Close()
	srv.ShuffleTies = rand.New(rand.NewSource(7))
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano()
	streams := []map[string]string{{"job": "a"}, {"job": "b", "host": "h1"}, {"job": "c"}}
	want := map[lokiKey]int{}
	push := func(s int, ns int64, line string) {
		srv.Push(streams[s], lokitest.Entry{Time: ns, Line: line})
		want[lokiKey{lokiLabelKey(falcoAlert{labels: streams[s]}), ns, line}]++
	}
	// Offsets in ns from base and how many entries share each; page size 4.
	groups := []struct {
		off int64
		n   int
	}{{0, 1}, {1, 5}, {2, 1}, {3, 4}, {4, 9}, {5, 3}, {7, 4}, {8, 1}, {1000, 13}, {1001, 2}}
	k := 0
	for _, g := range groups {
		for i := 0; i < g.n; i++ {
			push(k%len(streams), base+g.off, fmt.Sprintf("entry %d at +%d", k, g.off))
			k++
		}
	}
	push(0, base-1, "before the range")
	push(1, base+2000, "at the end: excluded")

	start, end := time.Unix(0, base), time.Unix(0, base+2000)
	seq, err := Open(context.Background(), Spec{Kind: KindLoki, URL: srv.URL, Query: `{job=~"a|b|c"}`, Start: start, End: end, PageSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	got := map[lokiKey]int{}
	var last int64
	for i, ev := range collect(t, seq) {
		ns := ev.Time.UnixNano()
		if ns < last {
			t.Fatalf("event %d at %d after %d", i+1, ns, last)
		}
		last = ns
		job, _ := ev.Field("job")
		labels := map[string]string{"job": job}
		if h, ok := ev.Field("host"); ok {
			labels["host"] = h
		}
		got[lokiKey{lokiLabelKey(falcoAlert{labels: labels}), ns, ev.Message}]++
	}
	delete(want, lokiKey{lokiLabelKey(falcoAlert{labels: streams[0]}), base - 1, "before the range"})
	delete(want, lokiKey{lokiLabelKey(falcoAlert{labels: streams[1]}), base + 2000, "at the end: excluded"})
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%v: read %d times, want %d", k, got[k], n)
		}
	}
	for k, n := range got {
		if want[k] == 0 {
			t.Errorf("%v: read %d times, not expected", k, n)
		}
	}
}

// More entries at one nanosecond than any page may hold: an error, not a
// silent loss.
func TestLokiTooManyTies(t *testing.T) {
	srv := lokitest.New()
	defer srv.Close()
	ns := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC).UnixNano()
	es := make([]lokitest.Entry, lokitest.MaxEntries+1)
	for i := range es {
		es[i] = lokitest.Entry{Time: ns, Line: fmt.Sprint("line ", i)}
	}
	srv.Push(map[string]string{"job": "x"}, es...)
	seq, err := Open(context.Background(), Spec{Kind: KindLoki, URL: srv.URL, Query: `{job="x"}`, Start: time.Unix(0, ns), End: time.Unix(0, ns+1), PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	var last error
	for ev, err := range seq {
		if err != nil {
			last = err
			continue
		}
		_ = ev
		n++
	}
	if last == nil || !strings.Contains(last.Error(), "cannot page past") || n != 0 {
		t.Errorf("%d events, error %v", n, last)
	}
}

func TestLokiErrors(t *testing.T) {
	srv := lokitest.New()
	defer srv.Close()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	first := func(s Spec) error {
		seq, err := Open(context.Background(), s)
		if err != nil {
			return err
		}
		for _, err := range seq {
			if err != nil {
				return err
			}
		}
		return nil
	}
	// The server refuses a query that is not a stream selector: its 400
	// and message come back.
	err := first(Spec{Kind: KindLoki, URL: srv.URL, Query: `rate({job="x"}[1m])`, Start: start})
	var se *StatusError
	if !errors.As(err, &se) || se.Status != http.StatusBadRequest || !strings.Contains(se.Error(), "stream selector") {
		t.Errorf("bad query: %v", err)
	}
	// A metric result is refused with a reason.
	matrix := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"status":"success","data":{"resultType":"matrix","result":[]}}`))
	}))
	defer matrix.Close()
	if err := first(Spec{Kind: KindLoki, URL: matrix.URL, Query: `{job="x"}`, Start: start}); err == nil || !strings.Contains(err.Error(), "metric query") {
		t.Errorf("matrix: %v", err)
	}
	// Tenant and basic auth are sent.
	var gotTenant, gotUser string
	auth := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotTenant = r.Header.Get("X-Scope-OrgID")
		gotUser, _, _ = r.BasicAuth()
		w.Write([]byte(`{"status":"success","data":{"resultType":"streams","result":[]}}`))
	}))
	defer auth.Close()
	if err := first(Spec{Kind: KindLoki, URL: auth.URL, Query: `{job="x"}`, Start: start, Tenant: "team-a", Username: "u", Password: "p"}); err != nil || gotTenant != "team-a" || gotUser != "u" {
		t.Errorf("auth: %v tenant %q user %q", err, gotTenant, gotUser)
	}
	// Cancellation ends the sequence with the context's error.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	seq, _ := Open(ctx, Spec{Kind: KindLoki, URL: srv.URL, Query: `{job="x"}`, Start: start})
	for _, err := range seq {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled: %v", err)
		}
	}
}
