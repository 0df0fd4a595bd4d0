package logstore

// UNIT TESTS OF REQUEST BUILDING AND RESPONSE PARSING ONLY.
//
// No real Grafana Loki can be run on this machine (no Debian package, no
// usable Go module, no binary download), and VictoriaLogs does not serve
// Loki's query_range. The in-process server below is a small stand-in that
// records the requests the Loki client sends and answers them from a fixed
// list, so these tests check the client's query, paging and parsing — not
// compatibility with a real Loki. Loki.Push is tested for real against
// VictoriaLogs' Loki push endpoint in vlogs_integration_test.go.

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

type fakeEntry struct {
	ns     int64
	labels map[string]string
	line   string
}

// fakeLoki answers query_range for selectors of the form LogQL() builds
// (hostname matcher and optional |= filter), newest first, like Loki.
type fakeLoki struct {
	t       *testing.T
	host    string // the only hostname the fake knows how to match
	entries []fakeEntry
	mu      sync.Mutex
	reqs    []map[string]string
}

func (f *fakeLoki) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/ready" {
		w.Write([]byte("ready"))
		return
	}
	if r.URL.Path != "/loki/api/v1/query_range" || r.Method != http.MethodGet {
		http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusNotFound)
		return
	}
	p := map[string]string{}
	for k := range r.URL.Query() {
		p[k] = r.URL.Query().Get(k)
	}
	p["tenant"] = r.Header.Get("X-Scope-OrgID")
	f.mu.Lock()
	f.reqs = append(f.reqs, p)
	f.mu.Unlock()
	start, _ := strconv.ParseInt(p["start"], 10, 64)
	end, _ := strconv.ParseInt(p["end"], 10, 64)
	limit, _ := strconv.Atoi(p["limit"])
	var filter string
	if i := strings.Index(p["query"], " |= "); i >= 0 {
		filter, _ = strconv.Unquote(p["query"][i+4:])
	}
	var hits []fakeEntry
	for _, e := range f.entries {
		if e.labels["hostname"] == f.host && e.ns >= start && e.ns < end && strings.Contains(e.line, filter) {
			hits = append(hits, e)
		}
	}
	sort.SliceStable(hits, func(i, j int) bool { return hits[i].ns > hits[j].ns })
	if len(hits) > limit {
		hits = hits[:limit]
	}
	type stream struct {
		Stream map[string]string `json:"stream"`
		Values [][]string        `json:"values"`
	}
	byLabels := map[string]*stream{}
	var result []*stream
	for _, h := range hits {
		k := canonicalLabels(h.labels)
		s := byLabels[k]
		if s == nil {
			s = &stream{Stream: h.labels}
			byLabels[k] = s
			result = append(result, s)
		}
		s.Values = append(s.Values, []string{strconv.FormatInt(h.ns, 10), h.line})
	}
	json.NewEncoder(w).Encode(map[string]any{
		"status": "success",
		"data":   map[string]any{"resultType": "streams", "result": result},
	})
}

func (f *fakeLoki) requests() []map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]map[string]string(nil), f.reqs...)
}

func TestLokiRelatedPagingFake(t *testing.T) {
	base := time.Date(2024, 3, 19, 23, 41, 0, 0, time.UTC)
	lab := func(rule string) map[string]string {
		return map[string]string{"hostname": "n1", "rule": rule, "priority": "Warning", "source": "syscall"}
	}
	f := &fakeLoki{t: t, host: "n1"}
	// Ten container events one second apart; events 5 and 6 share a
	// nanosecond timestamp, so a page boundary falls inside it.
	var want []int64
	for i := 0; i < 10; i++ {
		ns := base.Add(time.Duration(i) * time.Second).UnixNano()
		if i == 6 {
			ns = base.Add(5 * time.Second).UnixNano()
		}
		rule := "R" + strconv.Itoa(i)
		line := "23:41: Warning thing (container_id=3ad7b26ded6d n=" + strconv.Itoa(i) + ")"
		if i%2 == 0 { // a Falco JSON line, as a JSON-format pipeline would ship
			line = `{"output":"json ` + strconv.Itoa(i) + `","rule":"` + rule + `","output_fields":{"container.id":"3ad7b26ded6d"}}`
		}
		f.entries = append(f.entries, fakeEntry{ns: ns, labels: lab(rule), line: line})
		want = append(want, ns)
	}
	// Another container whose id contains the queried one as text, and
	// another host: both must be left out.
	f.entries = append(f.entries,
		fakeEntry{ns: base.Add(2500 * time.Millisecond).UnixNano(), labels: lab("X"), line: "x (container_id=3ad7b26ded6dff)"},
		fakeEntry{ns: base.Add(3 * time.Second).UnixNano(), labels: map[string]string{"hostname": "n2", "rule": "X"}, line: "container_id=3ad7b26ded6d"},
		fakeEntry{ns: base.Add(-time.Hour).UnixNano(), labels: lab("old"), line: "container_id=3ad7b26ded6d"},
	)
	srv := httptest.NewServer(f)
	defer srv.Close()
	lk := &Loki{URL: srv.URL + "/", PageSize: 3, Tenant: "team-a"}
	if err := lk.Ready(context.Background()); err != nil {
		t.Fatal(err)
	}
	q := Query{Host: "n1", ContainerID: "3ad7b26ded6d", Around: base.Add(5 * time.Second), Before: 5 * time.Second, After: 4 * time.Second, Limit: 8}
	got, err := lk.Related(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	// The 8 newest of the 10, oldest first.
	if len(got) != 8 {
		t.Fatalf("got %d events: %v", len(got), summary(got))
	}
	for i, ev := range got {
		if ev.Time.UnixNano() != want[i+2] && !(i+2 == 5 || i+2 == 6) {
			t.Errorf("event %d at %v, want %v", i, ev.Time, time.Unix(0, want[i+2]).UTC())
		}
		if i > 0 && ev.Time.Before(got[i-1].Time) {
			t.Errorf("not oldest first at %d", i)
		}
		if ev.ContainerID != "3ad7b26ded6d" || ev.Host != "n1" || ev.Priority != "Warning" || ev.Labels["source"] != "syscall" {
			t.Errorf("event %d = %+v", i, ev)
		}
		n := (ev.Time.Sub(base) / time.Second)
		if strings.HasPrefix(ev.Message, "json ") {
			if len(ev.Raw) == 0 || ev.Rule != "R"+strings.TrimPrefix(ev.Message, "json ") {
				t.Errorf("JSON line parsed as %+v", ev)
			}
		} else if len(ev.Raw) != 0 || !strings.Contains(ev.Message, "container_id=3ad7b26ded6d") {
			t.Errorf("text line parsed as %+v (n=%d)", ev, n)
		}
	}
	seen := map[string]bool{}
	for _, ev := range got {
		k := ev.Time.String() + ev.Message
		if seen[k] {
			t.Errorf("duplicate %s", k)
		}
		seen[k] = true
	}

	reqs := f.requests()
	if len(reqs) < 3 {
		t.Fatalf("%d requests, want paging", len(reqs))
	}
	start := strconv.FormatInt(base.UnixNano(), 10)
	end := strconv.FormatInt(base.Add(9*time.Second).UnixNano()+1, 10)
	if r := reqs[0]; r["query"] != `{hostname="n1"} |= "3ad7b26ded6d"` || r["direction"] != "backward" || r["start"] != start || r["end"] != end || r["limit"] != "3" || r["tenant"] != "team-a" {
		t.Errorf("first request %v", r)
	}
	for i := 1; i < len(reqs); i++ {
		prev, cur := reqs[i-1], reqs[i]
		pe, _ := strconv.ParseInt(prev["end"], 10, 64)
		ce, _ := strconv.ParseInt(cur["end"], 10, 64)
		if cur["start"] != start || ce >= pe {
			t.Errorf("request %d does not page back: %v after %v", i, cur, prev)
		}
	}
}

func TestLokiSameNanosecondPageFake(t *testing.T) {
	// More entries at one nanosecond than a page holds: paging must step
	// past that timestamp instead of looping.
	at := time.Date(2024, 3, 19, 23, 41, 0, 0, time.UTC)
	f := &fakeLoki{t: t, host: "n1"}
	for i := 0; i < 5; i++ {
		f.entries = append(f.entries, fakeEntry{ns: at.UnixNano(), labels: map[string]string{"hostname": "n1"}, line: "same " + strconv.Itoa(i)})
	}
	f.entries = append(f.entries, fakeEntry{ns: at.UnixNano() - 1, labels: map[string]string{"hostname": "n1"}, line: "earlier"})
	srv := httptest.NewServer(f)
	defer srv.Close()
	lk := &Loki{URL: srv.URL, PageSize: 2}
	got, err := lk.Related(context.Background(), Query{Host: "n1", Around: at, Before: time.Second, After: time.Second, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.requests()) > 10 {
		t.Fatalf("%d requests", len(f.requests()))
	}
	if len(got) == 0 || got[0].Message != "earlier" {
		t.Errorf("paging did not reach the earlier entry: %v", summary(got))
	}
}

func TestLokiHTTPErrorFake(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "parse error at line 1, col 12: syntax error", http.StatusBadRequest)
	}))
	defer srv.Close()
	_, err := (&Loki{URL: srv.URL}).Related(context.Background(), Query{Host: "h", Around: time.Now()})
	var he *HTTPError
	if !errors.As(err, &he) || he.Backend != "loki" || he.Status != 400 || !strings.Contains(he.Body, "syntax error") {
		t.Fatalf("err = %v", err)
	}
	if err := (&Loki{URL: srv.URL}).Ready(context.Background()); !errors.As(err, &he) {
		t.Errorf("Ready err = %v", err)
	}
}

func TestParseLokiResponse(t *testing.T) {
	body := `{"status":"success","data":{"resultType":"streams","result":[
	  {"stream":{"hostname":"n1","rule":"R"},"values":[["1710891602391885178","line a"],["1710891601000000000","line b",{"meta":"x"}]]}]}}`
	es, err := parseLokiResponse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 2 || es[0].ns != 1710891602391885178 || es[0].line != "line a" || es[1].line != "line b" || es[0].stream != `{hostname="n1", rule="R"}` {
		t.Errorf("entries %+v", es)
	}
	for _, bad := range []string{
		`{"status":"error"}`,
		`{"status":"success","data":{"resultType":"matrix","result":[]}}`,
		`{"status":"success","data":{"resultType":"streams","result":[{"stream":{},"values":[["x","l"]]}]}}`,
		`{"status":"success","data":{"resultType":"streams","result":[{"stream":{},"values":[["1"]]}]}}`,
		`{"status":"success","data":{"resultType":"streams","result":[{"stream":{},"values":[["1",2]]}]}}`,
		`not json`,
	} {
		if _, err := parseLokiResponse([]byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

func TestLokiResponseBoundFake(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"status":"success","data":{"resultType":"streams","result":[]}}` + strings.Repeat(" ", 4096)))
	}))
	defer srv.Close()
	_, err := (&Loki{URL: srv.URL, MaxResponseBytes: 1024}).Related(context.Background(), Query{Host: "h", Around: time.Now()})
	if err == nil || !strings.Contains(err.Error(), "larger than 1024") {
		t.Fatalf("err = %v", err)
	}
}
