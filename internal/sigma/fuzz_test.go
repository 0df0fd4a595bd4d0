package sigma

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/loupe-sec/loupe/internal/detect"
	"github.com/loupe-sec/loupe/internal/event"
)

// FuzzCondition: the condition parser never panics, and what it accepts
// binds or fails with an error.
func FuzzCondition(f *testing.F) {
	for _, s := range []string{"a and not b", "1 of sel* or all of them", "((a) or (b and c))", "not", "a | count() > 3", "1 of", "(", "all of them and not 1 of f*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := parseCondition(s)
		if err != nil {
			return
		}
		_ = c.String()
		if b, err := c.bind([]string{"a", "b", "c", "sel1", "sel2", "f", "_h"}); err == nil {
			_ = b.String()
		}
	})
}

// FuzzRule: any rule file either loads or is reported, never panics; a
// loaded rule can be evaluated against an event.
func FuzzRule(f *testing.F) {
	files, _ := filepath.Glob("testdata/rules/*/*.y*ml")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("title: x\nlogsource: {product: test}\ndetection: {s: {a|contains|all: [x, y]}, condition: s}\n"))
	f.Add([]byte("action: global\ntitle: g\n---\ndetection: {s: [a, b], condition: s}\n---\naction: repeat\ntitle: r\n"))
	f.Add([]byte("title: c\ncorrelation: {type: event_count, rules: [x], timespan: 5m, condition: {gte: 2}}\n"))
	evs := []*event.Event{
		{Format: event.FormatJSON, Raw: []byte(`{"a":"xy","b":[1,"2"],"c":{"d":null}}`), Message: "x y"},
		{Format: event.FormatEVTX, EventID: 1, Channel: "Microsoft-Windows-Sysmon/Operational", CommandLine: "cmd /c x", Raw: []byte(`{"Event":{"EventData":{"CommandLine":"cmd /c x"}}}`), DataPath: "Event.EventData"},
		{Format: event.FormatSyslog, Message: "sshd: Failed password for root", Program: "sshd"},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rs := Parse("fuzz.yml", data, Options{})
		x := rs.NewEngine()
		for _, ev := range evs {
			for _, r := range rs.Rules {
				x.Match(r, ev)
			}
			x.Observe(ev, func(detect.Detection) {})
		}
	})
}
