package sigma

import (
	"encoding/json"
	"fmt"
	"github.com/loupe-sec/loupe/internal/source"
	"github.com/tidwall/gjson"
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

// FuzzObjectMembers: the allocation-free member scanner agrees with
// encoding/json-valid input as gjson reads it, values decoded the same.
func FuzzObjectMembers(f *testing.F) {
	for _, s := range []string{`{"a":"x\\y","b":[1,{"c":"}"}],"d":null,"e":1.5e3,"f":{"g":"\u00e9\ud83d\ude00"}}`, `{}`, `{"k\"q":"v"}`, ` { "a" : true } `} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !json.Valid([]byte(s)) || !gjson.Parse(s).IsObject() {
			return
		}
		var want [][2]string
		gjson.Parse(s).ForEach(func(k, v gjson.Result) bool {
			val := v.Raw
			if v.Type == gjson.String {
				val = v.Str
			}
			want = append(want, [2]string{k.Str, val})
			return true
		})
		it := newObjIter(s)
		var got [][2]string
		for {
			k, v, ok := it.next()
			if !ok {
				break
			}
			k = string(source.AppendUnescaped(nil, k))
			if v[0] == '"' {
				v = string(source.AppendUnescaped(nil, v[1:len(v)-1]))
			}
			got = append(got, [2]string{k, v})
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s:\n got %q\nwant %q", s, got, want)
		}
	})
}

// FuzzEvent: any record, in any event family, is evaluated without a
// panic, and the indexed, prefiltered Observe agrees with a plain
// evaluation of every rule.
func FuzzEvent(f *testing.F) {
	for _, s := range []string{
		`{"Event":{"System":{"EventID":1},"EventData":{"CommandLine":"certutil -urlcache http://x","Image":"C:\\Windows\\certutil.exe"}}}`,
		`{"eventSource":"cloudtrail.amazonaws.com","eventName":"StopLogging","a":[1,"x"]}`,
		`{"output_fields":{"proc.exepath":"/bin/bash","proc.pname":"runc"}}`, `{"CommandLine":["a","b"]}`, `not json`,
	} {
		f.Add(s, uint8(0), 1, "Microsoft-Windows-Sysmon/Operational")
		f.Add(s, uint8(2), 4625, "Security")
	}
	rs := Parse("gen.yml", genRules(300), Options{})
	test, _ := Load("testdata/rules", Options{})
	f.Fuzz(func(t *testing.T, raw string, format uint8, id int, channel string) {
		ev := &event.Event{Format: event.Format(format % 6), Raw: []byte(raw), EventID: id, Channel: channel,
			Message: raw, CommandLine: raw, DataPath: "Event.EventData"}
		for _, set := range []*Ruleset{rs, test} {
			x, y := set.NewEngine(), set.NewEngine()
			got := map[string]bool{}
			x.Observe(ev, func(d detect.Detection) { got[d.Rule.ID] = true })
			for _, r := range set.Rules {
				if r.Correlation == "" && r.generate && y.Match(r, ev) != got[r.attr.ID] {
					t.Fatalf("rule %s: Observe %v, plain evaluation %v", r.Title, got[r.attr.ID], !got[r.attr.ID])
				}
			}
		}
	})
}

// Engines of one rule set run concurrently (go test -race).
func TestConcurrentEngines(t *testing.T) {
	rs := loadTestRules(t)
	evs := readEvents(t, filepath.Join("..", "demo", "corpus", "evtx.jsonl"))
	counts := make(chan int, 4)
	for range 4 {
		go func() {
			x := rs.NewEngine()
			n := 0
			for range 20 {
				for _, ev := range evs {
					x.Observe(ev, func(detect.Detection) { n++ })
				}
			}
			counts <- n
		}()
	}
	first := <-counts
	for range 3 {
		if n := <-counts; n != first || n == 0 {
			t.Errorf("engines disagree: %d and %d matches", first, n)
		}
	}
}

// FuzzRegression: a regression layout of any info.yml and sample text
// is replayed or reported, never a panic; every case names its sample.
func FuzzRegression(f *testing.F) {
	f.Add("rule_metadata:\n  - id: a\nregression_tests_info:\n  - path: x\\s.evtx\n    match_count: 1\n", `{"Event":{"System":{"EventID":1,"Channel":"c"},"EventData":{"Image":"x"}}}`)
	f.Add("rule_metadata: []\n", "[1,2]")
	f.Add("regression_tests_info: 3\n", `{"a":1}{"b":[`)
	rs := Parse("r.yml", []byte("title: A\nid: a\nlogsource: {product: windows}\ndetection: {sel: {Image: x}, condition: sel}\n"), Options{})
	f.Fuzz(func(t *testing.T, info, sample string) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "info.yml"), []byte(info), 0o644)
		os.WriteFile(filepath.Join(dir, "s.json"), []byte(sample), 0o644)
		rep, err := RunRegression(rs, dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range rep.Cases {
			if c.Sample == "" || c.Matched > c.Events {
				t.Fatalf("case %+v", c)
			}
		}
	})
}
