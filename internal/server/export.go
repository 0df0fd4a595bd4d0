package server

import (
	"bufio"
	"cmp"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/loupe-sec/loupe/internal/attack"
	"github.com/loupe-sec/loupe/internal/finding"
	"github.com/loupe-sec/loupe/internal/report"
	"github.com/loupe-sec/loupe/internal/store"
	"github.com/loupe-sec/loupe/internal/version"
)

// exportPage is how many findings an export reads from the store at once.
const exportPage = 1000

// exportInvestigation: GET /api/investigations/{id}/export?format=, with
// the filters of the findings listing. Formats:
//
//   - ndjson (default): one finding per line;
//   - json: {"investigation": {...}, "findings": [...]};
//   - markdown: the report of loupe analyze --format markdown;
//   - html: a self-contained report (inline CSS, no script, no external
//     asset; every value escaped by html/template).
//
// ndjson, json and html are written page by page as they are read, so
// memory stays flat; markdown groups by tactic and so reads every finding
// first.
func (s *Server) exportInvestigation(w http.ResponseWriter, r *http.Request, iv *investigations) {
	q := r.URL.Query()
	format := q.Get("format")
	if format == "" {
		format = "ndjson"
	}
	var ctype, ext string
	switch format {
	case "ndjson":
		ctype, ext = "application/x-ndjson", "ndjson"
	case "json":
		ctype, ext = "application/json", "json"
	case "markdown", "md":
		format, ctype, ext = "markdown", "text/markdown; charset=utf-8", "md"
	case "html":
		ctype, ext = "text/html; charset=utf-8", "html"
	default:
		apiError(w, r, http.StatusBadRequest, fmt.Sprintf("format: %q is not ndjson, json, markdown or html", format))
		return
	}
	filter, err := findingFilter(q)
	if err != nil {
		apiError(w, r, http.StatusBadRequest, err.Error())
		return
	}
	ctx := r.Context()
	inv, err := iv.store.GetInvestigation(ctx, r.PathValue("id"))
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	// Read the first page before answering, so a store error is still a
	// proper status.
	pages := &findingPages{store: iv.store, id: inv.ID, filter: filter}
	if err := pages.next(ctx); err != nil {
		s.storeError(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="loupe-%s.%s"`, inv.ID, ext))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	if format == "html" {
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'")
	}
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 64<<10)
	switch format {
	case "ndjson":
		err = exportNDJSON(ctx, bw, pages)
	case "json":
		err = exportJSON(ctx, bw, iv.view(inv), pages)
	case "markdown":
		err = exportMarkdown(ctx, bw, inv, pages)
	case "html":
		err = exportHTML(ctx, bw, iv, inv, pages)
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		// The status is gone; the truncated body is all the client sees.
		s.logFrom(r).Warn("export ended early", "investigation", inv.ID, "format", format, "err", err)
	}
}

// findingPages walks the findings of an investigation page by page.
type findingPages struct {
	store  *store.Store
	id     string
	filter store.Filter
	page   []*store.Stored
	cursor string
	done   bool
}

// next loads the next page into p.page; at the end p.page is empty.
func (p *findingPages) next(ctx context.Context) error {
	if p.done {
		p.page = nil
		return nil
	}
	page, next, err := p.store.Findings(ctx, p.id, p.filter, store.Page{Limit: exportPage, Cursor: p.cursor})
	if err != nil {
		return err
	}
	p.page, p.cursor, p.done = page, next, next == ""
	return nil
}

// each calls fn for every finding, starting with the page already loaded.
func (p *findingPages) each(ctx context.Context, fn func(*store.Stored) error) error {
	for len(p.page) > 0 {
		for _, f := range p.page {
			if err := fn(f); err != nil {
				return err
			}
		}
		if err := p.next(ctx); err != nil {
			return err
		}
	}
	return nil
}

func exportNDJSON(ctx context.Context, w io.Writer, pages *findingPages) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return pages.each(ctx, func(f *store.Stored) error { return enc.Encode(viewFinding(f)) })
}

func exportJSON(ctx context.Context, w io.Writer, inv investigationView, pages *findingPages) error {
	head, err := json.Marshal(inv)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(w, "{\"investigation\": %s,\n\"findings\": [", head); err != nil {
		return err
	}
	first := true
	err = pages.each(ctx, func(f *store.Stored) error {
		b, err := json.Marshal(viewFinding(f))
		if err != nil {
			return err
		}
		sep := ",\n"
		if first {
			sep, first = "\n", false
		}
		_, err = io.WriteString(w, sep+string(b))
		return err
	})
	if err != nil {
		return err
	}
	_, err = io.WriteString(w, "\n]}\n")
	return err
}

func exportMarkdown(ctx context.Context, w io.Writer, inv store.Investigation, pages *findingPages) error {
	var all []*finding.Finding
	if err := pages.each(ctx, func(f *store.Stored) error { all = append(all, f.Finding); return nil }); err != nil {
		return err
	}
	sum := report.Summary{
		Inputs:   []string{fmt.Sprintf("investigation %s (%s, %s source)", inv.Name, inv.ID, inv.Source.Kind)},
		Events:   inv.Events,
		Findings: int64(len(all)),
		Started:  inv.Created,
	}
	if inv.Status.Final() {
		sum.Duration = inv.Updated.Sub(inv.Created)
	}
	return report.Markdown(w, all, sum)
}

//go:embed export.html
var exportHTMLText string

var exportTemplates = template.Must(template.New("export").Funcs(template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"num": func(n int64) string {
		s := fmt.Sprint(n)
		var b strings.Builder
		for i, c := range s {
			if i > 0 && (len(s)-i)%3 == 0 && s[0] != '-' {
				b.WriteByte(',')
			}
			b.WriteRune(c)
		}
		return b.String()
	},
	"web": func(link string) bool {
		return strings.HasPrefix(link, "https://") || strings.HasPrefix(link, "http://")
	},
	"attackURL": attack.URL,
	"llm":       report.LLMLine,
}).Parse(exportHTMLText))

type htmlHead struct {
	Inv        investigationView
	Tactics    []tacticCount
	Priorities []priorityCount
	Filtered   bool
	Version    string
	Generated  time.Time
}

type tacticCount struct {
	Name  string
	Count int64
}

type priorityCount struct {
	Name  string
	Count int64
}

func exportHTML(ctx context.Context, w io.Writer, iv *investigations, inv store.Investigation, pages *findingPages) error {
	byTactic, err := iv.store.CountByTactic(ctx, inv.ID)
	if err != nil {
		return err
	}
	byPrio, err := iv.store.CountByPriority(ctx, inv.ID)
	if err != nil {
		return err
	}
	head := htmlHead{Inv: iv.view(inv), Filtered: pages.filter != (store.Filter{}), Version: version.String(), Generated: time.Now()}
	for name, n := range byTactic {
		if name == "" {
			name = "Other"
		}
		head.Tactics = append(head.Tactics, tacticCount{name, n})
	}
	slices.SortFunc(head.Tactics, func(a, b tacticCount) int {
		return cmp.Or(cmp.Compare(attack.Order(a.Name), attack.Order(b.Name)), strings.Compare(a.Name, b.Name))
	})
	for p := finding.Critical; ; p-- {
		if n := byPrio[p]; n > 0 {
			head.Priorities = append(head.Priorities, priorityCount{p.String(), n})
		}
		if p == finding.Info {
			break
		}
	}
	if err := exportTemplates.ExecuteTemplate(w, "head", head); err != nil {
		return err
	}
	n := 0
	err = pages.each(ctx, func(f *store.Stored) error {
		n++
		return exportTemplates.ExecuteTemplate(w, "finding", viewFinding(f))
	})
	if err != nil {
		return err
	}
	return exportTemplates.ExecuteTemplate(w, "foot", struct {
		Count int
		Head  htmlHead
	}{n, head})
}
