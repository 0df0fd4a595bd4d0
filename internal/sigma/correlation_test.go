package sigma

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/loupe-sec/loupe/internal/detect"
	"github.com/loupe-sec/loupe/internal/event"
)

const corrBase = `title: Login
name: login
logsource: {product: test}
detection: {sel: {action: login}, condition: sel}
---
title: Fail
name: fail
logsource: {product: test}
detection: {sel: {action: fail}, condition: sel}
---
title: Sudo
name: sudo
logsource: {product: test}
detection: {sel: {action: sudo}, condition: sel}
---
`

func corrEvent(t0 time.Time, sec int, action, user, ip string) *event.Event {
	return &event.Event{Format: event.FormatJSON, Time: t0.Add(time.Duration(sec) * time.Second),
		Raw: []byte(fmt.Sprintf(`{"action":%q,"user":%q,"ip":%q}`, action, user, ip))}
}

type step struct {
	sec              int
	action, user, ip string
}

// runCorr feeds the steps and returns the titles emitted per step index.
func runCorr(t *testing.T, src string, opt Options, steps []step) []string {
	t.Helper()
	rs := Parse("c.yml", []byte(corrBase+src), opt)
	if len(rs.Problems) > 0 {
		t.Fatalf("problems: %v", rs.Problems)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	x := rs.NewEngine()
	var out []string
	for i, s := range steps {
		x.Observe(corrEvent(t0, s.sec, s.action, s.user, s.ip), func(d detect.Detection) {
			out = append(out, fmt.Sprintf("%d:%s:%d", i, d.Rule.Title, d.Count))
		})
	}
	return out
}

func TestEventCount(t *testing.T) {
	src := `title: Brute
correlation: {type: event_count, rules: [fail], group-by: [user], timespan: 60s, condition: {gte: 3}}
`
	got := runCorr(t, src, Options{}, []step{
		{0, "fail", "a", ""}, {10, "fail", "b", ""}, {20, "fail", "a", ""},
		{100, "fail", "a", ""}, // the first two of a left the window
		{110, "fail", "a", ""}, {115, "fail", "a", ""}, {116, "fail", "a", ""},
		{117, "login", "a", ""},
	})
	// Fires at the third failure of a within 60 s (index 5), then starts afresh.
	if strings.Join(got, " ") != "5:Brute:3 7:Login:1" { // login feeds no correlation: it reports itself
		t.Errorf("got %v", got)
	}
}

func TestValueCount(t *testing.T) {
	src := `title: Spray
correlation: {type: value_count, rules: [fail], group-by: [ip], timespan: 1m, condition: {field: user, gte: 3}}
`
	got := runCorr(t, src, Options{}, []step{
		{0, "fail", "a", "1"}, {1, "fail", "a", "1"}, {2, "fail", "b", "1"}, {3, "fail", "c", "2"}, {4, "fail", "c", "1"},
	})
	if strings.Join(got, " ") != "4:Spray:3" {
		t.Errorf("got %v", got)
	}
}

func TestTemporal(t *testing.T) {
	src := `title: Fail Then Login
correlation: {type: temporal, rules: [fail, login], group-by: [user], timespan: 30s}
`
	got := runCorr(t, src, Options{}, []step{
		{0, "login", "a", ""}, {5, "fail", "b", ""}, {10, "fail", "a", ""}, // any order
		{100, "fail", "c", ""}, {200, "login", "c", ""}, // too far apart
	})
	if strings.Join(got, " ") != "2:Fail Then Login:2" {
		t.Errorf("got %v", got)
	}
}

func TestTemporalOrdered(t *testing.T) {
	src := `title: Login Then Sudo
correlation:
    type: temporal_ordered
    rules: [login, sudo]
    group-by: [user]
    timespan: 1m
    generate: true
`
	got := runCorr(t, src, Options{}, []step{
		{0, "sudo", "a", ""}, {1, "login", "a", ""}, // wrong order so far
		{2, "sudo", "b", ""}, {30, "sudo", "a", ""},
	})
	// generate: true keeps the base rules' own matches.
	want := "0:Sudo:1 1:Login:1 2:Sudo:1 3:Sudo:1 3:Login Then Sudo:2"
	if strings.Join(got, " ") != want {
		t.Errorf("got %v\nwant %s", got, want)
	}
}

func TestCorrelationStateBounded(t *testing.T) {
	src := `title: Brute
correlation: {type: event_count, rules: [fail], group-by: [user], timespan: 1h, condition: {gte: 2}}
`
	var steps []step
	for i := range 50 {
		steps = append(steps, step{i, "fail", fmt.Sprint("u", i), ""})
	}
	steps = append(steps, step{60, "fail", "u0", ""}, step{61, "fail", "u49", ""})
	got := runCorr(t, src, Options{MaxTracked: 10}, steps)
	// u0 was evicted (only 10 groups kept); u49 is still tracked.
	if strings.Join(got, " ") != "51:Brute:2" {
		t.Errorf("got %v", got)
	}
}

func TestCorrelationProblems(t *testing.T) {
	for src, want := range map[string]string{
		"title: X\ncorrelation: {type: event_count, rules: [fail], timespan: 1m, condition: {lt: 3}}\n":                                                                                          "unsupported: correlation: a condition without a lower bound",
		"title: X\ncorrelation: {type: event_count, rules: [nope], timespan: 1m, condition: {gte: 3}}\n":                                                                                         `invalid: correlation: unknown rule "nope"`,
		"title: X\ncorrelation: {type: event_count, rules: [fail], timespan: 1x, condition: {gte: 3}}\n":                                                                                         "invalid: correlation timespan",
		"title: X\ncorrelation: {type: magic, rules: [fail], timespan: 1m}\n":                                                                                                                    "unsupported: correlation: type magic",
		"title: X\nname: x\ncorrelation: {type: temporal, rules: [fail, login], timespan: 1m}\n---\ntitle: Y\ncorrelation: {type: event_count, rules: [x], timespan: 1m, condition: {gte: 2}}\n": "chained correlations",
	} {
		rs := Parse("c.yml", []byte(corrBase+src), Options{})
		if len(rs.Problems) != 1 || !strings.Contains(rs.Problems[0].String(), want) {
			t.Errorf("%s: problems %v, want %q", src, rs.Problems, want)
		}
	}
}
