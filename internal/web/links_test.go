package web

import (
	"context"
	"encoding/json"
	"html"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/loupe-sec/loupe/internal/finding"
	"github.com/loupe-sec/loupe/internal/store"
)

// evidenceLinks returns the hrefs of the evidence table's "Open in" cells.
func evidenceLinks(body, label string) []string {
	re := regexp.MustCompile(`<a href="([^"]+)" target="_blank" rel="noopener noreferrer">` + label + `</a>`)
	var out []string
	for _, m := range re.FindAllStringSubmatch(body, -1) {
		out = append(out, html.UnescapeString(m[1]))
	}
	return out
}

func TestGrafanaExploreLinks(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	const query = `{job="falco", priority=~"Critical|Error"} |= "shell" & more`
	for _, tc := range []struct{ kind, dsType, uid string }{
		{"loki", "loki", "P8E80F9AEF21F6940"},
		{"victorialogs", "victoriametrics-logs-datasource", "victorialogs"}, // no uid configured: the kind
	} {
		params, _ := json.Marshal(map[string]string{"query": query})
		inv := newInv(t, st, tc.kind, store.Source{Kind: tc.kind, Params: params})
		f := mkFinding("g1", "Execution", finding.High, "shell", "node-1", 3)
		if err := st.AddFindings(ctx, inv.ID, []*finding.Finding{f}); err != nil {
			t.Fatal(err)
		}
		h := New(st, Options{GrafanaURL: "https://grafana.example/sub/", GrafanaDatasources: map[string]string{"loki": "P8E80F9AEF21F6940"}})
		_, body := get(t, h, "/investigations/"+inv.ID)
		links := evidenceLinks(body, "Grafana Explore")
		if len(links) != 1 {
			t.Fatalf("%s: %d Grafana links, want 1", tc.kind, len(links))
		}
		u, err := url.Parse(links[0])
		if err != nil {
			t.Fatal(err)
		}
		if u.Scheme != "https" || u.Host != "grafana.example" || u.Path != "/sub/explore" || u.Query().Get("orgId") != "1" {
			t.Errorf("%s: link %s", tc.kind, links[0])
		}
		// The raw query string must carry left= percent-encoded: no raw
		// braces, quotes, spaces or ampersands of the JSON or the query.
		rawLeft := strings.SplitN(strings.SplitN(u.RawQuery, "left=", 2)[1], "&", 2)[0]
		if strings.ContainsAny(rawLeft, `{}" &|=:,[]`) {
			t.Errorf("%s: left= is not fully encoded: %s", tc.kind, rawLeft)
		}
		var st exploreState
		if err := json.Unmarshal([]byte(u.Query().Get("left")), &st); err != nil {
			t.Fatalf("%s: left is not JSON: %v", tc.kind, err)
		}
		if st.Datasource != tc.uid || len(st.Queries) != 1 || st.Queries[0].Expr != query ||
			st.Queries[0].Datasource.Type != tc.dsType || st.Queries[0].Datasource.UID != tc.uid || st.Queries[0].RefID != "A" {
			t.Errorf("%s: explore state %+v", tc.kind, st)
		}
		from, _ := strconv.ParseInt(st.Range.From, 10, 64)
		to, _ := strconv.ParseInt(st.Range.To, 10, 64)
		ev := f.Evidence[0].Time
		if from != ev.Add(-time.Minute).UnixMilli() || to != ev.Add(time.Minute).UnixMilli() {
			t.Errorf("%s: range %s–%s, want a minute around %v", tc.kind, st.Range.From, st.Range.To, ev)
		}
	}
}

func TestNoLinksWithoutConfiguration(t *testing.T) {
	st := openStore(t)
	params, _ := json.Marshal(map[string]string{"query": `{job="x"}`})
	inv := newInv(t, st, "loki", store.Source{Kind: "loki", Params: params})
	f := mkFinding("n1", "Execution", finding.High, "r", "h", 1)
	f.Evidence[0].Index = "ts-index" // from Timesketch, but no Timesketch configured
	if err := st.AddFindings(context.Background(), inv.ID, []*finding.Finding{f}); err != nil {
		t.Fatal(err)
	}
	_, body := get(t, New(st, Options{}), "/investigations/"+inv.ID)
	if len(evidenceLinks(body, "Grafana Explore")) != 0 || len(evidenceLinks(body, "Timesketch")) != 0 {
		t.Error("links built without a Grafana or Timesketch address")
	}
	// A file source has no Grafana link even with Grafana configured.
	inv2 := newInv(t, st, "file", fileSource("/x.jsonl"))
	if err := st.AddFindings(context.Background(), inv2.ID, []*finding.Finding{mkFinding("n2", "Execution", finding.High, "r", "h", 1)}); err != nil {
		t.Fatal(err)
	}
	_, body = get(t, New(st, Options{GrafanaURL: "https://g.example"}), "/investigations/"+inv2.ID)
	if len(evidenceLinks(body, "Grafana Explore")) != 0 {
		t.Error("Grafana link for a file source")
	}
}

func TestTimesketchLinks(t *testing.T) {
	st := openStore(t)
	params, _ := json.Marshal(map[string]string{"path": "/exports/sketch.jsonl", "sketch_id": "42"})
	inv := newInv(t, st, "ts", store.Source{Kind: "file", Params: params})
	f := mkFinding("t1", "Execution", finding.High, "r", "h", 1)
	f.Evidence = []finding.Evidence{
		{RecordID: `Ab1"x\y`, Index: "3f2a", Time: t0},
		{RecordID: "no-index", Time: t0}, // not from Timesketch: no link
	}
	if err := st.AddFindings(context.Background(), inv.ID, []*finding.Finding{f}); err != nil {
		t.Fatal(err)
	}
	h := New(st, Options{TimesketchURL: "https://ts.example/", TimesketchSketch: "7"})
	_, body := get(t, h, "/investigations/"+inv.ID)
	links := evidenceLinks(body, "Timesketch")
	if len(links) != 1 {
		t.Fatalf("%d Timesketch links, want 1: %v", len(links), links)
	}
	u, err := url.Parse(links[0])
	if err != nil {
		t.Fatal(err)
	}
	// The sketch id of the source wins over the configured one.
	if u.Host != "ts.example" || u.Path != "/sketch/42/explore" || u.Query().Get("q") != `_id:"Ab1\"x\\y"` {
		t.Errorf("link %s (q=%s)", links[0], u.Query().Get("q"))
	}
}
