package web

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
)

// start handles the list page's form, POST /investigations: it passes the
// multipart request on to the JSON API's create handler (Options.Create),
// with the bearer token when one is configured (the browser proved it has
// the session), then sends the browser to the new investigation's page, or
// shows the API's error. The session cookie is SameSite=Strict, and a
// request whose Origin is another site is refused as well.
func (h *Handler) start(w http.ResponseWriter, r *http.Request) {
	if h.opt.Create == nil {
		h.fail(w, r, http.StatusNotFound, "This server cannot start investigations from the page.")
		return
	}
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			h.fail(w, r, http.StatusForbidden, "The form was posted from another site.")
			return
		}
	}
	req := r.Clone(r.Context())
	req.URL = &url.URL{Path: h.opt.APIPath}
	req.RequestURI = ""
	if h.opt.Token != "" {
		req.Header.Set("Authorization", "Bearer "+h.opt.Token)
	}
	req.Header.Set("Accept", "application/json")
	rec := &bufferedResponse{header: http.Header{}, status: http.StatusOK}
	h.opt.Create.ServeHTTP(rec, req)
	var reply struct {
		ID    string `json:"id"`
		Error string `json:"error"`
	}
	json.Unmarshal(rec.body.Bytes(), &reply)
	if rec.status/100 == 2 && reply.ID != "" {
		http.Redirect(w, r, "/investigations/"+url.PathEscape(reply.ID), http.StatusSeeOther)
		return
	}
	msg := strings.TrimSpace(reply.Error)
	if msg == "" {
		msg = "The investigation could not be started."
	}
	status := rec.status
	if status/100 == 2 {
		status = http.StatusBadGateway
	}
	h.fail(w, r, status, msg)
}

// bufferedResponse keeps the API's (small, JSON) answer for start.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
	wrote  bool
}

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) WriteHeader(status int) {
	if !b.wrote {
		b.status, b.wrote = status, true
	}
}

// maxReply bounds what start keeps of the API's answer.
const maxReply = 1 << 20

func (b *bufferedResponse) Write(p []byte) (int, error) {
	b.wrote = true
	if room := maxReply - b.body.Len(); room > 0 {
		b.body.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
