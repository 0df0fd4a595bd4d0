package server

import (
	"encoding/json"
	"net/url"
	"testing"
)

// FuzzInvestigationRequest: the parsers of a create request's source and
// of the findings query never panic; an accepted source has a kind and
// JSON parameters, and a password never survives into the API view.
func FuzzInvestigationRequest(f *testing.F) {
	for _, s := range []string{
		`{"kind":"file","path":"/x"}`, `{"kind":"loki","params":{"url":"http://l","password":"hunter2"}}`,
		`{"kind":"loki","url":"http://l","username":"u","password":"hunter2"}`, `null`, `[]`, `{"kind":1}`, `{"params":{}}`,
		`tactic=TA0006&priority=high&from=2024-01-01T00:00:00Z&q=%25_`, `priority=urgent&to=x`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if src, err := parseSource(b); err == nil {
			if src.Kind == "" {
				t.Fatal("accepted a source without a kind")
			}
			if len(src.Params) > 0 && !json.Valid(src.Params) {
				t.Fatalf("params %q are not JSON", src.Params)
			}
			view := withoutPassword(src.Params)
			var fields map[string]json.RawMessage
			if json.Unmarshal(view, &fields) == nil {
				if p, ok := fields["password"]; ok && string(p) != `"[redacted]"` {
					t.Fatalf("password %s shown", p)
				}
			}
		}
		if q, err := url.ParseQuery(string(b)); err == nil {
			if flt, err := findingFilter(q); err == nil && len(flt.Text) > 200 {
				t.Fatal("accepted an overlong q")
			}
			if p, err := pageParams(q); err == nil && (p.Limit < 0 || p.Limit > 1000) {
				t.Fatalf("accepted limit %d", p.Limit)
			}
		}
	})
}
