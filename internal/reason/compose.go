package reason

import (
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/loupe-sec/loupe/internal/finding"
)

// facts are what a conclusion sentence is composed from. Empty fields are
// unknown and their clause is left out.
type facts struct {
	what     string   // the detection's observation clause, the core of the sentence
	subjects []string // acting users; several only in repeat summaries
	moreSubj int      // acting users beyond subjects
	subjIP   bool     // the source IP is the subject (correlations over logons)
	srcIP    string
	target   string // account acted upon
	image    string // process image, subject of last resort
	hosts    []string
	moreHost int
	accounts []string // other accounts seen in the evidence
	moreAcct int
	first    time.Time
	last     time.Time
	events   int64 // events behind the conclusion
	repeats  int64 // > 1 for a repeat summary: times the observation was made
	linked   int   // evidence linked (repeat summaries only)
	rule     finding.Rule
	techs    []finding.Technique
}

// sentence composes the conclusion: where and when, who, what, how many,
// then the rule and technique attribution.
func (f *facts) sentence() string {
	var b strings.Builder
	b.Grow(len(f.what) + 160)
	what := f.what
	if what == "" {
		what = "matched rule " + quote(ruleName(f.rule))
		if ruleName(f.rule) == "" {
			what = "matched a detection rule"
		}
	}

	// Where, and when for a single observation, lead the sentence.
	var lead []string
	if len(f.hosts) > 0 && !(len(f.hosts) == 1 && f.moreHost == 0 && mentions(what, f.hosts[0])) {
		lead = append(lead, "on "+joinNames(f.hosts, f.moreHost, "other hosts"))
	}
	if f.repeats <= 1 {
		if w := when(f.first, f.last); w != "" {
			lead = append(lead, w)
		}
	}
	if len(lead) > 0 {
		b.WriteString(strings.Join(lead, " "))
		b.WriteString(", ")
	}

	// Who.
	ipUsed := false
	var who string
	switch {
	case f.subjIP && f.srcIP != "" && !mentions(what, f.srcIP):
		who, ipUsed = f.srcIP, true
	case len(f.subjects) == 1 && f.moreSubj == 0:
		who = "user " + f.subjects[0]
	case len(f.subjects) > 0:
		who = "users " + joinNames(f.subjects, f.moreSubj, "others")
	case f.srcIP != "" && !mentions(what, f.srcIP):
		who, ipUsed = f.srcIP, true
	case f.image != "" && !mentions(what, f.image):
		who = "process " + f.image
	}
	switch {
	case f.what == "" && who == "":
		b.WriteString("activity ")
	case f.what == "" && ipUsed:
		b.WriteString("activity from " + who + " ")
	case f.what == "":
		b.WriteString("activity of " + who + " ")
	case who == "":
		b.WriteString("an unidentified actor ")
	default:
		b.WriteString(who + " ")
	}
	b.WriteString(what)

	if f.target != "" && !mentions(what, f.target) && !contains(f.subjects, f.target) {
		b.WriteString(" as account ")
		b.WriteString(f.target)
	}
	if f.srcIP != "" && !ipUsed && !mentions(what, f.srcIP) {
		b.WriteString(" from ")
		b.WriteString(f.srcIP)
	}

	// How many, and for repeats when.
	var tail []string
	if f.repeats > 1 {
		b.WriteByte(' ')
		b.WriteString(thousands(f.repeats))
		b.WriteString(" times")
		if w := when(f.first, f.last); w != "" {
			b.WriteByte(' ')
			b.WriteString(w)
		}
		if f.events > f.repeats {
			tail = append(tail, thousands(f.events)+" events in total")
		}
	} else if f.events > 1 {
		tail = append(tail, thousands(f.events)+" events in total")
	}
	accts := f.accounts[:0:0]
	for _, a := range f.accounts {
		if !mentions(what, a) && !contains(f.subjects, a) && a != f.target {
			accts = append(accts, a)
		}
	}
	if len(accts) > 0 {
		noun := "account "
		if len(accts)+f.moreAcct > 1 {
			noun = "accounts "
		}
		tail = append(tail, "involving "+noun+joinNames(accts, f.moreAcct, "others"))
	}
	if len(tail) > 0 {
		b.WriteString("; ")
		b.WriteString(strings.Join(tail, ", "))
	}
	if f.repeats > 1 && f.linked > 0 {
		switch f.linked {
		case 1:
			b.WriteString("; the first event is linked")
		default:
			b.WriteString("; the first ")
			b.WriteString(strconv.Itoa(f.linked))
			b.WriteString(" events are linked")
		}
	}

	// Attribution.
	var attr []string
	if f.what != "" {
		if name := ruleName(f.rule); name != "" {
			attr = append(attr, "rule "+quote(name))
		}
	}
	for _, t := range f.techs {
		if s := clean(t.ID + " " + t.Name); s != "" {
			attr = append(attr, s)
		}
	}
	if len(attr) > 0 {
		b.WriteString(" (")
		b.WriteString(strings.Join(attr, ", "))
		b.WriteByte(')')
	}
	b.WriteByte('.')
	return capitalize(b.String())
}

// when phrases a time or span: "at 2019-03-19 23:34:17 UTC",
// "between 2019-03-19 10:00:01 and 10:00:58 UTC"; "" when unknown.
func when(first, last time.Time) string {
	if first.IsZero() {
		first = last
	}
	if last.IsZero() {
		last = first
	}
	if first.IsZero() {
		return ""
	}
	first, last = first.UTC().Truncate(time.Second), last.UTC().Truncate(time.Second)
	if !last.After(first) {
		return "at " + first.Format(time.DateTime) + " UTC"
	}
	end := last.Format(time.DateTime)
	if first.Format(time.DateOnly) == last.Format(time.DateOnly) {
		end = last.Format(time.TimeOnly)
	}
	return "between " + first.Format(time.DateTime) + " and " + end + " UTC"
}

// joinNames joins names as "a", "a and b", "a, b and c", adding "and N <others>"
// when more were seen than kept.
func joinNames(names []string, more int, others string) string {
	switch {
	case more > 0:
		return strings.Join(names, ", ") + " and " + strconv.Itoa(more) + " " + others
	case len(names) == 1:
		return names[0]
	case len(names) == 0:
		return ""
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// thousands formats n with comma separators: 1234 → "1,234".
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	if n < 0 || len(s) <= 3 {
		return s
	}
	var b strings.Builder
	pre := len(s) % 3
	if pre > 0 {
		b.WriteString(s[:pre])
	}
	for i := pre; i < len(s); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s[i : i+3])
	}
	return b.String()
}

func ruleName(r finding.Rule) string {
	if t := clean(r.Title); t != "" {
		return t
	}
	return clean(r.ID)
}

func quote(s string) string { return "\"" + s + "\"" }

// mentions reports whether the clause already names the fact, so it is not
// repeated.
func mentions(clause, fact string) bool {
	return fact != "" && strings.Contains(strings.ToLower(clause), strings.ToLower(fact))
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func capitalize(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError || unicode.IsUpper(r) || !unicode.IsLower(r) {
		return s
	}
	return string(unicode.ToUpper(r)) + s[n:]
}

// clean makes a fact fit in one sentence: control characters become spaces,
// surrounding space is trimmed, and a "-" placeholder counts as unknown.
// person is a cleaned account name, or "" for a Windows machine account
// (NAME$), which is the system acting for itself rather than a person.
func person(s string) string {
	s = clean(s)
	if strings.HasSuffix(s, "$") {
		return ""
	}
	return s
}

func clean(s string) string {
	s = strings.TrimSpace(s)
	if s == "-" || s == "<nil>" || strings.EqualFold(s, "null") {
		return ""
	}
	if strings.IndexFunc(s, unicode.IsControl) < 0 {
		return s
	}
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s))
}

// truncate cuts s to at most n runes, marking the cut with "…".
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i, c := 0, 0
	for i = range s {
		if c == n-1 {
			break
		}
		c++
	}
	return s[:i] + "…"
}

// baseName returns the last element of a Windows or Unix path.
func baseName(p string) string {
	if i := strings.LastIndexAny(p, `\/`); i >= 0 && i < len(p)-1 {
		return p[i+1:]
	}
	return p
}
