package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/loupe-sec/loupe/internal/finding"
	"github.com/loupe-sec/loupe/internal/jobs"
	"github.com/loupe-sec/loupe/internal/source/origin"
	"github.com/loupe-sec/loupe/internal/store"
)

// The investigation API: background analysis jobs over a source, their
// progress, findings and exports. See registerInvestigations for the
// routes. It needs a store and a job manager (SetInvestigations); without
// them every route answers 503.

// Limits of the investigation API.
const (
	maxInvestigationJSON = 1 << 20  // a JSON create request
	maxFormValue         = 64 << 10 // one non-file multipart field
	cancelWait           = 5 * time.Second
	maxUploadFiles       = 1000 // file parts of one multipart upload
)

// investigations is what the API runs on.
type investigations struct {
	store   *store.Store
	jobs    *jobs.Manager
	dataDir string
	roots   []string   // directories "file" sources may read, symlinks resolved
	bases   []*url.URL // log stores other sources may read (source_urls, loki.url, victorialogs.url)
	maxLine int        // longest line of a file or upload (max_line_bytes)
}

// SetInvestigations enables the investigation API over st, running jobs
// with m. Uploads are spooled under dataDir; "file" sources sent as JSON
// may only name files under one of roots. Call it before serving.
func (s *Server) SetInvestigations(st *store.Store, m *jobs.Manager, dataDir string, roots []string) error {
	if st == nil || m == nil {
		return errors.New("server: investigations need a store and a job manager")
	}
	iv := &investigations{store: st, jobs: m, dataDir: dataDir, maxLine: s.cfg.MaxLineBytes}
	for _, b := range s.cfg.SourceBases() {
		u, err := url.Parse(b)
		if err != nil {
			return fmt.Errorf("server: source URL %s: %w", b, err)
		}
		iv.bases = append(iv.bases, u)
	}
	for _, r := range roots {
		abs, err := filepath.Abs(r)
		if err == nil {
			abs, err = filepath.EvalSymlinks(abs)
		}
		if err != nil {
			return fmt.Errorf("server: file root %s: %w", r, err)
		}
		iv.roots = append(iv.roots, abs)
	}
	s.invest = iv
	return nil
}

// registerInvestigations adds the routes:
//
//	POST /api/investigations                  start a job (JSON, multipart upload or raw NDJSON/gzip body) → 202
//	GET  /api/investigations                  list, newest first (?limit=&cursor=)
//	GET  /api/investigations/{id}             status and progress
//	POST /api/investigations/{id}/cancel      cancel a queued or running job
//	GET  /api/investigations/{id}/findings    findings, filtered and paginated
//	GET  /api/investigations/{id}/export      ?format=ndjson|json|markdown|html, streamed
func (s *Server) registerInvestigations() {
	s.mux.HandleFunc("POST /api/investigations", s.investigationsAPI(s.createInvestigation))
	s.mux.HandleFunc("GET /api/investigations", s.investigationsAPI(s.listInvestigations))
	s.mux.HandleFunc("GET /api/investigations/{id}", s.investigationsAPI(s.getInvestigation))
	s.mux.HandleFunc("POST /api/investigations/{id}/cancel", s.investigationsAPI(s.cancelInvestigation))
	s.mux.HandleFunc("GET /api/investigations/{id}/findings", s.investigationsAPI(s.investigationFindings))
	s.mux.HandleFunc("GET /api/investigations/{id}/export", s.investigationsAPI(s.exportInvestigation))
}

type investigationHandler func(w http.ResponseWriter, r *http.Request, iv *investigations)

// investigationsAPI checks the token and that the API is enabled.
func (s *Server) investigationsAPI(h investigationHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="loupe"`)
			apiError(w, r, http.StatusUnauthorized, "unauthorized")
			return
		}
		iv := s.invest
		if iv == nil {
			apiError(w, r, http.StatusServiceUnavailable, "investigations need a store: run loupe serve (it opens one)")
			return
		}
		h(w, r, iv)
	}
}

// apiError answers {"error": msg, "request_id": ...}.
func apiError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	body := map[string]string{"error": msg}
	if id := w.Header().Get("X-Request-Id"); id != "" {
		body["request_id"] = id
	} else if id := r.Header.Get("X-Request-Id"); id != "" && isToken(id) && len(id) <= 64 {
		body["request_id"] = id
	}
	writeJSON(w, status, body)
}

// storeError maps a store or manager error to a status.
func (s *Server) storeError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		apiError(w, r, http.StatusNotFound, "no such investigation")
	case errors.Is(err, store.ErrBadCursor):
		apiError(w, r, http.StatusBadRequest, "invalid cursor")
	case errors.Is(err, jobs.ErrInvalid):
		apiError(w, r, http.StatusBadRequest, err.Error())
	case errors.Is(err, jobs.ErrFinished):
		apiError(w, r, http.StatusConflict, err.Error())
	case errors.Is(err, jobs.ErrClosed):
		apiError(w, r, http.StatusServiceUnavailable, "server shutting down")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		apiError(w, r, http.StatusServiceUnavailable, "request cancelled")
	default:
		s.logFrom(r).Error("investigations", "err", err)
		apiError(w, r, http.StatusInternalServerError, "internal error")
	}
}

// badRequest is a client error with its message.
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

func badf(format string, a ...any) error { return &badRequest{fmt.Sprintf(format, a...)} }

// createRequest is the JSON body of POST /api/investigations.
type createRequest struct {
	Name    string          `json:"name"`
	Source  json.RawMessage `json:"source"`
	From    string          `json:"from"`
	To      string          `json:"to"`
	Options json.RawMessage `json:"options"`
}

// createInvestigation: POST /api/investigations.
//
//   - Content-Type application/json: {"name", "source": {"kind": ..., kind
//     parameters inline or under "params"}, "from", "to" (RFC 3339),
//     "options": {...}}. A "file" source names files under file_roots.
//   - multipart/form-data: fields name, from, to, options (JSON) and one
//     or more file parts, read in order as one stream.
//   - any other body (NDJSON, JSONL, syslog, gzip): the events themselves;
//     ?name=&from=&to=&options= in the query.
//
// Uploads are spooled under the data directory (at most max_upload_bytes,
// else 413) and analysed as a "file" source; the spooled files are removed
// when the investigation ends. 202 with the investigation and its Location.
func (s *Server) createInvestigation(w http.ResponseWriter, r *http.Request, iv *investigations) {
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil && r.Header.Get("Content-Type") != "" {
		apiError(w, r, http.StatusUnsupportedMediaType, "unreadable Content-Type")
		return
	}
	var (
		inv     store.Investigation
		spooled []string
	)
	switch ct {
	case "application/json":
		inv, err = iv.fromJSON(w, r)
	case "multipart/form-data":
		inv, spooled, err = iv.fromMultipart(r, s.cfg.MaxUploadBytes)
	default:
		inv, spooled, err = iv.fromBody(r, s.cfg.MaxUploadBytes)
	}
	if err == nil {
		inv, err = iv.jobs.Start(r.Context(), inv)
	}
	if err != nil {
		for _, p := range spooled {
			os.Remove(p)
		}
		var (
			bad    *badRequest
			tooBig *http.MaxBytesError
			enc    *encodingError
		)
		switch {
		case errors.As(err, &bad):
			apiError(w, r, http.StatusBadRequest, bad.msg)
		case errors.As(err, &tooBig):
			apiError(w, r, http.StatusRequestEntityTooLarge, "request body too large: the limit is "+strconv.FormatInt(tooBig.Limit, 10)+" bytes")
		case errors.Is(err, jobs.ErrTooLarge):
			apiError(w, r, http.StatusRequestEntityTooLarge, "upload too large: the limit is "+strconv.Itoa(s.cfg.MaxUploadBytes)+" bytes (max_upload_bytes)")
		case errors.As(err, &enc):
			apiError(w, r, http.StatusUnsupportedMediaType, enc.Error())
		default:
			s.storeError(w, r, err)
		}
		return
	}
	s.logFrom(r).Info("investigation started", "investigation", inv.ID, "source", inv.Source.Kind, "uploaded_files", len(spooled))
	w.Header().Set("Location", "/api/investigations/"+inv.ID)
	writeJSON(w, http.StatusAccepted, iv.view(inv))
}

func (iv *investigations) fromJSON(w http.ResponseWriter, r *http.Request) (store.Investigation, error) {
	var req createRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxInvestigationJSON))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return store.Investigation{}, err
		}
		return store.Investigation{}, badf("request body: %v", err)
	}
	if dec.More() {
		return store.Investigation{}, badf("request body: one JSON object expected")
	}
	src, err := parseSource(req.Source)
	if err != nil {
		return store.Investigation{}, err
	}
	if src.Kind == jobs.KindFile || src.Kind == origin.KindEVTX { // evtx: an alias of file
		if src, err = iv.checkFileSource(src); err != nil {
			return store.Investigation{}, err
		}
	} else if err := iv.checkStoreURL(src); err != nil {
		return store.Investigation{}, err
	}
	return iv.investigation(req.Name, src, req.From, req.To, req.Options)
}

// investigation assembles a create request's fields.
func (iv *investigations) investigation(name string, src store.Source, from, to string, options json.RawMessage) (store.Investigation, error) {
	inv := store.Investigation{Name: strings.TrimSpace(name), Source: src, Options: options}
	if len(inv.Name) > 500 {
		return inv, badf("name is longer than 500 bytes")
	}
	var err error
	if inv.From, err = parseTime("from", from); err != nil {
		return inv, err
	}
	if inv.To, err = parseTime("to", to); err != nil {
		return inv, err
	}
	if len(bytes.TrimSpace(options)) > 0 && !bytes.HasPrefix(bytes.TrimSpace(options), []byte("{")) && string(bytes.TrimSpace(options)) != "null" {
		return inv, badf("options must be a JSON object")
	}
	if _, err := jobs.ParseOptions(options); err != nil { // before any upload is read
		return inv, badf("%v", err)
	}
	if inv.Name == "" {
		inv.Name = defaultName(src)
	}
	return inv, nil
}

func defaultName(src store.Source) string {
	if src.Kind == jobs.KindFile {
		if p, err := jobs.ParseFileParams(src.Params); err == nil {
			names := p.Names
			if len(names) == 0 {
				for _, f := range p.All() {
					names = append(names, filepath.Base(f))
				}
			}
			return strings.Join(names, ", ")
		}
	}
	return src.Kind
}

func parseTime(field, v string) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return t, badf("%s: %q is not an RFC 3339 time (2024-03-19T23:00:00Z)", field, v)
	}
	return t, nil
}

// parseSource reads {"kind": K, "params": {...}} or {"kind": K, ...params}.
func parseSource(raw json.RawMessage) (store.Source, error) {
	var src store.Source
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return src, badf("source is required: {\"kind\": \"file\", \"path\": ...} or an upload")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return src, badf("source must be a JSON object")
	}
	if err := json.Unmarshal(fields["kind"], &src.Kind); err != nil || strings.TrimSpace(src.Kind) == "" {
		return src, badf("source.kind is required (a string)")
	}
	delete(fields, "kind")
	if p, ok := fields["params"]; ok && len(fields) == 1 {
		src.Params = p
		return src, nil
	}
	if len(fields) > 0 {
		b, err := json.Marshal(fields)
		if err != nil {
			return src, badf("source: %v", err)
		}
		src.Params = b
	}
	return src, nil
}

// checkStoreURL allows a log store source only at a URL under one of the
// configured bases, so an API client cannot make the server connect to
// any host it can reach.
func (iv *investigations) checkStoreURL(src store.Source) error {
	spec, err := jobs.Spec(src)
	if err != nil || spec.URL == "" {
		return nil // not a valid log store source: the source check that follows says why
	}
	u, err := url.Parse(spec.URL)
	if err != nil {
		return nil
	}
	p := strings.TrimSuffix(path.Clean("/"+u.Path), "/") + "/" // no ../ out of a base
	for _, b := range iv.bases {
		if strings.EqualFold(u.Scheme, b.Scheme) && strings.EqualFold(u.Host, b.Host) &&
			strings.HasPrefix(p, strings.TrimSuffix(path.Clean("/"+b.Path), "/")+"/") {
			return nil
		}
	}
	return badf("source url %s is not an allowed log store: add its base URL to source_urls (LOUPE_SOURCE_URLS), or set loki.url / victorialogs.url", u.Redacted())
}

// checkFileSource allows a JSON "file" source only under the file roots,
// and stores the resolved paths (no symlink can be swapped in later).
func (iv *investigations) checkFileSource(src store.Source) (store.Source, error) {
	p, err := jobs.ParseFileParams(src.Params)
	if err != nil {
		return src, badf("%v", err)
	}
	if p.Upload || len(p.Names) > 0 {
		return src, badf("file source: upload and names are set by the server; send the file itself to upload it")
	}
	if len(iv.roots) == 0 {
		return src, badf("file sources are disabled over the API: set file_roots (LOUPE_FILE_ROOTS) or upload the file")
	}
	var resolved []string
	for _, path := range p.All() {
		if !filepath.IsAbs(path) {
			return src, badf("file source: %q is not an absolute path", path)
		}
		real, err := filepath.EvalSymlinks(filepath.Clean(path))
		if err != nil {
			return src, badf("file source: %q does not exist", path)
		}
		if !iv.underRoot(real) {
			return src, badf("file source: %q is outside the allowed file_roots", path)
		}
		resolved = append(resolved, real)
	}
	maxLine := iv.maxLine
	if p.MaxLineBytes > 0 && p.MaxLineBytes < maxLine {
		maxLine = p.MaxLineBytes // lower than the server's limit: allowed
	}
	b, _ := json.Marshal(jobs.FileParams{Paths: resolved, MaxLineBytes: maxLine})
	return store.Source{Kind: jobs.KindFile, Params: b}, nil
}

func (iv *investigations) underRoot(path string) bool {
	for _, root := range iv.roots {
		rel, err := filepath.Rel(root, path)
		if err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

// encodingError is an unsupported Content-Encoding (415).
type encodingError struct{ enc string }

func (e *encodingError) Error() string {
	return fmt.Sprintf("unsupported Content-Encoding %q (send gzip or nothing)", e.enc)
}

func checkEncoding(r *http.Request) error {
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity", "gzip", "x-gzip":
		return nil // gzip is kept as sent; the reader recognises it
	default:
		return &encodingError{enc}
	}
}

// fromBody spools a raw body of events.
func (iv *investigations) fromBody(r *http.Request, limit int) (store.Investigation, []string, error) {
	if err := checkEncoding(r); err != nil {
		return store.Investigation{}, nil, err
	}
	q := r.URL.Query()
	// Check the small fields before reading a large body.
	if _, err := iv.investigation(q.Get("name"), store.Source{}, q.Get("from"), q.Get("to"), json.RawMessage(q.Get("options"))); err != nil {
		return store.Investigation{}, nil, err
	}
	path, err := jobs.Spool(iv.dataDir, r.Body, int64(limit))
	if err != nil {
		return store.Investigation{}, nil, err
	}
	name := q.Get("filename")
	if name == "" {
		name = "upload"
	}
	src := iv.uploadSource([]string{path}, []string{name})
	inv, err := iv.investigation(q.Get("name"), src, q.Get("from"), q.Get("to"), json.RawMessage(q.Get("options")))
	return inv, []string{path}, err
}

// fromMultipart spools the file parts of a form, in order.
func (iv *investigations) fromMultipart(r *http.Request, limit int) (store.Investigation, []string, error) {
	if err := checkEncoding(r); err != nil {
		return store.Investigation{}, nil, err
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return store.Investigation{}, nil, badf("multipart body: %v", err)
	}
	var (
		fields       = map[string]string{}
		paths, names []string
		left         = int64(limit)
	)
	fail := func(err error) (store.Investigation, []string, error) { return store.Investigation{}, paths, err }
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fail(badf("multipart body: %v", err))
		}
		if part.FileName() == "" {
			switch name := part.FormName(); name {
			case "name", "from", "to", "options":
				b, err := io.ReadAll(io.LimitReader(part, maxFormValue+1))
				if err != nil {
					return fail(badf("multipart field %s: %v", name, err))
				}
				if len(b) > maxFormValue {
					return fail(badf("multipart field %s is longer than %d bytes", name, maxFormValue))
				}
				fields[name] = string(b)
			default:
				return fail(badf("unknown multipart field %q (want name, from, to, options and file parts)", name))
			}
			continue
		}
		if len(paths) == maxUploadFiles {
			return fail(badf("more than %d files in one upload", maxUploadFiles))
		}
		path, err := jobs.Spool(iv.dataDir, part, left)
		if err != nil {
			return fail(err)
		}
		paths = append(paths, path)
		names = append(names, filepath.Base(part.FileName()))
		if fi, err := os.Stat(path); err == nil {
			left -= fi.Size()
		}
	}
	if len(paths) == 0 {
		return fail(badf("multipart body without a file part"))
	}
	inv, err := iv.investigation(fields["name"], iv.uploadSource(paths, names), fields["from"], fields["to"], json.RawMessage(fields["options"]))
	return inv, paths, err
}

func (iv *investigations) uploadSource(paths, names []string) store.Source {
	b, _ := json.Marshal(jobs.FileParams{Paths: paths, Upload: true, Names: names, MaxLineBytes: iv.maxLine})
	return store.Source{Kind: jobs.KindFile, Params: b}
}

// investigationView is the JSON form of an investigation.
type investigationView struct {
	ID       string          `json:"id"`
	Name     string          `json:"name"`
	Status   store.Status    `json:"status"`
	Error    string          `json:"error,omitempty"`
	Source   sourceView      `json:"source"`
	From     time.Time       `json:"from,omitzero"`
	To       time.Time       `json:"to,omitzero"`
	Options  json.RawMessage `json:"options"`
	Progress progressView    `json:"progress"`
	Created  time.Time       `json:"created"`
	Updated  time.Time       `json:"updated"`
	Links    linksView       `json:"links"`
}

type sourceView struct {
	Kind   string          `json:"kind"`
	Params json.RawMessage `json:"params,omitempty"`
}

type progressView struct {
	Events          int64   `json:"events"`             // source events read
	Findings        int64   `json:"findings"`           // findings stored
	EventsPerSecond float64 `json:"events_per_second"`  // live rate of this run, else the average
	BadLines        int64   `json:"bad_lines,omitzero"` // live runs only
	Live            bool    `json:"live"`               // being run by this server now
	Resumed         bool    `json:"resumed,omitzero"`   // resumed after a crash or restart
}

type linksView struct {
	Self     string `json:"self"`
	Findings string `json:"findings"`
	Export   string `json:"export"`
	Cancel   string `json:"cancel,omitempty"`
}

func (iv *investigations) view(inv store.Investigation) investigationView {
	base := "/api/investigations/" + url.PathEscape(inv.ID)
	v := investigationView{
		ID: inv.ID, Name: inv.Name, Status: inv.Status, Error: inv.Error,
		Source: sourceView{Kind: inv.Source.Kind, Params: inv.Source.Params},
		From:   inv.From, To: inv.To, Options: inv.Options, Created: inv.Created, Updated: inv.Updated,
		Progress: progressView{Events: inv.Events, Findings: inv.Findings},
		Links:    linksView{Self: base, Findings: base + "/findings", Export: base + "/export"},
	}
	if len(v.Options) == 0 {
		v.Options = json.RawMessage("{}")
	}
	if inv.Source.Kind == jobs.KindFile {
		// Uploads show their names, not where they are spooled.
		if p, err := jobs.ParseFileParams(inv.Source.Params); err == nil && p.Upload {
			b, _ := json.Marshal(map[string]any{"upload": true, "names": p.Names})
			v.Source.Params = b
		}
	} else {
		v.Source.Params = withoutPassword(v.Source.Params)
	}
	if !inv.Status.Final() {
		v.Links.Cancel = base + "/cancel"
	}
	if p, ok := iv.jobs.Progress(inv.ID); ok {
		v.Progress.Live = true
		v.Progress.Resumed = p.Resumed
		v.Progress.Events = max(v.Progress.Events, p.Read)
		v.Progress.EventsPerSecond = p.EventsPerSecond
		v.Progress.BadLines = p.BadLines
	} else if inv.Status.Final() {
		if d := inv.Updated.Sub(inv.Created).Seconds(); d > 0 {
			v.Progress.EventsPerSecond = float64(inv.Events) / d
		}
	}
	v.Progress.EventsPerSecond = float64(int64(v.Progress.EventsPerSecond*10)) / 10
	return v
}

func (s *Server) getInvestigation(w http.ResponseWriter, r *http.Request, iv *investigations) {
	inv, err := iv.store.GetInvestigation(r.Context(), r.PathValue("id"))
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, iv.view(inv))
}

// pageParams reads ?limit= (1..1000, default 100) and ?cursor=.
func pageParams(q url.Values) (store.Page, error) {
	p := store.Page{Cursor: q.Get("cursor")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return p, badf("limit: %q is not a number from 1 to 1000", v)
		}
		p.Limit = n
	}
	return p, nil
}

func (s *Server) listInvestigations(w http.ResponseWriter, r *http.Request, iv *investigations) {
	page, err := pageParams(r.URL.Query())
	if err != nil {
		apiError(w, r, http.StatusBadRequest, err.Error())
		return
	}
	list, next, err := iv.store.ListInvestigations(r.Context(), page)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	out := struct {
		Investigations []investigationView `json:"investigations"`
		NextCursor     string              `json:"next_cursor,omitempty"`
	}{Investigations: []investigationView{}, NextCursor: next}
	for _, inv := range list {
		out.Investigations = append(out.Investigations, iv.view(inv))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) cancelInvestigation(w http.ResponseWriter, r *http.Request, iv *investigations) {
	id := r.PathValue("id")
	ctx, cancel := context.WithTimeout(r.Context(), cancelWait)
	defer cancel()
	err := iv.jobs.Cancel(ctx, id)
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		s.storeError(w, r, err)
		return
	}
	inv, gerr := iv.store.GetInvestigation(r.Context(), id)
	if gerr != nil {
		s.storeError(w, r, gerr)
		return
	}
	s.logFrom(r).Info("investigation cancelled", "investigation", id, "status", inv.Status)
	status := http.StatusOK
	if err != nil {
		status = http.StatusAccepted // still winding down
	}
	writeJSON(w, status, iv.view(inv))
}

// findingFilter reads the filter parameters: tactic, priority (minimum),
// rule, host, from, to (RFC 3339) and q (text).
func findingFilter(q url.Values) (store.Filter, error) {
	f := store.Filter{Tactic: q.Get("tactic"), RuleID: q.Get("rule"), Host: q.Get("host"), Text: q.Get("q")}
	if v := q.Get("priority"); v != "" {
		p, err := finding.ParsePriority(v)
		if err != nil {
			return f, badf("priority: %v", err)
		}
		f.Priority = p
	}
	var err error
	if f.From, err = parseTime("from", q.Get("from")); err != nil {
		return f, err
	}
	if f.To, err = parseTime("to", q.Get("to")); err != nil {
		return f, err
	}
	if len(f.Text) > 200 {
		return f, badf("q is longer than 200 bytes")
	}
	return f, nil
}

// findingView is a finding with its provenance, when a model wrote it.
type findingView struct {
	*finding.Finding
	Provenance *provenanceView `json:"provenance,omitempty"`
}

type provenanceView struct {
	Provider      string `json:"provider"`
	Model         string `json:"model,omitempty"`
	PromptVersion string `json:"prompt_version,omitempty"`
}

func viewFinding(f *store.Stored) findingView {
	v := findingView{Finding: f.Finding}
	if f.Provenance.Provider != "" {
		v.Provenance = &provenanceView{f.Provenance.Provider, f.Provenance.Model, f.Provenance.PromptVersion}
	}
	if v.Evidence == nil {
		v.Evidence = []finding.Evidence{}
	}
	return v
}

func (s *Server) investigationFindings(w http.ResponseWriter, r *http.Request, iv *investigations) {
	id := r.PathValue("id")
	q := r.URL.Query()
	filter, err := findingFilter(q)
	if err == nil {
		var page store.Page
		if page, err = pageParams(q); err == nil {
			if _, err = iv.store.GetInvestigation(r.Context(), id); err != nil {
				s.storeError(w, r, err)
				return
			}
			var (
				list []*store.Stored
				next string
			)
			if list, next, err = iv.store.Findings(r.Context(), id, filter, page); err == nil {
				out := struct {
					Findings   []findingView `json:"findings"`
					NextCursor string        `json:"next_cursor,omitempty"`
					Next       string        `json:"next,omitempty"`
				}{Findings: []findingView{}, NextCursor: next}
				for _, f := range list {
					out.Findings = append(out.Findings, viewFinding(f))
				}
				if next != "" {
					nq := url.Values{}
					for k, v := range q {
						nq[k] = v
					}
					nq.Set("cursor", next)
					out.Next = "/api/investigations/" + url.PathEscape(id) + "/findings?" + nq.Encode()
				}
				writeJSON(w, http.StatusOK, out)
				return
			}
		}
	}
	var bad *badRequest
	if errors.As(err, &bad) {
		apiError(w, r, http.StatusBadRequest, bad.msg)
		return
	}
	s.storeError(w, r, err)
}

// withoutPassword masks a log store password in source parameters.
func withoutPassword(params json.RawMessage) json.RawMessage {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(params, &fields); err != nil {
		return nil // not an object: show nothing rather than a secret
	}
	if _, ok := fields["password"]; !ok {
		return params
	}
	fields["password"] = json.RawMessage(`"[redacted]"`)
	b, _ := json.Marshal(fields)
	return b
}
