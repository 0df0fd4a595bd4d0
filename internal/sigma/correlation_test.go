package sigma

import (
	"fmt"
	"sort"
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
	x.Flush(func(d detect.Detection) {
		out = append(out, fmt.Sprintf("end:%s:%d:%s", d.Rule.Title, d.Count, strings.Join(recordIDs(d), ",")))
	})
	return out
}

func recordIDs(d detect.Detection) []string {
	var ids []string
	for _, e := range d.Related {
		ids = append(ids, e.Time.Format("05"))
	}
	return ids
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
		"title: X\ncorrelation: {type: event_count, rules: [fail], timespan: 1m, condition: {gte: 5000}}\n":                                                                                                      "unsupported: correlation: threshold above 4096",
		"title: X\ncorrelation: {type: event_count, rules: [fail], timespan: 1m, condition: {gte: 3, lt: 2}}\n":                                                                                                  "invalid: correlation condition can never hold",
		"title: X\ncorrelation: {type: event_count, rules: [nope], timespan: 1m, condition: {gte: 3}}\n":                                                                                                         `invalid: correlation: unknown rule "nope"`,
		"title: X\ncorrelation: {type: event_count, rules: [fail], timespan: 1x, condition: {gte: 3}}\n":                                                                                                         "invalid: correlation timespan",
		"title: X\ncorrelation: {type: magic, rules: [fail], timespan: 1m}\n":                                                                                                                                    "unsupported: correlation: type magic",
		"title: X\nname: x\ncorrelation: {type: event_count, rules: [fail], timespan: 1m, condition: {lt: 2}}\n---\ntitle: Y\ncorrelation: {type: event_count, rules: [x], timespan: 1m, condition: {gte: 2}}\n": "unsupported: correlation: chained on x, whose condition",
	} {
		rs := Parse("c.yml", []byte(corrBase+src), Options{})
		if len(rs.Problems) != 1 || !strings.Contains(rs.Problems[0].String(), want) {
			t.Errorf("%s: problems %v, want %q", src, rs.Problems, want)
		}
	}
	// A cycle: both correlations are reported, neither is loaded.
	rs := Parse("c.yml", []byte(corrBase+"title: X\nname: x\ncorrelation: {type: event_count, rules: [y], timespan: 1m, condition: {gte: 2}}\n---\n"+
		"title: Y\nname: y\ncorrelation: {type: event_count, rules: [x], timespan: 1m, condition: {gte: 2}}\n"), Options{})
	if len(rs.Problems) != 2 || !strings.Contains(rs.Problems[0].String(), "cycle") || len(rs.Rules) != 3 {
		t.Errorf("cycle: problems %v, %d rules", rs.Problems, len(rs.Rules))
	}
}

// A correlation may name another correlation: each firing of the inner one
// counts as one match for the outer one. The inner one emits nothing itself
// unless the outer one says generate: true.
func TestChainedCorrelation(t *testing.T) {
	src := `title: Burst
name: burst
correlation: {type: event_count, rules: [fail], group-by: [user], timespan: 10s, condition: {gte: 3}}
---
title: Repeated bursts
correlation: {type: event_count, rules: [burst], group-by: [user], timespan: 10m, condition: {gte: 2}}
`
	var steps []step
	for _, base := range []int{0, 100, 200} {
		for i := range 3 {
			steps = append(steps, step{base + i, "fail", "alice", ""})
		}
		steps = append(steps, step{base + 5, "fail", "bob", ""}) // one failure: no burst
	}
	got := runCorr(t, src, Options{}, steps)
	// Bursts of alice end at steps 2, 6 and 10; the second makes the
	// outer correlation fire (and start afresh), the third alone does not.
	if strings.Join(got, " ") != "6:Repeated bursts:2" {
		t.Errorf("chain: got %v", got)
	}
	// The order of the documents does not matter.
	parts := strings.SplitN(src, "---\n", 2)
	if got := runCorr(t, parts[1]+"---\n"+parts[0], Options{}, steps); strings.Join(got, " ") != "6:Repeated bursts:2" {
		t.Errorf("chain, outer first: got %v", got)
	}
	got = runCorr(t, strings.Replace(src, "condition: {gte: 2}}", "condition: {gte: 2}, generate: true}", 1), Options{}, steps)
	if strings.Join(got, " ") != "2:Burst:3 6:Burst:3 6:Repeated bursts:2 10:Burst:3" {
		t.Errorf("chain with generate: got %v", got)
	}
}

// Conditions with an upper bound or neq are decided when a group's window
// closes: a later event past the timespan, or the end of the stream.
func TestWindowClose(t *testing.T) {
	src := `title: Rare
correlation: {type: event_count, rules: [login], group-by: [user], timespan: 60s, condition: {lt: 3}}
`
	got := runCorr(t, src, Options{}, []step{
		{0, "login", "a", ""}, {10, "login", "a", ""}, {5, "login", "b", ""}, {6, "login", "b", ""}, {7, "login", "b", ""},
		{100, "login", "a", ""}, // closes a's first window (2 events), opens another
	})
	if strings.Join(got, " ") != "5:Rare:2 end:Rare:1:40" {
		t.Errorf("lt: got %v", got)
	}

	src = `title: Few Sources
correlation: {type: value_count, rules: [fail], group-by: [user], timespan: 1h, condition: {field: ip, gte: 2, lte: 3}}
`
	got = runCorr(t, src, Options{}, []step{
		{0, "fail", "a", "1"}, {1, "fail", "a", "2"}, {2, "fail", "a", "2"},
		{3, "fail", "b", "1"}, {4, "fail", "b", "2"}, {5, "fail", "b", "3"}, {6, "fail", "b", "4"}, // past 3: never
		{7, "fail", "c", "1"}, // below 2
	})
	if strings.Join(got, " ") != "end:Few Sources:2:00,01,02" {
		t.Errorf("range: got %v", got)
	}

	src = `title: Not Two
correlation: {type: event_count, rules: [fail], group-by: [user], timespan: 1h, condition: {neq: 2}}
`
	got = runCorr(t, src, Options{}, []step{
		{0, "fail", "a", ""}, {1, "fail", "a", ""}, {2, "fail", "b", ""}, {3, "fail", "c", ""}, {4, "fail", "c", ""}, {5, "fail", "c", ""},
	})
	sort.Strings(got)
	if strings.Join(got, " ") != "end:Not Two:1:02 end:Not Two:3:03,04,05" {
		t.Errorf("neq: got %v", got)
	}

	// An evicted group is decided when it leaves.
	src = `title: Rare
correlation: {type: event_count, rules: [login], group-by: [user], timespan: 1h, condition: {lte: 1}}
`
	got = runCorr(t, src, Options{MaxTracked: 2}, []step{{0, "login", "a", ""}, {1, "login", "b", ""}, {2, "login", "c", ""}})
	sort.Strings(got)
	if strings.Join(got, " ") != "2:Rare:1 end:Rare:1:01 end:Rare:1:02" {
		t.Errorf("eviction: got %v", got)
	}
}
