package web

import (
	"context"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/loupe-sec/loupe/internal/attack"
	"github.com/loupe-sec/loupe/internal/finding"
	"github.com/loupe-sec/loupe/internal/report"
	"github.com/loupe-sec/loupe/internal/store"
)

var funcs = template.FuncMap{
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05")
	},
	// f1 formats an SVG coordinate: one decimal is plenty in a 1000-wide viewBox.
	"f1":  func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) },
	"num": func(n int64) string { return thousands(n) },
	"add": func(a, b float64) float64 { return a + b },
	"sub": func(a, b float64) float64 { return a - b },
	// llm says how a language model took part in a finding, or "".
	"llm": func(f *finding.Finding) string { return report.LLMLine(f) },
}

// thousands writes n with narrow no-break spaces between thousands.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteString("\u202f")
		}
		b.WriteRune(c)
	}
	return b.String()
}

// priorities from the most urgent down, for tables and legends.
var priorities = []finding.Priority{finding.Critical, finding.High, finding.Medium, finding.Low, finding.Info}

// prioCount is one priority's count, linked to the filter on it.
type prioCount struct {
	Name   string
	Count  int64
	Href   string
	Active bool
}

// listPage is the data of the investigations list.
type listPage struct {
	Version  string
	Rows     []listRow
	Next     string
	API      string
	CanStart bool // the form can start an investigation (Options.Create)
	Refresh  bool // something is still running: offer a reload
}

type listRow struct {
	store.Investigation
	Source sourceInfo
	Href   string
	Counts []prioCount // non-zero ones
}

// listSize is how many investigations one list page shows.
const listSize = 50

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	v := r.URL.Query()
	if len(v.Get("cursor")) > maxCursorLen {
		h.fail(w, r, http.StatusBadRequest, "The cursor parameter is too long.")
		return
	}
	invs, next, err := h.st.ListInvestigations(ctx, store.Page{Limit: listSize, Cursor: v.Get("cursor")})
	if errors.Is(err, store.ErrBadCursor) {
		h.fail(w, r, http.StatusBadRequest, "The cursor parameter is not one this server handed out.")
		return
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	d := listPage{Version: h.opt.Version, API: h.opt.APIPath, CanStart: h.opt.Create != nil}
	if next != "" {
		d.Next = "/investigations?" + url.Values{"cursor": {next}}.Encode()
	}
	for _, inv := range invs {
		row := listRow{Investigation: inv, Source: describeSource(inv.Source), Href: "/investigations/" + url.PathEscape(inv.ID)}
		counts, ok := h.priorities.get(inv)
		if !ok {
			if counts, err = h.st.CountByPriority(ctx, inv.ID); err != nil {
				h.serverError(w, r, err)
				return
			}
			h.priorities.put(inv, counts)
		}
		for _, p := range priorities {
			if n := counts[p]; n > 0 {
				row.Counts = append(row.Counts, prioCount{Name: p.String(), Count: n,
					Href: row.Href + "?" + url.Values{"priority": {p.String()}}.Encode()})
			}
		}
		if !inv.Status.Final() {
			d.Refresh = true
		}
		d.Rows = append(d.Rows, row)
	}
	h.render(w, r, http.StatusOK, "list", d)
}

// softHyphens break the tactic names too long for a cell of the strip.
var softHyphens = strings.NewReplacer("Reconnaissance", "Reconnais\u00adsance", "Development", "Develop\u00adment",
	"Exfiltration", "Exfiltra\u00adtion", "Escalation", "Escala\u00adtion")

func hyphenate(name string) string { return softHyphens.Replace(name) }

// invPage is the data of one investigation's page.
type invPage struct {
	Version    string
	Inv        store.Investigation
	Source     sourceInfo
	Self       string // the page's path
	Q          query
	Filtered   bool
	Tactics    []tacticCell
	Priorities []prioCount
	Total      int64 // findings in the investigation
	Chart      chart
	Findings   []findingView
	Rules      []store.RuleCount
	Hosts      []store.HostCount
	Next       string // address of the next page, "" on the last
	First      string // address of the first page, when this is not it
	Clear      string // address without any filter
}

type tacticCell struct {
	ID, Name string
	Short    string // Name with soft hyphens, for the narrow cells of the strip
	Count    int64
	Href     string
	Active   bool
}

type findingView struct {
	*store.Stored
	Techniques []techniqueLink
	Evidence   []evidenceView
	More       int64 // events behind the conclusion beyond the evidence shown
	RuleHref   string
	HostHref   string
}

type techniqueLink struct{ ID, Name, URL string }

type evidenceView struct {
	finding.Evidence
	Grafana    string
	Timesketch string
}

// How many rules and hosts the filter lists offer.
const facetLimit = 200

func (h *Handler) investigation(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	id := r.PathValue("id")
	if id == "" || len(id) > 128 {
		h.fail(w, r, http.StatusNotFound, "No such investigation.")
		return
	}
	q, err := parseQuery(r.URL.Query())
	if err != nil {
		h.fail(w, r, http.StatusBadRequest, "Bad filter: "+err.Error()+".")
		return
	}
	inv, err := h.st.GetInvestigation(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		h.fail(w, r, http.StatusNotFound, "No investigation "+id+" in this store.")
		return
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	self := "/investigations/" + url.PathEscape(inv.ID)
	href := func(override ...string) string {
		v := q.values(override...)
		if len(v) == 0 {
			return self
		}
		return self + "?" + v.Encode()
	}

	// The page of findings and, unless cached, the facets, side by side.
	var (
		found   []*store.Stored
		next    string
		pageErr error
		wg      sync.WaitGroup
	)
	wg.Go(func() {
		found, next, pageErr = h.st.Findings(ctx, inv.ID, q.filter, store.Page{Limit: q.Limit, Cursor: q.Cursor})
	})
	fc, ok := h.facets.get(inv)
	if !ok {
		fc, err = loadFacets(ctx, h.st, inv.ID)
		if err == nil {
			h.facets.put(inv, fc)
		}
	}
	wg.Wait()
	if errors.Is(pageErr, store.ErrBadCursor) {
		h.fail(w, r, http.StatusBadRequest, "The cursor parameter is not one this server handed out.")
		return
	}
	if err == nil {
		err = pageErr
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	byTactic, byPriority, tl, rules, hosts := fc.byTactic, fc.byPriority, fc.timeline, fc.rules, fc.hosts

	si := describeSource(inv.Source)
	d := invPage{Version: h.opt.Version, Inv: inv, Source: si, Self: self, Q: q, Filtered: q.filtered(),
		Rules: rules, Hosts: hosts, Clear: self}
	if q.Limit != defaultLimit {
		d.Clear = self + "?" + url.Values{"limit": {strconv.Itoa(q.Limit)}}.Encode()
	}

	// The tactic strip: every tactic in kill-chain order, then findings
	// whose tactic is not an ATT&CK one.
	var other int64
	counts := map[string]int64{}
	for name, n := range byTactic {
		if t, ok := attack.TacticByName(name); ok {
			counts[t.ID] += n
		} else {
			other += n
		}
	}
	for _, t := range attack.Tactics() {
		c := tacticCell{ID: t.ID, Name: t.Name, Short: hyphenate(t.Name), Count: counts[t.ID], Active: q.Tactic == t.ID}
		if c.Active {
			c.Href = href("tactic", "")
		} else {
			c.Href = href("tactic", t.ID)
		}
		d.Tactics = append(d.Tactics, c)
	}
	if other > 0 {
		d.Tactics = append(d.Tactics, tacticCell{Name: "Other", Short: "Other", Count: other})
	}
	for _, p := range priorities {
		d.Total += byPriority[p]
		c := prioCount{Name: p.String(), Count: byPriority[p], Active: q.Priority == p.String()}
		if c.Active {
			c.Href = href("priority", "")
		} else {
			c.Href = href("priority", p.String())
		}
		d.Priorities = append(d.Priorities, c)
	}
	h.maybeAnalyze(d.Total)
	d.Chart = buildChart(tl, q.filter.From, q.filter.To, func(from, to time.Time) string {
		return href("from", timeParam(from), "to", timeParam(to))
	})

	l := h.linksFor(inv, si)
	for _, f := range found {
		fv := findingView{Stored: f, More: f.Count - int64(len(f.Evidence)),
			RuleHref: href("rule", f.Rule.ID), HostHref: href("host", f.Host)}
		for _, t := range f.Techniques {
			fv.Techniques = append(fv.Techniques, techniqueLink{ID: t.ID, Name: t.Name, URL: attack.URL(t.ID)})
		}
		for _, e := range f.Evidence {
			fv.Evidence = append(fv.Evidence, evidenceView{Evidence: e,
				Grafana: l.grafanaURL(e, f.Finding), Timesketch: l.timesketchURL(e)})
		}
		d.Findings = append(d.Findings, fv)
	}
	if next != "" {
		d.Next = self + "?" + q.values("cursor", next).Encode()
	}
	if q.Cursor != "" {
		d.First = href()
	}
	h.render(w, r, http.StatusOK, "investigation", d)
}
