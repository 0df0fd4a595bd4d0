package web

import (
	"encoding/json"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/loupe-sec/loupe/internal/finding"
	"github.com/loupe-sec/loupe/internal/store"
)

// sourceInfo is what the pages need from an investigation's source.
type sourceInfo struct {
	Kind   string
	Label  string // description: the paths, a query, an index
	Short  string // Label with file names instead of whole paths, for the list
	Query  string // the Loki or VictoriaLogs query, when there is one
	Sketch string // Timesketch sketch id from the parameters
}

// grafanaKinds are the source kinds Grafana Explore can show, with the
// type of their Grafana data source plugin.
var grafanaKinds = map[string]string{
	"loki":         "loki",
	"victorialogs": "victoriametrics-logs-datasource",
}

// describeSource reads the parameters an investigation's source commonly
// has. Unknown parameters are ignored: they are never shown, since a
// parameter could hold something the analyst did not mean to display.
func describeSource(src store.Source) sourceInfo {
	si := sourceInfo{Kind: strings.ToLower(src.Kind)}
	if si.Kind == "vm" || si.Kind == "victoria-logs" {
		si.Kind = "victorialogs"
	}
	var p map[string]any
	if len(src.Params) > 0 && json.Unmarshal(src.Params, &p) != nil {
		p = nil
	}
	str := func(keys ...string) string {
		for _, k := range keys {
			switch v := p[k].(type) {
			case string:
				if v != "" {
					return v
				}
			case []any:
				var parts []string
				for _, e := range v {
					if s, ok := e.(string); ok {
						parts = append(parts, s)
					}
				}
				if len(parts) > 0 {
					return strings.Join(parts, ", ")
				}
			case float64:
				return strconv.FormatFloat(v, 'f', -1, 64)
			}
		}
		return ""
	}
	si.Query = str("query", "expr", "logsql")
	si.Sketch = str("sketch_id", "sketch")
	upload, _ := p["upload"].(bool)
	switch {
	case upload:
		si.Label = str("names")
		if si.Label == "" {
			si.Label = "uploaded file"
		} else {
			si.Label += " (uploaded)"
		}
	case si.Kind == "opensearch" || si.Kind == "elasticsearch":
		si.Label = str("index")
		if si.Query != "" {
			si.Label += " · " + si.Query
		}
	case si.Query != "":
		si.Label = si.Query
	default:
		si.Label = str("path", "paths")
		var names []string
		for _, p := range strings.Split(si.Label, ", ") {
			names = append(names, path.Base(p))
		}
		if si.Label != "" {
			si.Short = strings.Join(names, ", ")
		}
	}
	if si.Short == "" {
		si.Short = si.Label
	}
	return si
}

// links builds the addresses of evidence in the systems it came from.
type links struct {
	grafana, grafanaDS     string // base URL and data source uid
	grafanaType            string // data source plugin type
	query                  string
	timesketch, tsSketch   string
	fallbackFrom, fallback time.Time // range used for evidence without a time
}

// evidenceWindow is the Explore time range around one event.
const evidenceWindow = time.Minute

func (h *Handler) linksFor(inv store.Investigation, si sourceInfo) links {
	l := links{timesketch: h.opt.TimesketchURL, tsSketch: h.opt.TimesketchSketch, query: si.Query,
		fallbackFrom: inv.From, fallback: inv.To}
	if si.Sketch != "" {
		l.tsSketch = si.Sketch
	}
	if typ, ok := grafanaKinds[si.Kind]; ok && h.opt.GrafanaURL != "" && si.Query != "" {
		l.grafana, l.grafanaType = h.opt.GrafanaURL, typ
		l.grafanaDS = h.opt.GrafanaDatasources[si.Kind]
		if l.grafanaDS == "" {
			l.grafanaDS = si.Kind
		}
	}
	return l
}

// exploreState is the JSON of Grafana Explore's left= parameter.
type exploreState struct {
	Datasource string         `json:"datasource"`
	Queries    []exploreQuery `json:"queries"`
	Range      exploreRange   `json:"range"`
}

type exploreQuery struct {
	RefID      string            `json:"refId"`
	Datasource exploreDatasource `json:"datasource"`
	Expr       string            `json:"expr"`
}

type exploreDatasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type exploreRange struct {
	From string `json:"from"` // epoch milliseconds, as Grafana writes them
	To   string `json:"to"`
}

// grafanaURL is the Explore address showing the investigation's query in
// a window around the event, or "" when there is none to build.
func (l links) grafanaURL(e finding.Evidence, f *finding.Finding) string {
	if l.grafana == "" {
		return ""
	}
	from, to := e.Time.Add(-evidenceWindow), e.Time.Add(evidenceWindow)
	switch {
	case !e.Time.IsZero():
	case !f.First.IsZero():
		from, to = f.First.Add(-evidenceWindow), f.Last.Add(evidenceWindow)
	case !l.fallbackFrom.IsZero() && !l.fallback.IsZero():
		from, to = l.fallbackFrom, l.fallback
	default:
		return ""
	}
	st := exploreState{
		Datasource: l.grafanaDS,
		Queries:    []exploreQuery{{RefID: "A", Datasource: exploreDatasource{Type: l.grafanaType, UID: l.grafanaDS}, Expr: l.query}},
		Range:      exploreRange{From: strconv.FormatInt(from.UnixMilli(), 10), To: strconv.FormatInt(to.UnixMilli(), 10)},
	}
	b, err := json.Marshal(st)
	if err != nil {
		return ""
	}
	v := url.Values{}
	v.Set("orgId", "1")
	v.Set("left", string(b))
	return l.grafana + "/explore?" + v.Encode()
}

// timesketchURL is the sketch's explore view searching for the event by
// its _id, or "" when the event did not come from Timesketch or no sketch
// is configured.
func (l links) timesketchURL(e finding.Evidence) string {
	if l.timesketch == "" || l.tsSketch == "" || e.Index == "" || e.RecordID == "" {
		return ""
	}
	v := url.Values{}
	v.Set("q", `_id:"`+strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(e.RecordID)+`"`)
	return l.timesketch + "/sketch/" + url.PathEscape(l.tsSketch) + "/explore?" + v.Encode()
}
