package web

import (
	"net/url"
	"testing"
)

// FuzzParseQuery: any query string is either refused with an error or
// parsed into a filter that survives the page's own links: the values it
// writes back parse again to the same filter.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{
		"", "tactic=TA0003&priority=high", "tactic=command+and+control", "priority=warning",
		"from=2024-03-19T23:25&to=2024-03-20", "from=2024-03-19T23:25:00%2B02:00", "to=2024-03-19 23:59:59",
		"q=%25_%5C", "rule=r1&host=h1&limit=7&cursor=abc", "limit=500", "from=2024-03-20&to=2024-03-19", "q=%ff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := parseQuery(v)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if q.Limit < 1 || q.Limit > maxLimit {
			t.Fatalf("limit %d accepted", q.Limit)
		}
		if !q.filter.From.IsZero() && !q.filter.To.IsZero() && q.filter.To.Before(q.filter.From) {
			t.Fatalf("to %v before from %v accepted", q.filter.To, q.filter.From)
		}
		back, err := parseQuery(q.values())
		if err != nil {
			t.Fatalf("%q parsed, but its links %q do not: %v", raw, q.values().Encode(), err)
		}
		if back.filter != q.filter || back.Limit != q.Limit {
			t.Fatalf("%q: filter %+v, after a round trip through the links %+v", raw, q.filter, back.filter)
		}
	})
}
