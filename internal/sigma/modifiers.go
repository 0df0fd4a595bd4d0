package sigma

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf16"
)

// unsupported is a valid Sigma construct loupe does not evaluate. Its
// reason starts with a short category ("modifier", "regex", ...) before
// a colon, which rules check counts.
type unsupported struct{ reason string }

func (u *unsupported) Error() string { return u.reason }

func unsupportedf(format string, a ...any) error {
	return &unsupported{reason: fmt.Sprintf(format, a...)}
}

// maxRegex bounds the source length of one regular expression; Go's RE2
// engine keeps the match time linear in the input.
const maxRegex = 8192

type testKind uint8

const (
	tStr    testKind = iota // string patterns
	tRe                     // regular expressions
	tCIDR                   // IP in network
	tExists                 // field present or absent
	tNum                    // numeric comparison
	tRef                    // compare with another field of the same event
)

// fieldTest is one "field|modifiers: values" entry of a detection map.
type fieldTest struct {
	acc   *accessor // nil: keyword search over the whole event
	key   string    // as written, for messages
	kind  testKind
	all   bool // every value must match (|all); otherwise one is enough
	cased bool
	null  bool // a null value was listed: a missing or JSON null field matches

	pats   []pattern
	res    []*regexp.Regexp
	nets   []netip.Prefix
	nums   []float64
	numOp  string // gt gte lt lte
	exists bool
	ref    *accessor
	refOp  patKind // patEqual, patPrefix, patSuffix, patContains
}

type compileCtx struct {
	acc          *accessors
	placeholders map[string][]string
}

// compileFieldTest compiles one detection map entry. name is the field
// name ("" for keywords with modifiers).
func (c *compileCtx) compileFieldTest(key string, val *ynode, keyword bool) (*fieldTest, error) {
	parts := strings.Split(key, "|")
	name, mods := parts[0], parts[1:]
	t := &fieldTest{key: key}
	if name != "" && !keyword {
		t.acc = c.acc.get(name)
	}
	var (
		transforms []string
		match      string // contains startswith endswith
		reFlags    string
	)
	setKind := func(k testKind, m string) error {
		if t.kind != tStr {
			return fmt.Errorf("%s: modifier %s conflicts with an earlier one", key, m)
		}
		t.kind = k
		return nil
	}
	for _, m := range mods {
		var err error
		switch m {
		case "contains", "startswith", "endswith":
			if match != "" {
				return nil, fmt.Errorf("%s: both %s and %s", key, match, m)
			}
			match = m
		case "all":
			t.all = true
		case "cased":
			t.cased = true
		case "base64", "base64offset", "utf16le", "utf16be", "utf16", "wide", "windash", "expand":
			transforms = append(transforms, m)
		case "re":
			err = setKind(tRe, m)
		case "i", "m", "s":
			if t.kind != tRe {
				return nil, fmt.Errorf("%s: regex flag %s without re", key, m)
			}
			reFlags += m
		case "cidr":
			err = setKind(tCIDR, m)
		case "exists":
			err = setKind(tExists, m)
		case "fieldref":
			err = setKind(tRef, m)
		case "gt", "gte", "lt", "lte":
			err = setKind(tNum, m)
			t.numOp = m
		case "":
			return nil, fmt.Errorf("%s: empty modifier", key)
		default:
			return nil, unsupportedf("modifier: %s", m)
		}
		if err != nil {
			return nil, err
		}
	}
	if t.acc == nil && (t.kind == tExists || t.kind == tRef || t.kind == tNum || t.kind == tCIDR) {
		return nil, fmt.Errorf("%s: modifier needs a field name", key)
	}
	if t.kind != tStr && t.kind != tRef && (match != "" || len(transforms) > 0) {
		return nil, fmt.Errorf("%s: string modifiers cannot be combined with %s", key, strings.Join(mods, "|"))
	}

	var vals []*ynode
	switch {
	case val == nil:
		return nil, fmt.Errorf("%s: no value", key)
	case val.kind == kSeq:
		vals = val.seq
	case val.kind == kScalar:
		vals = []*ynode{val}
	default:
		return nil, fmt.Errorf("%s: value is a mapping", key)
	}
	if len(vals) == 0 {
		return nil, fmt.Errorf("%s: empty value list", key)
	}
	for _, v := range vals {
		if v.kind != kScalar {
			return nil, fmt.Errorf("%s: values must be scalars, not %s", key, describe(v))
		}
	}

	switch t.kind {
	case tExists:
		if len(vals) != 1 || vals[0].tag != "!!bool" {
			return nil, fmt.Errorf("%s: exists takes true or false", key)
		}
		t.exists = vals[0].val == "true" || vals[0].val == "True" || vals[0].val == "TRUE"
		return t, nil
	case tRe:
		for _, v := range vals {
			if v.isNull() {
				return nil, fmt.Errorf("%s: null regular expression", key)
			}
			src := v.val
			if len(src) > maxRegex {
				return nil, unsupportedf("regex: longer than %d bytes", maxRegex)
			}
			if reFlags != "" {
				src = "(?" + reFlags + ")" + src
			}
			re, err := regexp.Compile(src)
			if err != nil {
				return nil, unsupportedf("regex: not RE2 syntax (%v)", err)
			}
			t.res = append(t.res, re)
		}
		return t, nil
	case tCIDR:
		for _, v := range vals {
			p, err := netip.ParsePrefix(strings.TrimSpace(v.val))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", key, err)
			}
			t.nets = append(t.nets, p.Masked())
		}
		return t, nil
	case tNum:
		for _, v := range vals {
			n, err := strconv.ParseFloat(strings.TrimSpace(v.val), 64)
			if err != nil {
				return nil, fmt.Errorf("%s: %q is not a number", key, v.val)
			}
			t.nums = append(t.nums, n)
		}
		return t, nil
	case tRef:
		if len(vals) != 1 || vals[0].isNull() {
			return nil, fmt.Errorf("%s: fieldref takes one field name", key)
		}
		t.ref = c.acc.get(vals[0].val)
		switch match {
		case "contains":
			t.refOp = patContains
		case "startswith":
			t.refOp = patPrefix
		case "endswith":
			t.refOp = patSuffix
		}
		if len(transforms) > 0 {
			return nil, unsupportedf("modifier: %s with fieldref", transforms[0])
		}
		return t, nil
	}

	// String values. Encoded values are byte patterns: compared exactly.
	if slicesContains(transforms, "base64") || slicesContains(transforms, "base64offset") {
		t.cased = true
	}
	if keyword && match == "" {
		match = "contains" // a keyword is found anywhere in the text
	}
	for _, v := range vals {
		if v.isNull() {
			t.null = true
			continue
		}
		variants, err := c.expandValue(v, transforms)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		for _, s := range variants {
			switch match {
			case "contains":
				s = append(append(sigmaString{{wild: '*'}}, s...), piece{wild: '*'})
			case "startswith":
				s = append(s[:len(s):len(s)], piece{wild: '*'})
			case "endswith":
				s = append(sigmaString{{wild: '*'}}, s...)
			}
			t.pats = append(t.pats, compilePattern(s, t.cased))
		}
	}
	if t.all && t.null {
		return nil, fmt.Errorf("%s: null in an |all list", key)
	}
	return t, nil
}

// expandValue applies the value transforms in the order given and returns
// the resulting alternatives (windash, base64offset and expand give more
// than one).
func (c *compileCtx) expandValue(v *ynode, transforms []string) ([]sigmaString, error) {
	raw := v.val
	isStr := v.tag == "!!str" || v.tag == "" || v.tag == "!"
	var vals []sigmaString
	if slicesContains(transforms, "expand") {
		texts, err := c.expandPlaceholders(raw)
		if err != nil {
			return nil, err
		}
		for _, t := range texts {
			vals = append(vals, parseSigmaString(t))
		}
	} else if isStr {
		vals = []sigmaString{parseSigmaString(raw)}
	} else {
		vals = []sigmaString{plainString(raw)}
	}
	for _, tr := range transforms {
		var next []sigmaString
		for _, s := range vals {
			switch tr {
			case "expand":
				next = append(next, s)
			case "windash":
				vs, err := windash(s)
				if err != nil {
					return nil, err
				}
				next = append(next, vs...)
			default:
				if s.hasWildcard() {
					return nil, unsupportedf("wildcard: wildcards inside a %s-encoded value", tr)
				}
				for _, e := range encode(tr, s.text()) {
					next = append(next, plainString(e))
				}
			}
		}
		vals = next
	}
	return vals, nil
}

func slicesContains(list []string, s string) bool { return indexOf(list, s) >= 0 }

// encode applies one encoding modifier to a literal.
func encode(tr, s string) []string {
	switch tr {
	case "base64":
		return []string{base64.StdEncoding.EncodeToString([]byte(s))}
	case "base64offset":
		// The value may start at any of three offsets within the encoded
		// stream; drop the characters that depend on the unknown
		// neighbours.
		start := [3]int{0, 2, 3}
		endTrim := [3]int{0, 3, 2}
		var out []string
		for i := range 3 {
			b := make([]byte, i, i+len(s))
			b = append(b, s...)
			enc := base64.StdEncoding.EncodeToString(b)
			lo, hi := start[i], len(enc)-endTrim[(len(s)+i)%3]
			if lo < hi {
				out = append(out, enc[lo:hi])
			}
		}
		return out
	case "utf16le", "wide":
		return []string{utf16Bytes(s, false, false)}
	case "utf16be":
		return []string{utf16Bytes(s, true, false)}
	case "utf16":
		return []string{utf16Bytes(s, false, true)}
	}
	return []string{s}
}

func utf16Bytes(s string, be, bom bool) string {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 0, 2*len(u)+2)
	if bom {
		b = append(b, 0xff, 0xfe)
	}
	for _, x := range u {
		if be {
			b = append(b, byte(x>>8), byte(x))
		} else {
			b = append(b, byte(x), byte(x>>8))
		}
	}
	return string(b)
}

// windashChars are what Windows command lines accept in place of '-'.
var windashChars = []string{"-", "/", "\u2013", "\u2014", "\u2015"}

// maxWindashPositions bounds the option dashes one windash value may
// hold: each is varied independently, 5^n alternatives.
const maxWindashPositions = 4

// windash returns every variant of the value where each option dash ('-'
// or '/' at the start of a word: after a non-word character or the start,
// before a word character) is, independently, one of windashChars.
func windash(v sigmaString) ([]sigmaString, error) {
	n := 0
	for _, p := range v {
		if p.wild == 0 {
			n += len(dashPositions(p.lit))
		}
	}
	if n == 0 {
		return []sigmaString{v}, nil
	}
	if n > maxWindashPositions {
		return nil, unsupportedf("windash: more than %d option dashes in one value", maxWindashPositions)
	}
	out := []sigmaString{nil}
	for _, p := range v {
		var alts []piece
		if p.wild != 0 {
			alts = []piece{p}
		} else {
			for _, lit := range dashVariants(p.lit) {
				alts = append(alts, piece{lit: lit})
			}
		}
		next := make([]sigmaString, 0, len(out)*len(alts))
		for _, prefix := range out {
			for _, a := range alts {
				next = append(next, append(prefix[:len(prefix):len(prefix)], a))
			}
		}
		out = next
	}
	return out, nil
}

// dashVariants returns lit with its option dashes varied independently.
func dashVariants(lit string) []string {
	out := []string{""}
	last := 0
	for _, i := range dashPositions(lit) {
		next := make([]string, 0, len(out)*len(windashChars))
		for _, prefix := range out {
			for _, d := range windashChars {
				next = append(next, prefix+lit[last:i]+d)
			}
		}
		out = next
		last = i + 1
	}
	for k := range out {
		out[k] += lit[last:]
	}
	return out
}

func dashPositions(s string) []int {
	var pos []int
	for i := 0; i < len(s); i++ {
		if s[i] != '-' && s[i] != '/' {
			continue
		}
		if i > 0 && isWordByte(s[i-1]) {
			continue
		}
		if i+1 < len(s) && isWordByte(s[i+1]) {
			pos = append(pos, i)
		}
	}
	return pos
}

func isWordByte(c byte) bool {
	return c == '_' || ('0' <= c && c <= '9') || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || c >= 0x80
}

// expandPlaceholders replaces %name% placeholders with each configured
// value (in Sigma string syntax) and returns every combination.
func (c *compileCtx) expandPlaceholders(s string) ([]string, error) {
	out := []string{""}
	for {
		i := strings.IndexByte(s, '%')
		if i < 0 {
			break
		}
		j := strings.IndexByte(s[i+1:], '%')
		if j < 0 {
			break
		}
		name := s[i+1 : i+1+j]
		vals, ok := c.placeholders[name]
		if !ok || len(vals) == 0 {
			return nil, unsupportedf("expand: placeholder %%%s%% not configured", name)
		}
		var next []string
		for _, prefix := range out {
			for _, v := range vals {
				next = append(next, prefix+s[:i]+v)
			}
		}
		if len(next) > 256 {
			return nil, unsupportedf("expand: more than 256 combinations")
		}
		out = next
		s = s[i+2+j:]
	}
	for k := range out {
		out[k] += s
	}
	return out, nil
}
