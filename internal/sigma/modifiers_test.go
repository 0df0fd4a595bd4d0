package sigma

import (
	"strings"
	"testing"

	"github.com/loupe-sec/loupe/internal/event"
)

// compileOne compiles one rule with the given detection section (indented
// YAML) for generic JSON events.
func compileOne(t *testing.T, detection string, opt Options) *Rule {
	t.Helper()
	src := "title: T\nid: test-rule\nlogsource:\n    product: test\ndetection:\n" + indent(detection) + "level: low\n"
	rs := Parse("t.yml", []byte(src), opt)
	if len(rs.Problems) > 0 {
		t.Fatalf("rule did not load: %v\n%s", rs.Problems[0], src)
	}
	return rs.Rules[0]
}

func indent(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.Trim(s, "\n"), "\n") {
		b.WriteString("    " + l + "\n")
	}
	return b.String()
}

func jsonEvent(raw string) *event.Event {
	return &event.Event{Format: event.FormatJSON, Raw: []byte(raw)}
}

type matchCase struct {
	event string
	want  bool
}

func checkRule(t *testing.T, detection string, cases ...matchCase) {
	t.Helper()
	checkRuleOpt(t, detection, Options{}, cases...)
}

func checkRuleOpt(t *testing.T, detection string, opt Options, cases ...matchCase) {
	t.Helper()
	r := compileOne(t, detection, opt)
	rs := &Ruleset{Rules: []*Rule{r}}
	rs.acc = accessors{}
	x := &Engine{rs: rs, vals: make([]fieldVal, 256)}
	for _, c := range cases {
		if got := x.Match(r, jsonEvent(c.event)); got != c.want {
			t.Errorf("detection:\n%s\nevent %s: match %v, want %v", detection, c.event, got, c.want)
		}
	}
}

func TestEqualsIgnoresCase(t *testing.T) {
	checkRule(t, "sel:\n    a: FooBar\ncondition: sel",
		matchCase{`{"a":"foobar"}`, true}, matchCase{`{"a":"FOOBAR"}`, true},
		matchCase{`{"a":"foobar2"}`, false}, matchCase{`{"b":"foobar"}`, false})
	// Unicode letters fold too.
	checkRule(t, "sel:\n    a: ÄRGER\ncondition: sel", matchCase{`{"a":"ärger"}`, true}, matchCase{`{"a":"arger"}`, false})
}

func TestCased(t *testing.T) {
	checkRule(t, "sel:\n    a|cased: FooBar\ncondition: sel",
		matchCase{`{"a":"FooBar"}`, true}, matchCase{`{"a":"foobar"}`, false})
	checkRule(t, "sel:\n    a|contains|cased: Bar\ncondition: sel",
		matchCase{`{"a":"xBarx"}`, true}, matchCase{`{"a":"xbarx"}`, false})
}

func TestContainsStartsEnds(t *testing.T) {
	checkRule(t, "sel:\n    a|contains: mid\ncondition: sel", matchCase{`{"a":"xxMIDxx"}`, true}, matchCase{`{"a":"mi d"}`, false})
	checkRule(t, "sel:\n    a|startswith: pre\ncondition: sel", matchCase{`{"a":"PREfix"}`, true}, matchCase{`{"a":"xpre"}`, false})
	checkRule(t, "sel:\n    a|endswith: '\\cmd.exe'\ncondition: sel",
		matchCase{`{"a":"C:\\Windows\\System32\\CMD.EXE"}`, true}, matchCase{`{"a":"C:\\cmd.exe.bak"}`, false})
}

func TestWildcards(t *testing.T) {
	checkRule(t, "sel:\n    a: 'f?o*bar'\ncondition: sel",
		matchCase{`{"a":"fxo-bar"}`, true}, matchCase{`{"a":"fxobar"}`, true}, matchCase{`{"a":"fobar"}`, false},
		matchCase{`{"a":"fäo bar"}`, true}) // ? is one character, not one byte
	checkRule(t, "sel:\n    a: '*one*two*three'\ncondition: sel",
		matchCase{`{"a":"0one1two2three"}`, true}, matchCase{`{"a":"two one three"}`, false}, matchCase{`{"a":"onetwothree4"}`, false})
	checkRule(t, "sel:\n    a: 'ab*ab'\ncondition: sel", matchCase{`{"a":"ab"}`, false}, matchCase{`{"a":"abab"}`, true})
	checkRule(t, "sel:\n    a: '*'\ncondition: sel", matchCase{`{"a":""}`, true}, matchCase{`{}`, false})
}

func TestEscapedWildcards(t *testing.T) {
	checkRule(t, "sel:\n    a: 'f\\*o'\ncondition: sel",
		matchCase{`{"a":"f*o"}`, true}, matchCase{`{"a":"fxo"}`, false})
	checkRule(t, "sel:\n    a: 'what\\?'\ncondition: sel",
		matchCase{`{"a":"what?"}`, true}, matchCase{`{"a":"whatx"}`, false})
	// \\ is one literal backslash; the * after it stays a wildcard.
	checkRule(t, "sel:\n    a: 'dir\\\\*'\ncondition: sel",
		matchCase{`{"a":"dir\\sub"}`, true}, matchCase{`{"a":"dirsub"}`, false})
	// A backslash before anything else is literal; before * it escapes.
	checkRule(t, "sel:\n    a: 'C:\\Windows\\Sys*'\ncondition: sel",
		matchCase{`{"a":"c:\\windows\\system32"}`, true}, matchCase{`{"a":"C:\\Windowsx"}`, false})
	checkRule(t, "sel:\n    a: 'C:\\Windows\\*'\ncondition: sel",
		matchCase{`{"a":"C:\\Windows*"}`, true}, matchCase{`{"a":"c:\\windows\\system32"}`, false})
}

func TestAllWithContains(t *testing.T) {
	checkRule(t, "sel:\n    a|contains|all:\n        - foo\n        - bar\ncondition: sel",
		matchCase{`{"a":"bar then foo"}`, true}, matchCase{`{"a":"foo only"}`, false})
	// Without |all one value is enough.
	checkRule(t, "sel:\n    a|contains:\n        - foo\n        - bar\ncondition: sel",
		matchCase{`{"a":"foo only"}`, true}, matchCase{`{"a":"neither"}`, false})
}

func TestRegex(t *testing.T) {
	checkRule(t, "sel:\n    a|re: '^F.o$'\ncondition: sel", matchCase{`{"a":"Foo"}`, true}, matchCase{`{"a":"foo"}`, false})
	checkRule(t, "sel:\n    a|re|i: '^F.o$'\ncondition: sel", matchCase{`{"a":"foo"}`, true})
	checkRule(t, "sel:\n    a|re|s: 'a.b'\ncondition: sel", matchCase{`{"a":"a\nb"}`, true})
	checkRule(t, "sel:\n    a|re: 'a.b'\ncondition: sel", matchCase{`{"a":"a\nb"}`, false})
	checkRule(t, "sel:\n    a|re|m: '^b$'\ncondition: sel", matchCase{`{"a":"a\nb"}`, true})
	checkRule(t, "sel:\n    a|re: '^b$'\ncondition: sel", matchCase{`{"a":"a\nb"}`, false})
}

func TestBase64(t *testing.T) {
	checkRule(t, "sel:\n    a|base64: 'hello'\ncondition: sel", matchCase{`{"a":"aGVsbG8="}`, true}, matchCase{`{"a":"hello"}`, false})
	// base64offset finds the value at any of the three alignments.
	for _, enc := range []string{"eGhlbGxvIHdvcmxk", "eHhoZWxsbyB3b3JsZA==", "eHh4aGVsbG8gd29ybGQ=", "aGVsbG8gd29ybGQ="} {
		checkRule(t, "sel:\n    a|base64offset|contains: 'hello'\ncondition: sel", matchCase{`{"a":"cmd -e ` + enc + `"}`, true})
	}
	checkRule(t, "sel:\n    a|base64offset|contains: 'hello'\ncondition: sel", matchCase{`{"a":"aGVsbDBvIHdvcmxk"}`, false})
}

func TestBase64OffsetValues(t *testing.T) {
	for _, c := range []struct {
		in, mods string
		want     []string
	}{
		{"/bin/bash", "base64offset", []string{"L2Jpbi9iYXNo", "9iaW4vYmFza", "vYmluL2Jhc2"}},
		{"Invoke", "utf16le|base64offset", []string{"SQBuAHYAbwBrAGUA"}},
	} {
		r := compileOne(t, "sel:\n    a|"+c.mods+"|contains: '"+c.in+"'\ncondition: sel", Options{})
		test := r.searches[0].alts[0][0]
		for i, w := range c.want {
			if p := test.pats[i]; p.kind != patContains || p.lit != w {
				t.Errorf("%s|%s value %d: %+v, want contains %q", c.in, c.mods, i, p, w)
			}
		}
	}
	// Which encodings of "Test" hold it at some offset.
	checkRule(t, "sel:\n    Data|base64offset|contains: Test\ncondition: sel",
		matchCase{`{"Data":"VGVzdGluZw=="}`, true}, matchCase{`{"Data":"eFRlc3Rpbmc="}`, true}, matchCase{`{"Data":"eHhUZXN0aW5n"}`, true},
		matchCase{`{"Data":"QVRlc3Qh"}`, true}, matchCase{`{"Data":"VGVzbGE="}`, false},
		matchCase{`{"Data":"vgvzdgluzw=="}`, false}) // base64 is compared exactly
}

func TestUTF16(t *testing.T) {
	// "IEX" as UTF-16LE then base64: SQBFAFgA
	checkRule(t, "sel:\n    a|wide|base64offset|contains: 'IEX'\ncondition: sel",
		matchCase{`{"a":"-enc SQBFAFgAIAAoAA=="}`, true}, matchCase{`{"a":"-enc SUVY"}`, false})
	checkRule(t, "sel:\n    a|utf16le|base64: 'ab'\ncondition: sel", matchCase{`{"a":"YQBiAA=="}`, true})
	checkRule(t, "sel:\n    a|utf16be|base64: 'ab'\ncondition: sel", matchCase{`{"a":"AGEAYg=="}`, true})
	checkRule(t, "sel:\n    a|utf16|base64: 'ab'\ncondition: sel", matchCase{`{"a":"//5hAGIA"}`, true})
}

func TestWindash(t *testing.T) {
	d := "sel:\n    a|windash|contains: ' -exec bypass'\ncondition: sel"
	checkRule(t, d, matchCase{`{"a":"powershell -exec bypass"}`, true}, matchCase{`{"a":"powershell /exec bypass"}`, true},
		matchCase{`{"a":"powershell \u2013exec bypass"}`, true}, matchCase{`{"a":"powershell \u2014exec bypass"}`, true},
		matchCase{`{"a":"powershell \u2015exec bypass"}`, true}, matchCase{`{"a":"powershell +exec bypass"}`, false})
	// Each option dash varies on its own.
	checkRule(t, "sel:\n    a|windash|contains: 'taskkill -f -im'\ncondition: sel",
		matchCase{`{"a":"taskkill /f /im x.exe"}`, true}, matchCase{`{"a":"taskkill -f /im x.exe"}`, true},
		matchCase{`{"a":"taskkill \u2013f \u2014im x.exe"}`, true}, matchCase{`{"a":"taskkill \u2015f /im x.exe"}`, true},
		matchCase{`{"a":"taskkill +f /im x.exe"}`, false})
	// A dash inside a word is not an option dash.
	checkRule(t, "sel:\n    a|windash: 'x-y'\ncondition: sel", matchCase{`{"a":"x/y"}`, false}, matchCase{`{"a":"x-y"}`, true})
}

func TestCIDR(t *testing.T) {
	d := "sel:\n    ip|cidr:\n        - 10.0.0.0/8\n        - '2001:db8::/32'\ncondition: sel"
	checkRule(t, d, matchCase{`{"ip":"10.1.2.3"}`, true}, matchCase{`{"ip":"11.0.0.1"}`, false},
		matchCase{`{"ip":"2001:db8::1"}`, true}, matchCase{`{"ip":"2001:db9::1"}`, false},
		matchCase{`{"ip":"::ffff:10.0.0.1"}`, true}, matchCase{`{"ip":"not an ip"}`, false}, matchCase{`{}`, false})
}

func TestExists(t *testing.T) {
	checkRule(t, "sel:\n    a|exists: true\ncondition: sel", matchCase{`{"a":""}`, true}, matchCase{`{"b":1}`, false}, matchCase{`{"a":null}`, false})
	checkRule(t, "sel:\n    a|exists: false\ncondition: sel", matchCase{`{"b":1}`, true}, matchCase{`{"a":"x"}`, false})
}

func TestFieldref(t *testing.T) {
	checkRule(t, "sel:\n    a|fieldref: b\ncondition: sel",
		matchCase{`{"a":"X","b":"x"}`, true}, matchCase{`{"a":"x","b":"y"}`, false}, matchCase{`{"a":"x"}`, false})
	checkRule(t, "sel:\n    a|fieldref|contains: b\ncondition: sel", matchCase{`{"a":"1x2","b":"X"}`, true}, matchCase{`{"a":"12","b":"x"}`, false})
	checkRule(t, "sel:\n    a|fieldref|cased: b\ncondition: sel", matchCase{`{"a":"X","b":"x"}`, false})
}

func TestNumericComparisons(t *testing.T) {
	checkRule(t, "sel:\n    n|gt: 5\ncondition: sel", matchCase{`{"n":6}`, true}, matchCase{`{"n":5}`, false}, matchCase{`{"n":"7"}`, true}, matchCase{`{"n":"x"}`, false})
	checkRule(t, "sel:\n    n|gte: 5\ncondition: sel", matchCase{`{"n":5}`, true}, matchCase{`{"n":4.9}`, false})
	checkRule(t, "sel:\n    n|lt: 5\ncondition: sel", matchCase{`{"n":-1}`, true}, matchCase{`{"n":5}`, false})
	checkRule(t, "sel:\n    n|lte: 5\ncondition: sel", matchCase{`{"n":5}`, true}, matchCase{`{"n":5.1}`, false})
	checkRule(t, "sel:\n    n: 5\ncondition: sel", matchCase{`{"n":5}`, true}, matchCase{`{"n":"5"}`, true}, matchCase{`{"n":50}`, false})
}

func TestExpand(t *testing.T) {
	opt := Options{Placeholders: map[string][]string{"admins": {"root", "adm_*"}}}
	checkRuleOpt(t, "sel:\n    user|expand: '%admins%'\ncondition: sel", opt,
		matchCase{`{"user":"ROOT"}`, true}, matchCase{`{"user":"adm_bob"}`, true}, matchCase{`{"user":"bob"}`, false})
}

func TestNull(t *testing.T) {
	// null is a missing or null field; an empty string is a value.
	checkRule(t, "sel:\n    a: null\ncondition: sel",
		matchCase{`{}`, true}, matchCase{`{"a":null}`, true}, matchCase{`{"a":""}`, false}, matchCase{`{"a":"x"}`, false})
	checkRule(t, "sel:\n    a: ''\ncondition: sel", matchCase{`{"a":""}`, true}, matchCase{`{"a":"x"}`, false}, matchCase{`{}`, false})
	checkRule(t, "sel:\n    a:\n        - null\n        - x\ncondition: sel", matchCase{`{}`, true}, matchCase{`{"a":"X"}`, true}, matchCase{`{"a":"y"}`, false})
}

func TestNotWithMissingField(t *testing.T) {
	checkRule(t, "sel:\n    a: x\nfilter:\n    b: y\ncondition: sel and not filter",
		matchCase{`{"a":"x"}`, true}, matchCase{`{"a":"x","b":"y"}`, false}, matchCase{`{"a":"x","b":"z"}`, true})
	checkRule(t, "sel:\n    a: x\ncondition: not sel", matchCase{`{}`, true}, matchCase{`{"a":"X"}`, false})
}

func TestListsAndMaps(t *testing.T) {
	// A map is AND; a list of maps is OR.
	checkRule(t, "sel:\n    a: 1\n    b: 2\ncondition: sel", matchCase{`{"a":1,"b":2}`, true}, matchCase{`{"a":1,"b":3}`, false})
	checkRule(t, "sel:\n    - a: 1\n    - b: 2\ncondition: sel", matchCase{`{"a":0,"b":2}`, true}, matchCase{`{"a":0,"b":0}`, false})
	checkRule(t, "sel:\n    a:\n        - x\n        - y\ncondition: sel", matchCase{`{"a":"y"}`, true}, matchCase{`{"a":"z"}`, false})
}

func TestConditionForms(t *testing.T) {
	base := "sel_a:\n    a: 1\nsel_b:\n    b: 1\n_helper:\n    c: 1\nfilter:\n    d: 1\n"
	ev := func(a, b, c, d int) string {
		return `{"a":` + itoa(a) + `,"b":` + itoa(b) + `,"c":` + itoa(c) + `,"d":` + itoa(d) + `}`
	}
	checkRule(t, base+"condition: 1 of sel_*", matchCase{ev(0, 1, 0, 0), true}, matchCase{ev(0, 0, 1, 1), false})
	checkRule(t, base+"condition: all of sel_*", matchCase{ev(1, 1, 0, 0), true}, matchCase{ev(1, 0, 0, 0), false})
	checkRule(t, base+"condition: 1 of them", matchCase{ev(0, 0, 0, 1), true}, matchCase{ev(0, 0, 1, 0), false}) // _helper is not in them
	checkRule(t, base+"condition: all of them", matchCase{ev(1, 1, 0, 1), true}, matchCase{ev(1, 1, 1, 0), false})
	checkRule(t, base+"condition: 1 of sel_* and not filter", matchCase{ev(1, 0, 0, 0), true}, matchCase{ev(1, 0, 0, 1), false})
	// and binds tighter than or.
	checkRule(t, base+"condition: sel_a or sel_b and filter", matchCase{ev(1, 0, 0, 0), true}, matchCase{ev(0, 1, 0, 0), false})
	checkRule(t, base+"condition: (sel_a or sel_b) and filter", matchCase{ev(1, 0, 0, 0), false}, matchCase{ev(0, 1, 0, 1), true})
	checkRule(t, base+"condition: not (sel_a or _helper)", matchCase{ev(0, 1, 0, 0), true}, matchCase{ev(0, 0, 1, 0), false})
	checkRule(t, base+"condition:\n    - sel_a\n    - filter", matchCase{ev(0, 0, 0, 1), true}, matchCase{ev(0, 1, 0, 0), false})
	checkRule(t, base+"condition: all of sel_* or 1 of _h*", matchCase{ev(0, 0, 1, 0), true})
}

func itoa(n int) string { return string(rune('0' + n)) }

func TestKeywords(t *testing.T) {
	checkRule(t, "keywords:\n    - 'evil*cmd'\n    - mimikatz\ncondition: keywords",
		matchCase{`{"msg":"ran MIMIKATZ.exe"}`, true}, matchCase{`{"x":{"y":["a","an evil long cmd"]}}`, true}, matchCase{`{"msg":"fine"}`, false})
	checkRule(t, "keywords:\n    '|all':\n        - alpha\n        - beta\ncondition: keywords",
		matchCase{`{"m":"alpha beta"}`, true}, matchCase{`{"m":"alpha"}`, false})
}

func TestNestedAndArrayValues(t *testing.T) {
	checkRule(t, "sel:\n    requestParameters.userName: bob\ncondition: sel",
		matchCase{`{"requestParameters":{"userName":"Bob"}}`, true}, matchCase{`{"requestParameters":{"userName":"al"}}`, false})
	// A flat key with a dot is found too.
	checkRule(t, "sel:\n    process.name: sh\ncondition: sel", matchCase{`{"process.name":"sh"}`, true})
	checkRule(t, "sel:\n    args|contains: '-c'\ncondition: sel", matchCase{`{"args":["sh","-c","id"]}`, true}, matchCase{`{"args":["sh"]}`, false})
}

func TestUnsupportedAndInvalid(t *testing.T) {
	for _, c := range []struct {
		detection   string
		unsupported bool
		reason      string
	}{
		{"sel:\n    a|re: '(?<=x)y'\ncondition: sel", true, "regex:"},
		{"sel:\n    a|nosuch: x\ncondition: sel", true, "modifier: nosuch"},
		{"sel:\n    a|expand: '%x%'\ncondition: sel", true, "expand: placeholder %x% not configured"},
		{"sel:\n    a: x\ncondition: sel | count() > 5", true, "aggregation:"},
		{"sel:\n    a|base64: 'a*b'\ncondition: sel", true, "wildcard:"},
		{"sel:\n    a|windash: '-a -b -c -d -e'\ncondition: sel", true, "windash: more than 4"},
		{"sel:\n    a: x\ncondition: sel and other", false, "unknown search identifier"},
		{"sel:\n    a: x\ncondition: 1 of nothing*", false, "matches no search identifier"},
		{"sel:\n    a: x\ncondition: (sel", false, "missing )"},
		{"sel:\n    a|cidr: 300.0.0.0/8\ncondition: sel", false, "ParsePrefix"},
		{"sel:\n    a|gt: ten\ncondition: sel", false, "not a number"},
		{"sel:\n    a|re|contains: x\ncondition: sel", false, "cannot be combined"},
		{"sel:\n    a|exists: maybe\ncondition: sel", false, "exists takes true or false"},
		{"sel:\n    a: []\ncondition: sel", false, "empty value list"},
		{"sel:\n    a: x\n", false, "no condition"},
	} {
		src := "title: T\nlogsource:\n    product: test\ndetection:\n" + indent(c.detection)
		rs := Parse("t.yml", []byte(src), Options{})
		if len(rs.Problems) != 1 || len(rs.Rules) != 0 {
			t.Errorf("%q: problems %v, rules %d", c.detection, rs.Problems, len(rs.Rules))
			continue
		}
		p := rs.Problems[0]
		if p.Unsupported != c.unsupported || !strings.Contains(p.Reason, c.reason) {
			t.Errorf("%q: got unsupported=%v %q, want unsupported=%v containing %q", c.detection, p.Unsupported, p.Reason, c.unsupported, c.reason)
		}
	}
}

func TestPatternKinds(t *testing.T) {
	for _, c := range []struct {
		in   string
		kind patKind
		lit  string
	}{
		{"abc", patEqual, "abc"}, {"ABC*", patPrefix, "abc"}, {"*abc", patSuffix, "abc"}, {"*abc*", patContains, "abc"},
		{"**abc***", patContains, "abc"}, {"a*b", patSegments, "a"}, {"a?b", patGlob, "a"}, {"*", patAny, ""}, {"", patEqual, ""},
	} {
		p := compilePattern(parseSigmaString(c.in), false)
		if p.kind != c.kind || (p.kind != patSegments && p.kind != patGlob && p.lit != c.lit) {
			t.Errorf("%q: kind %d lit %q", c.in, p.kind, p.lit)
		}
	}
}
