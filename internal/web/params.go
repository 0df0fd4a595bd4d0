package web

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/loupe-sec/loupe/internal/attack"
	"github.com/loupe-sec/loupe/internal/finding"
	"github.com/loupe-sec/loupe/internal/store"
)

// Limits of the query parameters.
const (
	maxParamLen  = 256 // rule, host, text
	maxCursorLen = 2048
	defaultLimit = 50
	maxLimit     = 500
)

// query is the investigation page's parsed query parameters: what the
// form shows and the filter the store applies.
type query struct {
	Tactic   string // tactic id (TA0003), or ""
	Priority string // minimum priority name, or ""
	Rule     string
	Host     string
	From, To string // as given (shown back in the form)
	Text     string
	Limit    int
	Cursor   string

	filter store.Filter
}

// timeLayouts are the accepted forms of from and to, read as UTC unless
// they carry an offset, with the precision each one has: a "to" covers the
// whole second, minute or day it names. The minute form is what
// <input type="datetime-local"> sends.
var timeLayouts = []struct {
	layout string
	grain  time.Duration
}{
	{time.RFC3339Nano, 0},
	{"2006-01-02T15:04:05", time.Second},
	{"2006-01-02 15:04:05", time.Second},
	{"2006-01-02T15:04", time.Minute},
	{"2006-01-02 15:04", time.Minute},
	{"2006-01-02", 24 * time.Hour},
}

// parseTime reads a time; end asks for the last instant it names.
func parseTime(s string, end bool) (time.Time, error) {
	for _, l := range timeLayouts {
		if t, err := time.Parse(l.layout, s); err == nil {
			if end && l.grain > 0 {
				t = t.Add(l.grain - time.Nanosecond)
			}
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time (want e.g. 2024-03-19T23:25, 2024-03-19 or RFC 3339)", s)
}

// timeParam formats a time for from= and to= at second precision.
func timeParam(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05") }

// parseQuery reads and checks the parameters; its error is for the user.
func parseQuery(v url.Values) (query, error) {
	var q query
	for _, k := range []string{"tactic", "priority", "rule", "host", "from", "to", "q", "limit", "cursor"} {
		if len(v[k]) > 1 {
			return q, fmt.Errorf("parameter %s is given %d times", k, len(v[k]))
		}
		s := v.Get(k)
		max := maxParamLen
		if k == "cursor" {
			max = maxCursorLen
		}
		if len(s) > max {
			return q, fmt.Errorf("parameter %s is longer than %d bytes", k, max)
		}
		if !utf8.ValidString(s) {
			return q, fmt.Errorf("parameter %s is not valid UTF-8", k)
		}
	}
	if s := strings.TrimSpace(v.Get("tactic")); s != "" {
		t, ok := attack.TacticByName(s)
		if !ok {
			return q, fmt.Errorf("unknown ATT&CK tactic %q", s)
		}
		q.Tactic = t.ID
		q.filter.Tactic = t.ID
	}
	if s := strings.TrimSpace(v.Get("priority")); s != "" {
		p, err := finding.ParsePriority(s)
		if err != nil {
			return q, err
		}
		q.Priority = p.String()
		q.filter.Priority = p
	}
	q.Rule = strings.TrimSpace(v.Get("rule"))
	q.filter.RuleID = q.Rule
	q.Host = strings.TrimSpace(v.Get("host"))
	q.filter.Host = q.Host
	q.Text = strings.TrimSpace(v.Get("q"))
	q.filter.Text = q.Text
	if s := strings.TrimSpace(v.Get("from")); s != "" {
		t, err := parseTime(s, false)
		if err != nil {
			return q, fmt.Errorf("from: %w", err)
		}
		q.From, q.filter.From = s, t
	}
	if s := strings.TrimSpace(v.Get("to")); s != "" {
		t, err := parseTime(s, true)
		if err != nil {
			return q, fmt.Errorf("to: %w", err)
		}
		q.To, q.filter.To = s, t
	}
	if !q.filter.From.IsZero() && !q.filter.To.IsZero() && q.filter.To.Before(q.filter.From) {
		return q, fmt.Errorf("to (%s) is before from (%s)", q.To, q.From)
	}
	q.Limit = defaultLimit
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxLimit {
			return q, fmt.Errorf("limit must be a number from 1 to %d", maxLimit)
		}
		q.Limit = n
	}
	q.Cursor = v.Get("cursor")
	return q, nil
}

// values is q as query parameters, without the cursor, and with
// overrides applied ("" removes a parameter).
func (q query) values(override ...string) url.Values {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set("tactic", q.Tactic)
	set("priority", q.Priority)
	set("rule", q.Rule)
	set("host", q.Host)
	set("from", q.From)
	set("to", q.To)
	set("q", q.Text)
	if q.Limit != defaultLimit {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	for i := 0; i+1 < len(override); i += 2 {
		if override[i+1] == "" {
			v.Del(override[i])
		} else {
			v.Set(override[i], override[i+1])
		}
	}
	return v
}

// filtered reports whether any filter is set.
func (q query) filtered() bool {
	return q.Tactic != "" || q.Priority != "" || q.Rule != "" || q.Host != "" || q.From != "" || q.To != "" || q.Text != ""
}
