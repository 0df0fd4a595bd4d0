// Package web serves loupe's browsable investigations: server-rendered
// html/template pages over the findings store, with the stylesheet inline
// and no script.
//
//	GET  /investigations        every investigation, newest first, with its
//	                            progress and findings by priority
//	POST /investigations        the list's upload form: relayed to the JSON
//	                            API's create handler (Options.Create), then
//	                            a redirect to the new investigation
//	GET  /investigations/{id}   one investigation: the ATT&CK tactic strip,
//	                            a timeline of findings and events read (inline
//	                            SVG), then questions → conclusions → evidence,
//	                            filtered and paginated by the query parameters
//	                            tactic, priority, rule, host, from, to, q,
//	                            limit and cursor
//
// Evidence links back to where the events live: Grafana Explore for
// investigations over Loki or VictoriaLogs (Options.GrafanaURL), and the
// Timesketch sketch when an event's _index and _id are known
// (Options.TimesketchURL and a sketch id).
//
// What a page shows besides its findings (counts, timeline, the filters'
// rules and hosts) is cached for finished investigations, and the first
// view of a large one refreshes the store's planner statistics
// (store.Analyze) in the background.
//
// With a token configured, a page needs it once: as "Authorization: Bearer"
// or as ?token= in the address, which sets an HttpOnly, SameSite=Strict
// session cookie derived from the token (an HMAC, so the cookie is not the
// token) and redirects to the same address without it. The form's POST
// needs the header or the cookie, and a same-site Origin.
package web

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/loupe-sec/loupe/internal/finding"
	"github.com/loupe-sec/loupe/internal/store"
)

// Options configure the pages.
type Options struct {
	// Token, when set, is required as a bearer token, a ?token= parameter
	// (once) or the session cookie that parameter sets.
	Token string
	// GrafanaURL is the base address of Grafana (https://grafana.example);
	// with it, evidence of Loki and VictoriaLogs investigations links to
	// Grafana Explore.
	GrafanaURL string
	// GrafanaDatasources maps a source kind ("loki", "victorialogs") to the
	// uid of its Grafana data source; a kind not listed uses the kind
	// itself as the uid.
	GrafanaDatasources map[string]string
	// TimesketchURL and TimesketchSketch (a sketch id) make evidence with a
	// Timesketch _index and _id link to that event in the sketch. A
	// "sketch_id" in an investigation's source parameters takes precedence
	// over TimesketchSketch.
	TimesketchURL    string
	TimesketchSketch string
	// Create is the JSON API's handler that starts an investigation
	// (POST APIPath). With it, the list page's form posts to
	// /investigations, which relays to Create and redirects the browser to
	// the new investigation; without it the form is not shown.
	Create http.Handler
	// APIPath is where the investigations JSON API lives. Empty means
	// /api/investigations.
	APIPath string
	Version string
	Log     *slog.Logger
}

// EnvOptions reads the settings of the evidence links that loupe's
// configuration does not carry (yet) from the environment:
// LOUPE_TIMESKETCH_URL, LOUPE_TIMESKETCH_SKETCH (a sketch id) and
// LOUPE_GRAFANA_DATASOURCES ("loki=UID,victorialogs=UID"). The token and
// the Grafana address come from the configuration.
func EnvOptions(getenv func(string) string) Options {
	o := Options{
		TimesketchURL:    strings.TrimSpace(getenv("LOUPE_TIMESKETCH_URL")),
		TimesketchSketch: strings.TrimSpace(getenv("LOUPE_TIMESKETCH_SKETCH")),
	}
	for pair := range strings.SplitSeq(getenv("LOUPE_GRAFANA_DATASOURCES"), ",") {
		kind, uid, ok := strings.Cut(pair, "=")
		if kind, uid = strings.TrimSpace(kind), strings.TrimSpace(uid); ok && kind != "" && uid != "" {
			if o.GrafanaDatasources == nil {
				o.GrafanaDatasources = map[string]string{}
			}
			o.GrafanaDatasources[strings.ToLower(kind)] = uid
		}
	}
	return o
}

// Handler serves the pages. It is safe for concurrent use.
type Handler struct {
	st   *store.Store
	opt  Options
	mux  *http.ServeMux
	log  *slog.Logger
	sess []byte // expected session cookie value, when a token is set

	facets     versionCache[*facets]                    // of investigation pages
	priorities versionCache[map[finding.Priority]int64] // of list rows
	analyzedAt atomic.Int64                             // findings count that last triggered store.Analyze
	analyzing  atomic.Bool
}

//go:embed templates/*.html
var templateFiles embed.FS

var pages = template.Must(template.New("").Funcs(funcs).ParseFS(templateFiles, "templates/*.html"))

// sessionCookie names the cookie that carries the session.
const sessionCookie = "loupe_session"

// sessionTTL is how long a session cookie lasts.
const sessionTTL = 12 * time.Hour

// pageTimeout bounds the store queries of one page.
const pageTimeout = 10 * time.Second

// New returns the pages over st.
func New(st *store.Store, opt Options) *Handler {
	if opt.APIPath == "" {
		opt.APIPath = "/api/investigations"
	}
	opt.GrafanaURL = strings.TrimRight(opt.GrafanaURL, "/")
	opt.TimesketchURL = strings.TrimRight(opt.TimesketchURL, "/")
	h := &Handler{st: st, opt: opt, log: opt.Log, mux: http.NewServeMux()}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if opt.Token != "" {
		m := hmac.New(sha256.New, []byte(opt.Token))
		m.Write([]byte("loupe web session v1"))
		h.sess = []byte(hex.EncodeToString(m.Sum(nil)))
	}
	h.mux.HandleFunc("GET /investigations", h.list)
	h.mux.HandleFunc("GET /investigations/{$}", h.list)
	h.mux.HandleFunc("GET /investigations/{id}", h.investigation)
	h.mux.HandleFunc("POST /investigations", h.start)
	return h
}

// ServeHTTP checks the token and serves the pages under /investigations
// (mount it at "/investigations" and "/investigations/").
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.authorize(w, r) {
		return
	}
	h.mux.ServeHTTP(w, r)
}

// authorize reports whether r may see the pages. A right ?token= sets the
// session cookie and redirects to the address without the token (so it
// does not stay in the history or leak in a Referer); authorize then
// returns false because the response is written.
func (h *Handler) authorize(w http.ResponseWriter, r *http.Request) bool {
	if h.opt.Token == "" {
		return true
	}
	if got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok &&
		subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(h.opt.Token)) == 1 {
		return true
	}
	if c, err := r.Cookie(sessionCookie); err == nil && subtle.ConstantTimeCompare([]byte(c.Value), h.sess) == 1 {
		return true
	}
	q := r.URL.Query()
	if t := q.Get("token"); r.Method == http.MethodGet && t != "" && subtle.ConstantTimeCompare([]byte(t), []byte(h.opt.Token)) == 1 {
		http.SetCookie(w, &http.Cookie{
			Name: sessionCookie, Value: string(h.sess), Path: "/",
			MaxAge: int(sessionTTL.Seconds()), HttpOnly: true, SameSite: http.SameSiteStrictMode,
			Secure: r.TLS != nil,
		})
		q.Del("token")
		u := *r.URL
		u.RawQuery = q.Encode()
		w.Header().Set("Referrer-Policy", "no-referrer")
		http.Redirect(w, r, u.RequestURI(), http.StatusSeeOther)
		return false
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="loupe"`)
	h.render(w, r, http.StatusUnauthorized, "error", errorPage{
		Title:   "Token required",
		Message: "This loupe server needs its token. Open this page once with ?token=… added to the address (a session cookie then keeps you signed in), or send Authorization: Bearer.",
	})
	return false
}

// errorPage is the data of the error template.
type errorPage struct {
	Title, Message string
	Version        string
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	title := http.StatusText(status)
	h.render(w, r, status, "error", errorPage{Title: title, Message: msg})
}

// serverError logs err and shows a page that does not repeat it.
func (h *Handler) serverError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) {
		return // the browser went away
	}
	h.log.Error("web page failed", "path", r.URL.Path, "err", err)
	h.fail(w, r, http.StatusInternalServerError, "The page could not be built. The server log has the details.")
}

// render executes a template into a buffer, so a failure half-way never
// sends half a page, then writes it with headers that forbid scripts,
// remote assets and framing.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	if e, ok := data.(errorPage); ok {
		e.Version = h.opt.Version
		data = e
	}
	var b bytes.Buffer
	if err := pages.ExecuteTemplate(&b, name, data); err != nil {
		h.log.Error("render page", "template", name, "err", err)
		http.Error(w, "render failed", http.StatusInternalServerError)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(b.Bytes())
}
